// reown moves ids from one uid range to another, keeping offsets, set-id bits
// and everything outside the range; deep trees do not overflow the stack.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reown } from "./reown.js";

test("reown: offsets kept, set-id bits restored, other ids untouched, deep trees fine", () => {
  const root = mkdtempSync(join(tmpdir(), "reown-"));
  try {
    const from = 1_000_000, to = 2_000_000;
    writeFileSync(join(root, "f"), "x");
    lchownSync(join(root, "f"), from + 1000, from + 1000);
    chmodSync(join(root, "f"), 0o4755);
    symlinkSync("f", join(root, "l"));
    lchownSync(join(root, "l"), from, from);
    writeFileSync(join(root, "other"), "y");
    lchownSync(join(root, "other"), 12345, 12345);
    lchownSync(root, from, from);
    let d = root;
    while (d.length < 3900) { d = join(d, "d"); mkdirSync(d); lchownSync(d, from + 5, from + 5); } // ~1900 levels
    const n = reown(root, from, to);
    assert.ok(n > 3);
    const f = lstatSync(join(root, "f"));
    assert.deepEqual([f.uid, f.gid, f.mode & 0o7777], [to + 1000, to + 1000, 0o4755]);
    assert.equal(lstatSync(join(root, "l")).uid, to);
    assert.equal(lstatSync(join(root, "other")).uid, 12345);
    assert.equal(lstatSync(d).uid, to + 5);
    assert.equal(reown(root, to, to), 0);
  } finally {
    spawnSync("rm", ["-rf", root]); // node's rmSync recurses and overflows on a tree this deep
  }
});
