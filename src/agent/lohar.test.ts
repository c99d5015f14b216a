// lohar, end to end: the real bundle, real processes, real sockets, as root on the host.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { readFileSync, writeFileSync, statSync, existsSync, mkdirSync, readdirSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { encodeControl, encodeFrame, FrameKind, FrameDecoder, GUEST } from "../protocol/agent.js";
import type { AgentClient } from "../engine/agent-client.js";
import { startLohar, config, run, type Lohar } from "./testkit.js";

const SECRET = "s3cret-value-" + Math.random().toString(36).slice(2);
const MARKER = "host-marker-" + Math.random().toString(36).slice(2);
const cfg = config({
  env: { API_KEY: SECRET, SHARED: "from-config", TERM: "vt100" },
  files: [{ path: "", content: Buffer.from("file body\n").toString("base64"), mode: 0o640 }],
});
let l: Lohar;
let c: AgentClient;

before(async () => {
  // The config file goes into the test dir, which only exists once lohar starts: use a fixed temp path.
  const filesDir = `/tmp/lohar-test-files-${process.pid}`;
  cfg.files[0].path = join(filesDir, "deep", "er", "note.txt");
  // lohar gets the whole host environment plus a marker: none of it may reach a command.
  l = await startLohar(cfg, { env: { ...process.env, BHATTI_TEST_MARKER: MARKER } });
  c = await l.connect();
});

after(async () => {
  c?.close();
  await l?.stop();
  execFileSync("rm", ["-rf", `/tmp/lohar-test-files-${process.pid}`]);
});

test("hello reports the sandbox and a consumed config", () => {
  assert.equal(c.hello.type, "hello");
  assert.equal(c.hello.sandbox_id, cfg.sandbox_id);
  assert.equal(c.hello.hostname, cfg.hostname);
  assert.equal(c.hello.config, "consumed");
  assert.ok(typeof c.hello.boot_ms === "number" && c.hello.boot_ms > 0);
});

test("a wrong token is refused and closes the session", async () => {
  await assert.rejects(l.connect("wrong-token"), /authentication failed/);
  await assert.rejects(l.connect(""), /authentication failed/);
});

test("nothing is served before AUTH", async () => {
  const proof = join(l.dir, "pre-auth-ran");
  const sock = connect(l.socket);
  await new Promise((r) => sock.once("connect", r));
  const got: Buffer[] = [];
  sock.on("data", (d: Buffer) => got.push(d));
  sock.write(encodeControl(1, { type: "exec", cmd: ["touch", proof] }));
  await new Promise((r) => sock.once("close", r));
  const frames = new FrameDecoder().push(Buffer.concat(got));
  assert.equal(frames.length, 1);
  assert.equal(frames[0].stream, 0);
  assert.match(frames[0].payload.toString(), /"type":"error".*authentication failed/);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(existsSync(proof), false);
});

test("a second valid AUTH on a live session starts a new session (a host that reconnected faster than it was seen to leave)", async () => {
  const sock = connect(l.socket);
  await new Promise((r) => sock.once("connect", r));
  const got: Buffer[] = [];
  sock.on("data", (d: Buffer) => got.push(d));
  const auth = encodeFrame(FrameKind.Auth, 0, cfg.token);
  sock.write(auth);
  sock.write(encodeControl(1, { type: "exec", cmd: ["/bin/sleep", "5"] }));
  await new Promise((r) => setTimeout(r, 200));
  sock.write(auth);
  sock.write(encodeControl(1, { type: "exec", cmd: ["/bin/sh", "-c", "echo again"] }));
  await new Promise((r) => setTimeout(r, 500));
  sock.destroy();
  const frames = new FrameDecoder().push(Buffer.concat(got));
  const hellos = frames.filter((f) => f.kind === FrameKind.Control && f.stream === 0 && f.payload.toString().includes('"hello"'));
  assert.equal(hellos.length, 2, "hello for each AUTH");
  assert.ok(frames.some((f) => f.kind === FrameKind.Stdout && f.stream === 1 && f.payload.toString() === "again\n"), "stream 1 is usable again in the new session");
});

