// BrokerStore over a real state.db and a real age key: what the egress proxy
// sees through the Broker interface follows the store at once (rotation,
// rebinding, unbinding, deletion), survives a new process (restart), is
// copied to snapshots, goes with the sandbox, and key rotation re-encrypts
// the CA keys. Sandbox rows are written by SQL here; the daemon-level suites
// (brokered.*.test.ts) make them through real creates.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, webcrypto, X509Certificate, createPrivateKey } from "node:crypto";
import { join } from "node:path";
import { openDb, type DB } from "../store/db.js";
import { openKeyring } from "../secrets/open.js";
import { rotateKey } from "../secrets/rotate.js";
import { SecretService, type Caller } from "../secrets/service.js";
import { bindingChange } from "./binding.js";
import { BrokerStore } from "./store.js";
import { bootBrokering } from "./boot.js";
import { cleanup, tempDir } from "../testing/harness.js";
import { scanTree } from "../testing/scan.js";
import type { Keyring } from "../secrets/keyring.js";

let dir: string;
let db: DB;
let keyring: Keyring;
let secrets: SecretService;
let broker: BrokerStore;
const alice: Caller = { id: 1, name: "alice" };
const bob: Caller = { id: 2, name: "bob" };
const alnum = (n: number) => [...randomBytes(n)].map((b) => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[b % 62]).join("");
const v1 = "sk-" + alnum(40);
const v2 = "sk-" + alnum(40);
const gh = "ghp_" + alnum(36);

function sandboxRow(id: string, userId: number): void {
  db.prepare(`INSERT INTO sandboxes (id, user_id, name, engine, image, cpus, memory_mb, env_keys, secret_names, status, created_at)
    VALUES (?, ?, ?, 'ns', 'minimal', 1, 512, '[]', '[]', 'running', ?)`).run(id, userId, id, new Date().toISOString());
}

/** What a create does: resolve (bound ones not decrypted), placeholders, record. */
async function boot(id: string, user: Caller, names: string[], base?: { sandbox: string } | { snapshot: string }) {
  const resolved = await secrets.resolve(user, names);
  const b = await bootBrokering(broker, user.id, resolved, base);
  if (!base || "snapshot" in base) sandboxRow(id, user.id);
  b?.save(id);
  return { resolved, b };
}

before(async () => {
  dir = tempDir();
  db = openDb(join(dir, "state.db"));
  keyring = await openKeyring(join(dir, "age.key"), db);
  for (const u of [alice, bob]) {
    db.prepare("INSERT INTO users (id, name, api_key_sha256, max_sandboxes, max_cpus, max_memory_mb, created_at, key_rotated_at) VALUES (?, ?, ?, 5, 4, 4096, '', '')").run(u.id, u.name, randomBytes(8).toString("hex"));
  }
  secrets = new SecretService(db, keyring);
  broker = new BrokerStore(db, keyring, secrets);
  await secrets.set(alice, "OPENAI", v1, bindingChange({ hosts: ["api.openai.com"], header: "Authorization" }));
  await secrets.set(alice, "GH", gh, bindingChange({ hosts: ["api.github.com"], in_body: true }));
  await secrets.set(alice, "PLAIN", "plain-value");
});
after(() => {
  db.close();
  cleanup(dir);
});

test("a create never decrypts a bound value: resolve lists it as bound; the placeholders take its place", async () => {
  let decrypts = 0;
  const orig = keyring.decrypt.bind(keyring);
  keyring.decrypt = (c) => { decrypts++; return orig(c); };
  try {
    const { resolved, b } = await boot("sb1", alice, ["OPENAI", "PLAIN", "GH"]);
    assert.equal(decrypts, 1, "only the unbound secret was decrypted");
    assert.deepEqual([...resolved.bound.keys()], ["OPENAI", "GH"]);
    assert.equal(resolved.values.get("PLAIN"), "plain-value");
    assert.equal(resolved.values.get("OPENAI"), b!.placeholders.get("OPENAI"));
    assert.notEqual(resolved.values.get("OPENAI"), v1);
    assert.equal(resolved.values.get("OPENAI")!.length, v1.length);
  } finally {
    keyring.decrypt = orig;
  }
});

