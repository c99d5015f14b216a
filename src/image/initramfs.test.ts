// The initramfs pieces: cpio format (checked with the real cpio tool), module
// ordering, the /init script's syntax (busybox sh -n).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildInitramfs, INIT_SCRIPT, moduleLoadOrder, newcCpio, parseModulesDep } from "./initramfs.js";

const DEP = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/overlayfs/overlay.ko:
kernel/fs/fat/vfat-x.ko.xz: kernel/fs/fat/fat.ko
`;

test("module load order puts dependencies first and pulls them in", () => {
  const dep = parseModulesDep(DEP);
  assert.equal(dep.get("vfat_x")?.path, "kernel/fs/fat/vfat-x.ko.xz");
  assert.deepEqual(moduleLoadOrder(["virtio_blk", "virtio_mmio", "overlay"], dep), ["virtio_ring", "virtio", "virtio_blk", "virtio_mmio", "overlay"]);
  assert.throws(() => moduleLoadOrder(["nope"], dep), /module nope not found/);
});

test("newc cpio is read back by the cpio tool with names, modes, symlinks and device nodes", () => {
  const cpio = newcCpio([
    { name: "bin", mode: 0o040755 },
    { name: "bin/tool", mode: 0o100755, data: Buffer.from("abc") },
    { name: "bin/sh", mode: 0o120777, data: Buffer.from("tool") },
    { name: "dev", mode: 0o040755 },
    { name: "dev/console", mode: 0o020600, rdev: [5, 1] },
  ]);
  const r = spawnSync("cpio", ["-itv", "--quiet"], { input: cpio, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 5);
  assert.match(lines[1], /^-rwxr-xr-x .* 3 .* bin\/tool$/);
  assert.match(lines[2], /^lrwxrwxrwx .* bin\/sh -> tool$/);
  assert.match(lines[4], /^crw------- .* 5,\s*1 .* dev\/console$/);
});

test("the /init script parses", () => {
  const dir = mkdtempSync("/tmp/bhatti-initramfs-");
  try {
    writeFileSync(join(dir, "init"), INIT_SCRIPT);
    const r = spawnSync("busybox", ["sh", "-n", join(dir, "init")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("buildInitramfs packs busybox, ordered modules (decompressing .ko.xz) and /init", async () => {
  const dir = mkdtempSync("/tmp/bhatti-initramfs-");
  try {
    const root = join(dir, "lib/modules/9.9");
    for (const p of ["kernel/drivers/virtio", "kernel/fs/fat"]) mkdirSync(join(root, p), { recursive: true });
    writeFileSync(join(root, "modules.dep", ), "kernel/drivers/virtio/virtio_ring.ko:\nkernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\nkernel/fs/fat/fat.ko.xz:\n");
    writeFileSync(join(root, "kernel/drivers/virtio/virtio_ring.ko"), "ring");
    writeFileSync(join(root, "kernel/drivers/virtio/virtio.ko"), "virtio");
    const xz = spawnSync("xz", ["-c"], { input: Buffer.from("fat module") });
    assert.equal(xz.status, 0);
    writeFileSync(join(root, "kernel/fs/fat/fat.ko.xz"), xz.stdout);
    const img = await buildInitramfs({ busybox: "/bin/busybox", moduleRoot: root, modules: ["virtio", "fat"] });
    const out = join(dir, "x");
    mkdirSync(out);
    const r = spawnSync("cpio", ["-idm", "--quiet", "--no-absolute-filenames"], { input: img, cwd: out, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(out, "lib/modules/order"), "utf8"), "virtio_ring\nvirtio\nfat\n");
    assert.equal(readFileSync(join(out, "lib/modules/fat.ko"), "utf8"), "fat module");
    assert.equal(readFileSync(join(out, "init"), "utf8"), INIT_SCRIPT);
    assert.ok(readFileSync(join(out, "bin/busybox")).equals(readFileSync("/bin/busybox")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