test("env is exactly defaults < config env < request env, nothing from the host", async () => {
  const r = await run(c, ["/usr/bin/env"], { env: { SHARED: "from-request", EXTRA: "x" } });
  const env = Object.fromEntries(r.stdout.toString().trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  delete env.PWD; // some tools add it; /usr/bin/env does not, but be explicit about what we check
  assert.deepEqual(env, {
    PATH: GUEST.defaultEnv.PATH,
    HOME: GUEST.defaultEnv.HOME,
    LANG: GUEST.defaultEnv.LANG,
    TERM: "vt100",
    API_KEY: SECRET,
    SHARED: "from-request",
    EXTRA: "x",
  });
  assert.ok(!r.stdout.toString().includes(MARKER));
});

test("lohar's own environment never holds a config env value", () => {
  const environ = readFileSync(`/proc/${l.proc.pid}/environ`);
  assert.ok(environ.includes(MARKER), "sanity: lohar got the host env with the marker");
  assert.ok(!environ.includes(SECRET));
  assert.ok(!l.stderr().includes(SECRET));
});

test("commands run as uid/gid 1000 in their own session and process group", async () => {
  const r = await run(c, ["/bin/sh", "-c", "id -u; id -g; id -G; cat /proc/$$/stat; echo $$"]);
  const [uid, gid, groups, stat, pid] = r.stdout.toString().trim().split("\n");
  assert.equal(uid, "1000");
  assert.equal(gid, "1000");
  assert.equal(groups, "1000");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  assert.equal(fields[2], pid, "pgid = pid");
  assert.equal(fields[3], pid, "sid = pid");
});

test("stdout is binary-safe and stderr separate", async () => {
  const all = Buffer.alloc(256 * 300);
  for (let i = 0; i < all.length; i++) all[i] = i % 256;
  const f = join(l.dir, "bytes.bin");
  writeFileSync(f, all);
  const r = await run(c, ["/bin/sh", "-c", `cat ${f}; echo to-stderr >&2`]);
  assert.ok(r.stdout.equals(all));
  assert.equal(r.stderr.toString(), "to-stderr\n");
});

test("exit codes and 128+signal", async () => {
  assert.deepEqual((await run(c, ["/bin/sh", "-c", "exit 7"])).exit, { type: "exit", exit_code: 7 });
  const k = await run(c, ["/bin/sh", "-c", "kill -TERM $$; sleep 5"]);
  assert.equal(k.exit.exit_code, 143);
  assert.equal(k.exit.signal, "SIGTERM");
});

test("signal messages reach the process group", async () => {
  const e = c.exec({ cmd: ["/bin/sh", "-c", "sleep 30 & wait"], cwd: "/" });
  setTimeout(() => e.signal("SIGINT"), 150);
  const exit = await e.done;
  assert.equal(exit.exit_code, 130);
});

test("timeout kills the whole process group, grandchildren included", async () => {
  const t0 = Date.now();
  const r = await run(c, ["/bin/sh", "-c", "sleep 300 & echo $!; sleep 300"], { timeout_ms: 300 });
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(r.exit.timed_out, true);
  assert.equal(r.exit.exit_code, 137);
  assert.equal(r.exit.signal, "SIGKILL");
  const grandchild = Number(r.stdout.toString().trim());
  assert.ok(grandchild > 0);
  for (let i = 0; ; i++) {
    let state = "";
    try {
      const s = readFileSync(`/proc/${grandchild}/stat`, "utf8");
      state = s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3);
    } catch {
      break; // gone
    }
    if (state === "Z") break; // dead, waiting for its new parent to reap it
    assert.ok(i < 100, `grandchild ${grandchild} still alive (state ${state})`);
    await new Promise((r) => setTimeout(r, 20));
  }
});

test("stdin streams in and eof closes it; without stdin it is /dev/null", async () => {
  const e = c.exec({ cmd: ["/bin/sh", "-c", "wc -c; echo done"], cwd: "/", stdin: true });
  const out: Buffer[] = [];
  e.on("stdout", (d: Buffer) => out.push(d));
  const chunk = Buffer.alloc(100_000, 0x61);
  for (let i = 0; i < 10; i++) e.write(chunk);
  e.end();
  assert.equal((await e.done).exit_code, 0);
  assert.equal(Buffer.concat(out).toString().replace(/ /g, ""), "1000000\ndone\n");
  const n = await run(c, ["/bin/sh", "-c", "cat; echo ok"]);
  assert.equal(n.stdout.toString(), "ok\n");
});

test("spawn failures name the command and errno, never env values", async () => {
  // A command that does not exist: exit 127 (as in a shell), the reason on stderr.
  const nf = await run(c, ["/no/such/cmd", SECRET]);
  assert.equal(nf.exit.exit_code, 127);
  assert.match(nf.stderr.toString(), /\/no\/such\/cmd.*command not found.*ENOENT/);
  assert.ok(!nf.stderr.toString().includes(SECRET));
  await assert.rejects(c.exec({ cmd: ["true"], env: { BAD: "a\0b" + SECRET } }).done, (e: Error) => !e.message.includes(SECRET) && /BAD/.test(e.message));
  await assert.rejects(c.exec({ cmd: ["true"], cwd: "/no/such/dir" }).done, /ENOENT/);
  await assert.rejects(c.exec({ cmd: [] }).done, /cmd/);
});

test("config files are written with mode and owner 1000, new parents owned by 1000", () => {
  const p = cfg.files[0].path;
  assert.equal(readFileSync(p, "utf8"), "file body\n");
  const st = statSync(p);
  assert.equal(st.mode & 0o7777, 0o640);
  assert.equal(st.uid, 1000);
  assert.equal(st.gid, 1000);
  for (const d of [join(p, ".."), join(p, "..", "..")]) assert.equal(statSync(d).uid, 1000);
});