test("forSandbox: undefined without brokered secrets; the bindings, values and CA of one that has them", async () => {
  await boot("sb0", alice, ["PLAIN"]);
  assert.equal(broker.forSandbox("sb0"), undefined, "no brokered secret: never intercepted");
  assert.equal(broker.forSandbox("nope"), undefined);
  const sb = broker.forSandbox("sb1")!;
  assert.equal(sb.sandboxId, "sb1");
  assert.equal(broker.forSandbox("sb1"), sb, "the same object while its record is unchanged");
  const list = sb.secrets();
  assert.deepEqual(list.map((s) => [s.name, s.hosts, s.header, s.inBody]), [["OPENAI", ["api.openai.com"], "authorization", false], ["GH", ["api.github.com"], undefined, true]]);
  assert.equal((await sb.value("OPENAI"))!.toString(), v1);
  assert.equal(await sb.value("PLAIN"), null, "not a brokered secret of this sandbox");
  const ca = await sb.ca();
  const cert = new X509Certificate(ca.certPem);
  assert.ok(cert.ca, "a CA certificate");
  assert.ok(cert.checkPrivateKey(createPrivateKey(ca.keyPem)), "its key matches");
  assert.equal((cert.publicKey.asymmetricKeyDetails as { namedCurve?: string }).namedCurve, "prime256v1", "ECDSA P-256");
  // A caller wiping the buffer it got does not wipe the cache.
  (await sb.value("OPENAI"))!.fill(0);
  assert.equal((await sb.value("OPENAI"))!.toString(), v1);
});

test("rotation, rebinding, unbinding and deletion show on the next call", async () => {
  const sb = broker.forSandbox("sb1")!;
  const before = sb.secrets();
  await secrets.set(alice, "OPENAI", v2);
  assert.equal((await sb.value("OPENAI"))!.toString(), v2, "rotation: the new value at once");
  assert.equal(sb.secrets().find((s) => s.name === "OPENAI")!.placeholder, before[0].placeholder, "the placeholder stays");
  await secrets.set(alice, "OPENAI", undefined, bindingChange({ hosts: ["api.openai.com", "*.openai.azure.com"] }));
  assert.deepEqual(sb.secrets().find((s) => s.name === "OPENAI")!.hosts, ["api.openai.com", "*.openai.azure.com"]);
  assert.equal(sb.secrets().find((s) => s.name === "OPENAI")!.header, undefined);
  await secrets.set(alice, "OPENAI", undefined, bindingChange({ hosts: [] }));
  const unbound = sb.secrets().find((s) => s.name === "OPENAI")!;
  assert.deepEqual(unbound.hosts, [], "unbound later: the sandbox's placeholder may go nowhere");
  assert.equal(await sb.value("OPENAI"), null);
  await secrets.set(alice, "OPENAI", undefined, bindingChange({ hosts: ["api.openai.com"] }));
  assert.equal((await sb.value("OPENAI"))!.toString(), v2);
  secrets.delete(alice, "GH");
  assert.equal(await sb.value("GH"), null, "deleted: substitution stops at once");
  const g = sb.secrets().find((s) => s.name === "GH")!;
  assert.ok(g, "still listed: its placeholder is still known, so it can be refused");
  assert.deepEqual(g.hosts, []);
  await secrets.set(alice, "GH", gh, bindingChange({ hosts: ["api.github.com"] }));
});

test("another user's same-named secret never feeds this sandbox", async () => {
  await secrets.set(bob, "OPENAI", "sk-" + alnum(40), bindingChange({ hosts: ["evil.example.com"] }));
  const sb = broker.forSandbox("sb1")!;
  assert.deepEqual(sb.secrets().find((s) => s.name === "OPENAI")!.hosts, ["api.openai.com"]);
  assert.equal((await sb.value("OPENAI"))!.toString(), v2);
});

