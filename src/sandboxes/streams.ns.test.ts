// Bounded buffers and backpressure end to end, against a real daemon and real
// ns sandboxes: a sandbox floods every output path while clients refuse to
// read, and the daemon's memory stays under a ceiling; a stalled reader stalls
// the command and loses no byte; a client that leaves kills its command; the
// files API refuses FIFOs, devices and /proc without stalling lohar; SIGTERM
// ends open streams with a final message, within its deadline.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request, type IncomingMessage } from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import WebSocket from "ws";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";
import { exec, sh, IMAGES_DIR, RECOVERED, waitForOutput } from "../testing/sandbox-api.js";

const RSS_CEILING_MB = 250;
const SB = "flood";
const BIG = 32 * 1024 * 1024; // the file streamed by the stalled readers
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let d: Daemon;
let key: string;
let bigSha = "";
const peaks: Record<string, string> = {};

function rssMb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

/** Runs `fn` and returns the daemon's peak RSS (MB) meanwhile (kernel high-water mark, reset first). */
async function peakDuring(name: string, fn: () => Promise<void>): Promise<number> {
  const pid = d.proc.pid!;
  const before = rssMb(pid, "VmRSS");
  writeFileSync(`/proc/${pid}/clear_refs`, "5"); // reset VmHWM to the current RSS
  await fn();
  const peak = rssMb(pid, "VmHWM");
  peaks[name] = `${before} -> peak ${peak}`;
  return peak;
}

const start = () => startDaemon({ dataDir: d?.dataDir, args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });

before(async () => {
  d = await start();
  key = createUser(d.dataDir, "flooder", ["--max-sandboxes", "4"]);
  const c = await api(d, "POST", "/sandboxes", { key, body: { name: SB, memory_mb: 512 } });
  assert.equal(c.status, 201, c.text);
  const r = await sh(d, key, SB, `head -c ${BIG} /dev/urandom > /home/lohar/big && sha256sum /home/lohar/big`);
  bigSha = r.stdout.split(" ")[0];
  assert.match(bigSha, /^[0-9a-f]{64}$/);
});

after(async () => {
  if (!d) return;
  for (const sb of (await api(d, "GET", "/sandboxes", { key })).json ?? []) await api(d, "DELETE", `/sandboxes/${sb.id}`, { key });
  assert.equal(await d.stop(), 0);
  cleanup(d.dataDir);
  console.log(`# daemon RSS (MB) per flood, before -> peak: ${JSON.stringify(peaks)}`);
});

/** The command streaming `big` in 128 KiB pieces, recording how many it wrote in /tmp/progress-<tag>. */
function pieces(tag: string): string[] {
  return ["/bin/sh", "-c", `n=0; while [ $n -lt ${BIG / 131072} ]; do dd if=/home/lohar/big bs=131072 skip=$n count=1 2>/dev/null; n=$((n+1)); echo $n > /tmp/progress-${tag}; done`];
}

async function progress(tag: string): Promise<number> {
  return Number((await exec(d, key, SB, ["cat", `/tmp/progress-${tag}`])).stdout.trim() || "0");
}

/** Waits until the command's progress stops moving; returns where it stopped. */
async function stalled(tag: string): Promise<number> {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    await sleep(400);
    const p = await progress(tag);
    if (p === last && p > 0) return p;
    last = p;
  }
  throw new Error(`progress of ${tag} never stopped (at ${last})`);
}

function ndjson(body: unknown, onRes: (res: IncomingMessage) => void): { abort: () => void } {
  const u = new URL(`${d.url}/sandboxes/${SB}/exec`);
  const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers: { Authorization: `Bearer ${key}`, Accept: "application/x-ndjson", "Content-Type": "application/json" } }, onRes);
  req.on("error", () => {});
  req.end(JSON.stringify(body));
  return { abort: () => req.destroy() };
}

function parseLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

function wsOpen(spec: Record<string, unknown>): Promise<WebSocket> {
  const ws = new WebSocket(`${d.url.replace(/^http/, "ws")}/sandboxes/${SB}/exec/ws`, { headers: { Authorization: `Bearer ${key}` }, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once("open", () => { ws.send(JSON.stringify(spec)); resolve(ws); });
    ws.once("error", reject);
  });
}

async function procs(pattern: string): Promise<string[]> {
  const r = await sh(d, key, SB, "ps -o pid,args");
  return r.stdout.split("\n").filter((l) => l.includes(pattern) && !l.includes("ps -o"));
}

