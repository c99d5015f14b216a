// bench/sandbox: sandbox create/exec/destroy through the real daemon's HTTP API,
// beside bare references measured in the same run (runc, host spawn, QEMU).
// Run: bench/sandbox [--engine ns|vm] [--runs N] [--steps]   (or node dist/bench/sandbox.js)
//      bench/sandbox [--engine ns|vm] [--runs N] --images minimal,debian   (create → first exec per image)
// --steps (ns): also time each step of the engine's create/destroy, in process.
// --phases (ns): also tabulate the daemon's own per-create phase log (BHATTI_TRACE_CREATE=1).
import http from "node:http";
import { request as httpRequest, type Api } from "./http.js";
import { cpus, loadavg } from "node:os";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startDaemon, createUser, type Daemon } from "../src/testing/harness.js";
import { buildImage } from "../src/image/build.js";
import { DEFAULTS } from "../src/sandboxes/templates.js";
import { runtimeDirFor } from "../src/util/paths.js";
import { mountPoints } from "../src/engine/runtime.js";
import type { Accel } from "../src/engine/vm/qemu.js";
import { printTable, timeit, type Row } from "./stats.js";
import { nsSteps, phaseRows } from "./sandbox-steps.js";
import { bareBoot, bareBootNode, nodeInitramfs, QEMU_NODE_REF_INCLUDES, QEMU_REF_INCLUDES, RUNC_REF_INCLUDES, runcReference, scratchDir, spawnWait } from "./sandbox-refs.js";

const IMAGES = process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images";
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// ---- cleanup: everything this run creates is registered here, newest first ----
const cleanups: Array<() => Promise<unknown> | unknown> = [];
async function cleanupAll(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (e) {
      console.error(`cleanup: ${(e as Error).message}`);
    }
  }
  agent.destroy();
}
// An interrupt lets the request in flight finish (a sandbox being created must be
// known before it can be destroyed), then fails the next one; main's finally cleans up.
// A second interrupt exits at once.
let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.exitCode = 130;
    process.stderr.write(`${sig}: stopping after the current step, then cleaning up\n`);
  });
}

// ---- HTTP ----
const request = (a: Api, method: string, path: string, body?: unknown) => httpRequest(agent, a, method, path, body);

async function must(a: Api, method: string, path: string, status: number, body?: unknown): Promise<any> {
  if (interrupted) throw new Error("interrupted");
  const r = await request(a, method, path, body);
  if (r.status !== status) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
  return r.body ? JSON.parse(r.body) : undefined;
}

async function execTrue(a: Api, id: string): Promise<void> {
  const r = await must(a, "POST", `/sandboxes/${id}/exec`, 200, { cmd: ["true"] });
  if (r.exit_code !== 0) throw new Error(`exec true: exit ${r.exit_code}`);
}

async function createSandbox(a: Api, name: string, secrets: string[], image?: string): Promise<string> {
  const sb = await must(a, "POST", "/sandboxes", 201, { name, secrets, ...(image ? { image } : {}) });
  const id = sb.id as string;
  // Until its DELETE has been sent, a sandbox is this run's to clean up.
  cleanups.push(() => request(a, "DELETE", `/sandboxes/${id}`));
  return id;
}

async function destroySandbox(a: Api, id: string): Promise<void> {
  await must(a, "DELETE", `/sandboxes/${id}`, 204);
}

/** One create sample: create with the secrets, first exec done (timed), then destroy (its time goes to destroyMs). */
function createSample(a: Api, secrets: string[], destroyMs: number[], image?: string) {
  return async (i: number): Promise<number> => {
    const t = performance.now();
    const id = await createSandbox(a, `c${image ?? ""}${i < 0 ? `w${-i}` : i}`, secrets, image);
    await execTrue(a, id);
    const ms = performance.now() - t;
    const t2 = performance.now();
    await destroySandbox(a, id);
    cleanups.pop();
    if (i >= 0) destroyMs.push(performance.now() - t2);
    return ms;
  };
}

// ---- measurement helpers ----
const sorted = (xs: number[]) => xs.sort((x, y) => x - y);

