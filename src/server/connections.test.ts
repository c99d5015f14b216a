// Daemon-wide connection limits against a real daemon: a flood of half-open,
// unauthenticated connections cannot lock an authenticated client out, the
// per-user cap answers 503 + Retry-After to the greedy user (WebSockets count
// too) while others are served, and a failed accept (EMFILE) is survived.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";
import { IMAGES_DIR } from "../testing/sandbox-api.js";
import { hostPort, wsHandshake } from "../testing/raw-http.js";

const MAX = 256;
const PER_USER = 8;
const AUTH_TIMEOUT_S = 2;

let d: Daemon;
let alice: string;
let bob: string;
let greedy: string;

before(async () => {
  d = await startDaemon({
    args: ["--engine", "ns", "--rate-limit", "0", "--max-connections", String(MAX), "--max-connections-per-user", String(PER_USER), "--auth-timeout", String(AUTH_TIMEOUT_S)],
    env: { BHATTI_IMAGES_DIR: IMAGES_DIR },
  });
  alice = createUser(d.dataDir, "alice");
  bob = createUser(d.dataDir, "bob");
  greedy = createUser(d.dataDir, "greedy");
  // On a connection of its own: fetch would keep one open in its pool, counting against greedy's cap.
  assert.equal((await fresh(greedy, "POST", "/sandboxes", JSON.stringify({ name: "g" }))).status, 201);
});

