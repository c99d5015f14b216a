// bench/sandbox --steps: where an ns create and destroy spend their time. Runs
// the NsEngine in this process (no daemon, no HTTP, no secret store) with its
// step trace on. disk, rootfs, config drive and agent dir run side by side, so steps don't add up.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NsEngine } from "../src/engine/ns/engine.js";
import { DEFAULTS } from "../src/sandboxes/templates.js";
import { defaultDiskMb } from "../src/image/names.js";
import { type Row } from "./stats.js";

export async function nsSteps(runs: number, imagesDir: string, scratch: string, cleanups: Array<() => unknown>, stop: () => boolean): Promise<Row[]> {
  const dataDir = mkdtempSync(join(tmpdir(), "bhatti-bench-steps-"));
  const runtimeDir = join(scratch, "engine");
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const steps = new Map<string, number[]>();
  let phase = "create";
  const add = (name: string, ms: number) => {
    const k = `${phase}: ${name}`;
    if (!steps.has(k)) steps.set(k, []);
    steps.get(k)!.push(ms);
  };
  let recording = false;
  const engine = new NsEngine({ dataDir, runtimeDir, imagesDir }, { trace: (s, ms) => { if (recording) add(s, ms); } });
  cleanups.push(() => engine.idle()); // background removals of writable layers, before their dir goes
  for (let i = -2; i < runs; i++) {
    if (stop()) throw new Error("interrupted");
    recording = i >= 0;
    const id = "bench" + randomBytes(6).toString("hex");
    phase = "create";
    let t = performance.now();
    const sb = await engine.create({
      id, name: `s${i}`, image: "minimal", cpus: DEFAULTS.cpus, memoryMb: DEFAULTS.memory_mb, diskMb: defaultDiskMb("minimal"), // as the daemon gives it
      config: { sandbox_id: id, hostname: `s${i}`, token: randomBytes(32).toString("hex"), files: [],
        env: { BENCH_A: "bench-value-a", BENCH_B: "bench-value-b", BENCH_C: "bench-value-c" } },
    });
    const destroy = () => engine.destroy(id, sb.state);
    cleanups.push(destroy);
    if (recording) {
      add("engine.create total", performance.now() - t);
      if (typeof sb.agent.hello.boot_ms === "number") add("lohar boot_ms (reported by lohar)", sb.agent.hello.boot_ms);
    }
    t = performance.now();
    const exit = await sb.agent.exec({ cmd: ["true"] }).done;
    if (exit.exit_code !== 0) throw new Error(`exec true: exit ${exit.exit_code}`);
    if (recording) add("first exec `true` (agent, no HTTP)", performance.now() - t);
    sb.agent.close();
    phase = "destroy";
    t = performance.now();
    await destroy();
    cleanups.splice(cleanups.indexOf(destroy), 1);
    if (recording) add("engine.destroy total", performance.now() - t);
  }
  await engine.idle();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(runtimeDir, { recursive: true, force: true });
  return [...steps].map(([name, samples]) => ({ name, samples: samples.sort((a, b) => a - b) }));
}

/**
 * bench/sandbox --phases: the daemon's own per-create phase log
 * (BHATTI_TRACE_CREATE=1, src/util/phases.ts) turned into rows: every
 * "sandbox … created on ns in N ms: secrets a, engine b, persist c [step ms, …]"
 * line after the first `skip` (warm-up) creates.
 */
export function phaseRows(daemonOutput: string, skip: number): Row[] {
  const steps = new Map<string, number[]>();
  const add = (k: string, ms: number) => {
    if (!steps.has(k)) steps.set(k, []);
    steps.get(k)!.push(ms);
  };
  const lines = [...daemonOutput.matchAll(/created on \w+ in (\d+) ms: secrets ([\d.]+), engine ([\d.]+), persist ([\d.]+)(?: \[(.*)\])?$/gm)].slice(skip);
  for (const m of lines) {
    add("daemon: create total (secrets → row updated)", Number(m[1]));
    add("daemon: secrets", Number(m[2]));
    add("daemon: engine.create", Number(m[3]));
    add("daemon: persist", Number(m[4]));
    for (const part of (m[5] ?? "").split(", ").filter(Boolean)) {
      const i = part.lastIndexOf(" ");
      add(part.slice(0, i), Number(part.slice(i + 1)));
    }
  }
  return [...steps].map(([name, samples]) => ({ name, samples: samples.sort((a, b) => a - b) }));
}
