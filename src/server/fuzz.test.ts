// Seeded fuzzing of the daemon's HTTP and WebSocket surfaces, against a real
// daemon and a real ns sandbox. The contract: the daemon never dies, answers
// GET /health after every batch, and answers bad input with 4xx, never a 5xx
// other than the documented 502 (sandbox agent failure) and 503 (limits).
// Reproduce a failure with BHATTI_FUZZ_SEED=<printed seed>; scale with
// BHATTI_FUZZ_HTTP / BHATTI_FUZZ_WS (case counts).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";
import { IMAGES_DIR, sh } from "../testing/sandbox-api.js";
import { Rng, seedFrom } from "../testing/rng.js";
import { rawExchange, wsHandshake, wsFrame, type FrameSpec } from "../testing/raw-http.js";

const SEED = seedFrom(process.env.BHATTI_FUZZ_SEED);
const HTTP_CASES = Number(process.env.BHATTI_FUZZ_HTTP ?? 3000);
const WS_CASES = Number(process.env.BHATTI_FUZZ_WS ?? 2000);
const PARALLEL = 16;
const BATCH = 250;
const SB = "fz";

let d: Daemon;
let alice: string;
let bob: string;

before(async () => {
  d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  alice = createUser(d.dataDir, "alice", ["--max-sandboxes", "2"]);
  bob = createUser(d.dataDir, "bob", ["--max-sandboxes", "1"]);
  const r = await api(d, "POST", "/sandboxes", { key: alice, body: { name: SB } });
  assert.equal(r.status, 201, r.text);
  await sh(d, alice, SB, "ln -s /tmp/loop1 /tmp/loop2; ln -s /tmp/loop2 /tmp/loop1; echo hi > /tmp/x");
});

