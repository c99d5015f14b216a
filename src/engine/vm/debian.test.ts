// The vm engine on the `debian` image: its userland in one boot (TCG boots
// are slow; the ns engine runs the conformance subset on debian too).
import { after } from "node:test";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ensureDebianTestImage, ensureTestImage } from "../ns/test-image.js";
import { RUN_BHATTI } from "../runtime.js";
import type { EngineEnv } from "../types.js";
import { userlandSuite } from "../userland.js";
import { VmEngine } from "./engine.js";

const env: EngineEnv = { dataDir: mkdtempSync("/var/tmp/bhatti-vmdeb-"), runtimeDir: join(RUN_BHATTI, `vmdeb-${process.pid}`), imagesDir: "" };

after(() => {
  rmSync(env.dataDir, { recursive: true, force: true });
  // Only once its sandboxes are gone (nothing can be mounted there then).
  if (existsSync(env.runtimeDir) && readdirSync(join(env.runtimeDir, "sb")).length === 0) rmSync(env.runtimeDir, { recursive: true, force: true });
});

userlandSuite(async () => {
  await ensureTestImage(); // the accelerator probe boots minimal's kernel
  env.imagesDir = await ensureDebianTestImage();
  return new VmEngine(env, { bootTimeoutMs: 120_000 });
}, "debian");