test("buffered exec of /dev/zero: stdout is capped and says truncated; the daemon stays bounded", async () => {
  let r: Awaited<ReturnType<typeof api>> | undefined;
  const peak = await peakDuring("buffered /dev/zero (16 MiB cap, 3 s)", async () => {
    r = await api(d, "POST", `/sandboxes/${SB}/exec`, { key, body: { cmd: ["cat", "/dev/zero"], timeout_sec: 3 } });
  });
  assert.equal(r!.status, 200);
  assert.equal(r!.json.timed_out, true);
  assert.equal(r!.json.stdout.length, 16 * 1024 * 1024, "the default cap, 16 MiB");
  assert.equal(r!.json.stdout_truncated, true);
  assert.equal(r!.json.stderr_truncated, undefined);
  assert.ok(peak < RSS_CEILING_MB, `peak RSS ${peak} MB`);

  const small = await exec(d, key, SB, ["/bin/sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a; echo err >&2"], { max_output_bytes: 1000 }) as Record<string, unknown>;
  assert.equal(small.stdout, "a".repeat(1000));
  assert.equal(small.stdout_truncated, true);
  assert.equal(small.stderr, "err\n");
  assert.equal(small.exit_code, 0, "the command ran on to its exit");
  for (const bad of [-1, 1.5, "1", 64 * 1024 * 1024 + 1]) {
    const b = await api(d, "POST", `/sandboxes/${SB}/exec`, { key, body: { cmd: ["true"], max_output_bytes: bad } });
    assert.equal(b.status, 400);
    assert.match(b.json.error, /max_output_bytes must be an integer between 0 and 67108864/);
  }
});

test("an NDJSON reader that stops reading stalls the command, not the daemon; resuming gets every byte", async () => {
  const lines: Buffer[] = [];
  let res!: IncomingMessage;
  const done = new Promise<void>((resolve) => {
    ndjson({ cmd: pieces("nd") }, (r) => {
      res = r;
      r.on("data", (b: Buffer) => lines.push(b));
      r.on("end", resolve);
      r.pause(); // read nothing
    });
  });
  let at = 0;
  const peak = await peakDuring("NDJSON reader stalled 5 s", async () => {
    at = await stalled("nd");
    await sleep(3000);
    assert.equal(await progress("nd"), at, "still stalled");
  });
  assert.ok(at < BIG / 131072, `the command stopped at piece ${at}`);
  assert.ok(peak < RSS_CEILING_MB, `peak RSS ${peak} MB`);
  res.resume();
  await done;
  const all = parseLines(Buffer.concat(lines).toString());
  const h = createHash("sha256");
  for (const l of all) if (l.type === "stdout") h.update(Buffer.from((l.data_base64 ?? l.data) as string, l.data_base64 ? "base64" : "utf8"));
  assert.deepEqual(all.at(-1), { type: "exit", exit_code: 0 });
  assert.equal(h.digest("hex"), bigSha, "every byte, in order");
});

test("a WebSocket reader that stops reading stalls the command, not the daemon; resuming gets every byte", async () => {
  const ws = await wsOpen({ cmd: pieces("ws") });
  const h = createHash("sha256");
  let exit: Record<string, unknown> | undefined;
  ws.on("message", (data: Buffer, binary: boolean) => {
    if (binary && data[0] === 1) h.update(data.subarray(1));
    else if (!binary) exit = JSON.parse(data.toString());
  });
  const closed = new Promise((r) => ws.once("close", r));
  ws.pause();
  let at = 0;
  const peak = await peakDuring("WebSocket reader stalled 5 s", async () => {
    at = await stalled("ws");
    await sleep(3000);
    assert.equal(await progress("ws"), at, "still stalled");
  });
  assert.ok(at < BIG / 131072, `the command stopped at piece ${at}`);
  assert.ok(peak < RSS_CEILING_MB, `peak RSS ${peak} MB`);
  ws.resume();
  await closed;
  assert.deepEqual(exit, { type: "exit", exit_code: 0 });
  assert.equal(h.digest("hex"), bigSha);
});

test("NDJSON and WebSocket readers of /dev/zero that never read keep the daemon bounded", async () => {
  const nd = ndjson({ cmd: ["cat", "/dev/zero"] }, (r) => r.pause());
  const ws = await wsOpen({ cmd: ["cat", "/dev/zero"] });
  ws.pause();
  const pid = d.proc.pid!;
  let early = 0;
  const peak = await peakDuring("NDJSON + WebSocket /dev/zero, unread 5 s", async () => {
    await sleep(1500);
    early = rssMb(pid, "VmRSS");
    await sleep(3500);
  });
  const late = rssMb(pid, "VmRSS");
  assert.ok(peak < RSS_CEILING_MB, `peak RSS ${peak} MB`);
  assert.ok(late - early < 20, `RSS grows while nobody reads: ${early} MB at 1.5 s, ${late} MB at 5 s`);
  nd.abort();
  ws.terminate();
});