after(async () => {
  if (!d) return;
  // Sandboxes outlive their daemon: if it died, a new one reattaches them so they can be deleted.
  const live = d.proc.exitCode === null ? d : await startDaemon({ dataDir: d.dataDir, args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  for (const k of [alice, bob]) {
    for (const sb of (await api(live, "GET", "/sandboxes", { key: k })).json ?? []) await api(live, "DELETE", `/sandboxes/${sb.id}`, { key: k });
  }
  assert.equal(await live.stop(), 0);
  cleanup(d.dataDir);
});

// ---------------------------------------------------------------- generators

const enc = (s: string) => Buffer.from(s, "latin1");

function param(r: Rng): string {
  if (r.chance(0.35)) return SB;
  return r.pick([
    () => SB, () => "nosuch", () => "%zz", () => "%", () => "%ff", () => "%c0%af", () => "%00", () => "..", () => "%2e%2e", () => ".",
    () => "a".repeat(r.int(200, 8000)), () => encodeURIComponent("ünï"), () => "%F0%9F%98%80", () => encodeURIComponent(r.ascii(r.int(1, 30))),
    () => "x:99999", () => "bht_" + r.ascii(8).replace(/[^a-z0-9]/gi, "x"), () => "%2F", () => "%ED%A0%80",
  ])();
}

function filePathValue(r: Rng): string {
  // No devices, FIFOs or /proc here: endless reads are another part of issue 7, not this test's subject.
  return r.pick([
    "/etc/passwd", "/etc/shadow", "/tmp/x", "/tmp/new", "/home/lohar/f", "relative", "", "/", "%00", "/a%00b", "/%ff", "/%c3%28",
    "/" + "a".repeat(300), "/" + "a/".repeat(2100), "/tmp/../etc/passwd", "/tmp/./x", "//tmp//x", "/tmp/x/", "/tmp/loop1", "/tmp/loop1/x",
    "/dev/null", "/etc", "/tmp", "%2Ftmp%2Fx", "/tmp/" + "%e2%82", "/home/lohar/" + encodeURIComponent("sp ace&=?#"), "/tmp/" + "b".repeat(255), "/tmp/" + "b".repeat(256),
  ]);
}

function query(r: Rng): string {
  const parts: string[] = [];
  for (let i = r.pick([0, 0, 1, 1, 2, 4]); i > 0; i--) {
    parts.push(r.pick([
      () => "path=" + filePathValue(r), () => "ls=" + r.pick(["true", "false", "1", "%zz", ""]), () => "mode=" + r.pick(["0644", "9999", "-1", "abc", "0o777", "", "07777", "17777"]),
      () => "%zz=1", () => "a=%", () => "", () => "=", () => "bht_x=1", () => "k=bht_" + r.ascii(6).replace(/[^a-z]/gi, "q"),
      () => encodeURIComponent(r.ascii(r.int(1, 10))) + "=" + encodeURIComponent(r.ascii(r.int(0, 10))), () => "x=" + "y".repeat(r.int(100, 6000)),
    ])());
  }
  return parts.length ? "?" + parts.join("&") : "";
}

const ROUTES = ["/health", "/secrets", "/secrets/:p", "/sandboxes", "/sandboxes/:p", "/sandboxes/:p/exec", "/sandboxes/:p/files",
  "/sandboxes/:p/files", "/sandboxes/:p/files", "/sandboxes/:p/exec/ws", "/templates", "/templates/:p"];

function target(r: Rng, method: string): string {
  if (r.chance(0.2)) {
    return r.pick([
      "//x:99999", "*", "http://x:99999/", "http://[::1/", "https://h/sandboxes?x=%zz", "?", "/?", "#", "/#x", "/%", "/%zz", "/\x7f", "/a b",
      "/\u00ff", "/" + "x".repeat(r.int(1000, 20000)), "", "//", "/./../../etc", "/sandboxes/%zz/exec/ws", "/health?%zz", "/health/../secrets",
      "/sandboxes/../health", "/sandboxes/" + SB + "/files?path=%zz", "/\r\nX: y", "/%0d%0aX:%20y",
    ]);
  }
  let t = r.pick(ROUTES).replace(":p", () => {
    const p = param(r);
    return method === "DELETE" && p === SB ? "nosuch" : p; // the fuzz never deletes the sandbox its WebSocket cases use
  });
  if (r.chance(0.1)) t += "/";
  if (t.endsWith("/files") && r.chance(0.6)) return t + "?path=" + r.pick(["/tmp/x", "/etc/passwd", "/home/lohar", "/tmp/w" + r.int(0, 9)]) + (r.chance(0.3) ? query(r).replace("?", "&") : "");
  return t + query(r);
}

function hostileValue(r: Rng, depth = 0): unknown {
  return r.pick<() => unknown>([
    () => null, () => true, () => r.int(-5, 5), () => r.pick([-1, 0, 1.5, 1e308, -1e308, 2 ** 53, 2 ** 31, 0.0001]),
    () => r.ascii(r.int(0, 40)), () => "a".repeat(r.int(1000, 70000)), () => "\u0000", () => "/etc/passwd", () => "\ud800",
    () => depth < 3 ? [hostileValue(r, depth + 1), hostileValue(r, depth + 1)] : [],
    () => depth < 3 ? { [r.ascii(r.int(1, 8))]: hostileValue(r, depth + 1), KEY: hostileValue(r, depth + 1) } : {},
  ])();
}

const CMDS = [["/bin/true"], ["/bin/echo", "x"], ["/bin/sh", "-c", "exit 3"], ["nonexistent-cmd"], ["/bin/cat"], [""], ["/bin/sh", "-c", "echo err >&2"]];

function jsonBody(r: Rng, path: string): unknown {
  const fields: Record<string, () => unknown> = {};
  if (path.startsWith("/secrets")) Object.assign(fields, { name: () => r.pick(["API_KEY", "", "a b", "x".repeat(300), hostileValue(r)]), value: () => r.pick(["v", "", hostileValue(r)]) });
  else if (/\/exec/.test(path)) Object.assign(fields, {
    cmd: () => r.chance(0.6) ? r.pick(CMDS) : hostileValue(r), cwd: () => r.pick(["/", "/tmp", "relative", "/nonexistent", hostileValue(r)]),
    timeout_sec: () => r.pick([1, 0, -1, 86401, 0.001, hostileValue(r)]), stdin: () => r.pick(["in", "", hostileValue(r)]), env: () => hostileValue(r),
  });
  else if (path.startsWith("/sandboxes")) Object.assign(fields, {
    name: () => r.pick(["s" + r.int(0, 9), "", "Bad Name", "x".repeat(100), hostileValue(r)]), cpus: () => r.pick([1, 0, 64, -1, hostileValue(r)]),
    memory_mb: () => r.pick([256, 0, 1e9, hostileValue(r)]), env: () => r.pick([{ A: "b" }, { "": "x" }, { "A=B": "c" }, hostileValue(r)]),
    secrets: () => r.pick([["API_KEY"], ["nosuch"], hostileValue(r)]), files: () => r.pick([[{ path: "/tmp/f", content: "aGk=" }], [{ path: "rel", content: "!!" }], hostileValue(r)]),
    template: () => hostileValue(r), engine: () => r.pick(["ns", "vm", "xx", hostileValue(r)]), init: () => hostileValue(r),
  });
  else Object.assign(fields, { name: () => hostileValue(r), secrets: () => hostileValue(r), env: () => hostileValue(r), cpus: () => hostileValue(r) });
  const o: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(fields)) if (r.chance(0.6)) o[k] = f();
  if (r.chance(0.1)) o[r.ascii(5)] = hostileValue(r);
  return o;
}

function body(r: Rng, method: string, path: string): Buffer | null {
  if ((method === "GET" || method === "HEAD") && !r.chance(0.1)) return null;
  return r.pick<() => Buffer>([
    () => Buffer.from(JSON.stringify(jsonBody(r, path))), () => Buffer.from(JSON.stringify(jsonBody(r, path))), () => Buffer.from(JSON.stringify(jsonBody(r, path))),
    () => Buffer.from(r.pick(["{", "}", "[]", "null", "1", "\"s\"", "{\"a\":}", "", " ", "{\"cmd\":[\"/bin/true\"]", "\u0000"])),
    () => Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from('"}')]),
    () => { const n = r.int(1000, 200000); return Buffer.from("[".repeat(n) + "]".repeat(n)); },
    () => { const n = r.int(1000, 50000); return Buffer.from('{"a":'.repeat(n) + "1" + "}".repeat(n)); },
    () => Buffer.alloc(r.pick([(1 << 20) + 1, 2 << 20]), 0x61),
    () => r.bytes(r.int(1, 4096)),
  ])();
}

