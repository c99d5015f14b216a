// bench/connections: a flood of half-open, unauthenticated TCP connections
// (as many as this process may open, up to 20,000) against a daemon with the
// default connection limits, while an authenticated client keeps making
// requests on fresh connections. Prints the client's latencies, how many flood
// connections the daemon held, and its RSS. Run: bench/connections
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import { startDaemon, createUser, cleanup } from "../src/testing/harness.js";
import { hostPort } from "../src/testing/raw-http.js";

const soft = Number(/^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? 1024);
const N = Math.min(20_000, soft - 200);
// The per-user rate limit is off: this measures admission, not the 100 requests/s default.
const d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0", ...process.argv.slice(2)] });
const key = createUser(d.dataDir, "alice");
const { host, port } = hostPort(d.url);
const rss = () => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${d.proc.pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

function get(): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: "/sandboxes", agent: false, headers: { Authorization: `Bearer ${key}`, Connection: "close" } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end();
  });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const rssBefore = rss();
const flood: Socket[] = [];
const lat: number[] = [];
let failed = 0;
const errors = new Map<string, number>();
let flooding = true;
const client = (async () => {
  while (flooding) await get().then((ms) => lat.push(ms), (e: NodeJS.ErrnoException) => { failed++; errors.set(e.code ?? e.message, (errors.get(e.code ?? e.message) ?? 0) + 1); });
})();
const t0 = performance.now();
for (let i = 0; i < N; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, N - i) }, (_, k) => new Promise<void>((resolve) => {
    const s = connect(port, host);
    flood.push(s);
    s.on("error", () => resolve());
    s.on("close", () => resolve());
    s.on("connect", () => { if ((i + k) % 2) s.write("GET /sandboxes HTTP/1.1\r\nHost: x\r\n"); resolve(); });
  })));
}
const floodMs = performance.now() - t0;
const rssPeak = rss();
flooding = false;
await client;
const held = flood.filter((s) => !s.closed).length;
const after: number[] = [];
for (let i = 0; i < 50; i++) after.push(await get());
console.log(`flood: ${N} half-open connections in ${(floodMs / 1000).toFixed(1)} s (daemon flags: ${process.argv.slice(2).join(" ") || "default limits, --max-connections 1024"}); open at the end: ${held}`);
console.log(`authenticated GETs during the flood: ${lat.length} ok, ${failed} failed; p50 ${pct(lat, 0.5).toFixed(1)} ms, p99 ${pct(lat, 0.99).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms`);
console.log(`failures: ${JSON.stringify([...errors])}`);
console.log(`authenticated GETs after the flood: p50 ${pct(after, 0.5).toFixed(1)} ms, max ${Math.max(...after).toFixed(1)} ms`);
console.log(`daemon RSS: ${rssBefore.toFixed(0)} MB before, ${rssPeak.toFixed(0)} MB at the end of the flood`);
for (const s of flood) s.destroy();
await d.stop();
cleanup(d.dataDir);