test("files: a symlink to /dev/zero, a FIFO, /proc are refused with the rule named; lohar keeps serving at once", async () => {
  await sh(d, key, SB, "ln -sf /dev/zero /home/lohar/zero; rm -f /home/lohar/fifo; mkfifo /home/lohar/fifo; ln -sf /proc/self /home/lohar/self");
  const zero = await api(d, "GET", `/sandboxes/${SB}/files?path=/home/lohar/zero`, { key });
  assert.equal(zero.status, 400);
  assert.match(zero.json.error, /is a character device; the files API reads only regular files/);
  const t0 = Date.now();
  const fifo = await api(d, "GET", `/sandboxes/${SB}/files?path=/home/lohar/fifo`, { key });
  assert.equal(fifo.status, 400);
  assert.match(fifo.json.error, /is a FIFO; the files API reads only regular files/);
  const later = await exec(d, key, SB, ["echo", "alive"]);
  assert.equal(later.stdout, "alive\n");
  assert.ok(Date.now() - t0 < 2000, "the FIFO did not stall lohar");
  for (const [m, p] of [["GET", "/proc/self/environ"], ["GET", "/home/lohar/self/environ"], ["GET", "/proc/1/mem"], ["HEAD", "/proc/self/environ"], ["GET", "/sys/kernel/uevent_seqnum"]] as const) {
    const r = await api(d, m, `/sandboxes/${SB}/files?path=${encodeURIComponent(p)}`, { key });
    assert.equal(r.status, 403, `${m} ${p}`);
    if (m === "GET") assert.match(r.json.error, /paths under \/proc and \/sys are not served by the files API/);
  }
  assert.equal((await api(d, "GET", `/sandboxes/${SB}/files?path=/proc&ls=true`, { key })).status, 403);
  assert.equal((await api(d, "PUT", `/sandboxes/${SB}/files?path=/proc/self/comm`, { key, raw: "x" })).status, 403);
});

test("files: a large file read by a slow client streams with bounded memory and arrives whole", async () => {
  const u = new URL(`${d.url}/sandboxes/${SB}/files?path=/home/lohar/big`);
  const h = createHash("sha256");
  let n = 0;
  let length = "";
  const peak = await peakDuring("GET 32 MiB file, client paused 3 s then slow", () => new Promise<void>((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers: { Authorization: `Bearer ${key}` } }, (res) => {
      length = String(res.headers["content-length"]);
      res.pause();
      setTimeout(() => {
        res.on("data", (b: Buffer) => {
          h.update(b);
          n += b.length;
          res.pause();
          setTimeout(() => res.resume(), 2); // a slow reader
        });
        res.on("end", resolve);
        res.resume();
      }, 3000);
    });
    req.on("error", reject);
    req.end();
  }));
  assert.equal(length, String(BIG));
  assert.equal(n, BIG);
  assert.equal(h.digest("hex"), bigSha);
  assert.ok(peak < RSS_CEILING_MB, `peak RSS ${peak} MB`);
});

test("files: PUT streams to the sandbox within the 64 MiB limit; over it is 413 and leaves nothing", async () => {
  const body = Buffer.alloc(8 * 1024 * 1024, 7);
  const ok = await api(d, "PUT", `/sandboxes/${SB}/files?path=/home/lohar/up.bin`, { key, raw: body });
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(ok.json, { path: "/home/lohar/up.bin", size: body.length });
  const sum = await sh(d, key, SB, "sha256sum /home/lohar/up.bin");
  assert.equal(sum.stdout.split(" ")[0], createHash("sha256").update(body).digest("hex"));
  // Chunked, no Content-Length: the limit is enforced as it streams.
  const u = new URL(`${d.url}/sandboxes/${SB}/files?path=/home/lohar/huge.bin`);
  const status = await new Promise<number>((resolve) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: "PUT", headers: { Authorization: `Bearer ${key}` } }, (res) => { res.resume(); resolve(res.statusCode!); });
    req.on("error", () => resolve(-1));
    const chunk = Buffer.alloc(1024 * 1024);
    let sent = 0;
    const pump = () => { while (sent < 70 && req.write(chunk)) sent++; if (sent < 70) req.once("drain", pump); else req.end(); };
    pump();
  });
  assert.ok(status === 413 || status === -1, `status ${status}`);
  await sleep(200);
  const ls = await sh(d, key, SB, "ls -a /home/lohar");
  assert.ok(!/huge\.bin/.test(ls.stdout), `no file or temp file left: ${ls.stdout}`);
});

