// disk_mb on the ns engine: the writable layer is a filesystem of that size,
// so writing past it fails with ENOSPC inside the sandbox, the host gives it
// at most that much, and destroy frees it.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { execIn, newId, specFor } from "../conformance.js";
import { mountPoints, RUN_BHATTI } from "../runtime.js";
import type { EngineEnv } from "../types.js";
import { DISK_FILE, DISK_MOUNT } from "./disk.js";
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
