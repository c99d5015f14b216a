// The ns engine on the `debian` image (built once per inputs hash in the test
// images dir): its userland, and the conformance subset.
import { after } from "node:test";
import { join } from "node:path";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { conformanceSuite } from "../conformance.js";
import { RUN_BHATTI } from "../runtime.js";
import type { EngineEnv } from "../types.js";
import { userlandSuite } from "../userland.js";
import { NsEngine } from "./engine.js";
import { ensureDebianTestImage } from "./test-image.js";

const env: EngineEnv = { dataDir: mkdtempSync("/var/tmp/bhatti-nsdeb-"), runtimeDir: join(RUN_BHATTI, `nsdeb-${process.pid}`), imagesDir: "" };
const engines: NsEngine[] = [];
async function makeEngine(): Promise<NsEngine> {
  env.imagesDir = await ensureDebianTestImage();
  const e = new NsEngine(env);
  engines.push(e);
  return e;
}

after(async () => {
  for (const e of engines) await e.idle();
  rmSync(env.dataDir, { recursive: true, force: true });
  if (existsSync(env.runtimeDir) && readdirSync(join(env.runtimeDir, "sb")).length === 0) rmSync(env.runtimeDir, { recursive: true, force: true });
});

userlandSuite(makeEngine, "debian");
conformanceSuite(makeEngine, { full: false, image: "debian" });