test("a client that disconnects ends its command: buffered, NDJSON and WebSocket", async () => {
  const ac = new AbortController();
  const buffered = fetch(`${d.url}/sandboxes/${SB}/exec`, { method: "POST", signal: ac.signal, headers: { Authorization: `Bearer ${key}` }, body: JSON.stringify({ cmd: ["/bin/sh", "-c", "sleep 301 & sleep 302"] }) }).catch(() => null);
  const nd = ndjson({ cmd: ["/bin/sh", "-c", "sleep 303 & sleep 304"] }, (r) => r.resume());
  const ws = await wsOpen({ cmd: ["/bin/sh", "-c", "sleep 305 & sleep 306"] });
  for (let i = 0; (await procs("sleep 30")).length < 6; i++) {
    assert.ok(i < 50, "the commands started");
    await sleep(100);
  }
  ac.abort();
  nd.abort();
  ws.terminate();
  await buffered;
  for (let i = 0; ; i++) {
    const left = await procs("sleep 30");
    if (left.length === 0) break;
    assert.ok(i < 50, `still running: ${left.join("; ")}`);
    await sleep(100);
  }
});

test("SIGTERM with open streams: each gets a final daemon_stopping message, the daemon exits within its deadline, the sandbox lives on", async () => {
  // An NDJSON stream with output, one whose reader stopped reading, a buffered exec, a WebSocket exec, an idle WebSocket.
  let ndText = "";
  const ndDone = new Promise<void>((resolve) => ndjson({ cmd: ["/bin/sh", "-c", "echo started; sleep 310"] }, (r) => { r.on("data", (b: Buffer) => (ndText += b)); r.on("end", resolve); r.on("error", () => resolve()); }));
  ndjson({ cmd: ["cat", "/dev/zero"] }, (r) => r.pause());
  const buffered = api(d, "POST", `/sandboxes/${SB}/exec`, { key, body: { cmd: ["sleep", "311"] } }).catch((e: Error) => ({ status: -1, json: { error: e.message } }));
  const ws = await wsOpen({ cmd: ["sleep", "312"] });
  const wsMsgs: string[] = [];
  ws.on("message", (m: Buffer, binary: boolean) => { if (!binary) wsMsgs.push(m.toString()); });
  const wsClosed = new Promise<number>((r) => ws.once("close", (code: number) => r(code)));
  const idle = new WebSocket(`${d.url.replace(/^http/, "ws")}/sandboxes/${SB}/exec/ws`, { headers: { Authorization: `Bearer ${key}` } });
  await new Promise((r) => idle.once("open", r));
  const idleClosed = new Promise<number>((r) => idle.once("close", (code: number) => r(code)));
  for (let i = 0; (await procs("sleep 31")).length < 3 || !ndText.includes("started"); i++) {
    assert.ok(i < 50, "the commands started");
    await sleep(100);
  }

  const t0 = Date.now();
  const code = await d.stop("SIGTERM");
  const exitMs = Date.now() - t0;
  peaks["SIGTERM exit (5 open streams)"] = `${exitMs} ms`;
  assert.equal(code, 0, d.output());
  assert.ok(exitMs < 5000, `exited in ${exitMs} ms`);
  await ndDone;
  assert.deepEqual(parseLines(ndText).at(-1), { type: "error", code: "daemon_stopping", message: "the daemon is stopping; the command was killed" });
  const b = await buffered;
  assert.equal(b.status, 503);
  assert.equal(b.json.code, "daemon_stopping");
  assert.equal(await wsClosed, 1001);
  assert.equal(JSON.parse(wsMsgs.at(-1)!).code, "daemon_stopping");
  assert.equal(await idleClosed, 1001);

  // A new daemon finds the sandbox running; the commands behind the streams were killed.
  d = await start();
  await waitForOutput(d, RECOVERED); // reattach runs in the background after the daemon listens
  assert.equal((await api(d, "GET", `/sandboxes/${SB}`, { key })).json.status, "running");
  for (let i = 0; ; i++) {
    const left = [...await procs("sleep 31"), ...await procs("cat /dev/zero")];
    if (left.length === 0) break;
    assert.ok(i < 30, `still running: ${left.join("; ")}`);
    await sleep(100);
  }
});
