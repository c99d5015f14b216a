// bench/broker-store: what brokered secrets (issue 11) add on the store side,
// beside bare references measured in the same run: making a sandbox's CA (at
// create, only for sandboxes holding a brokered secret) against a bare P-256
// key generation, the proxy's per-connection and per-request questions
// (forSandbox + secrets(), value() from the cache) against a bare indexed
// SQLite read, and a placeholder; then, through a real daemon (ns, minimal),
// create + first exec of a sandbox with 3 bound secrets against 3 unbound ones.
// Run: node dist/bench/broker-store.js [--runs N] (BHATTI_IMAGES_DIR as the tests)
import { randomBytes, webcrypto } from "node:crypto";
import { join } from "node:path";
import { rmSync } from "node:fs";
import { openDb } from "../src/store/db.js";
import { openKeyring } from "../src/secrets/open.js";
import { SecretService } from "../src/secrets/service.js";
import { BrokerStore } from "../src/broker/store.js";
import { bootBrokering } from "../src/broker/boot.js";
import { bindingChange } from "../src/broker/binding.js";
import { createSandboxCa } from "../src/broker/ca.js";
import { makePlaceholder } from "../src/broker/placeholder.js";
import { api, cleanup, createUser, startDaemon, tempDir } from "../src/testing/harness.js";
import { exec } from "../src/testing/sandbox-api.js";
import { printTable, timeit, machine, type Row } from "./stats.js";

async function main() {
  const dir = tempDir("bhatti-bench-broker-");
  try {
    const db = openDb(join(dir, "state.db"));
    const keyring = await openKeyring(join(dir, "age.key"), db);
    db.prepare("INSERT INTO users (id, name, api_key_sha256, max_sandboxes, max_cpus, max_memory_mb, created_at, key_rotated_at) VALUES (1, 'u', 'x', 5, 4, 4096, '', '')").run();
    const user = { id: 1, name: "u" };
    const secrets = new SecretService(db, keyring);
    const broker = new BrokerStore(db, keyring, secrets);
    const value = "sk-proj-" + randomBytes(30).toString("base64url");
    for (let i = 0; i < 3; i++) await secrets.set(user, `KEY_${i}`, value, bindingChange({ hosts: [`api${i}.example.com`], header: "authorization" }));
    db.prepare("INSERT INTO sandboxes (id, user_id, name, engine, image, cpus, memory_mb, env_keys, secret_names, status, created_at) VALUES ('sb1', 1, 'sb1', 'ns', 'minimal', 1, 512, '[]', '[]', 'running', '')").run();
    (await bootBrokering(broker, 1, await secrets.resolve(user, ["KEY_0", "KEY_1", "KEY_2"])))!.save("sb1");
    const bare = db.prepare("SELECT hosts FROM secrets WHERE user_id = ? AND name = ?");

    const rows: Row[] = [];
    const REF = "ref: bare P-256 key pair + export (WebCrypto)";
    rows.push({ name: REF, samples: await timeit(100, async () => webcrypto.subtle.exportKey("pkcs8", (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"])).privateKey)) });
    rows.push({ name: "sandbox CA (key + self-signed certificate)", ref: REF, samples: await timeit(100, () => createSandboxCa()) });
    rows.push({ name: "create path: 3 bound secrets -> placeholders + CA + encrypted key", ref: REF, samples: await timeit(100, async () => bootBrokering(broker, 1, await secrets.resolve(user, ["KEY_0", "KEY_1", "KEY_2"]))) });
    rows.push({ name: "ref: one indexed SQLite read", samples: await timeit(20000, () => bare.get(1, "KEY_0")) });
    rows.push({ name: "proxy: forSandbox(id).secrets() (3 secrets, cached)", ref: "ref: one indexed SQLite read", samples: await timeit(20000, () => broker.forSandbox("sb1")!.secrets()) });
    const sb = broker.forSandbox("sb1")!;
    rows.push({ name: "proxy: value(name) (cached by version)", ref: "ref: one indexed SQLite read", samples: await timeit(20000, () => sb.value("KEY_1")) });
    rows.push({ name: "placeholder for a 48-character key", ref: "ref: one indexed SQLite read", samples: await timeit(20000, () => makePlaceholder(value)) });
    db.close();
    const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 10;
    rows.push(...(await daemonRows(runs)));
    process.stdout.write(`bench/broker-store on ${machine()}, ${new Date().toISOString()}\n\n`);
    printTable("brokered secrets, store side", rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** create + first exec through a real daemon: 3 unbound secrets (the reference) against 3 bound ones. */
async function daemonRows(runs: number): Promise<Row[]> {
  const d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images" } });
  try {
    const key = createUser(d.dataDir, "bench", ["--max-sandboxes", "4"]);
    for (let i = 0; i < 3; i++) {
      await api(d, "POST", "/secrets", { key, body: { name: `PLAIN_${i}`, value: "sk-" + randomBytes(24).toString("hex") } });
      await api(d, "POST", "/secrets", { key, body: { name: `BOUND_${i}`, value: "sk-" + randomBytes(24).toString("hex"), hosts: [`api${i}.example.com`] } });
    }
    const once = (prefix: string) => async (i: number) => {
      const name = `b${i < 0 ? "w" + -i : i}`;
      const c = await api(d, "POST", "/sandboxes", { key, body: { name, secrets: [0, 1, 2].map((n) => `${prefix}_${n}`) } });
      if (c.status !== 201) throw new Error(c.text);
      await exec(d, key, name, ["true"]);
      await api(d, "DELETE", `/sandboxes/${name}`, { key }); // outside the measurement would need two loops; destroy is the same for both rows
    };
    const REF = "ref: ns create + first exec + destroy, 3 unbound secrets";
    return [
      { name: REF, samples: await timeit(runs, once("PLAIN"), 2) },
      { name: "ns create + first exec + destroy, 3 bound secrets", ref: REF, samples: await timeit(runs, once("BOUND"), 2) },
    ];
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
