// bench/secrets: the secret store's hot paths, beside bare references measured
// in the same run. Run: node dist/bench/secrets.js  (or `npm run bench:secrets`)
import http from "node:http";
import { tmpdir } from "node:os";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import * as age from "age-encryption";
import { startDaemon, createUser } from "../src/testing/harness.js";
import { openDb } from "../src/store/db.js";
import { openKeyring } from "../src/secrets/open.js";
import { SecretService } from "../src/secrets/service.js";
import { NativeX25519Recipient } from "../src/secrets/x25519.js";
import { Keyring } from "../src/secrets/keyring.js";
import { printTable, timeit, machine, type Row } from "./stats.js";

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function request(url: string, method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: string }> {
  const u = new URL(path, url);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method, agent,
      headers: { Authorization: `Bearer ${key}`, ...(data ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

async function main() {
  const d = await startDaemon({ args: ["--rate-limit", "0"] });
  const key = createUser(d.dataDir, "bench");
  const rows: Row[] = [];

  // References, same run: a bare better-sqlite3 insert, a bare age encrypt, a bare HTTP round trip.
  const refDir = mkdtempSync(join(tmpdir(), "bhatti-bench-"));
  const bare = new Database(join(refDir, "bare.db"));
  bare.pragma("journal_mode = WAL");
  bare.pragma("synchronous = NORMAL");
  bare.exec("CREATE TABLE t (user_id INTEGER, name TEXT, v BLOB, c TEXT, u TEXT, PRIMARY KEY (user_id, name)) WITHOUT ROWID");
  const ins = bare.prepare("INSERT OR REPLACE INTO t VALUES (1, ?, ?, ?, ?)");
  const blob = Buffer.alloc(250, 7);
  rows.push({ name: "ref: bare better-sqlite3 insert", samples: await timeit(2000, (i) => ins.run(`N${i}`, blob, "x", "y")) });
  const identity = await age.generateX25519Identity();
  const recipient = await age.identityToRecipient(identity);
  rows.push({ name: "ref: bare age-encryption encrypt (X25519)", samples: await timeit(500, async () => { const e = new age.Encrypter(); e.addRecipient(recipient); await e.encrypt("value-of-a-typical-api-key-0123456789"); }) });
  const native = new NativeX25519Recipient(recipient);
  rows.push({ name: "encrypt with bhatti's native X25519 recipient", ref: "ref: bare age-encryption encrypt (X25519)",
    samples: await timeit(500, async () => { const e = new age.Encrypter(); e.addRecipient(native); await e.encrypt("value-of-a-typical-api-key-0123456789"); }) });
  const kr = await Keyring.fromIdentity(identity);
  rows.push({ name: "encrypt, bhatti's keyring (age on node:crypto)", ref: "ref: bare age-encryption encrypt (X25519)",
    samples: await timeit(500, () => kr.encrypt("value-of-a-typical-api-key-0123456789")) });
  const oneBlob = await kr.encrypt("value-of-a-typical-api-key-0123456789");
  const bareDec = new age.Decrypter();
  bareDec.addIdentity(identity);
  rows.push({ name: "ref: bare age-encryption decrypt (X25519)", samples: await timeit(500, () => bareDec.decrypt(oneBlob, "text")) });
  rows.push({ name: "decrypt, bhatti's keyring (age on node:crypto)", ref: "ref: bare age-encryption decrypt (X25519)", samples: await timeit(500, () => kr.decrypt(oneBlob)) });
  rows.push({ name: "ref: bare HTTP round trip (GET /health)", samples: await timeit(1000, () => request(d.url, "GET", "/health", key)) });

  rows.push({ name: "secret set over HTTP (keep-alive)", ref: "ref: bare age-encryption encrypt (X25519)", target: "p50 ≤ 1 ms",
    samples: await timeit(1000, async (i) => {
      const r = await request(d.url, "POST", "/secrets", key, { name: `SET_${i < 0 ? "W" + -i : i}`, value: "value-of-a-typical-api-key-0123456789" });
      if (r.status !== 201 && r.status !== 200) throw new Error(`set: ${r.status} ${r.body}`);
    }) });

  // Replacing (and deleting) a secret also checkpoints and empties the WAL, so the old ciphertext does not linger.
  rows.push({ name: "secret replace over HTTP (keep-alive)", ref: "ref: bare age-encryption encrypt (X25519)",
    samples: await timeit(300, async (i) => {
      const r = await request(d.url, "POST", "/secrets", key, { name: `SET_${Math.abs(i) % 1000}`, value: "replaced-value-of-a-typical-api-key-0123" });
      if (r.status !== 200) throw new Error(`replace: ${r.status} ${r.body}`);
    }) });

  // Fill to 10,000 secrets (8 in flight at a time), then list.
  const have = JSON.parse((await request(d.url, "GET", "/secrets", key)).body).length as number;
  const todo = Array.from({ length: 10_000 - have }, (_, i) => `FILL_${i}`);
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let n = todo.pop(); n; n = todo.pop()) await request(d.url, "POST", "/secrets", key, { name: n, value: "v" });
  }));
  rows.push({ name: "secret list at 10,000 secrets over HTTP", ref: "ref: bare HTTP round trip (GET /health)", target: "p50 ≤ 10 ms",
    samples: await timeit(100, async () => {
      const r = await request(d.url, "GET", "/secrets", key);
      if (JSON.parse(r.body).length !== 10_000) throw new Error("list size");
    }) });
  await d.stop();

  // Decrypting 50 secrets for a config drive, in process, on the same data dir.
  const db = openDb(join(d.dataDir, "state.db"));
  const svc = new SecretService(db, await openKeyring(join(d.dataDir, "age.key"), db));
  const user = db.prepare("SELECT id, name FROM users WHERE name = 'bench'").get() as { id: number; name: string };
  const names = Array.from({ length: 50 }, (_, i) => `SET_${i}`);
  rows.push({ name: "decrypt 50 secrets (config drive resolve)", ref: "ref: bare age-encryption decrypt (X25519)", target: "p50 ≤ 5 ms",
    samples: await timeit(50, () => svc.resolveForSandbox(user, names)) });
  db.close();

  process.stdout.write(`bench/secrets on ${machine()}, ${new Date().toISOString()}\n\n`);
  printTable("secrets", rows);
  agent.destroy();
  bare.close();
  rmSync(refDir, { recursive: true, force: true });
  rmSync(d.dataDir, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exit(1); });
