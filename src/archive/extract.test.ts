// The tar extractor used by lohar and by `bhatti cp`, against hostile
// archives built with tar-stream and a real directory: nothing lands outside
// the root, whatever the entry says.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import * as tar from "tar-stream";
import { extractTar } from "./extract.js";
import { packPath } from "./pack.js";
import { cleanup, tempDir } from "../testing/harness.js";

type H = Partial<tar.Header> & { name: string; body?: string };

async function* tarOf(entries: H[]): AsyncGenerator<Buffer> {
  const p = tar.pack();
  for (const { body, ...h } of entries) p.entry(h, body ?? "");
  p.finalize();
  for await (const c of p) yield c as Buffer;
}

function fresh() {
  const top = tempDir("bhatti-extract-");
  const root = join(top, "root");
  mkdirSync(root);
  return { top, root };
}

test("files, directories and symlinks are extracted with their modes; rename replaces the first component", async () => {
  const { top, root } = fresh();
  const r = await extractTar(tarOf([
    { name: "d", type: "directory", mode: 0o750 },
    { name: "d/run.sh", body: "#!/bin/sh\n", mode: 0o755 },
    { name: "d/deep/x.txt", body: "x", mode: 0o600 }, // parent not in the archive: created
    { name: "d/link", type: "symlink", linkname: "run.sh" },
  ]), { root, rename: "renamed" });
  assert.deepEqual(r, { entries: 4, bytes: 11 });
  assert.equal(statSync(join(root, "renamed")).mode & 0o777, 0o750);
  assert.equal(statSync(join(root, "renamed/run.sh")).mode & 0o777, 0o755);
  assert.equal(readFileSync(join(root, "renamed/deep/x.txt"), "utf8"), "x");
  assert.equal(statSync(join(root, "renamed/deep/x.txt")).mode & 0o777, 0o600);
  assert.equal(readlinkSync(join(root, "renamed/link")), "run.sh");
  assert.deepEqual(readdirSync(root), ["renamed"]);
  cleanup(top);
});

test("hostile entries are refused and write nothing outside the root", async () => {
  const cases: [string, H[], RegExp][] = [
    ["dot-dot", [{ name: "../escaped", body: "x" }], /contains a \.\. component/],
    ["deep dot-dot", [{ name: "a/../../escaped", body: "x" }], /contains a \.\. component/],
    ["absolute", [{ name: "/tmp/escaped", body: "x" }], /is absolute/],
    ["through a symlink", [{ name: "l", type: "symlink", linkname: ".." }, { name: "l/escaped", body: "x" }], /goes through a symbolic link/],
    ["through an absolute symlink", [{ name: "l", type: "symlink", linkname: "/" }, { name: "l/tmp/escaped", body: "x" }], /goes through a symbolic link/],
    ["hard link", [{ name: "h", type: "link", linkname: "../escaped" }], /hard link/],
    ["device", [{ name: "dev", type: "character-device", devmajor: 1, devminor: 3 }], /character-device/],
    ["fifo", [{ name: "f", type: "fifo" }], /fifo/],
  ];
  for (const [label, entries, re] of cases) {
    const { top, root } = fresh();
    await assert.rejects(extractTar(tarOf(entries), { root }), re, label);
    assert.ok(!existsSync(join(top, "escaped")), `${label}: nothing next to the root`);
    assert.ok(!readdirSync(root).some((n) => n.includes("escaped")), label);
    cleanup(top);
  }
});

test("a symlink already in the root is never followed: a file entry of that name replaces the link", async () => {
  const { top, root } = fresh();
  const victim = join(top, "victim");
  writeFileSync(victim, "keep");
  symlinkSync(victim, join(root, "f"));
  await extractTar(tarOf([{ name: "f", body: "new" }]), { root });
  assert.equal(readFileSync(victim, "utf8"), "keep");
  assert.ok(lstatSync(join(root, "f")).isFile());
  cleanup(top);
});

test("pack then extract round-trips a tree, symlinks stored as links", async () => {
  const { top, root } = fresh();
  const src = join(top, "src");
  mkdirSync(join(src, "sub"), { recursive: true });
  writeFileSync(join(src, "sub/a.bin"), Buffer.alloc(300_000, 7), { mode: 0o640 });
  symlinkSync("/etc/passwd", join(src, "pw"));
  await extractTar(packPath(src) as unknown as AsyncIterable<Buffer>, { root });
  assert.deepEqual(readFileSync(join(root, "src/sub/a.bin")), Buffer.alloc(300_000, 7));
  assert.equal(statSync(join(root, "src/sub/a.bin")).mode & 0o777, 0o640);
  assert.equal(readlinkSync(join(root, "src/pw")), "/etc/passwd");
  cleanup(top);
});
