import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HashCache, sha256File, sha256Hex } from "./hashes.js";

test("HashCache remembers by stat, notices changes, forgets deleted files", async () => {
  const dir = await mkdtemp(join(tmpdir(), "bhatti-hashes-"));
  try {
    const file = join(dir, "cache.json");
    const a = join(dir, "a");
    const b = join(dir, "b");
    await writeFile(a, "one");
    await writeFile(b, "bee");
    const c = await HashCache.open(file);
    assert.equal(await c.sha256(a), sha256Hex("one"));
    assert.equal(await c.sha256(b), sha256Hex("bee"));
    await c.save();

    // a fresh instance reads the saved answers; a changed file is hashed again
    const c2 = await HashCache.open(file);
    assert.equal(await c2.sha256(a), sha256Hex("one"));
    await writeFile(a, "two");
    assert.equal(await c2.sha256(a), sha256Hex("two"));
    assert.equal(await sha256File(a), sha256Hex("two"));
    await rm(b);
    await c2.save();
    const saved = JSON.parse(await readFile(file, "utf8"));
    assert.deepEqual(Object.keys(saved), [a]);

    // a rewrite with the same size and a restored mtime still changes ctime
    const c3 = await HashCache.open(file);
    await writeFile(a, "TWO");
    const old = new Date(Date.now() - 60_000);
    await utimes(a, old, old);
    assert.equal(await c3.sha256(a), sha256Hex("TWO"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