test("file write/read/stat/list as uid 1000, atomically", async () => {
  const dir = join(l.dir, "files");
  mkdirSync(dir);
  execFileSync("chown", ["1000:1000", dir]);
  const data = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  const p = join(dir, "big.bin");
  await c.writeFile(p, data, 0o600);
  assert.ok((await c.readFile(p)).equals(data));
  const st = await c.stat(p);
  assert.deepEqual([st.name, st.type, st.size, st.mode, st.uid, st.gid], ["big.bin", "file", data.length, 0o600, 1000, 1000]);
  await c.writeFile(p, Buffer.from("small")); // replace; default mode 0644
  assert.equal((await c.readFile(p)).toString(), "small");
  assert.equal((await c.stat(p)).mode, 0o644);
  await c.writeFile(join(dir, "empty"), Buffer.alloc(0));
  assert.equal((await c.readFile(join(dir, "empty"))).length, 0);
  const names = (await c.list(dir)).map((e) => `${e.name}:${e.type}`);
  assert.deepEqual(names, ["big.bin:file", "empty:file"]); // no temp files left behind
  assert.deepEqual(readdirSync(dir).sort(), ["big.bin", "empty"]);
  assert.equal((await c.stat(dir)).type, "dir");
});

test("file calls enforce uid 1000's permissions and report not found", async () => {
  const secret = join(l.dir, "root-only");
  writeFileSync(secret, "root data");
  chmodSync(secret, 0o600); // owned by root
  await assert.rejects(c.readFile(secret), /permission denied/);
  const rootDir = join(l.dir, "rootdir");
  mkdirSync(rootDir, { mode: 0o755 });
  await assert.rejects(c.writeFile(join(rootDir, "x"), Buffer.from("x")), /permission denied/);
  assert.deepEqual(readdirSync(rootDir), []);
  await assert.rejects(c.stat(join(l.dir, "nope")), /not found/);
  await assert.rejects(c.list(join(l.dir, "nope")), /not found/);
  await assert.rejects(c.readFile(l.dir), /is a directory/);
  await assert.rejects(c.readFile("relative/path"), /absolute/);
  await assert.rejects(c.readFile("/etc/shadow"), /permission denied/);
});

test("many concurrent execs on one connection, and a second session", async () => {
  const c2 = await l.connect();
  try {
    const runs = Array.from({ length: 20 }, (_, i) => run(i % 2 ? c : c2, ["/bin/sh", "-c", `echo out-${i}; echo err-${i} >&2; exit ${i}`]));
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      assert.equal(r.stdout.toString(), `out-${i}\n`);
      assert.equal(r.stderr.toString(), `err-${i}\n`);
      assert.equal(r.exit.exit_code, i);
    });
    await c2.ping();
  } finally {
    c2.close();
  }
  await c.ping(); // the first session is unaffected by the second closing
});

test("a command outlives a dropped session", async () => {
  const c3 = await l.connect();
  const flag = join(l.dir, "survivor");
  c3.exec({ cmd: ["/bin/sh", "-c", `sleep 0.3; touch ${flag}`], cwd: "/" });
  await new Promise((r) => setTimeout(r, 50));
  c3.close();
  for (let i = 0; i < 100 && !existsSync(flag); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(existsSync(flag));
});

test("the socket is 0600", () => {
  assert.equal(statSync(l.socket).mode & 0o777, 0o600);
});

test("frames for unknown streams and garbage stream reuse do not break the session", async () => {
  const sock = connect(l.socket);
  await new Promise((r) => sock.once("connect", r));
  const dec = new FrameDecoder();
  const frames: ReturnType<FrameDecoder["push"]> = [];
  sock.on("data", (d: Buffer) => frames.push(...dec.push(d)));
  sock.write(encodeFrame(FrameKind.Auth, 0, cfg.token));
  sock.write(encodeFrame(FrameKind.Stdin, 99, "ignored"));
  sock.write(encodeControl(98, { type: "eof" }));
  sock.write(encodeFrame(FrameKind.Control, 7, "not json"));
  sock.write(encodeControl(8, { type: "ping" }));
  for (let i = 0; i < 100 && frames.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  sock.destroy();
  assert.deepEqual(frames.map((f) => [f.stream, JSON.parse(f.payload.toString()).type]), [[0, "hello"], [7, "error"], [8, "pong"]]);
});

test("tty: the command runs on a pseudo-terminal of the requested size", async () => {
  // Needs `script` (util-linux) — present on this host; the busybox guest image lacks it
  // and lohar then answers "tty not supported".
  const r = await run(c, ["/bin/sh", "-c", "tty; stty size"], { tty: true, rows: 33, cols: 101 });
  const out = r.stdout.toString().replace(/\r/g, "");
  assert.match(out, /^\/dev\/pts\/\d+\n33 101\n$/);
  assert.equal(r.exit.exit_code, 0);
  assert.equal((await run(c, ["/bin/sh", "-c", "exit 5"], { tty: true })).exit.exit_code, 5);
});
