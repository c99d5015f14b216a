// The real thing: Debian's cloud kernel .deb -> ELF vmlinux + initramfs, then
// QEMU (TCG: works on every host) boots them to the initramfs's probe marker.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { bootToMarker } from "../engine/vm/accel.js";
import { buildKernelArtifacts } from "./kernel.js";
import { elfSize } from "./vmlinux.js";

// Same download cache as the image builder's tests, so the .deb is fetched once per machine.
const CACHE = join(process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images", ".cache");

test("buildKernelArtifacts makes a bootable PVH vmlinux and initramfs", { timeout: 300_000 }, async () => {
  const dir = mkdtempSync("/var/tmp/bhatti-kernel-");
  try {
    const lines: string[] = [];
    const a = await buildKernelArtifacts(dir, CACHE, (s) => lines.push(s));
    assert.equal(a.kernel, join(dir, "vmlinux"));
    assert.match(a.kernelVersion, /^\d+\.\d+\.\d+-\d+-cloud-amd64$/);
    const elf = readFileSync(a.kernel);
    assert.ok(elfSize(elf) > 10 << 20 && elfSize(elf) <= elf.length, "an ELF vmlinux of plausible size");
    assert.equal(statSync(a.kernel).mode & 0o777, 0o644);
    const cpio = readFileSync(a.initramfs).toString("latin1");
    for (const m of ["virtio_mmio.ko", "virtio_blk.ko", "virtio_console.ko", "overlay.ko", "bin/busybox", "init"]) assert.ok(cpio.includes(m), `initramfs has ${m}`);

    const boot = await bootToMarker("tcg", a.kernel, a.initramfs);
    assert.ok(boot.ok, boot.detail);
    console.log(`# kernel ${a.kernelVersion}: TCG boot to the initramfs marker in ${boot.ms} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