/** Runs each named step once per round, in turn, so subject and reference see the same load; warmup rounds are discarded. */
async function alternate(rounds: number, warmup: number, steps: Record<string, (i: number) => Promise<number | void>>): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(steps).map((k) => [k, []]));
  for (let i = -warmup; i < rounds; i++) {
    for (const [k, f] of Object.entries(steps)) {
      const t = performance.now();
      const r = await f(i);
      const ms = typeof r === "number" ? r : performance.now() - t;
      if (i >= 0) out[k].push(ms);
    }
  }
  for (const k of Object.keys(out)) sorted(out[k]);
  return out;
}

async function wall(n: number, f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await Promise.all(Array.from({ length: n }, f));
  return performance.now() - t;
}

// ---- setup shared by both engines ----
async function ensureImage(engine: "ns" | "vm", name = "minimal"): Promise<void> {
  const base = join(IMAGES, name);
  const need = engine === "ns" ? [join(base, "rootfs/opt/bhatti/lohar.js")] : ["vmlinux", "initramfs.cpio", "rootfs.ext4"].map((f) => join(base, f));
  if (need.every((f) => existsSync(f))) return;
  process.stderr.write(`building the ${name} image in ${IMAGES} ...\n`);
  await buildImage({ imagesDir: IMAGES, name, log: (l) => process.stderr.write(`image: ${l}\n`) });
}