interface HttpCase { chunks: Buffer[]; complete: boolean; label: string }

function httpCase(r: Rng): HttpCase {
  const method = r.chance(0.85) ? r.pick(["GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD", "HEAD"]) : r.pick(["OPTIONS", "PATCH", "CONNECT", "TRACE", "get", "G E T", "", "PRI", r.ascii(r.int(1, 20))]);
  const upgrade = r.chance(0.15);
  const t = upgrade && r.chance(0.5) ? `/sandboxes/${r.chance(0.5) ? SB : param(r)}/exec/ws${r.chance(0.3) ? query(r) : ""}` : target(r, method);
  const version = r.chance(0.9) ? "HTTP/1.1" : r.pick(["HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "", "HTTP/9.9", "http/1.1"]);
  const h: string[] = [];
  let complete = /^[A-Z]+$/.test(method) && version.startsWith("HTTP/1.");
  if (r.chance(0.95)) h.push("Host: localhost");
  const auth = r.next();
  if (auth < 0.55) h.push(`Authorization: Bearer ${alice}`);
  else if (auth < 0.7) h.push(`Authorization: Bearer ${bob}`);
  else if (auth < 0.85) h.push(r.pick(["Authorization: Bearer", "Authorization: Bearer ", "Authorization: Basic eDp5", "Authorization: Bearer bht_" + r.ascii(40).replace(/[^a-z0-9]/gi, "z"),
    `Authorization: Bearer ${alice} extra`, `Authorization: Bearer ${alice}\r\nAuthorization: Bearer ${bob}`, "Authorization: " + "B".repeat(9000)]));
  if (upgrade) {
    h.push("Connection: Upgrade", r.pick(["Upgrade: websocket", "Upgrade: h2c", "Upgrade: websocket, foo"]));
    if (r.chance(0.7)) h.push("Sec-WebSocket-Key: " + r.pick(["dGhlIHNhbXBsZSBub25jZQ==", "short", "", "!!!!"]));
    if (r.chance(0.7)) h.push("Sec-WebSocket-Version: " + r.pick(["13", "8", "x", ""]));
  } else if (r.chance(0.1)) h.push(r.pick(["Connection: close", "Connection: keep-alive", "Accept: application/x-ndjson", "Expect: 100-continue", "Content-Type: text/plain"]));
  if (r.chance(0.05)) h.push("X-Big: " + "h".repeat(r.int(8000, 24000)));
  if (r.chance(0.03)) for (let i = 0; i < 150; i++) h.push(`X-${i}: ${i}`);
  if (r.chance(0.03)) { h.push(r.pick(["Bad Header: x", "X:\u0001", "X: a\r\n folded", ": empty", "X-\u00ff: y"])); complete = false; }
  const path = t.split("?")[0];
  const b = body(r, method, path);
  let tail: Buffer[] = [];
  if (b) {
    const framing = r.next();
    if (framing < 0.75) { h.push(`Content-Length: ${b.length}`); tail = [b]; }
    else if (framing < 0.85) { h.push("Transfer-Encoding: chunked"); tail = [Buffer.from(b.length.toString(16) + "\r\n"), b, Buffer.from("\r\n0\r\n\r\n")]; }
    else {
      complete = false;
      const bad = r.pick<[string[], Buffer[]]>([
        [["Content-Length: -1"], [b]], [["Content-Length: abc"], [b]], [["Content-Length: 1e3"], [b]], [["Content-Length: 99999999999999999999"], [b]],
        [[`Content-Length: ${b.length}`, `Content-Length: ${b.length + 1}`], [b]], [[`Content-Length: ${b.length + 10}`], [b]],
        [["Transfer-Encoding: chunked"], [Buffer.from("zz\r\n"), b]], [["Transfer-Encoding: chunked"], [Buffer.from("ffffffffffffffffff\r\n"), b]],
        [["Transfer-Encoding: chunked"], [Buffer.from("-1\r\n"), b]], [["Transfer-Encoding: chunked", `Content-Length: ${b.length}`], [Buffer.from("5\r\nab")]],
        [["Transfer-Encoding: chunked, gzip"], [b]], [["Transfer-Encoding: chunked"], [Buffer.from("3\r\nabcdef\r\n0\r\n\r\n")]],
      ]);
      h.push(...bad[0]);
      tail = bad[1];
    }
  }
  const head = `${method} ${t} ${version}\r\n${h.join("\r\n")}\r\n\r\n`;
  return { chunks: [enc(head), ...tail], complete, label: `${method} ${t.slice(0, 80)}${t.length > 80 ? "…" : ""} ${version} [${h.map((x) => x.split(":")[0]).join(",")}]` };
}

const BAD_UTF8 = [Buffer.from([0xff]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe2, 0x82]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80])];

