// bench/broker-store: what brokered secrets (issue 11) add on the store side,
// beside bare references measured in the same run: making a sandbox's CA (at
// create, only for sandboxes holding a brokered secret) against a bare P-256
// key generation, the proxy's per-connection and per-request questions
// (forSandbox + secrets(), value() from the cache) against a bare indexed
// SQLite read, and a placeholder. Run: node dist/bench/broker-store.js
import { generateKeyPairSync, randomBytes } from "node:crypto";
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
import { tempDir } from "../src/testing/harness.js";
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
    rows.push({ name: "ref: bare P-256 key pair (node:crypto)", samples: await timeit(100, () => generateKeyPairSync("ec", { namedCurve: "P-256" })) });
    rows.push({ name: "sandbox CA (key + self-signed certificate)", ref: "ref: bare P-256 key pair (node:crypto)", samples: await timeit(100, () => createSandboxCa()) });
    rows.push({ name: "create path: 3 bound secrets -> placeholders + CA + encrypted key", ref: "ref: bare P-256 key pair (node:crypto)", samples: await timeit(100, async () => bootBrokering(broker, 1, await secrets.resolve(user, ["KEY_0", "KEY_1", "KEY_2"]))) });
    rows.push({ name: "ref: one indexed SQLite read", samples: await timeit(20000, () => bare.get(1, "KEY_0")) });
    rows.push({ name: "proxy: forSandbox(id).secrets() (3 secrets, cached)", ref: "ref: one indexed SQLite read", samples: await timeit(20000, () => broker.forSandbox("sb1")!.secrets()) });
    const sb = broker.forSandbox("sb1")!;
    rows.push({ name: "proxy: value(name) (cached by version)", ref: "ref: one indexed SQLite read", samples: await timeit(20000, () => sb.value("KEY_1")) });
    rows.push({ name: "placeholder for a 48-character key", ref: "ref: one indexed SQLite read", samples: await timeit(20000, () => makePlaceholder(value)) });
    process.stdout.write(`bench/broker-store on ${machine()}, ${new Date().toISOString()}\n\n`);
    printTable("brokered secrets, store side", rows);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
