// `image import` against real tarballs made here: one from the minimal
// image's tree imports and runs a real ns sandbox; hostile ones (absolute
// paths, `..`, symlink escapes, hardlinks out, device nodes, setuid files,
// broken and truncated archives, a tree without glibc) are refused or
// neutralised, leave no half-built image, and touch nothing outside.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { execIn, newId, specFor } from "../engine/conformance.js";
import { NsEngine } from "../engine/ns/engine.js";
import { ensureTestImage, TEST_IMAGES_DIR } from "../engine/ns/test-image.js";
import { RUN_BHATTI, TOOL_ENV } from "../engine/runtime.js";
import { importImage } from "./import.js";

const work = mkdtempSync("/var/tmp/bhatti-import-test-");
const imagesDir = join(work, "images");
const outside = join(work, "outside"); // hostile archives aim here; it must stay empty
const cacheDir = join(TEST_IMAGES_DIR, ".cache"); // busybox-static and tini .debs, shared with the minimal build
const lines: string[] = [];
const log = (l: string): void => void lines.push(l);
let minimalTar: Buffer; // the minimal image's tree as an uncompressed GNU tar

/** One ustar member (header + padded data), for archives GNU tar would refuse to write. */
function member(name: string, o: { type?: string; data?: Buffer; link?: string; mode?: number; uid?: number; dev?: [number, number]; size?: number; gnu?: boolean; prefix?: string } = {}): Buffer {
  const h = Buffer.alloc(512);
  const data = o.data ?? Buffer.alloc(0);
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, "0") + "\0";
  h.write(name, 0, 100, "utf8");
  h.write(oct(o.mode ?? 0o644, 8), 100);
  h.write(oct(o.uid ?? 0, 8), 108);
  h.write(oct(o.uid ?? 0, 8), 116);
  h.write(oct(o.size ?? data.length, 12), 124);
  h.write(oct(0, 12), 136);
  h.write("        ", 148);
  h.write(o.type ?? "0", 156);
  h.write(o.link ?? "", 157, 100, "utf8");
  h.write(o.gnu ? "ustar  \u0000" : "ustar\u000000", 257, "binary");
  if (o.prefix) h.write(o.prefix, 345, 155, "utf8");
  h.write(oct(o.dev?.[0] ?? 0, 8), 329);
  h.write(oct(o.dev?.[1] ?? 0, 8), 337);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}
const END = Buffer.alloc(1024);
/** A pax extended header with one record. */
function pax(key: string, value: string): Buffer {
  let rec = ` ${key}=${value}\n`;
  let len = rec.length + 1;
  while (String(len).length + rec.length !== len) len = String(len).length + rec.length;
  rec = `${len}${rec}`;
  return member("PaxHeader/x", { type: "x", data: Buffer.from(rec) });
}
const archive = (...parts: Buffer[]) => Buffer.concat([...parts, END]);

function writeTar(name: string, data: Buffer): string {
  const p = join(work, name);
  writeFileSync(p, data);
  return p;
}

function leftovers(name: string): string[] {
  return existsSync(imagesDir) ? readdirSync(imagesDir).filter((n) => n === name || n.startsWith(`${name}.`) || n.startsWith(`.${name}.`)) : [];
}

before(async () => {
  const shared = await ensureTestImage();
  mkdirSync(outside);
  const r = spawnSync("tar", ["-C", join(shared, "minimal", "rootfs"), "--numeric-owner", "-cf", "-", "."], { env: TOOL_ENV, maxBuffer: 1 << 30 });
  assert.equal(r.status, 0, r.stderr?.toString());
  minimalTar = r.stdout;
});

after(() => {
  rmSync(work, { recursive: true, force: true });
});

test("a tarball of a real tree imports (gzip), gets bhatti's parts, and runs an ns sandbox", async () => {
  const tar = writeTar("minimal.tar.gz", gzipSync(minimalTar));
  const info = await importImage({ imagesDir, name: "imp", tar, vm: false, cacheDir, log });
  assert.equal(info.rebuilt, true);
  const root = info.rootfs;
  for (const p of ["opt/bhatti/node", "opt/bhatti/lohar.js", "opt/bhatti/bin/busybox", "sbin/bhatti-init", "usr/bin/tini"]) assert.ok(existsSync(join(root, p)), p);
  assert.match(readFileSync(join(root, "etc/passwd"), "utf8"), /^lohar:x:1000:1000:lohar:\/home\/lohar:\/bin\/sh$/m);
  assert.equal(statSync(join(root, "home/lohar")).uid, 1000);
  const m = JSON.parse(readFileSync(join(info.dir, "manifest.json"), "utf8"));
  assert.equal(m.inputs.recipe, "import");
  const again = await importImage({ imagesDir, name: "imp", tar, vm: false, cacheDir, log });
  assert.equal(again.rebuilt, false, "the same archive again is up to date");

  const env = { dataDir: join(work, "data"), runtimeDir: join(RUN_BHATTI, `imptest-${process.pid}`), imagesDir };
  const engine = new NsEngine(env);
  const spec = specFor(newId("im"), { env: { X: "1" } }, { image: "imp" });
  const sb = await engine.create(spec);
  try {
    const r = await execIn(sb, ["/bin/sh", "-c", "id -u; echo $HOME; echo $X; hostname"]);
    assert.equal(r.exit.exit_code, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), `1000\n/home/lohar\n1\n${spec.name}\n`);
  } finally {
    await engine.destroy(sb.id, sb.state);
    await engine.idle();
    rmSync(env.runtimeDir, { recursive: true, force: true });
  }
});