function frame(r: Rng): { spec: FrameSpec | Buffer; name: string } {
  const small = () => r.bytes(r.int(0, 100));
  const cases: Array<() => { spec: FrameSpec | Buffer; name: string }> = [
    () => ({ spec: { opcode: r.pick([1, 2]), payload: small(), mask: false }, name: "unmasked" }),
    () => ({ spec: { opcode: r.pick([1, 2, 9]), payload: small(), rsv: r.int(1, 7) }, name: "rsv" }),
    () => ({ spec: { opcode: r.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), payload: small() }, name: "bad opcode" }),
    () => ({ spec: { opcode: r.pick([8, 9, 10]), payload: r.bytes(r.int(126, 400)) }, name: "oversized control" }),
    () => ({ spec: { opcode: 9, fin: false, payload: small() }, name: "fragmented control" }),
    () => ({ spec: { opcode: 1, payload: Buffer.concat([Buffer.from('{"cmd":"'), r.pick(BAD_UTF8), Buffer.from('"}')]) }, name: "bad utf8 text" }),
    () => ({ spec: { opcode: r.pick([1, 2]), declared: 1n << 63n, payload: small() }, name: "2^63 length" }),
    () => ({ spec: { opcode: r.pick([1, 2]), declared: r.pick([(1n << 20n) + 1n, 1n << 40n, (1n << 53n) + 1n, (1n << 64n) - 1n]), payload: small() }, name: "huge length" }),
    () => ({ spec: { opcode: 0, payload: small() }, name: "continuation without start" }),
    () => ({ spec: { opcode: 8, payload: r.pick([Buffer.from([0x03]), Buffer.from([0x03, 0xe7]), Buffer.from([0x03, 0xed]), Buffer.from([0x13, 0x88]), Buffer.from([0, 0]), Buffer.concat([Buffer.from([0x03, 0xe8]), r.pick(BAD_UTF8)])]) }, name: "bad close" }),
    () => ({ spec: r.bytes(r.int(1, 64)), name: "random bytes" }),
    () => ({ spec: Buffer.concat([wsFrame({ opcode: 2, declared: 100n }).subarray(0, 14), r.bytes(10)]), name: "truncated" }),
    () => ({ spec: { opcode: 1, fin: false, payload: Buffer.from([0xe2, 0x82]) }, name: "fragment, then garbage" }),
    () => ({ spec: { opcode: 2, payload: r.bytes(r.int(0, 2000)) }, name: "stdin" }),
    () => ({ spec: { opcode: 9, payload: small().subarray(0, 20) }, name: "ping" }),
    () => ({ spec: { opcode: 1, payload: Buffer.from(r.pick(['{"type":"eof"}', '{"type":"resize","rows":-1,"cols":1e9}', '{"type":"resize","rows":50,"cols":80}',
      '{"type":"signal","signal":"SIGKILL"}', '{"type":"signal","signal":"SIGSEGV"}', "not json", "[]", "null", '{"type":' + "[".repeat(5000)])) }, name: "control json" }),
  ];
  return r.pick(cases)();
}

