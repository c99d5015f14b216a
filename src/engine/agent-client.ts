// Host side of the lohar protocol (src/protocol/agent.ts) over any duplex byte
// stream: a net.Socket to lohar's unix socket (ns engine) or to QEMU's
// virtio-serial chardev (vm engine). One AgentClient = one authenticated session.
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import {
  FrameDecoder, FrameKind, encodeControl, encodeFrame, HEADER_BYTES,
  type AgentMessage, type ExecExit, type ExecStart, type Frame, type Hello, type HostMessage, type StatInfo,
} from "../protocol/agent.js";

const STDIN_CHUNK = 64 * 1024;
const DATA_CHUNK = 256 * 1024;
const MAX_STREAM_ID = 0xffffffff;

export interface ExecSession extends EventEmitter {
  /** Send stdin (only if the exec was started with stdin: true). Returns false when the connection is congested; wait for 'drain'. */
  write(data: Buffer): boolean;
  end(): void;
  resize(rows: number, cols: number): void;
  signal(name: string): void;
  readonly done: Promise<ExecExit>;
}

interface StreamHandler {
  frame(f: Frame): void;
  fail(err: Error): void;
}

class Exec extends EventEmitter implements ExecSession, StreamHandler {
  readonly done: Promise<ExecExit>;
  private settle!: { resolve: (e: ExecExit) => void; reject: (e: Error) => void };
  private finished = false;

  constructor(private readonly client: AgentClient, readonly id: number) {
    super();
    this.done = new Promise<ExecExit>((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {}); // callers may only listen to events
  }

  write(data: Buffer): boolean {
    let ok = true;
    for (let off = 0; off < data.length; off += STDIN_CHUNK) {
      ok = this.client.sendFrame(encodeFrame(FrameKind.Stdin, this.id, data.subarray(off, off + STDIN_CHUNK)));
    }
    return ok;
  }

  end(): void {
    this.control({ type: "eof" });
  }

  resize(rows: number, cols: number): void {
    this.control({ type: "resize", rows, cols });
  }

  signal(name: string): void {
    this.control({ type: "signal", signal: name });
  }

  frame(f: Frame): void {
    if (f.kind === FrameKind.Stdout) this.emit("stdout", f.payload);
    else if (f.kind === FrameKind.Stderr) this.emit("stderr", f.payload);
    else if (f.kind === FrameKind.Control) {
      const msg = parse(f.payload);
      if (msg?.type === "exit") {
        this.finish();
        this.emit("exit", msg);
        this.settle.resolve(msg);
      } else if (msg?.type === "error") {
        this.fail(new Error(msg.message));
      }
    }
  }

  fail(err: Error): void {
    if (this.finished) return;
    this.finish();
    if (this.listenerCount("error") > 0) this.emit("error", err);
    this.settle.reject(err);
  }

  private finish(): void {
    this.finished = true;
    this.client.release(this.id);
  }

  private control(msg: HostMessage): void {
    if (!this.finished) this.client.sendFrame(encodeControl(this.id, msg));
  }
}

/** A single request/response stream (file calls, ping). */
class Call implements StreamHandler {
  readonly result: Promise<AgentMessage>;
  readonly data: Buffer[] = [];
  private settle!: { resolve: (m: AgentMessage) => void; reject: (e: Error) => void };

  constructor(private readonly client: AgentClient, readonly id: number) {
    this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
  }

  frame(f: Frame): void {
    if (f.kind === FrameKind.Data) return void this.data.push(f.payload);
    if (f.kind !== FrameKind.Control) return;
    const msg = parse(f.payload);
    if (!msg) return;
    this.client.release(this.id);
    if (msg.type === "error") this.settle.reject(new Error(msg.message));
    else this.settle.resolve(msg);
  }