after(async () => {
  if (!d) return;
  const live = d.proc.exitCode === null ? d : await startDaemon({ dataDir: d.dataDir, args: ["--engine", "ns"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  for (const sb of (await api(live, "GET", "/sandboxes", { key: greedy })).json ?? []) await api(live, "DELETE", `/sandboxes/${sb.id}`, { key: greedy });
  assert.equal(await live.stop(), 0);
  cleanup(d.dataDir);
});

/** Soft and hard limits on open files of a process, from /proc. */
function fdLimits(pid: number | "self"): { soft: number; hard: number } {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"));
  const num = (v: string | undefined) => (v && v !== "unlimited" ? Number(v) : 1 << 20);
  return { soft: num(m?.[1]), hard: num(m?.[2]) };
}

/** One authenticated request on a connection of its own: status and milliseconds. */
function fresh(key: string, method: string, path: string, body?: string): Promise<{ status: number; ms: number }> {
  const { host, port } = hostPort(d.url);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method, agent: false, headers: { Authorization: `Bearer ${key}`, Connection: "close" }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

const freshGet = (key: string) => fresh(key, "GET", "/sandboxes");

/** A keep-alive connection that has made one authenticated request; resolves with its status. */
function keptConnection(key: string): Promise<{ socket: Socket; status: number; head: string }> {
  const { host, port } = hostPort(d.url);
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    let got = "";
    s.on("error", reject);
    s.on("data", (b: Buffer) => {
      got += b.toString("latin1");
      if (got.includes("\r\n\r\n")) resolve({ socket: s, status: Number(got.slice(9, 12)), head: got.split("\r\n\r\n")[0] });
    });
    s.write(`GET /sandboxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n\r\n`);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a flood of half-open unauthenticated connections does not lock out an authenticated client, and is closed after --auth-timeout", async (t) => {
  const n = Math.min(3000, fdLimits("self").soft - 500);
  assert.ok(n > MAX * 2, `the test needs more than ${MAX * 2} file descriptors (has ${n})`);
  const { host, port } = hostPort(d.url);
  const flood: Socket[] = [];
  let closedByDaemon = 0;
  const open = (i: number) => new Promise<void>((resolve) => {
    const s = connect(port, host);
    flood.push(s);
    s.on("error", () => {});
    s.once("close", () => { closedByDaemon++; resolve(); });
    s.on("connect", () => {
      // Half of them start a request and never finish it (slowloris), half send nothing.
      if (i % 2) s.write("GET /sandboxes HTTP/1.1\r\nHost: x\r\n");
      resolve();
    });
  });
  // Authenticated clients keep working while the flood is being opened...
  const during: number[] = [];
  let flooding = true;
  const client = (async () => {
    while (flooding) {
      const r = await freshGet(alice);
      assert.equal(r.status, 200);
      during.push(r.ms);
    }
  })();
  for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => open(i + k)));
  flooding = false;
  await client;
  // ...and after it, with the daemon full of half-open connections.
  const afterFlood: number[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await freshGet(i % 2 ? alice : bob);
    assert.equal(r.status, 200);
    afterFlood.push(r.ms);
  }
  const stillOpen = flood.filter((s) => !s.destroyed && !s.closed).length;
  t.diagnostic(`flood: ${n} connections, ${stillOpen} still open right after (cap ${MAX}), ${closedByDaemon} closed by the daemon`);
  t.diagnostic(`authenticated GETs during the flood: ${during.length}, max ${Math.max(...during).toFixed(0)} ms; after: 20, max ${Math.max(...afterFlood).toFixed(0)} ms`);
  assert.ok(during.length > 0, "requests were made during the flood");
  assert.ok(stillOpen <= MAX, `at most --max-connections (${MAX}) held (${stillOpen} open)`);
  assert.ok(Math.max(...during, ...afterFlood) < 3000, "every authenticated request was served promptly");

  // Whatever is left is closed once --auth-timeout has passed.
  const deadline = Date.now() + AUTH_TIMEOUT_S * 1000 + 3000;
  while (Date.now() < deadline && flood.some((s) => !s.closed)) await sleep(100);
  assert.equal(flood.filter((s) => !s.closed).length, 0, "every unauthenticated connection was closed by the daemon");
  assert.equal(d.proc.exitCode, null);
});

test("per-user cap: the greedy user's extra connection gets 503 with Retry-After (WebSockets count too); another user is served", async () => {
  const held: Socket[] = [];
  try {
    for (let i = 0; i < PER_USER - 1; i++) {
      const c = await keptConnection(greedy);
      assert.equal(c.status, 200);
      held.push(c.socket);
    }
    const ws = await wsHandshake(d.url, "/sandboxes/g/exec/ws", { Authorization: `Bearer ${greedy}` });
    assert.equal(ws.status, 101, "a WebSocket within the cap is accepted");
    held.push(ws.socket);

    const over = await keptConnection(greedy);
    assert.equal(over.status, 503, over.head);
    assert.match(over.head, /\r\nRetry-After: 1\r\n/i);
    assert.match(over.head, /\r\nConnection: close\r\n/i);
    held.push(over.socket);
    const overWs = await wsHandshake(d.url, "/sandboxes/g/exec/ws", { Authorization: `Bearer ${greedy}` });
    assert.equal(overWs.status, 503, "a WebSocket over the cap is refused");
    held.push(overWs.socket);

    const other = await freshGet(bob);
    assert.equal(other.status, 200, "another user is served");
    assert.equal((await keptConnection(bob)).status, 200);

    // The WebSocket's slot is freed when it closes.
    ws.socket.destroy();
    await sleep(200);
    const again = await freshGet(greedy);
    assert.equal(again.status, 200, "a freed slot is usable again");
  } finally {
    for (const s of held) s.destroy();
  }
});

// libuv absorbs most EMFILE accepts itself (it accepts and closes them with a
// reserved descriptor); whatever reaches node is an 'error' on the server,
// which the daemon logs instead of dying.
test("running out of file descriptors (EMFILE on accept) does not kill the daemon, which serves again once it has some", async (t) => {
  assert.equal(d.proc.exitCode, null, `the daemon is alive before the test:\n${d.output().slice(-3000)}`);
  const pid = d.proc.pid!;
  const original = fdLimits(pid);
  const inUse = spawnSync("ls", [`/proc/${pid}/fd`], { encoding: "utf8" }).stdout.split("\n").filter(Boolean).length;
  const low = inUse + 10;
  // Only the soft limit is lowered: raising a hard limit again needs CAP_SYS_RESOURCE.
  const set = (soft: number) => { const r = spawnSync("prlimit", ["--pid", String(pid), `--nofile=${soft}:${original.hard}`], { encoding: "utf8" }); assert.equal(r.status, 0, `prlimit: ${r.stderr}\ndaemon output:\n${d.output().slice(-3000)}`); };
  const socks: Socket[] = [];
  let cut = 0;
  let cutAtLimit = 0;
  set(low);
  try {
    const { host, port } = hostPort(d.url);
    await Promise.all(Array.from({ length: 100 }, () => new Promise<void>((resolve) => {
      const s = connect(port, host);
      socks.push(s);
      s.on("error", () => resolve());
      s.on("close", () => { cut++; resolve(); });
      s.on("connect", () => setTimeout(resolve, 200));
    })));
    // Long enough for the once-a-second status check to run out of descriptors too:
    // not being able to read /proc must not make a live sandbox "dead".
    await sleep(1500);
    assert.equal(d.proc.exitCode, null, `daemon alive after accepts failed with EMFILE:\n${d.output().slice(-2000)}`);
    cutAtLimit = cut;
    assert.ok(cutAtLimit > 0, "the descriptor limit was reached (connections were cut)");
  } finally {
    set(original.soft);
    for (const s of socks) s.destroy();
  }
  await sleep(200);
  assert.equal((await freshGet(alice)).status, 200);
  await sleep(1200); // a status check with descriptors again
  const g = await api(d, "GET", "/sandboxes/g", { key: greedy });
  assert.equal(g.json?.status, "running", `the sandbox survived the daemon's EMFILE:\n${d.output().slice(-2000)}`);
  t.diagnostic(`daemon fd limit lowered to ${low} (${inUse} in use): ${cutAtLimit} of 100 connections cut; limit restored to ${original.soft}`);
});
