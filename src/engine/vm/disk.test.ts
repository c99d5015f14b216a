// disk_mb on the vm engine: the guest's writable layer (a tmpfs under the
// root overlay) is capped, so writing past it fails with ENOSPC inside. One boot.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { execIn, newId, specFor } from "../conformance.js";
import { ensureTestImage } from "../ns/test-image.js";
import { RUN_BHATTI } from "../runtime.js";
import type { EngineEnv } from "../types.js";
import { VmEngine } from "./engine.js";

const env: EngineEnv = { dataDir: mkdtempSync("/var/tmp/bhatti-vmdisk-"), runtimeDir: join(RUN_BHATTI, `vmdisk-${process.pid}`), imagesDir: "" };

after(() => {
  rmSync(env.dataDir, { recursive: true, force: true });
  // Only once its sandboxes are gone (nothing can be mounted there then).
  if (existsSync(env.runtimeDir) && readdirSync(join(env.runtimeDir, "sb")).length === 0) rmSync(env.runtimeDir, { recursive: true, force: true });
});

test("writing past disk_mb fails with ENOSPC inside the guest", async () => {
  env.imagesDir = await ensureTestImage();
  const engine = new VmEngine(env, { bootTimeoutMs: 120_000 });
  const sb = await engine.create(specFor(newId("vd"), {}, { diskMb: 32 }));
  try {
    const r = await execIn(sb, ["/bin/sh", "-c", "dd if=/dev/zero of=/home/lohar/fill bs=1M count=100 2>&1; echo rc=$?; ls -l /home/lohar/fill | awk '{print $5}'"], { timeout_ms: 120_000 });
    const out = r.stdout.toString();
    assert.match(out, /No space left on device/, out);
    assert.match(out, /^rc=1$/m, out);
    const written = Number(out.split("\n").find((l) => /^\d+$/.test(l)));
    assert.ok(written > 16 * 1048576 && written <= 32 * 1048576, `wrote ${written} bytes before ENOSPC`);
  } finally {
    await engine.destroy(sb.id, sb.state);
  }
});
