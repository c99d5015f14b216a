// state.db settings: durable commits, no lingering ciphertext, private files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { openDb } from "./db.js";
import { startDaemon, createUser, api, cleanup, tempDir } from "../testing/harness.js";

test("openDb: WAL with synchronous=FULL and secure_delete; state.db, -wal and -shm are 0600 whatever the umask", () => {
  const dir = tempDir();
  const old = process.umask(0o000);
  try {
    const db = openDb(join(dir, "state.db"));
    db.exec("CREATE TABLE t (x)");
    db.prepare("INSERT INTO t VALUES (1)").run();
    assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
    assert.equal(db.pragma("synchronous", { simple: true }), 2, "FULL: an acknowledged commit survives power loss");
    assert.equal(db.pragma("secure_delete", { simple: true }), 1);
    for (const f of ["state.db", "state.db-wal", "state.db-shm"]) {
      assert.ok(existsSync(join(dir, f)), f);
      assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    }
    db.close();
  } finally {
    process.umask(old);
  }
  // An existing state.db with loose permissions (an older version, a careless copy) is fixed.
  chmodSync(join(dir, "state.db"), 0o644);
  const db = openDb(join(dir, "state.db"));
  db.prepare("INSERT INTO t VALUES (2)").run();
  for (const f of ["state.db", "state.db-wal", "state.db-shm"]) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  db.close();
  cleanup(dir);
});

function blobOf(dataDir: string, name: string): Buffer {
  const db = new Database(join(dataDir, "state.db"), { readonly: true });
  try { return (db.prepare("SELECT value_encrypted AS v FROM secrets WHERE name = ?").get(name) as { v: Buffer }).v; } finally { db.close(); }
}

/** Which files of the database (state.db, -wal) contain the tail of a ciphertext (its payload: unique per encryption). */
function holders(dataDir: string, blob: Buffer): string[] {
  const needle = blob.subarray(blob.length - 48);
  return ["state.db", "state.db-wal"].filter((f) => existsSync(join(dataDir, f)) && readFileSync(join(dataDir, f)).includes(needle));
}

test("a replaced or deleted secret's ciphertext does not linger in state.db or its WAL", async () => {
  const d = await startDaemon();
  try {
    const k = createUser(d.dataDir, "u");
    // Neighbours on the same pages, so the page is rewritten rather than freed whole.
    for (let i = 0; i < 5; i++) assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: `N${i}`, value: `neighbour-${i}` } })).status, 201);
    assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: "ROT", value: "first-value-" + "a".repeat(200) } })).status, 201);
    const c1 = blobOf(d.dataDir, "ROT");
    assert.deepEqual(holders(d.dataDir, c1).length > 0, true, "the scan finds a live ciphertext (the test can fail)");
    assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: "ROT", value: "second-value-" + "b".repeat(200) } })).status, 200);
    const c2 = blobOf(d.dataDir, "ROT");
    assert.deepEqual(holders(d.dataDir, c1), [], "replaced ciphertext is gone from state.db and the WAL (daemon running)");
    assert.ok(holders(d.dataDir, c2).length > 0);
    assert.equal((await api(d, "DELETE", "/secrets/ROT", { key: k })).status, 204);
    assert.deepEqual(holders(d.dataDir, c2), [], "deleted ciphertext is gone (daemon running)");
    assert.ok(holders(d.dataDir, blobOf(d.dataDir, "N3")).length > 0, "the neighbours are still there");
  } finally {
    assert.equal(await d.stop(), 0);
  }
  cleanup(d.dataDir);
});

test("the daemon creates state.db* 0600 even under umask 000, and fixes an existing loose state.db", async () => {
  const dir = tempDir();
  const old = process.umask(0o000); // inherited by the daemon
  let d;
  try { d = await startDaemon({ dataDir: dir }); } finally { process.umask(old); }
  const k = createUser(dir, "u");
  await api(d, "POST", "/secrets", { key: k, body: { name: "A", value: "v" } });
  for (const f of ["state.db", "state.db-wal", "state.db-shm"]) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  await d.stop();
  chmodSync(join(dir, "state.db"), 0o644);
  writeFileSync(join(dir, "state.db-wal"), "", { mode: 0o644 });
  chmodSync(join(dir, "state.db-wal"), 0o644);
  const d2 = await startDaemon({ dataDir: dir });
  for (const f of ["state.db", "state.db-wal"]) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  await d2.stop();
  cleanup(dir);
});
