// bench/streams: exec and file streams through the real daemon (ns engine):
// throughput of each output path under flow control, the daemon's peak RSS
// meanwhile, and how long SIGTERM takes with many open streams.
// Run: node dist/bench/streams.js [--mib N] [--streams N]
import http from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { startDaemon, createUser, cleanup, type Daemon } from "../src/testing/harness.js";
import { RECOVERED, waitForOutput } from "../src/testing/sandbox-api.js";

const IMAGES = process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images";
const { values } = parseArgs({ options: { mib: { type: "string", default: "256" }, streams: { type: "string", default: "20" } } });
const MIB = Number(values.mib);
const STREAMS = Number(values.streams);
const SB = "bench";

let d: Daemon;
let key = "";
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const start = (dataDir?: string) => startDaemon({ dataDir, args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES } });

function kb(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${d.proc.pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

function post(path: string, body: unknown, accept = "application/json", onRes?: (r: http.IncomingMessage) => void): Promise<{ status: number; bytes: number; text: string }> {
  const u = new URL(path, d.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: body === undefined ? "GET" : "POST", headers: { Authorization: `Bearer ${key}`, Accept: accept } }, (res) => {
      onRes?.(res);
      let bytes = 0;
      const keep: Buffer[] = [];
      res.on("data", (c: Buffer) => { bytes += c.length; if (keep.length < 4) keep.push(c); });
      res.on("end", () => resolve({ status: res.statusCode!, bytes, text: Buffer.concat(keep).toString() }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function measure(name: string, fn: () => Promise<number>): Promise<void> {
  const before = Math.round(kb("VmRSS") / 1024);
  writeFileSync(`/proc/${d.proc.pid}/clear_refs`, "5");
  const t = performance.now();
  const bytes = await fn();
  const s = (performance.now() - t) / 1000;
  console.log(`| ${name} | ${(bytes / 1048576).toFixed(0)} | ${s.toFixed(2)} | ${(bytes / 1048576 / s).toFixed(0)} | ${before} | ${Math.round(kb("VmHWM") / 1024)} |`);
}

function wsRead(cmd: string[]): Promise<number> {
  const ws = new WebSocket(`${d.url.replace(/^http/, "ws")}/sandboxes/${SB}/exec/ws`, { headers: { Authorization: `Bearer ${key}` }, perMessageDeflate: false });
  let n = 0;
  ws.on("open", () => ws.send(JSON.stringify({ cmd })));
  ws.on("message", (m: Buffer, binary: boolean) => { if (binary) n += m.length - 1; });
  return new Promise((resolve, reject) => { ws.on("close", () => resolve(n)); ws.on("error", reject); });
}

async function main(): Promise<void> {
  d = await start();
  try {
    key = createUser(d.dataDir, "bench");
    const c = await post("/sandboxes", { name: SB });
    if (c.status !== 201) throw new Error(`create: ${c.status} ${c.text}`);
    const gen = ["head", "-c", String(MIB << 20), "/dev/zero"];
    await post(`/sandboxes/${SB}/exec`, { cmd: ["/bin/sh", "-c", `head -c ${64 << 20} /dev/urandom > /home/lohar/f`] });
    console.log(`### streams: ${MIB} MiB per exec path, 64 MiB file (ns engine)\n`);
    console.log("| path | MiB | s | MiB/s | daemon RSS before (MB) | peak (MB) |\n|---|---:|---:|---:|---:|---:|");
    await measure("in-sandbox reference: head > /dev/null (buffered exec)", async () => {
      await post(`/sandboxes/${SB}/exec`, { cmd: ["/bin/sh", "-c", `${gen.join(" ")} > /dev/null`] });
      return MIB << 20;
    });
    await measure("buffered exec, max_output_bytes 0 (all dropped)", async () => {
      await post(`/sandboxes/${SB}/exec`, { cmd: gen, max_output_bytes: 0 });
      return MIB << 20;
    });
    await measure("buffered exec, default 16 MiB cap (rest dropped)", async () => {
      await post(`/sandboxes/${SB}/exec`, { cmd: gen });
      return MIB << 20;
    });
    await measure("NDJSON exec, read fully", async () => {
      const r = await post(`/sandboxes/${SB}/exec`, { cmd: ["/bin/sh", "-c", `${gen.join(" ")} | tr '\\0' a`] }, "application/x-ndjson");
      if (r.status !== 200) throw new Error(String(r.status));
      return MIB << 20;
    });
    await measure("WebSocket exec, read fully", () => wsRead(gen));
    await measure("GET files 64 MiB", async () => (await post(`/sandboxes/${SB}/files?path=/home/lohar/f`, undefined, "*/*")).bytes);

    // SIGTERM with many open streams: half NDJSON readers that stopped reading /dev/zero, half WebSockets.
    console.log(`\n### SIGTERM with ${STREAMS} open streams (half NDJSON unread /dev/zero, half WebSocket sleep)\n`);
    console.log("| run | exit ms | exit code |\n|---:|---:|---:|");
    for (let run = 1; run <= 3; run++) {
      const socks: WebSocket[] = [];
      for (let i = 0; i < STREAMS; i++) {
        if (i % 2) {
          const ws = new WebSocket(`${d.url.replace(/^http/, "ws")}/sandboxes/${SB}/exec/ws`, { headers: { Authorization: `Bearer ${key}` } });
          ws.on("open", () => ws.send(JSON.stringify({ cmd: ["sleep", "600"] })));
          ws.on("error", () => {});
          socks.push(ws);
        } else post(`/sandboxes/${SB}/exec`, { cmd: ["cat", "/dev/zero"] }, "application/x-ndjson", (r) => r.pause()).catch(() => {});
      }
      await sleep(1500);
      const t = performance.now();
      const code = await d.stop("SIGTERM");
      console.log(`| ${run} | ${(performance.now() - t).toFixed(0)} | ${code} |`);
      for (const s of socks) s.terminate();
      d = await start(d.dataDir);
      await waitForOutput(d, RECOVERED); // the sandbox is reattached in the background
    }
  } finally {
    await waitForOutput(d, RECOVERED).catch(() => {}); // a DELETE during the reattach would be a 503
    await post(`/sandboxes/${SB}`, undefined).catch(() => {});
    const u = new URL(`/sandboxes/${SB}`, d.url);
    await new Promise<void>((r) => { const q = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: "DELETE", headers: { Authorization: `Bearer ${key}` } }, (res) => { res.resume(); res.on("end", () => r()); }); q.on("error", () => r()); q.end(); });
    await d.stop();
    cleanup(d.dataDir);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
