// `bhatti key rotate`: re-encrypts everything, refuses while a daemon runs,
// and is crash-safe — killed at any point, age.key still decrypts every blob
// and all blobs are under one single key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";
import Database from "better-sqlite3";
import { startDaemon, createUser, api, cleanup, cli, BIN, childEnv, tempDir, ageDecrypt } from "../testing/harness.js";

const N = 40;
const valueOf = (i: number) => `rotation-value-${i}-` + "ß".repeat(i % 7);

async function seeded(): Promise<string> {
  const d = await startDaemon();
  const k = createUser(d.dataDir, "u");
  for (let i = 0; i < N; i++) await api(d, "POST", "/secrets", { key: k, body: { name: `S${i}`, value: valueOf(i) } });
  await d.stop();
  return d.dataDir;
}

function identities(keyFile: string): string[] {
  return readFileSync(keyFile, "utf8").split("\n").filter((l) => l.startsWith("AGE-SECRET-KEY-1"));
}

function blobs(dir: string): { name: string; v: Buffer }[] {
  const db = new Database(join(dir, "state.db"), { readonly: true });
  try { return db.prepare("SELECT name, value_encrypted AS v FROM secrets ORDER BY name").all() as { name: string; v: Buffer }[]; } finally { db.close(); }
}

/** Every blob decrypts with age.key, and all of them with one single identity from it. */
function assertConsistent(dir: string): string {
  const keyFile = join(dir, "age.key");
  const ids = identities(keyFile);
  assert.ok(ids.length === 1 || ids.length === 2, `age.key holds ${ids.length} identities`);
  const rows = blobs(dir);
  assert.equal(rows.length, N, "no secret lost");
  for (const r of rows) {
    const d = ageDecrypt(keyFile, r.v);
    assert.ok(d.ok, `${r.name}: ${d.err}`);
    assert.equal(d.out, valueOf(Number(r.name.slice(1))));
  }
  const single = tempDir();
  const onOne = ids.filter((id) => {
    writeFileSync(join(single, "k"), id + "\n", { mode: 0o600 });
    return rows.every((r) => ageDecrypt(join(single, "k"), r.v).ok);
  });
  cleanup(single);
  assert.equal(onOne.length, 1, "all blobs are under exactly one of the identities");
  return onOne[0];
}

test("rotate re-encrypts every secret to a new identity, atomically replacing age.key", async () => {
  const dir = await seeded();
  const before = identities(join(dir, "age.key"));
  const oldBlobs = blobs(dir);
  const r = cli(["key", "rotate", "--data-dir", dir, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).rotated, N);
  const after = identities(join(dir, "age.key"));
  assert.equal(after.length, 1);
  assert.notEqual(after[0], before[0]);
  assert.equal(assertConsistent(dir), after[0]);
  const oldKey = join(dir, "old.key");
  writeFileSync(oldKey, before[0] + "\n", { mode: 0o600 });
  assert.ok(!ageDecrypt(oldKey, blobs(dir)[0].v).ok, "the old key no longer decrypts anything");
  assert.ok(ageDecrypt(oldKey, oldBlobs[0].v).ok);
  // The daemon starts on the new key and keeps serving the same secrets.
  const d = await startDaemon({ dataDir: dir });
  await d.stop();
  cleanup(dir);
});

test("rotate refuses while a daemon runs on the data dir, and says so", async () => {
  const d = await startDaemon();
  try {
    const before = readFileSync(join(d.dataDir, "age.key"), "utf8");
    const r = cli(["key", "rotate", "--data-dir", d.dataDir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /daemon \(pid \d+\) is running.*stop it before rotating/);
    assert.equal(readFileSync(join(d.dataDir, "age.key"), "utf8"), before);
  } finally { await d.stop(); cleanup(d.dataDir); }
});

for (const point of ["after-both-keys", "mid-transaction", "after-commit", "after-new-key"]) {
  test(`crash safety: killed at ${point}, the data dir is wholly on one key and recovers`, async () => {
    const dir = await seeded();
    const oldId = identities(join(dir, "age.key"))[0];
    const r = cli(["key", "rotate", "--data-dir", dir], { env: { BHATTI_FAULT: `rotate:${point}` } });
    assert.equal(r.code, null, "the process was killed");
    const on = assertConsistent(dir);
    if (point === "after-both-keys" || point === "mid-transaction") assert.equal(on, oldId, "uncommitted: still the old key");
    else assert.notEqual(on, oldId, "committed: the new key");
    // The next start settles age.key to the one identity the database is on, and serves.
    const d = await startDaemon({ dataDir: dir });
    await d.stop();
    assert.deepEqual(identities(join(dir, "age.key")), [on]);
    assertConsistent(dir);
    // A rotation after a crashed one works.
    assert.equal(cli(["key", "rotate", "--data-dir", dir]).code, 0);
    assertConsistent(dir);
    cleanup(dir);
  });
}

test("crash safety: SIGKILL at random moments during rotation never leaves an inconsistent data dir", async () => {
  const dir = await seeded();
  // The CLI takes ~150-300 ms to start and the rotation itself tens of ms: spread the kills over that window.
  for (let delay = 100; delay <= 450; delay += 25) {
    const p = spawn(BIN, ["key", "rotate", "--data-dir", dir], { env: childEnv(), stdio: "ignore" });
    const exited = new Promise((r) => p.once("exit", r)); // before the kill: a quick rotation may finish first
    await new Promise((r) => setTimeout(r, delay));
    p.kill("SIGKILL");
    await exited;
    assertConsistent(dir);
  }
  cleanup(dir);
});
