// Flow control and file rules between the host client and the real lohar
// bundle (as root on the host, over a unix socket): an unread stream holds its
// command, not memory; cancel kills; FIFOs, devices and /proc are refused
// without stalling lohar.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { once } from "node:events";
import { join } from "node:path";
import { STREAM_WINDOW } from "../protocol/agent.js";
import { AgentError, type AgentClient } from "../engine/agent-client.js";
import { startLohar, config, run, type Lohar } from "./testkit.js";

let l: Lohar;
let c: AgentClient;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  l = await startLohar(config());
  c = await l.connect();
});
after(async () => {
  c?.close();
  await l?.stop();
});

function alive(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

test("an unread exec stream holds the command at the window; reading on delivers every byte intact", async () => {
  const total = 8 * 1024 * 1024;
  const file = join(l.dir, "payload.bin");
  execFileSync("/bin/sh", ["-c", `head -c ${total} /dev/urandom > ${file}`]);
  const want = createHash("sha256").update(readFileSync(file)).digest("hex");
  // The command reports how far it got on stderr, through a side file.
  const progress = join(l.dir, "progress");
  const e = c.exec({ cmd: ["/bin/sh", "-c", `cat ${file}; echo done > ${progress}`], cwd: "/" }, { manualAck: true });
  const parts: Buffer[] = [];
  let got = 0;
  e.on("stdout", (b: Buffer) => { parts.push(b); got += b.length; });
  await sleep(500);
  const held = got;
  await sleep(500);
  assert.equal(got, held, "nothing more arrives while nothing is acknowledged");
  assert.ok(held <= STREAM_WINDOW, `received ${held} bytes unacknowledged (window ${STREAM_WINDOW})`);
  assert.ok(held > 0);
  assert.throws(() => readFileSync(progress), /ENOENT/, "the command is blocked, not finished");
  // Acknowledge as we go: the rest flows, intact.
  e.on("stdout", (b: Buffer) => e.consumed(b.length));
  e.consumed(held);
  const exit = await e.done;
  assert.equal(exit.exit_code, 0);
  assert.equal(got, total);
  assert.equal(createHash("sha256").update(Buffer.concat(parts)).digest("hex"), want);
});

test("cancel kills the command's process group and still ends the stream with its exit", async () => {
  const e = c.exec({ cmd: ["/bin/sh", "-c", "sleep 300 & echo $!; cat /dev/zero"], cwd: "/" }, { manualAck: true });
  const first = await new Promise<Buffer>((r) => e.once("stdout", r));
  const bg = Number(first.toString().split("\n")[0]);
  assert.ok(bg > 0 && alive(bg));
  e.cancel();
  const exit = await e.done;
  assert.equal(exit.signal, "SIGKILL");
  for (let i = 0; alive(bg); i++) {
    assert.ok(i < 100, "the background child died with its group");
    await sleep(20);
  }
});

test("stdin: lohar takes no more than the window ahead of the command; write() says when to wait", async () => {
  const e = c.exec({ cmd: ["/bin/sh", "-c", "sleep 1; wc -c"], cwd: "/", stdin: true });
  const out: Buffer[] = [];
  e.on("stdout", (b: Buffer) => out.push(b));
  const chunk = Buffer.alloc(256 * 1024, 0x62);
  let accepted = 0;
  let sent = 0;
  while (e.write(chunk)) { accepted++; sent += chunk.length; }
  sent += chunk.length; // the one that was queued
  assert.ok(accepted * chunk.length <= STREAM_WINDOW + chunk.length, `accepted ${accepted} chunks before backpressure`);
  await new Promise((r) => e.once("drain", r)); // the command started reading
  for (let i = 0; i < 8; i++) {
    sent += chunk.length;
    if (!e.write(chunk)) await new Promise((r) => e.once("drain", r));
  }
  e.end();
  assert.equal((await e.done).exit_code, 0);
  assert.equal(Number(Buffer.concat(out).toString().trim()), sent);
});

test("a file read by a slow consumer stays within the window and arrives whole", async () => {
  const p = join(l.dir, "big-read.bin");
  execFileSync("/bin/sh", ["-c", `head -c ${6 * 1024 * 1024} /dev/urandom > ${p}; chmod 644 ${p}`]);
  const want = createHash("sha256").update(readFileSync(p)).digest("hex");
  const f = await c.openFile(p);
  assert.equal(f.stat?.size, 6 * 1024 * 1024);
  await sleep(400); // nobody reads
  assert.ok(f.pending > 0 && f.pending <= STREAM_WINDOW + 64 * 1024, `buffered ${f.pending}`);
  const h = createHash("sha256");
  for await (const b of f) h.update(b as Buffer);
  assert.equal(h.digest("hex"), want);
});

test("a file read whose consumer goes away is cancelled: lohar closes the file", async () => {
  const p = join(l.dir, "cancel-read.bin");
  execFileSync("/bin/sh", ["-c", `head -c ${4 * 1024 * 1024} /dev/zero > ${p}; chmod 644 ${p}`]);
  const holds = () => readdirSync(`/proc/${l.proc.pid}/fd`).some((fd) => {
    try { return readlinkSync(`/proc/${l.proc.pid}/fd/${fd}`) === p; } catch { return false; }
  });
  const f = await c.openFile(p);
  await sleep(100);
  assert.ok(holds(), "sanity: lohar holds the file open while the read is stalled");
  f.destroy();
  for (let i = 0; holds(); i++) {
    assert.ok(i < 50, "lohar still holds the file");
    await sleep(20);
  }
  assert.equal((await run(c, ["true"])).exit.exit_code, 0);
});

test("a FIFO is refused at once, and lohar keeps serving", async () => {
  const fifo = join(l.dir, "fifo");
  execFileSync("mkfifo", [fifo]);
  execFileSync("chmod", ["666", fifo]);
  const t0 = Date.now();
  await assert.rejects(c.readFile(fifo), (e: AgentError) => e.agentCode === "not_regular_file" && /is a FIFO; the files API reads only regular files/.test(e.message));
  assert.ok(Date.now() - t0 < 1000);
  const r = await run(c, ["echo", "still here"]);
  assert.equal(r.stdout.toString(), "still here\n");
});

test("devices, sockets and symlinks to them are refused; the target is what counts", async () => {
  const dir = join(l.dir, "links");
  mkdirSync(dir);
  symlinkSync("/dev/zero", join(dir, "zero"));
  const sock = join(dir, "sock");
  const server = createServer().listen(sock);
  await once(server, "listening");
  chmodSync(sock, 0o666);
  symlinkSync("/dev/fd/0", join(dir, "fd0")); // through a magic link to lohar's own stdin
  for (const p of ["/dev/zero", join(dir, "zero"), "/dev/null", sock, join(dir, "fd0")]) {
    await assert.rejects(c.readFile(p), (e: AgentError) => e.agentCode === "not_regular_file", p);
  }
  server.close();
});

test("nothing under /proc or /sys is served by any file call, directly or through a symlink", async () => {
  const dir = join(l.dir, "plinks");
  mkdirSync(dir);
  symlinkSync("/proc/self", join(dir, "self"));
  symlinkSync("/proc/self/environ", join(dir, "environ"));
  const forbidden = (e: AgentError) => e.agentCode === "forbidden_path" && /under \/proc and \/sys/.test(e.message);
  for (const p of ["/proc/self/environ", "/proc/self/mem", "/sys/kernel/uevent_seqnum", "/tmp/../proc/self/status", join(dir, "environ"), join(dir, "self", "environ")]) {
    await assert.rejects(c.readFile(p), forbidden, `read ${p}`);
  }
  for (const p of ["/proc", "/proc/self", "/sys", join(dir, "self", "status")]) await assert.rejects(c.stat(p), forbidden, `stat ${p}`);
  for (const p of ["/proc", "/proc/self/fd", "/sys/class", join(dir, "self")]) await assert.rejects(c.list(p), forbidden, `list ${p}`);
  await assert.rejects(c.writeFile("/proc/self/comm", Buffer.from("x")), forbidden);
  await assert.rejects(c.writeFile(join(dir, "self", "x"), Buffer.from("x")), forbidden);
  // The symlink itself is still a thing one can stat.
  assert.equal((await c.stat(join(dir, "self"))).type, "symlink");
});

test("an upload cancelled half way leaves no file and no temp file", async () => {
  const dir = join(l.dir, "up");
  mkdirSync(dir);
  execFileSync("chown", ["1000:1000", dir]);
  async function* source() {
    yield Buffer.alloc(1024 * 1024, 1);
    await sleep(100);
    throw new Error("client went away");
  }
  await assert.rejects(c.writeFile(join(dir, "f"), source()), /client went away/);
  await sleep(100);
  assert.deepEqual((await c.list(dir)).map((e) => e.name), []);
});
