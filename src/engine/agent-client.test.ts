// AgentClient against the real lohar bundle, plus scripted fake agents for
// the failure modes a real lohar will not produce on demand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentClient } from "./agent-client.js";
import { encodeControl, encodeFrame, FrameDecoder, FrameKind, PROTOCOL_VERSION, STREAM_WINDOW } from "../protocol/agent.js";
import { startLohar, config, run } from "../agent/testkit.js";

async function fakeAgent(onConn: (s: Socket) => void): Promise<{ server: Server; path: string; done: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), "agent-client-"));
  const path = join(dir, "s.sock");
  const server = createServer(onConn);
  await new Promise<void>((r) => server.listen(path, r));
  return { server, path, done: () => { server.close(); rmSync(dir, { recursive: true, force: true }); } };
}

const hello = encodeControl(0, { type: "hello", version: PROTOCOL_VERSION, sandbox_id: "fake", hostname: "fake", config: "consumed" });

test("open rejects when the agent never answers, and closes the stream", async () => {
  let peer: Socket | undefined;
  const f = await fakeAgent((s) => (peer = s));
  try {
    const sock = connect(f.path);
    const t0 = Date.now();
    await assert.rejects(AgentClient.open(sock, "t", 200), /hello within 200 ms/);
    assert.ok(Date.now() - t0 < 1000);
    assert.ok(sock.destroyed);
    assert.ok(peer);
  } finally {
    f.done();
  }
});

test("open rejects when the connection drops before hello", async () => {
  const f = await fakeAgent((s) => s.destroy());
  try {
    await assert.rejects(AgentClient.open(connect(f.path), "t", 2000), /agent connection (closed|failed)/);
  } finally {
    f.done();
  }
});

test("leftover bytes before hello (an earlier session's output) are skipped", async () => {
  const f = await fakeAgent((s) => {
    const dec = new FrameDecoder();
    // Half a stale stdout frame and junk, as a virtio port can hold from a previous host.
    s.write(encodeFrame(FrameKind.Stdout, 5, Buffer.alloc(1000, 1)).subarray(0, 300));
    s.on("data", (d: Buffer) => {
      for (const fr of dec.push(d)) {
        if (fr.kind === FrameKind.Auth) {
          assert.equal(fr.payload.toString(), "tok");
          s.write(Buffer.concat([hello, encodeControl(3, { type: "pong" })]).subarray(0, hello.length + 2));
          setTimeout(() => s.write(Buffer.concat([hello, encodeControl(3, { type: "pong" })]).subarray(hello.length + 2)), 20);
        } else if (fr.kind === FrameKind.Control && JSON.parse(fr.payload.toString()).type === "ping") {
          s.write(encodeControl(fr.stream, { type: "pong" }));
        }
      }
    });
  });
  try {
    const c = await AgentClient.open(connect(f.path), "tok", 2000);
    assert.equal(c.hello.sandbox_id, "fake");
    await new Promise((r) => setTimeout(r, 60)); // let the split stray frame arrive whole first
    await c.ping(); // stream 1; the stray pong for stream 3 was ignored
    c.close();
    assert.equal(c.closed, true);
  } finally {
    f.done();
  }
});

test("writeFile respects backpressure instead of buffering everything", async () => {
  let peer: Socket | undefined;
  const f = await fakeAgent((s) => {
    peer = s;
    s.once("data", () => {
      s.write(hello);
      s.pause(); // stop reading: the client must wait for 'drain'
    });
  });
  try {
    const sock = connect(f.path);
    const c = await AgentClient.open(sock, "t", 2000);
    const big = Buffer.alloc(64 * 1024 * 1024);
    const p = c.writeFile("/x", big);
    p.catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(sock.writableLength < 4 * 1024 * 1024, `client buffered ${sock.writableLength} bytes`);
    peer!.destroy();
    await assert.rejects(p, /agent connection (closed|failed)/);
  } finally {
    f.done();
  }
});

test("writeFile does not hang when the connection drained while the body's next chunk was awaited", async () => {
  // A chunk big enough to congest the socket, then a pause in the body longer
  // than it takes the peer to read it: the 'drain' comes and goes while the
  // upload waits for the body. The upload must still go on (it used to wait
  // for a second 'drain' forever, and the request timed out after 300 s).
  const f = await fakeAgent((s) => {
    const dec = new FrameDecoder();
    s.on("data", (d: Buffer) => {
      for (const fr of dec.push(d)) {
        if (fr.kind === FrameKind.Auth) {
          s.write(hello);
          // Not reading for a moment: the first chunk's frame stays in the client's buffer (write() says false).
          s.pause();
          setTimeout(() => s.resume(), 100);
        } else if (fr.kind === FrameKind.Data) s.write(encodeControl(fr.stream, { type: "credit", bytes: fr.payload.length }));
        else if (fr.kind === FrameKind.Control && JSON.parse(fr.payload.toString()).type === "eof") s.write(encodeControl(fr.stream, { type: "result" }));
      }
    });
  });
  try {
    const c = await AgentClient.open(connect(f.path), "t", 2000);
    async function* body() {
      for (let i = 0; i < 3; i++) {
        yield Buffer.alloc(256 * 1024, i);
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        c.writeFile("/x", body()),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("writeFile hung")), 5000); }),
      ]);
    } finally {
      clearTimeout(timer);
      c.close();
    }
  } finally {
    f.done();
  }
});

