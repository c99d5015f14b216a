// bench/lifecycle: pause, resume (warm wake), stop, start (cold wake) through the
// real daemon's HTTP API, per engine, beside the create time of the same run.
// Run: bench/lifecycle [--engine ns|vm|both] [--runs N]   (build first: npm run build)
// ns also: snapshot, restore (create from a snapshot) and fork (create from a running
// sandbox). vm: pause/resume only (see docs/lifecycle.md).
import http from "node:http";
import { request as httpRequest, type Api } from "./http.js";
import { parseArgs } from "node:util";
import { rmSync } from "node:fs";
import { startDaemon, createUser, type Daemon } from "../src/testing/harness.js";
import { machine, printTable, type Row } from "./stats.js";

const IMAGES = process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images";
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const request = (a: Api, method: string, path: string, body?: unknown) => httpRequest(agent, a, method, path, body);

async function must(a: Api, method: string, path: string, status: number, body?: unknown): Promise<any> {
  const r = await request(a, method, path, body);
  if (r.status !== status) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
  return r.body ? JSON.parse(r.body) : undefined;
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}
const execTrue = (a: Api, n: string) => must(a, "POST", `/sandboxes/${n}/exec`, 200, { cmd: ["true"] });

async function benchEngine(engine: "ns" | "vm", runs: number): Promise<void> {
  const d: Daemon = await startDaemon({ args: ["--engine", engine, "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES } });
  const a: Api = { url: d.url, key: createUser(d.dataDir, "bench") };
  const names: string[] = [];
  const rows: Record<string, number[]> = {};
  const add = (k: string, v: number) => (rows[k] ??= []).push(v);
  // A user's default quota is 4 cpus: at most 4 sandboxes at once (stop/start cycles cover the rest of the runs).
  const creates = Math.min(runs, engine === "vm" ? 3 : 4);
  try {
    for (let i = 0; i < creates; i++) {
      const n = `b${i}`;
      add("create (→ running)", await timed(() => must(a, "POST", "/sandboxes", 201, { name: n })));
      names.push(n);
      await execTrue(a, n);
    }
    const n0 = names[0];
    for (let i = 0; i < runs; i++) {
      add("exec true (running)", await timed(() => execTrue(a, n0)));
      add("pause", await timed(() => must(a, "POST", `/sandboxes/${n0}/pause`, 200)));
      add("resume (warm wake)", await timed(() => must(a, "POST", `/sandboxes/${n0}/resume`, 200)));
      await must(a, "POST", `/sandboxes/${n0}/pause`, 200);
      add("exec true from paused (wake on exec)", await timed(() => execTrue(a, n0)));
    }
    // vm: a stop writes the VM's memory (age-encrypted) and a start restores it: fewer rounds under TCG.
    const cycles = engine === "vm" ? Math.min(runs, 3) : runs;
    for (let i = 0; i < cycles; i++) {
      const n = names[i % names.length];
      add("stop", await timed(() => must(a, "POST", `/sandboxes/${n}/stop`, 200)));
      add("start (cold wake)", await timed(() => must(a, "POST", `/sandboxes/${n}/start`, 200)));
      await must(a, "POST", `/sandboxes/${n}/stop`, 200);
      add("start + exec true", await timed(async () => { await must(a, "POST", `/sandboxes/${n}/start`, 200); await execTrue(a, n); }));
    }
    if (engine === "ns") {
      // Snapshot and fork (restore = a fork from a snapshot): one slot is freed for the forks.
      await must(a, "DELETE", `/sandboxes/${names.pop()}`, 204);
      const src = names[0];
      await must(a, "POST", `/sandboxes/${src}/exec`, 200, { cmd: ["/bin/sh", "-c", "head -c 8388608 /dev/urandom > /home/lohar/blob"] });
      for (let i = 0; i < runs; i++) {
        add("snapshot (8 MiB written)", await timed(() => must(a, "POST", `/sandboxes/${src}/snapshots`, 201, { name: `s${i}` })));
        add("restore (create from snapshot)", await timed(() => must(a, "POST", "/sandboxes", 201, { name: "f", from: `s${i}` })));
        await must(a, "DELETE", "/sandboxes/f", 204);
        add("fork (create from a running sandbox)", await timed(() => must(a, "POST", "/sandboxes", 201, { name: "f", from: src })));
        await must(a, "DELETE", "/sandboxes/f", 204);
        await must(a, "DELETE", `/snapshots/s${i}`, 204);
      }
    }
    const ref = "create (→ running)";
    const out: Row[] = Object.entries(rows).map(([name, s]) => ({
      name, samples: s.sort((x, y) => x - y),
      ...(name === ref ? {} : { ref: name.startsWith("exec true from") ? "exec true (running)" : ref }),
      ...(name === "resume (warm wake)" && engine === "ns" ? { target: "≤ 5 ms" } : {}),
      ...(name === "start (cold wake)" ? { target: engine === "ns" ? "≤ create" : "≤ 0.5× create" } : {}),
    }));
    printTable(`lifecycle, engine ${engine} (${machine()})`, out);
  } finally {
    for (const n of names) await request(a, "DELETE", `/sandboxes/${n}`).catch(() => {});
    await d.stop();
    rmSync(d.dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { engine: { type: "string", default: "both" }, runs: { type: "string", default: "10" } } });
  const runs = Math.max(1, Number(values.runs));
  const engines = values.engine === "both" ? (["ns", "vm"] as const) : [values.engine as "ns" | "vm"];
  for (const e of engines) await benchEngine(e, runs);
  agent.destroy();
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exitCode = 1;
});