function wsSpec(r: Rng): Buffer | null {
  if (r.chance(0.4)) return null;
  const spec = r.chance(0.8)
    ? { cmd: r.pick([["/bin/cat"], ["/bin/sleep", "1001"], ["/bin/sh", "-c", "exit 0"]]), tty: r.chance(0.2), ...(r.chance(0.2) ? { rows: r.pick([0, -1, 1e9, 24]), cols: r.pick([0, 1e9, 80]) } : {}) }
    : r.pick<unknown>([{ cmd: "x" }, { cmd: [] }, { cmd: ["/bin/true"], env: { "A=B": "c" } }, { cmd: ["/bin/true"], env: "x" }, { cmd: ["/bin/true"], cwd: 5 }, [1], "s"]);
  return wsFrame({ opcode: 1, payload: Buffer.from(JSON.stringify(spec)) });
}

// ---------------------------------------------------------------- the run

interface Tally { cases: number; frames: number; statuses: Map<string, number>; bad5xx: string[]; noAnswer: number }

const newTally = (): Tally => ({ cases: 0, frames: 0, statuses: new Map(), bad5xx: [], noAnswer: 0 });

function count(t: Tally, status: number | null, label: string): void {
  const k = status === null ? "none" : String(status);
  t.statuses.set(k, (t.statuses.get(k) ?? 0) + 1);
  if (status !== null && status >= 500 && status !== 502 && status !== 503) t.bad5xx.push(`${status} ${label}`);
}

async function healthy(what: string): Promise<void> {
  assert.equal(d.proc.exitCode, null, `daemon died during ${what}:\n${d.output().slice(-3000)}`);
  const h = await api(d, "GET", "/health");
  assert.equal(h.status, 200, `GET /health after ${what}`);
}

/** Runs `n` cases `PARALLEL` at a time; the daemon's health is checked after each batch. */
async function run(n: number, name: string, one: (i: number) => Promise<void>): Promise<void> {
  for (let start = 0; start < n; start += BATCH) {
    const end = Math.min(n, start + BATCH);
    let next = start;
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next < end) await one(next++);
    }));
    await healthy(`${name} cases ${start}..${end - 1} (seed ${SEED})`);
  }
}

const summary = (t: Tally) => [...t.statuses.entries()].sort().map(([k, v]) => `${k}:${v}`).join(" ");

