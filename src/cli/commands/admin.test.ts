// `bhatti admin backup --to DIR`: no symlink is followed, files are 0600 from
// their creation (whatever the umask), and a shared or foreign DIR is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { BIN, childEnv, cleanup, createUser, startDaemon, tempDir } from "../../testing/harness.js";

/** The real CLI under a given umask (the backup must not depend on it). */
function backup(dataDir: string, to: string, umask = "000") {
  const r = spawnSync("/bin/sh", ["-c", `umask ${umask}; exec "$0" "$@"`, BIN, "admin", "backup", "--to", to, "--data-dir", dataDir], { env: childEnv(), encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("admin backup: files are 0600 under umask 000; a symlinked DIR, a planted symlink and a shared DIR are refused", async () => {
  const d = await startDaemon();
  createUser(d.dataDir, "u");
  const root = tempDir();
  try {
    // Plain case, umask 000: the new dir is 0700, the files 0600.
    const ok = join(root, "ok");
    const r = backup(d.dataDir, ok);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(ok).mode & 0o777, 0o700);
    for (const f of ["age.key", "state.db"]) assert.equal(statSync(join(ok, f)).mode & 0o777, 0o600, f);
    assert.deepEqual(readFileSync(join(ok, "age.key")), readFileSync(join(d.dataDir, "age.key")));

    // DIR itself a symlink (to a place an attacker can read): refused, nothing written there.
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere, { mode: 0o700 });
    const link = join(root, "link");
    symlinkSync(elsewhere, link);
    const s = backup(d.dataDir, link);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /is a symbolic link/);
    assert.deepEqual(readdirSync(elsewhere), []);

    // A symlink planted where a backup file goes: refused, its target untouched.
    const planted = join(root, "planted");
    mkdirSync(planted, { mode: 0o700 });
    const victim = join(root, "victim");
    writeFileSync(victim, "do not overwrite");
    symlinkSync(victim, join(planted, "age.key"));
    const p = backup(d.dataDir, planted);
    assert.equal(p.code, 1);
    assert.match(p.stderr, /already holds a backup/);
    assert.equal(readFileSync(victim, "utf8"), "do not overwrite");
    assert.ok(lstatSync(join(planted, "age.key")).isSymbolicLink());
    assert.ok(!existsSync(join(planted, "state.db")));
    // A dangling symlink too (existsSync would say "no file"): still refused.
    const dangling = join(root, "dangling");
    mkdirSync(dangling, { mode: 0o700 });
    symlinkSync(join(root, "not-yet"), join(dangling, "state.db"));
    assert.equal(backup(d.dataDir, dangling).code, 1);
    assert.ok(!existsSync(join(root, "not-yet")), "nothing created through the dangling link");

    // A directory others can write to (they could swap files in and out): refused.
    const shared = join(root, "shared");
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const sh = backup(d.dataDir, shared);
    assert.equal(sh.code, 1);
    assert.match(sh.stderr, /writable by group or others/);
    assert.deepEqual(readdirSync(shared), []);
  } finally {
    await d.stop();
    cleanup(d.dataDir);
    cleanup(root);
  }
});