async function daemon(engine: "ns" | "vm", phases = false): Promise<{ d: Daemon; a: Api; health: any; secrets: string[] }> {
  // phases: the daemon logs each create's step durations (src/util/phases.ts).
  const d = await startDaemon({ args: ["--engine", engine, "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES, ...(phases ? { BHATTI_TRACE_CREATE: "1" } : {}) } });
  cleanups.push(() => removeDaemonDirs(d));
  cleanups.push(() => d.stop());
  const a = { url: d.url, key: createUser(d.dataDir, "bench") };
  // Before the daemon stops (it keeps sandboxes running across restarts): destroy whatever it still lists.
  cleanups.push(async () => {
    if (d.proc.exitCode !== null || d.proc.signalCode !== null) return;
    const r = await request(a, "GET", "/sandboxes");
    for (const sb of r.status === 200 ? JSON.parse(r.body) as Array<{ id: string }> : []) await request(a, "DELETE", `/sandboxes/${sb.id}`);
  });
  const health = JSON.parse((await request(a, "GET", "/health")).body);
  const secrets = ["BENCH_API_KEY", "BENCH_DB_PASSWORD", "BENCH_TOKEN"];
  for (const name of secrets) await must(a, "POST", "/secrets", 201, { name, value: `bench-value-of-${name.toLowerCase()}-0123456789abcdef` });
  return { d, a, health, secrets };
}

/** The daemon's data dir, and its runtime dir on /run/bhatti (the daemon leaves it) unless something is still mounted there. */
function removeDaemonDirs(d: Daemon): void {
  rmSync(d.dataDir, { recursive: true, force: true });
  const rt = runtimeDirFor(d.dataDir);
  const busy = mountPoints().filter((m) => m === rt || m.startsWith(rt + "/"));
  if (busy.length) console.error(`leaving ${rt}: still mounted there: ${busy.join(", ")}`);
  else rmSync(rt, { recursive: true, force: true });
}

/** Stops the daemon and removes its dirs now (its cleanups become no-ops). */
async function stopDaemon(d: Daemon): Promise<void> {
  await d.stop();
  removeDaemonDirs(d);
}

// ---- ns ----
async function benchNs(runs: number, steps: boolean, phases: boolean): Promise<void> {
  await ensureImage("ns");
  const scratch = await scratchDir();
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  const { d, a, secrets } = await daemon("ns", phases);
  const ref = runcReference(scratch, join(IMAGES, "minimal", "rootfs"), DEFAULTS.memory_mb, DEFAULTS.cpus);
  cleanups.push(() => ref.close());

  const R_TRUE = "ref: bare runc run /bin/true";
  const R_NODE = "ref: bare runc run node -e 0";
  const R_SPAWN = "ref: host spawn /bin/true";
  const R_SPAWN20 = "ref: 20 parallel host spawns /bin/true";
  const C = "create (3 secrets) → first exec done";
  const D = "destroy (DELETE)";

  // Create → first exec, destroy, and the runc references, alternating.
  const destroyMs: number[] = [];
  const created = await alternate(runs, 2, {
    [R_TRUE]: () => ref.run("true"),
    [R_NODE]: () => ref.run("node"),
    [C]: createSample(a, secrets, destroyMs),
  });
  sorted(destroyMs);
  const phaseTable = phases ? phaseRows(d.output(), 2) : [];

  // Exec round trips on one sandbox, alternating with host spawns.
  const id = await createSandbox(a, "exec", secrets);
  const execs = await alternate(200, 20, {
    [R_SPAWN]: () => spawnWait("/bin/true"),
    exec: () => execTrue(a, id),
  });
  const par = await alternate(20, 2, {
    [R_SPAWN20]: () => wall(20, () => spawnWait("/bin/true")),
    par: () => wall(20, () => execTrue(a, id)),
  });
  await destroySandbox(a, id);
  cleanups.pop();
  await stopDaemon(d);

  const rows: Row[] = [
    { name: R_TRUE, samples: created[R_TRUE] },
    { name: R_NODE, samples: created[R_NODE] },
    { name: C, samples: created[C], ref: R_NODE, target: "p50 ≤ 100 ms and ≤ 1.5× bare runc" },
    { name: `${C} (vs runc /bin/true)`, samples: created[C], ref: R_TRUE },
    { name: D, samples: destroyMs, ref: R_TRUE, target: "p50 ≤ 50 ms" },
    { name: R_SPAWN, samples: execs[R_SPAWN] },
    { name: "exec `true` round trip (POST exec)", samples: execs.exec, ref: R_SPAWN, target: "p50 ≤ 5 ms" },
    { name: R_SPAWN20, samples: par[R_SPAWN20] },
    { name: "20 parallel execs `true` (wall)", samples: par.par, ref: R_SPAWN20, target: "p50 ≤ 30 ms" },
  ];
  printTable(`sandbox, engine ns (runc ${await runcVersion()}, ${DEFAULTS.cpus} cpu / ${DEFAULTS.memory_mb} MiB sandboxes)`, rows);
  process.stdout.write(`Reference "bare runc run": ${RUNC_REF_INCLUDES}.\n` +
    `Create/destroy and their runc references alternate (2 warmup rounds); exec rows alternate with host spawns (20 warmups). ` +
    `Host spawn: child_process.spawn with an empty environment, to exit.\n\n`);
  if (phases) {
    printTable("create phases, logged by the daemon (BHATTI_TRACE_CREATE=1; steps overlap: disk, rootfs, config drive and agent dir run side by side, network attach and limits alongside the agent's hello)", phaseTable);
  }
  if (steps) {
    printTable("ns engine steps (NsEngine in process, no daemon/HTTP; rootfs and config drive run in parallel)", await nsSteps(runs, IMAGES, scratch, cleanups, () => interrupted));
  }
}

async function runcVersion(): Promise<string> {
  const { execFileSync } = await import("node:child_process");
  return /runc version (\S+)/.exec(execFileSync("runc", ["--version"]).toString())?.[1] ?? "?";
}

// ---- vm ----
async function benchVm(runs: number): Promise<void> {
  await ensureImage("vm");
  const scratch = await scratchDir();
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  const { d, a, health, secrets } = await daemon("vm");
  const accel = (health.accel ?? health.engines?.vm?.accel) as Accel | undefined;
  if (accel !== "kvm" && accel !== "tcg") throw new Error(`the daemon reports no vm accelerator: ${JSON.stringify(health)}`);
  const base = join(IMAGES, "minimal");

  const R_BOOT = "ref: bare QEMU boot to initramfs /init";
  const R_NODE = "ref: bare QEMU boot to root + node -e 0";
  const boot = { scratch, accel, kernel: join(base, "vmlinux"), initramfs: join(base, "initramfs.cpio"),
    rootfs: join(base, "rootfs.ext4"), cpus: DEFAULTS.cpus, memoryMb: DEFAULTS.memory_mb };
  const nodeRd = nodeInitramfs(scratch, boot.initramfs);
  const C = "create (3 secrets) → first exec done";
  const D = "destroy (DELETE)";
  const destroyMs: number[] = [];
  let n = 0;
  const created = await alternate(runs, 1, {
    [R_BOOT]: () => bareBoot({ ...boot, n: n++ }),
    [R_NODE]: () => bareBootNode({ ...boot, initramfs: nodeRd, n: n++ }),
    [C]: createSample(a, secrets, destroyMs),
  });
  sorted(destroyMs);

  const id = await createSandbox(a, "exec", secrets);
  const execN = accel === "kvm" ? 200 : 50;
  const execs = await alternate(execN, 5, {
    "ref: host spawn /bin/true": () => spawnWait("/bin/true"),
    exec: () => execTrue(a, id),
  });
  const par = await timeit(accel === "kvm" ? 20 : 5, () => wall(20, () => execTrue(a, id)), 1);
  await destroySandbox(a, id);
  cleanups.pop();
  await stopDaemon(d);

  printTable(`sandbox, engine vm (accel ${accel}, ${DEFAULTS.cpus} vcpu / ${DEFAULTS.memory_mb} MiB guests)`, [
    { name: R_BOOT, samples: created[R_BOOT] },
    { name: R_NODE, samples: created[R_NODE] },
    { name: C, samples: created[C], ref: R_BOOT, target: "≤ 1.3× bare boot" },
    { name: `${C} (vs boot + node)`, samples: created[C], ref: R_NODE },
    { name: D, samples: destroyMs },
    { name: "ref: host spawn /bin/true", samples: execs["ref: host spawn /bin/true"] },
    { name: "exec `true` round trip (POST exec)", samples: execs.exec, ref: "ref: host spawn /bin/true" },
    { name: "20 parallel execs `true` (wall)", samples: par },
  ]);
  process.stdout.write(`Reference "bare QEMU boot to initramfs /init": ${QEMU_REF_INCLUDES}.\n` +
    `Reference "bare QEMU boot to root + node -e 0": ${QEMU_NODE_REF_INCLUDES}.\n` +
    `Create/destroy alternate with the two bare boots (1 warmup round each).\n\n`);
}

// ---- images: create → first exec on each image, same daemon, alternating ----
async function benchImages(engine: "ns" | "vm", runs: number, images: string[]): Promise<void> {
  for (const img of images) await ensureImage(engine, img);
  const { d, a, secrets } = await daemon(engine);
  const destroyMs: number[] = [];
  const label = (img: string) => `create (3 secrets) → first exec done, image ${img}`;
  const got = await alternate(runs, engine === "ns" ? 2 : 1, Object.fromEntries(images.map((img) => [label(img), createSample(a, secrets, destroyMs, img)])));
  await stopDaemon(d);
  printTable(`create → first exec by image, engine ${engine} (${DEFAULTS.cpus} cpu / ${DEFAULTS.memory_mb} MiB)`, images.map((img, i) => ({
    name: label(img), samples: got[label(img)], ...(i > 0 ? { ref: label(images[0]), target: `≤ 1.2× ${images[0]}` } : {}),
  })));
  process.stdout.write(`The images alternate within each round (${engine === "ns" ? 2 : 1} warmup rounds).\n\n`);
}

// ---- main ----
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { engine: { type: "string", default: "ns" }, runs: { type: "string" }, steps: { type: "boolean", default: false }, phases: { type: "boolean", default: false }, images: { type: "string" } } });
  const engine = values.engine;
  if (engine !== "ns" && engine !== "vm") throw new Error("--engine must be ns or vm");
  const runs = values.runs === undefined ? (engine === "ns" ? 15 : 5) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs must be a positive integer");
  const load = loadavg().map((x) => x.toFixed(2)).join(", ");
  process.stdout.write(`bench/sandbox --engine ${engine} --runs ${runs}, ${new Date().toISOString()}\n` +
    `machine: ${cpus()[0]?.model ?? "cpu"}, ${cpus().length} cores; ${process.platform} ${process.arch}, node ${process.version}; load average at start ${load}\n\n`);
  if (values.images) await benchImages(engine, runs, values.images.split(","));
  else if (engine === "ns") await benchNs(runs, values.steps === true, values.phases === true);
  else await benchVm(runs);
  process.stdout.write(`load average at end ${loadavg().map((x) => x.toFixed(2)).join(", ")}\n`);
}

main()
  .catch((e) => {
    if (interrupted) console.error("interrupted; cleaned up");
    else { console.error(e); process.exitCode = 1; }
  })
  .finally(() => cleanupAll());
