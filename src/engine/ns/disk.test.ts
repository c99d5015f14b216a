// disk_mb on the ns engine: the writable layer is a filesystem of that size,
// so writing past it fails with ENOSPC inside the sandbox, the host gives it
// at most that much, and destroy frees it.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { execIn, newId, specFor } from "../conformance.js";
import { mountPoints, RUN_BHATTI } from "../runtime.js";
import type { EngineEnv } from "../types.js";
import { DISK_FILE, DISK_MOUNT } from "./disk.js";
import { DiskTemplates } from "./disk-template.js";
import { NsEngine } from "./engine.js";
import { nsPaths } from "./paths.js";
import { ensureTestImage } from "./test-image.js";

const env: EngineEnv = { dataDir: mkdtempSync("/var/tmp/bhatti-nsdisk-"), runtimeDir: join(RUN_BHATTI, `nsdisk-${process.pid}`), imagesDir: "" };

after(() => {
  rmSync(env.dataDir, { recursive: true, force: true });
  if (existsSync(env.runtimeDir) && readdirSync(join(env.runtimeDir, "sb")).length === 0) rmSync(env.runtimeDir, { recursive: true, force: true });
});

test("writing past disk_mb fails with ENOSPC inside; the host gives at most that; destroy frees it", async () => {
  env.imagesDir = await ensureTestImage();
  const engine = new NsEngine(env);
  const spec = specFor(newId("dk"), {}, { diskMb: 64 });
  const sb = await engine.create(spec);
  const p = nsPaths(env, sb.id);
  const img = join(p.data, DISK_FILE);
  try {
    assert.equal(sb.state.diskMb, 64);
    assert.ok(mountPoints().includes(join(p.data, DISK_MOUNT)), "the disk is mounted on the host");
    const r = await execIn(sb, ["/bin/sh", "-c", "dd if=/dev/zero of=/home/lohar/fill bs=1M count=200 2>&1; echo rc=$?; ls -l /home/lohar/fill | awk '{print $5}'; echo small > /home/lohar/after; echo after=$?"], { timeout_ms: 60_000 });
    const out = r.stdout.toString();
    assert.match(out, /No space left on device/, out);
    assert.match(out, /^rc=1$/m, out);
    const written = Number(out.split("\n").find((l) => /^\d+$/.test(l)));
    assert.ok(written > 32 * 1048576 && written <= 64 * 1048576, `wrote ${written} bytes before ENOSPC`);
    const allocated = statSync(img).blocks * 512;
    assert.ok(allocated <= 64 * 1048576, `the host gave the disk ${allocated} bytes`);
    assert.equal(statSync(img).size, 64 * 1048576);
    // the sandbox lives on: reads and deletes still work, and free space comes back
    const again = await execIn(sb, ["/bin/sh", "-c", "rm /home/lohar/fill && echo ok > /home/lohar/after && cat /home/lohar/after"]);
    assert.equal(again.stdout.toString(), "ok\n", again.stderr.toString());
  } finally {
    await engine.destroy(sb.id, sb.state);
    await engine.idle();
  }
  assert.ok(!mountPoints().some((m) => m.startsWith(p.data)), "no mount left");
  assert.equal(existsSync(img), false, "the disk image is gone");
  assert.equal(existsSync(p.data), false);
  // The next disk of that size comes from the template built after the first: same limit.
  const again = await engine.create(specFor(newId("dk"), {}, { diskMb: 64 }));
  try {
    const r = await execIn(again, ["/bin/sh", "-c", "df -k /home/lohar | tail -1 | awk '{print $2}'; dd if=/dev/zero of=/home/lohar/fill bs=1M count=100 2>&1; echo rc=$?"], { timeout_ms: 60_000 });
    const out = r.stdout.toString();
    // Its upper layer was made by the wrapper's host steps (engine: diskSteps): the root is the image root's, as inside.
    const root = await execIn(again, ["/bin/stat", "-c", "%u:%g %a", "/"]);
    const img = statSync(join(env.imagesDir, "minimal", "rootfs"));
    assert.equal(root.stdout.toString().trim(), `${img.uid}:${img.gid} ${(img.mode & 0o7777).toString(8)}`);
    const work = statSync(join(nsPaths(env, again.id).data, DISK_MOUNT, "work"));
    assert.equal(work.mode & 0o777, 0o700);
    const kib = Number(out.split("\n")[0]);
    assert.ok(kib > 50_000 && kib <= 65_536, `df says ${kib} KiB`);
    assert.match(out, /No space left on device/, out);
  } finally {
    await engine.destroy(again.id, again.state);
    await engine.idle();
  }
});

test("without disk_mb the writable layer is a plain directory, as before", async () => {
  env.imagesDir = await ensureTestImage();
  const engine = new NsEngine(env);
  const sb = await engine.create(specFor(newId("dk")));
  const p = nsPaths(env, sb.id);
  try {
    assert.equal(sb.state.diskMb, undefined);
    assert.equal(existsSync(join(p.data, DISK_FILE)), false);
    assert.ok(existsSync(p.upper));
  } finally {
    await engine.destroy(sb.id, sb.state);
    await engine.idle();
  }
});

test("disks made from a size's template are valid, empty ext4 of that size, sparse, each its own file", async () => {
  const dir = mkdtempSync("/var/tmp/bhatti-disktpl-");
  try {
    const t = new DiskTemplates(() => dir);
    const first = join(dir, "a.ext4");
    await t.make(first, 64); // mke2fs; the template is built behind it
    await t.idle();
    assert.ok(t.has(64), "the template of 64 MiB is ready");
    assert.equal(readdirSync(dir).filter((n) => n.startsWith(".disk-template-")).length, 0, "the template's scratch file is gone");
    const [b, c] = [join(dir, "b.ext4"), join(dir, "c.ext4")];
    await t.make(b, 64);
    await t.make(c, 64);
    await assert.rejects(t.make(b, 64), /EEXIST/, "never over an existing file");
    for (const img of [b, c]) {
      assert.equal(statSync(img).size, 64 * 1048576);
      assert.ok(statSync(img).blocks * 512 < 4 * 1048576, "sparse");
      const fsck = spawnSync("e2fsck", ["-fn", img], { encoding: "utf8" });
      assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
      const dump = spawnSync("dumpe2fs", ["-h", img], { encoding: "utf8" });
      assert.match(dump.stdout, /Block count:\s+16384$/m);
      assert.doesNotMatch(dump.stdout, /has_journal/);
      assert.match(dump.stdout, /Reserved block count:\s+0$/m);
    }
    // Two disks are separate files: writing one leaves the other as it was.
    const before = readFileSync(c);
    const w = spawnSync("debugfs", ["-w", "-R", "mkdir marker", b], { encoding: "utf8" });
    assert.equal(w.status, 0, w.stderr);
    assert.match(spawnSync("debugfs", ["-R", "ls -l /", b], { encoding: "utf8" }).stdout, /marker/);
    assert.ok(readFileSync(c).equals(before));
    assert.doesNotMatch(spawnSync("debugfs", ["-R", "ls -l /", c], { encoding: "utf8" }).stdout, /marker/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