test("start keeps the placeholders and CA; a new binding gets a new placeholder; snapshot and fork copy the record", async () => {
  const first = broker.placeholdersOf("sb1");
  const ca1 = await broker.forSandbox("sb1")!.ca();
  await secrets.set(alice, "PLAIN", "sk-" + alnum(30), bindingChange({ hosts: ["plain.example.com"] }));
  const { b } = await boot("sb1", alice, ["OPENAI", "PLAIN"], { sandbox: "sb1" }); // a start
  assert.equal(b!.placeholders.get("OPENAI"), first.get("OPENAI"));
  assert.equal(b!.placeholders.get("GH"), first.get("GH"), "kept though not asked for now: the disk may hold it");
  assert.ok(b!.placeholders.get("PLAIN"));
  assert.equal(b!.caCert, ca1.certPem);
  const sb = broker.forSandbox("sb1")!;
  assert.deepEqual(sb.secrets().map((s) => s.name).sort(), ["GH", "OPENAI", "PLAIN"], "a changed record is read again");

  db.prepare("INSERT INTO snapshots (id, user_id, name, sandbox, engine, image, cpus, memory_mb, base, secret_names, created_at) VALUES ('snap01', 1, 's', 'sb1', 'ns', 'minimal', 1, 512, 0, '[]', '')").run();
  broker.copyToSnapshot("sb1", "snap01");
  const fork = await boot("sb2", alice, ["OPENAI"], { snapshot: "snap01" });
  assert.deepEqual(Object.fromEntries(fork.b!.placeholders), Object.fromEntries(broker.placeholdersOf("sb1")), "the fork's disk holds the parent's placeholders: they keep working");
  assert.equal((await broker.forSandbox("sb2")!.ca()).keyPem, (await broker.forSandbox("sb1")!.ca()).keyPem);
  assert.equal((await broker.forSandbox("sb2")!.value("OPENAI"))!.toString(), v2);
  // Removed with the rows.
  db.prepare("DELETE FROM snapshots WHERE id = 'snap01'").run();
  assert.equal((db.prepare("SELECT COUNT(*) AS n FROM snapshot_brokers").get() as { n: number }).n, 0);
  db.prepare("DELETE FROM sandboxes WHERE id = 'sb2'").run();
  assert.equal(broker.forSandbox("sb2"), undefined, "destroyed: no record, no brokering");
});

test("a new process (daemon restart) sees the same brokering; key rotation re-encrypts the CA keys", async () => {
  const before = broker.forSandbox("sb1")!;
  const ca = await before.ca();
  const list = before.secrets().map((s) => [s.name, s.placeholder]);
  db.close();
  const rotated = await rotateKey(join(dir, "age.key"), openDb(join(dir, "state.db")));
  assert.equal(rotated.count, 4);
  db = openDb(join(dir, "state.db"));
  keyring = await openKeyring(join(dir, "age.key"), db);
  secrets = new SecretService(db, keyring);
  broker = new BrokerStore(db, keyring, secrets);
  const after = broker.forSandbox("sb1")!;
  assert.deepEqual(after.secrets().map((s) => [s.name, s.placeholder]), list);
  assert.deepEqual(await after.ca(), ca, "the CA key decrypts under the new age key");
  assert.equal((await after.value("OPENAI"))!.toString(), v2);
  // Not in plaintext on disk: state.db holds the CA key only as age ciphertext.
  db.pragma("wal_checkpoint(TRUNCATE)");
  const body = ca.keyPem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  assert.deepEqual(scanTree(dir, body), []);
  for (const v of [v1, v2, gh]) assert.deepEqual(scanTree(dir, v), []);
  // The key signs what the certificate says (a usable CA for the proxy).
  const key = await webcrypto.subtle.importKey("pkcs8", Buffer.from(body, "base64"), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  assert.ok(key);
});