  fail(err: Error): void {
    this.client.release(this.id);
    this.settle.reject(err);
  }
}

/** A stat from lohar goes into response headers: a sandbox could send anything, so check it. */
function isStat(s: unknown): s is StatInfo {
  const o = s as StatInfo;
  return !!o && typeof o === "object" && typeof o.name === "string" && ["file", "dir", "symlink", "other"].includes(o.type) &&
    [o.size, o.mode, o.uid, o.gid].every((n) => Number.isSafeInteger(n) && n >= 0) && typeof o.mtime === "string";
}

function parse(payload: Buffer): AgentMessage | null {
  try {
    const m = JSON.parse(payload.toString("utf8")) as AgentMessage;
    return m && typeof m === "object" && typeof m.type === "string" ? m : null;
  } catch {
    return null;
  }
}

// Before hello the stream may start with leftovers of an earlier session (a
// virtio port keeps bytes a previous host never read), so we look for the
// hello/error frame itself: kind CONTROL on stream 0 with this JSON prefix.
const HELLO_MARK = Buffer.concat([Buffer.from([FrameKind.Control, 0, 0, 0, 0]), Buffer.from('{"type":"hello"')]);
const ERROR_MARK = Buffer.concat([Buffer.from([FrameKind.Control, 0, 0, 0, 0]), Buffer.from('{"type":"error"')]);

export class AgentClient extends EventEmitter {
  private readonly decoder = new FrameDecoder();
  private readonly streams = new Map<number, StreamHandler>();
  private nextId = 1;
  private _closed = false;
  private _hello: Hello | null = null;
  private preHello: Buffer = Buffer.alloc(0);
  private onHello: ((h: Hello | Error) => void) | null = null;
  private closeReason = "agent connection closed";

  private constructor(private readonly stream: Duplex) {
    super();
    stream.on("data", (d: Buffer) => this.onData(d));
    stream.on("drain", () => this.emit("drain"));
    stream.on("error", (e: Error) => this.shutdown(`agent connection failed: ${e.message}`));
    stream.on("end", () => this.shutdown("agent connection closed"));
    stream.on("close", () => this.shutdown("agent connection closed"));
  }