test(`fuzz: ${HTTP_CASES} HTTP requests and ${WS_CASES} WebSocket frame cases never crash the daemon nor give a 5xx other than 502/503 (seed ${SEED})`, async (t) => {
  t.diagnostic(`BHATTI_FUZZ_SEED=${SEED}`);
  const http = newTally();
  // Each case draws from its own generator so that a case reproduces alone from (seed, index).
  await run(HTTP_CASES, "HTTP", async (i) => {
    const c = httpCase(new Rng(SEED ^ i));
    const a = await rawExchange(d.url, c.chunks, c.complete ? 5000 : 300);
    http.cases++;
    if (a.status === null) http.noAnswer++;
    count(http, a.status, `#${i} ${c.label}`);
  });

  const ws = newTally();
  let upgraded = 0;
  await run(WS_CASES, "WebSocket", async (i) => {
    const r = new Rng((SEED ^ 0x5eed) + i);
    const u = await wsHandshake(d.url, `/sandboxes/${SB}/exec/ws`, { Authorization: `Bearer ${alice}` });
    ws.cases++;
    count(ws, u.status, `#${i} handshake`);
    if (u.status !== 101) { u.socket.destroy(); return; }
    upgraded++;
    const names: string[] = [];
    const closed = new Promise<void>((res) => { u.socket.on("close", () => res()); u.socket.on("error", () => res()); });
    u.socket.on("data", () => {});
    const spec = wsSpec(r);
    if (spec) { u.socket.write(spec); ws.frames++; names.push("spec"); }
    for (let k = r.int(1, 3); k > 0 && !u.socket.destroyed; k--) {
      const f = frame(r);
      u.socket.write(Buffer.isBuffer(f.spec) ? f.spec : wsFrame(f.spec));
      ws.frames++;
      names.push(f.name);
    }
    await Promise.race([closed, new Promise((res) => setTimeout(res, 150))]);
    u.socket.destroy();
  });

  // Every command of a broken or abandoned socket was killed.
  await new Promise((res) => setTimeout(res, 1500));
  const left = await sh(d, alice, SB, "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep -c -e '^/bin/sleep 1001' -e '^/bin/cat' || true");
  assert.equal(left.stdout.trim(), "0", "no exec of a closed WebSocket is left running");

  const crashes = d.proc.exitCode === null ? 0 : 1;
  const fivexx = (tl: Tally) => [...tl.statuses.entries()].filter(([k]) => /^5/.test(k)).reduce((s, [, v]) => s + v, 0);
  t.diagnostic(`HTTP: ${http.cases} requests, statuses ${summary(http)}, 5xx ${fivexx(http)} (undocumented ${http.bad5xx.length})`);
  t.diagnostic(`WebSocket: ${ws.cases} connections (${upgraded} upgraded), ${ws.frames} frames, handshake statuses ${summary(ws)}`);
  t.diagnostic(`crashes: ${crashes}`);
  assert.deepEqual(http.bad5xx.slice(0, 20), [], `undocumented 5xx answers (seed ${SEED})`);
  assert.deepEqual(ws.bad5xx.slice(0, 20), [], `undocumented 5xx answers on upgrade (seed ${SEED})`);
  assert.doesNotMatch(d.output(), /internal error|ws upgrade error/, "no handler failed in an unexpected way (even where nobody saw the answer)");
  assert.ok(upgraded > WS_CASES * 0.9, `most WebSocket cases reached the frame stage (${upgraded}/${WS_CASES})`);
  assert.ok((http.statuses.get("400") ?? 0) > HTTP_CASES * 0.1, "a real share of requests is rejected as bad input");
  assert.ok((http.statuses.get("200") ?? 0) + (http.statuses.get("201") ?? 0) > HTTP_CASES * 0.03, "a real share of requests reaches a handler and succeeds");

  // And the exec socket still works normally.
  const u = await wsHandshake(d.url, `/sandboxes/${SB}/exec/ws`, { Authorization: `Bearer ${alice}` });
  assert.equal(u.status, 101);
  u.socket.destroy();
  const e = await sh(d, alice, SB, "echo ok");
  assert.equal(e.stdout, "ok\n");
});
