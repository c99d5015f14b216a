// age.key: generated on the daemon's first start, its mode and format, the
// standard `age` tool decrypting stored blobs, and refusing to start when the
// key is lost while secrets exist.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, readFileSync, statSync, writeFileSync, unlinkSync, existsSync, renameSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { startDaemon, createUser, api, cleanup, tempDir, ageDecrypt } from "../testing/harness.js";

function blobs(dataDir: string): Buffer[] {
  const db = new Database(join(dataDir, "state.db"), { readonly: true });
  try { return (db.prepare("SELECT value_encrypted AS v FROM secrets ORDER BY name").all() as { v: Buffer }[]).map((r) => r.v); } finally { db.close(); }
}


test("first start generates age.key (0600, one X25519 identity) before any secret exists; later starts keep it", async () => {
  const d = await startDaemon();
  const key = join(d.dataDir, "age.key");
  try {
    assert.ok(existsSync(key), "generated at first start, not lazily");
    assert.equal(statSync(key).mode & 0o777, 0o600);
    assert.equal(statSync(d.dataDir).mode & 0o777, 0o700, "data dir is 0700");
    const lines = readFileSync(key, "utf8").split("\n").filter((l) => l && !l.startsWith("#"));
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
  } finally { await d.stop(); }
  const before = readFileSync(key, "utf8");
  const d2 = await startDaemon({ dataDir: d.dataDir });
  await d2.stop();
  assert.equal(readFileSync(key, "utf8"), before, "a later start loads, never regenerates");
  cleanup(d.dataDir);
});

test("the standard age tool decrypts a blob taken from state.db; blobs are binary age, not armored", async () => {
  const d = await startDaemon();
  try {
    const k = createUser(d.dataDir, "u");
    const value = "p@ss wörd\nwith newline and émoji 🔑";
    assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: "INTEROP", value } })).status, 201);
    const [blob] = blobs(d.dataDir);
    assert.ok(blob.subarray(0, 22).toString() === "age-encryption.org/v1\n", "binary age format header");
    assert.ok(!blob.toString("latin1").includes("BEGIN AGE ENCRYPTED FILE"), "not armored");
    assert.ok(!blob.includes(Buffer.from(value)), "ciphertext does not contain the plaintext");
    const r = ageDecrypt(join(d.dataDir, "age.key"), blob);
    assert.ok(r.ok, r.err);
    assert.equal(r.out, value);
  } finally { await d.stop(); cleanup(d.dataDir); }
});

async function withSecret(): Promise<string> {
  const d = await startDaemon();
  const k = createUser(d.dataDir, "u");
  await api(d, "POST", "/secrets", { key: k, body: { name: "KEEP", value: "precious" } });
  await d.stop();
  return d.dataDir;
}

async function expectRefusal(dataDir: string, re: RegExp) {
  const keyBefore = existsSync(join(dataDir, "age.key")) ? readFileSync(join(dataDir, "age.key")) : null;
  await assert.rejects(startDaemon({ dataDir }), (e: Error) => {
    assert.match(e.message, /exited with 1/);
    assert.match(e.message, re);
    assert.match(e.message, new RegExp(`${join(dataDir, "age.key").replace(/[.]/g, "\\.")}`), "names the file");
    assert.match(e.message, /cannot be decrypted without it/);
    assert.match(e.message, /backup taken together with state\.db/);
    return true;
  });
  const keyAfter = existsSync(join(dataDir, "age.key")) ? readFileSync(join(dataDir, "age.key")) : null;
  assert.deepEqual(keyAfter, keyBefore, "never generates or rewrites a key in that case");
  assert.equal(blobs(dataDir).length, 1, "the stored secret is untouched");
}

test("key loss: a missing age.key with secrets stored refuses to start", async () => {
  const dir = await withSecret();
  unlinkSync(join(dir, "age.key"));
  await expectRefusal(dir, /is missing/);
  cleanup(dir);
});

test("key loss: an empty age.key with secrets stored refuses to start", async () => {
  const dir = await withSecret();
  writeFileSync(join(dir, "age.key"), "");
  await expectRefusal(dir, /is empty/);
  cleanup(dir);
});

test("key loss: an unparseable age.key refuses to start", async () => {
  const dir = await withSecret();
  writeFileSync(join(dir, "age.key"), "AGE-SECRET-KEY-1NOTAKEY\n");
  await expectRefusal(dir, /does not contain a valid AGE-SECRET-KEY-1 identity/);
  cleanup(dir);
});

test("key loss: a different valid key (wrong backup restored) refuses to start", async () => {
  const dir = await withSecret();
  const other = await startDaemon();
  await other.stop();
  renameSync(join(other.dataDir, "age.key"), join(dir, "age.key"));
  await expectRefusal(dir, /does not hold the key the stored secrets were encrypted with/);
  cleanup(dir); cleanup(other.dataDir);
});