test("hostile archives are refused, leave no half-built image, and write nothing outside", async () => {
  const tag = randomBytes(4).toString("hex");
  const cases: [string, Buffer, RegExp][] = [
    ["absolute", archive(member(`${outside}/abs-${tag}`, { data: Buffer.from("x") })), /absolute path .* refused/],
    ["dotdot", archive(member("etc/../../../outside/dd-" + tag, { data: Buffer.from("x") })), /path with '\.\.' .* refused/],
    ["symlink-escape", archive(member("evil", { type: "2", link: outside }), member(`evil/sl-${tag}`, { data: Buffer.from("x") })), /goes through a symlink of the archive/],
    ["symlink-then-dir", archive(member("evil", { type: "2", link: outside }), member("evil/", { type: "5", mode: 0o777 })), /replaces a symlink of the archive/],
    ["relative-symlink-escape", archive(member("a/b", { type: "2", link: "../../../../../../" + outside }), member(`a/b/rel-${tag}`, { data: Buffer.from("x") })), /goes through a symlink/],
    ["hardlink-absolute", archive(member("h", { type: "1", link: "/etc/passwd" })), /absolute hardlink target/],
    ["hardlink-unknown", archive(member("h", { type: "1", link: "etc/shadow" })), /not an earlier file of the archive/],
    ["garbage", randomBytes(4096), /not a tar archive/],
    ["empty", Buffer.alloc(0), /empty archive/],
    ["truncated", minimalTar.subarray(0, Math.floor(minimalTar.length / 2)), /truncated/],
    ["truncated-gzip", gzipSync(minimalTar).subarray(0, 100_000), /gzip|unexpected end/],
    ["sparse", archive(member("s", { type: "S" })), /unsupported type "S"/],
    // pax size larger than the header's: tar skips 512 bytes the guard would have read as a header
    ["pax-size-desync", archive(member("evil", { type: "2", link: outside }), pax("size", "512"), member("a", { size: 0 }), member("b", { size: 512 }),
      member(`evil/px-${tag}`, { data: Buffer.from("x") })), /goes through a symlink/],
    // old GNU format: bytes 345.. are times, not a name prefix, for tar
    ["gnu-prefix-confusion", archive(member("evil", { type: "2", link: outside }), member(`evil/gp-${tag}`, { gnu: true, prefix: "safe", data: Buffer.from("x") })), /goes through a symlink/],
  ];
  for (const [name, data, re] of cases) {
    const tar = writeTar(`${name}.tar${name.endsWith("gzip") ? ".gz" : ""}`, data);
    await assert.rejects(importImage({ imagesDir, name: `h-${name}`, tar, vm: false, cacheDir, log }), re, name);
    assert.deepEqual(leftovers(`h-${name}`), [], `${name}: nothing left in the images dir`);
  }
  assert.deepEqual(readdirSync(outside), [], "nothing was written outside");
});

test("device nodes and FIFOs are dropped, setuid bits cleared; a tree without glibc is refused", async () => {
  const extra = Buffer.concat([
    member("dev/", { type: "5", mode: 0o755 }),
    member("dev/mem-copy", { type: "3", dev: [1, 1], mode: 0o666 }),
    member("dev/blk", { type: "4", dev: [8, 0], mode: 0o666 }),
    member("dev/fifo", { type: "6", mode: 0o666 }),
    member("usr/bin/suid", { data: Buffer.from("#!/bin/sh\n"), mode: 0o4755 }),
  ]);
  const tar = writeTar("devices.tar", Buffer.concat([extra, minimalTar]));
  lines.length = 0;
  const info = await importImage({ imagesDir, name: "imp-dev", tar, vm: false, cacheDir, log });
  for (const p of ["dev/mem-copy", "dev/blk", "dev/fifo"]) assert.throws(() => lstatSync(join(info.rootfs, p)), /ENOENT/, p);
  assert.equal(statSync(join(info.rootfs, "usr/bin/suid")).mode & 0o7777, 0o755);
  assert.ok(lines.some((l) => /dropped 3 members/.test(l)), lines.join("\n"));

  // busybox alone, statically linked: a shell, but no glibc for bhatti's Node
  const bb = spawnSync("tar", ["-C", join(TEST_IMAGES_DIR, "minimal", "rootfs"), "-cf", "-", "bin/busybox"], { env: TOOL_ENV, maxBuffer: 1 << 28 }).stdout;
  const noLibc = writeTar("nolibc.tar", Buffer.concat([member("bin/sh", { type: "2", link: "busybox" }), bb]));
  await assert.rejects(importImage({ imagesDir, name: "nolibc", tar: noLibc, vm: false, cacheDir, log }), /has no glibc \(libc\.so\.6\)/);
  assert.deepEqual(leftovers("nolibc"), []);
  await assert.rejects(importImage({ imagesDir, name: "debian", tar: noLibc, vm: false, cacheDir, log }), /one of bhatti's own images/);
});
