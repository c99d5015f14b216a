// Each input that once crashed the daemon (or got a 5xx for bad input), as a
// fixed case against a real daemon and a real ns sandbox. The seeded fuzz
// (fuzz.test.ts) looks for the rest of the class.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";
import { IMAGES_DIR, sh } from "../testing/sandbox-api.js";
import { rawExchange, wsHandshake, wsFrame, type FrameSpec } from "../testing/raw-http.js";

let d: Daemon;
let key: string;
const SB = "hard";

before(async () => {
  d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  key = createUser(d.dataDir, "alice");
  const r = await api(d, "POST", "/sandboxes", { key, body: { name: SB } });
  assert.equal(r.status, 201, r.text);
});

after(async () => {
  if (!d) return;
  const live = d.proc.exitCode === null ? d : await startDaemon({ dataDir: d.dataDir, args: ["--engine", "ns"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  for (const sb of (await api(live, "GET", "/sandboxes", { key })).json ?? []) await api(live, "DELETE", `/sandboxes/${sb.id}`, { key });
  assert.equal(await live.stop(), 0);
  cleanup(d.dataDir);
});

const alive = () => assert.equal(d.proc.exitCode, null, `the daemon died:\n${d.output().slice(-2000)}`);
const raw = (s: string, ...rest: Buffer[]) => rawExchange(d.url, [Buffer.from(s, "latin1"), ...rest], 5000);
const body = (a: { head: string }) => a.head.slice(a.head.indexOf("\r\n\r\n") + 4);

test("upgrade requests with malformed targets get a 4xx on the raw socket, with or without a key", async () => {
  const cases: Array<[string, string, number]> = [
    ["//x:99999", "", 404], ["//x:99999", key, 404], ["/sandboxes/%zz/exec/ws", "", 400], ["/sandboxes/%zz/exec/ws", key, 400],
    ["/sandboxes/hard/exec/ws?x=%zz", key, 400], ["*", "", 400], ["http://x:99999/sandboxes/nosuch/exec/ws", key, 404], ["/sandboxes/nosuch/exec/ws", key, 404],
    ["/sandboxes/hard/exec/ws", "", 401], ["/sandboxes/hard/exec/ws?t=bht_x", "", 401],
  ];
  for (const [target, k, status] of cases) {
    const a = await raw(`GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${k ? `Authorization: Bearer ${k}\r\n` : ""}\r\n`);
    assert.equal(a.status, status, `${target}: ${a.head}`);
    assert.equal(typeof JSON.parse(body(a)).error, "string", target);
    alive();
  }
  // The same targets without Upgrade are 4xx too, not 500.
  for (const [target, status] of [["//x:99999", 404], ["/%zz", 400], ["/health?%zz", 400], ["/a\u00ffb", 400]] as const) {
    assert.equal((await raw(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`)).status, status, target);
  }
  // A reset right after the upgrade head (no one reads the reply) is survived.
  for (let i = 0; i < 20; i++) {
    await rawExchange(d.url, [Buffer.from("GET //x:99999 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")], 0);
  }
  assert.equal((await api(d, "GET", "/health")).status, 200);
});

test("every malformed WebSocket frame closes that socket (with the protocol's close code) and kills its command; the daemon lives", async () => {
  const frames: Array<[string, Buffer, number]> = [
    ["unmasked", wsFrame({ opcode: 2, payload: Buffer.from("x"), mask: false }), 1002],
    ["RSV bits", wsFrame({ opcode: 2, payload: Buffer.from("x"), rsv: 4 }), 1002],
    ["bad opcode", wsFrame({ opcode: 3, payload: Buffer.from("x") }), 1002],
    ["oversized control frame", wsFrame({ opcode: 9, payload: Buffer.alloc(200) }), 1002],
    ["invalid UTF-8 text", wsFrame({ opcode: 1, payload: Buffer.from([0x7b, 0xff, 0x7d]) }), 1007],
    ["2^63 length", wsFrame({ opcode: 2, declared: 1n << 63n }), 1009],
    ["length over maxPayload", wsFrame({ opcode: 2, declared: (1n << 20n) + 1n }), 1009],
    ["continuation without start", wsFrame({ opcode: 0, payload: Buffer.from("x") }), 1002],
    ["bad close code", wsFrame({ opcode: 8, payload: Buffer.from([0x03, 0xe7]) }), 1002],
  ];
  for (const [name, frame, code] of frames) {
    const u = await wsHandshake(d.url, `/sandboxes/${SB}/exec/ws`, { Authorization: `Bearer ${key}` });
    assert.equal(u.status, 101, name);
    const spec: FrameSpec = { opcode: 1, payload: Buffer.from(JSON.stringify({ cmd: ["/bin/sleep", "1002"] })) };
    let got = u.rest;
    u.socket.on("data", (b: Buffer) => { got = Buffer.concat([got, b]); });
    const closed = new Promise<void>((r) => u.socket.once("close", () => r()));
    u.socket.on("error", () => {});
    u.socket.write(wsFrame(spec));
    await new Promise((r) => setTimeout(r, 100)); // the command starts
    u.socket.write(frame);
    await closed; // the daemon cuts the socket (within about a second) without the client closing it
    const close = got.indexOf(Buffer.from([0x88]));
    assert.ok(close >= 0, `${name}: a close frame was sent`);
    assert.equal(got.readUInt16BE(close + 2), code, `${name}: close code`);
    alive();
  }
  await new Promise((r) => setTimeout(r, 300));
  const left = await sh(d, key, SB, "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep -c '^/bin/sleep 1002' || true");
  assert.equal(left.stdout.trim(), "0", "the commands of the broken sockets were killed");
});

test("a control message that is valid JSON but not an object (null, 1, []) is ignored, not a crash", async () => {
  for (const msg of ["null", "1", "[]", "\"s\""]) {
    const u = await wsHandshake(d.url, `/sandboxes/${SB}/exec/ws`, { Authorization: `Bearer ${key}` });
    u.socket.on("error", () => {});
    u.socket.write(wsFrame({ opcode: 1, payload: Buffer.from(JSON.stringify({ cmd: ["/bin/cat"] })) }));
    u.socket.write(wsFrame({ opcode: 1, payload: Buffer.from(msg) }));
    await new Promise((r) => setTimeout(r, 150));
    u.socket.destroy();
    alive();
  }
});

test("PUT of a large body to a path the sandbox user cannot write is a 403, not a crash", async () => {
  for (const size of [300 << 10, 8 << 20]) {
    const r = await api(d, "PUT", "/sandboxes/hard/files?path=/etc/shadow", { key, raw: Buffer.alloc(size) });
    assert.equal(r.status, 403, r.text);
    alive();
  }
  const ok = await api(d, "PUT", "/sandboxes/hard/files?path=/tmp/after", { key, raw: Buffer.alloc(600 << 10, 0x61) });
  assert.equal(ok.status, 200, "the agent connection still works after an early refusal");
});

test("a bad files path is a 400 naming the rule, before any agent call, on GET, HEAD and PUT", async () => {
  await sh(d, key, SB, "ln -s /tmp/l1 /tmp/l2; ln -s /tmp/l2 /tmp/l1");
  const cases: Array<[string, RegExp]> = [
    ["", /path query parameter is required/], ["relative", /path must be absolute/], ["/a%00b", /must not contain NUL/],
    ["/" + "a/".repeat(2100), /at most 4096 bytes/], ["/" + "a".repeat(256), /at most 255 bytes/], ["/%ff", /not UTF-8/], ["/%c3%28", /not UTF-8/], ["%zz", /malformed percent-encoding/],
    ["/tmp/l1/x", /ELOOP/],
  ];
  for (const [p, rule] of cases) {
    for (const method of ["GET", "HEAD", "PUT"]) {
      const r = await api(d, method, `/sandboxes/hard/files?path=${p}`, { key, ...(method === "PUT" ? { raw: "x" } : {}) });
      assert.equal(r.status, 400, `${method} ${p.slice(0, 40)}: ${r.text}`);
      if (method !== "HEAD") assert.match(r.json.error, rule, `${method} ${p.slice(0, 40)}`);
    }
  }
  // Normalised: `//` and `.` go, `..` is left to the kernel.
  assert.equal((await api(d, "PUT", "/sandboxes/hard/files?path=//tmp/./norm", { key, raw: "n" })).json.path, "/tmp/norm");
  assert.equal((await api(d, "GET", "/sandboxes/hard/files?path=/tmp/x/../norm", { key })).status, 404, "/tmp/x does not exist, so x/.. does not resolve");
});

test("a body over the limit is a 413 even when chunked (no declared length)", async () => {
  const a = await raw(`POST /secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n`, Buffer.alloc(0x200000, 0x61));
  assert.equal(a.status, 413, a.head);
  alive();
});