test("without secrets, a missing key is simply generated", async () => {
  const dir = tempDir();
  const d = await startDaemon({ dataDir: dir });
  await d.stop();
  unlinkSync(join(dir, "age.key"));
  const d2 = await startDaemon({ dataDir: dir });
  await d2.stop();
  assert.ok(existsSync(join(dir, "age.key")));
  cleanup(dir);
});

test("admin backup copies age.key and a consistent state.db that a daemon can start from", async () => {
  const d = await startDaemon();
  const k = createUser(d.dataDir, "u");
  await api(d, "POST", "/secrets", { key: k, body: { name: "B1", value: "backed-up" } });
  const to = join(tempDir(), "bk");
  const { cli } = await import("../testing/harness.js");
  const r = cli(["admin", "backup", "--to", to, "--data-dir", d.dataDir]);
  assert.equal(r.code, 0, r.stderr);
  await d.stop();
  assert.equal(statSync(join(to, "age.key")).mode & 0o777, 0o600);
  assert.equal(statSync(join(to, "state.db")).mode & 0o777, 0o600);
  const [blob] = blobs(to);
  assert.equal(ageDecrypt(join(to, "age.key"), blob).out, "backed-up");
  const restored = await startDaemon({ dataDir: to });
  assert.equal((await api(restored, "GET", "/secrets", { key: k })).json[0].name, "B1");
  await restored.stop();
  assert.equal(cli(["admin", "backup", "--to", to, "--data-dir", d.dataDir]).code, 1, "refuses to overwrite a backup");
  cleanup(d.dataDir); cleanup(to);
});

test("key file rules: an age.key with group/other permission bits is refused with a chmod 600 hint, and left as it is", async () => {
  const dir = await withSecret();
  const key = join(dir, "age.key");
  for (const mode of [0o640, 0o604, 0o660]) {
    chmodSync(key, mode);
    const before = readFileSync(key);
    await assert.rejects(startDaemon({ dataDir: dir }), (e: Error) => {
      assert.match(e.message, /exited with 1/);
      assert.match(e.message, new RegExp(`chmod 600 ${key.replace(/[.]/g, "\\.")}`));
      assert.match(e.message, new RegExp(`mode 0${mode.toString(8)}`));
      return true;
    });
    assert.deepEqual(readFileSync(key), before, "not rewritten");
    assert.equal(statSync(key).mode & 0o777, mode, "not silently fixed");
  }
  const { cli } = await import("../testing/harness.js");
  const r = cli(["key", "rotate", "--data-dir", dir]);
  assert.equal(r.code, 1, "key rotate refuses it too");
  assert.match(r.stderr, /chmod 600/);
  chmodSync(key, 0o600);
  const d = await startDaemon({ dataDir: dir });
  await d.stop();
  cleanup(dir);
});

function dropRecipient(dataDir: string): void {
  const db = new Database(join(dataDir, "state.db"));
  try { db.prepare("DELETE FROM meta WHERE key = 'age_recipient'").run(); } finally { db.close(); }
}

test("a state.db holding ciphertext whose age_recipient row is missing is refused, not re-keyed", async () => {
  // Secrets.
  const dir = await withSecret();
  dropRecipient(dir);
  const keyBefore = readFileSync(join(dir, "age.key"));
  await assert.rejects(startDaemon({ dataDir: dir }), (e: Error) => {
    assert.match(e.message, /meta row age_recipient\) is missing/);
    assert.match(e.message, /1 secret and 0 sandbox tokens/);
    return true;
  });
  assert.deepEqual(readFileSync(join(dir, "age.key")), keyBefore);
  const db = new Database(join(dir, "state.db"), { readonly: true });
  assert.equal(db.prepare("SELECT value FROM meta WHERE key = 'age_recipient'").get(), undefined, "the recipient was not rewritten");
  db.close();
  cleanup(dir);

  // Only a sandbox token (no secret) is ciphertext too.
  const d = await startDaemon();
  createUser(d.dataDir, "u");
  await d.stop();
  const w = new Database(join(d.dataDir, "state.db"));
  w.prepare(`INSERT INTO sandboxes (id, user_id, name, engine, image, cpus, memory_mb, env_keys, secret_names, status, token_encrypted, created_at)
    VALUES ('sbx', (SELECT id FROM users WHERE name = 'u'), 'x', 'ns', 'base', 1, 512, '[]', '[]', 'dead', x'00', '2026-01-01T00:00:00Z')`).run();
  w.close();
  dropRecipient(d.dataDir);
  await assert.rejects(startDaemon({ dataDir: d.dataDir }), /0 secrets and 1 sandbox token encrypted/);

  // Nothing encrypted: the row is simply written again.
  const fresh = await startDaemon();
  await fresh.stop();
  dropRecipient(fresh.dataDir);
  const again = await startDaemon({ dataDir: fresh.dataDir });
  await again.stop();
  cleanup(d.dataDir); cleanup(fresh.dataDir);
});