test("against lohar: errors surface on done and as 'error' events", async () => {
  const l = await startLohar(config());
  try {
    const c = await l.connect();
    // (a missing command is not an error but exit 127, as in a shell: a missing cwd is one)
    const e = c.exec({ cmd: ["true"], cwd: "/no-such-dir-xyz" });
    const seen = new Promise<Error>((r) => e.on("error", r));
    await assert.rejects(e.done, /no-such-dir-xyz.*ENOENT/);
    assert.match((await seen).message, /ENOENT/);
    // an exec that only listens to events must not crash the process on error
    c.exec({ cmd: ["true"], cwd: "/no-such-dir-xyz" });
    assert.equal((await run(c, ["true"])).exit.exit_code, 0);
    c.close();
  } finally {
    await l.stop();
  }
});

test("against lohar: when the agent dies, pending calls reject and 'close' fires", async () => {
  const l = await startLohar(config());
  try {
    const c = await l.connect();
    const closed = new Promise<void>((r) => c.once("close", r));
    const e = c.exec({ cmd: ["sleep", "30"], cwd: "/" });
    await c.ping();
    l.proc.kill("SIGKILL");
    await assert.rejects(e.done, /connection closed/);
    await closed;
    assert.equal(c.closed, true);
    await assert.rejects(c.ping(), /closed/);
    await assert.rejects(c.exec({ cmd: ["true"] }).done, /closed/);
  } finally {
    await l.stop();
  }
});

test("against lohar: 20 execs at once on one connection each get their own exit", async () => {
  const l = await startLohar(config());
  try {
    const c = await l.connect();
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => run(c, ["/bin/sh", "-c", `exit ${i}`])));
    assert.deepEqual(rs.map((r) => r.exit.exit_code), Array.from({ length: 20 }, (_, i) => i));
    c.close();
  } finally {
    await l.stop();
  }
});

test("an agent that sends past its window loses the stream: the exec fails and is cancelled", async () => {
  const seen: string[] = [];
  const f = await fakeAgent((s) => {
    const dec = new FrameDecoder();
    s.on("data", (d: Buffer) => {
      for (const fr of dec.push(d)) {
        if (fr.kind === FrameKind.Auth) s.write(hello);
        else if (fr.kind === FrameKind.Control) {
          const m = JSON.parse(fr.payload.toString());
          seen.push(m.type);
          // Ignore credit entirely: 2 MiB of output at once.
          if (m.type === "exec") for (let i = 0; i < 32; i++) s.write(encodeFrame(FrameKind.Stdout, fr.stream, Buffer.alloc(64 * 1024)));
        }
      }
    });
  });
  try {
    const c = await AgentClient.open(connect(f.path), "t", 2000);
    const e = c.exec({ cmd: ["x"] }, { manualAck: true });
    let got = 0;
    e.on("stdout", (b: Buffer) => (got += b.length));
    await assert.rejects(e.done, /exceeded the flow-control window/);
    assert.ok(got <= STREAM_WINDOW, `emitted ${got} bytes`);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(seen.includes("cancel"), `the agent was told to cancel (saw ${seen.join(",")})`);
    c.close();
  } finally {
    f.done();
  }
});

test("a version 1 agent (a sandbox started by an older daemon) is spoken to without credit or cancel", async () => {
  const seen: string[] = [];
  const v1hello = encodeControl(0, { type: "hello", version: 1, sandbox_id: "old", hostname: "old", config: "consumed" });
  const f = await fakeAgent((s) => {
    const dec = new FrameDecoder();
    s.on("data", (d: Buffer) => {
      for (const fr of dec.push(d)) {
        if (fr.kind === FrameKind.Auth) { s.write(v1hello); continue; }
        if (fr.kind !== FrameKind.Control) continue;
        const m = JSON.parse(fr.payload.toString());
        seen.push(m.type);
        if (m.type === "file_read") {
          for (let i = 0; i < 12; i++) s.write(encodeFrame(FrameKind.Data, fr.stream, Buffer.alloc(256 * 1024, i)));
          s.write(encodeControl(fr.stream, { type: "result" }));
        } else if (m.type === "exec") {
          for (let i = 0; i < 12; i++) s.write(encodeFrame(FrameKind.Stdout, fr.stream, Buffer.alloc(64 * 1024, 1)));
        } else if (m.type === "signal") s.write(encodeControl(fr.stream, { type: "exit", exit_code: 137, signal: "SIGKILL" }));
      }
    });
  });
  try {
    const c = await AgentClient.open(connect(f.path), "t", 2000);
    assert.equal(c.flow, false);
    const data = await c.readFile("/x");
    assert.equal(data.length, 12 * 256 * 1024, "no window enforced, no opened expected");
    const e = c.exec({ cmd: ["x"] }, { manualAck: true });
    let got = 0;
    e.on("stdout", (b: Buffer) => (got += b.length));
    await new Promise((r) => setTimeout(r, 100));
    e.cancel();
    assert.equal((await e.done).signal, "SIGKILL");
    assert.equal(got, 12 * 64 * 1024);
    assert.deepEqual(seen, ["file_read", "exec", "signal"], "no credit or cancel messages");
    c.close();
  } finally {
    f.done();
  }
});