  /** Authenticate on `stream` with `token` and wait for lohar's hello. */
  static open(stream: Duplex, token: string, timeoutMs = 10_000): Promise<AgentClient> {
    const client = new AgentClient(stream);
    return new Promise<AgentClient>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.onHello = null;
        client.shutdown("agent did not answer in time");
        reject(new Error(`agent did not say hello within ${timeoutMs} ms`));
      }, timeoutMs);
      client.onHello = (h) => {
        clearTimeout(timer);
        client.onHello = null;
        if (h instanceof Error) {
          client.close();
          reject(h);
        } else resolve(client);
      };
      if (client._closed) return client.onHello(new Error(client.closeReason));
      client.sendFrame(encodeFrame(FrameKind.Auth, 0, token));
    });
  }

  get hello(): Hello {
    if (!this._hello) throw new Error("not authenticated");
    return this._hello;
  }

  get closed(): boolean {
    return this._closed;
  }

  exec(spec: Omit<ExecStart, "type">): ExecSession {
    const id = this.allocate();
    const e = new Exec(this, id);
    if (this._closed) {
      e.fail(new Error(this.closeReason));
      return e;
    }
    this.streams.set(id, e);
    this.sendFrame(encodeControl(id, { type: "exec", ...spec }));
    return e;
  }

  async readFile(path: string): Promise<Buffer> {
    const c = this.call({ type: "file_read", path });
    await c.result;
    return Buffer.concat(c.data);
  }

  async writeFile(path: string, data: Buffer, mode?: number): Promise<void> {
    const c = this.call(mode === undefined ? { type: "file_write", path } : { type: "file_write", path, mode });
    // lohar may refuse (EACCES...) before all data is sent: the rejection is
    // handled from the start (it is awaited below) and stops the sending.
    let answered = false;
    const answer = c.result.then(() => { answered = true; }, () => { answered = true; });
    for (let off = 0; off < data.length && !this._closed && !answered; off += DATA_CHUNK) {
      if (!this.sendFrame(encodeFrame(FrameKind.Data, c.id, data.subarray(off, off + DATA_CHUNK)))) await Promise.race([this.drained(), answer]);
    }
    if (!answered) this.sendFrame(encodeControl(c.id, { type: "eof" }));
    await c.result;
  }

  async stat(path: string): Promise<StatInfo> {
    const r = await this.call({ type: "file_stat", path }).result;
    if (r.type !== "result" || !isStat(r.stat)) throw new Error(`stat ${path}: bad answer from agent`);
    return r.stat;
  }

  async list(path: string): Promise<StatInfo[]> {
    const r = await this.call({ type: "file_list", path }).result;
    if (r.type !== "result" || !r.entries) throw new Error(`list ${path}: bad answer from agent`);
    return r.entries;
  }

  async ping(): Promise<void> {
    const r = await this.call({ type: "ping" }).result;
    if (r.type !== "pong") throw new Error("ping: bad answer from agent");
  }

  close(): void {
    this.shutdown("agent connection closed");
  }

  // ---- internals used by Exec/Call ----

  /** @internal */
  sendFrame(frame: Buffer): boolean {
    if (this._closed) return false;
    return this.stream.write(frame);
  }

  /** @internal */
  release(id: number): void {
    this.streams.delete(id);
  }

  private call(msg: HostMessage): Call {
    const c = new Call(this, this.allocate());
    if (this._closed) c.fail(new Error(this.closeReason));
    else {
      this.streams.set(c.id, c);
      this.sendFrame(encodeControl(c.id, msg));
    }
    return c;
  }

  private allocate(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= MAX_STREAM_ID ? 1 : id + 1;
      if (!this.streams.has(id)) return id;
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.off("drain", done);
        this.off("close", done);
        resolve();
      };
      this.on("drain", done);
      this.on("close", done);
    });
  }

  private onData(d: Buffer): void {
    if (this._closed) return;
    if (!this._hello) return this.beforeHello(d);
    let frames: Frame[];
    try {
      frames = this.decoder.push(d);
    } catch (e) {
      return this.shutdown(`agent protocol error: ${(e as Error).message}`);
    }
    for (const f of frames) {
      if (f.stream === 0) continue; // nothing is expected on the session stream after hello
      this.streams.get(f.stream)?.frame(f);
    }
  }

  private beforeHello(d: Buffer): void {
    this.preHello = Buffer.concat([this.preHello, d]);
    for (const mark of [HELLO_MARK, ERROR_MARK]) {
      const at = this.preHello.indexOf(mark);
      if (at < 4) continue;
      const start = at - 4;
      const len = this.preHello.readUInt32BE(start);
      if (len < 5 || len > (1 << 20) + 5) continue;
      if (this.preHello.length < start + 4 + len) return; // wait for the rest
      const payload = this.preHello.subarray(start + HEADER_BYTES, start + 4 + len);
      const rest = this.preHello.subarray(start + 4 + len);
      this.preHello = Buffer.alloc(0);
      const msg = parse(payload);
      if (msg?.type === "hello") {
        this._hello = msg;
        this.onHello?.(msg);
        if (rest.length) this.onData(rest);
      } else {
        const reason = msg?.type === "error" ? msg.message : "bad hello";
        this.onHello?.(new Error(`agent refused the session: ${reason}`));
        this.shutdown(`agent refused the session: ${reason}`);
      }
      return;
    }
    if (this.preHello.length > 4 << 20) this.shutdown("agent sent no hello");
  }

  private shutdown(reason: string): void {
    if (this._closed) return;
    this._closed = true;
    this.closeReason = reason;
    this.stream.destroy();
    const err = new Error(reason);
    for (const s of [...this.streams.values()]) s.fail(err);
    this.streams.clear();
    this.onHello?.(err);
    this.emit("close");
  }
}
