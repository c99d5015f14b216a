// Host side of the lohar protocol (src/protocol/agent.ts) over any duplex byte
// stream: a net.Socket to lohar's unix socket (ns engine) or to QEMU's
// virtio-serial chardev (vm engine). One AgentClient = one authenticated session.
import { EventEmitter } from "node:events";
import { Readable, type Duplex } from "node:stream";
import {
  FrameDecoder, FrameKind, encodeControl, encodeFrame, HEADER_BYTES, STREAM_WINDOW,
  type AgentMessage, type ErrorCode, type ExecExit, type ExecStart, type Frame, type Hello, type HostMessage, type StatInfo,
  type FileWrite, type ArchiveWrite,
} from "../protocol/agent.js";

const STDIN_CHUNK = 64 * 1024;
const DATA_CHUNK = 256 * 1024;
const MAX_STREAM_ID = 0xffffffff;
const ACK_BATCH = STREAM_WINDOW / 4; // grant credit back in pieces this large (or when the stream is idle)

/** An error reported by lohar; `code` says which rule was broken, when it is one of ours. */
export class AgentError extends Error {
  constructor(message: string, readonly agentCode?: ErrorCode) {
    super(message);
  }
}

export interface ExecOptions {
  /**
   * The consumer calls consumed(n) once it really delivered n bytes of output
   * (an HTTP response flushed, a WebSocket frame written); until then lohar
   * holds the command after STREAM_WINDOW bytes. Without it, output is
   * acknowledged as soon as it is emitted.
   */
  manualAck?: boolean;
}

export interface ExecSession extends EventEmitter {
  /** Send stdin (only if the exec was started with stdin: true). False: stop sending until 'drain' (lohar has not taken the earlier input yet). */
  write(data: Buffer): boolean;
  end(): void;
  resize(rows: number, cols: number): void;
  signal(name: string): void;
  /** manualAck: `bytes` of emitted output were delivered. */
  consumed(bytes: number): void;
  /** End the command now (SIGKILL to its process group) and stop emitting output; `done` still settles with its exit. */
  cancel(): void;
  readonly done: Promise<ExecExit>;
}

export interface StreamHandler {
  frame(f: Frame): void;
  fail(err: Error): void;
}

/** Output credit we owe lohar on one stream: counts what it sent, grants back what was consumed. */
class OutputCredit {
  outstanding = 0; // received, not yet consumed
  private owed = 0; // consumed, not yet granted

  constructor(private readonly client: AgentClient, private readonly id: number) {}

  /** Bytes arrived; false when lohar went past its window. */
  received(n: number): boolean {
    this.outstanding += n;
    return !this.client.flow || this.outstanding <= STREAM_WINDOW;
  }

  consumed(n: number): void {
    if (!(n > 0)) return;
    n = Math.min(n, this.outstanding);
    this.outstanding -= n;
    this.owed += n;
    if (this.owed >= ACK_BATCH || this.outstanding === 0) this.flush();
  }

  private flush(): void {
    if (this.owed === 0) return;
    if (this.client.flow) this.client.sendFrame(encodeControl(this.id, { type: "credit", bytes: this.owed }));
    this.owed = 0;
  }
}

export class Exec extends EventEmitter implements ExecSession, StreamHandler {
  readonly done: Promise<ExecExit>;
  protected settle!: { resolve: (e: ExecExit) => void; reject: (e: Error) => void };
  protected settled = false;
  protected released = false;
  private cancelled = false;
  private readonly credit: OutputCredit;
  private stdinCredit: number;
  private queue: (Buffer | "eof")[] = []; // stdin (and its eof) waiting for lohar's credit
  private blocked = false;

  constructor(private readonly client: AgentClient, readonly id: number, private readonly manualAck: boolean) {
    super();
    this.done = new Promise<ExecExit>((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {}); // callers may only listen to events
    this.credit = new OutputCredit(client, id);
    this.stdinCredit = client.flow ? STREAM_WINDOW : Infinity;
  }

  write(data: Buffer): boolean {
    if (this.released) return true;
    if (data.length) this.queue.push(data);
    this.pump();
    this.blocked = this.queue.length > 0;
    return !this.blocked;
  }

  end(): void {
    this.queue.push("eof");
    this.pump();
  }

  resize(rows: number, cols: number): void {
    this.control({ type: "resize", rows, cols });
  }

  signal(name: string): void {
    this.control({ type: "signal", signal: name });
  }

  consumed(bytes: number): void {
    if (!this.released) this.credit.consumed(bytes);
  }

  cancel(): void {
    if (this.cancelled || this.released) return;
    this.cancelled = true;
    this.queue = [];
    if (this.client.flow) this.control({ type: "cancel" });
    else this.control({ type: "signal", signal: "SIGKILL" });
    this.credit.consumed(this.credit.outstanding);
  }

  frame(f: Frame): void {
    if (f.kind === FrameKind.Stdout || f.kind === FrameKind.Stderr) {
      if (!this.credit.received(f.payload.length)) return this.violation();
      if (this.cancelled || this.settled) return this.credit.consumed(f.payload.length);
      this.emit(f.kind === FrameKind.Stdout ? "stdout" : "stderr", f.payload);
      if (!this.manualAck) this.credit.consumed(f.payload.length);
    } else if (f.kind === FrameKind.Control) {
      const msg = parse(f.payload);
      if (msg?.type === "credit") {
        if (Number.isSafeInteger(msg.bytes) && msg.bytes > 0) this.stdinCredit = Math.min(this.stdinCredit + msg.bytes, STREAM_WINDOW);
        this.pump();
      } else if (msg?.type === "exit") {
        this.release();
        if (this.settled) return;
        this.settled = true;
        this.emit("exit", msg);
        this.settle.resolve(msg);
      } else if (msg?.type === "error") {
        this.release();
        this.reject(new AgentError(msg.message, msg.code));
      } else if (msg) {
        this.onControl(msg);
      }
    }
  }

  /** Other control messages on this stream (session viewers: "session", "detached"). */
  protected onControl(_msg: AgentMessage): void {}

  fail(err: Error): void {
    this.release();
    this.reject(err);
  }

  private reject(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    if (this.listenerCount("error") > 0) this.emit("error", err);
    this.settle.reject(err);
  }

  /** lohar sent more than its window: drop the stream (its id stays taken until lohar ends it). */
  private violation(): void {
    this.cancel();
    this.reject(new Error("agent exceeded the flow-control window"));
  }

  private pump(): void {
    while (this.queue.length && !this.released) {
      const head = this.queue[0];
      if (head === "eof") {
        this.queue.shift();
        this.control({ type: "eof" });
        continue;
      }
      const n = Math.min(head.length, this.stdinCredit, STDIN_CHUNK);
      if (n <= 0) break;
      this.client.sendFrame(encodeFrame(FrameKind.Stdin, this.id, head.subarray(0, n)));
      this.stdinCredit -= n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    if (this.blocked && this.queue.length === 0) {
      this.blocked = false;
      this.emit("drain");
    }
  }

  protected release(): void {
    if (this.released) return;
    this.released = true;
    this.queue = [];
    this.client.release(this.id);
  }

  protected control(msg: HostMessage): void {
    if (!this.released) this.client.sendFrame(encodeControl(this.id, msg));
  }
}

/** A single request/response stream (stat, list, ping). */
class Call implements StreamHandler {
  readonly result: Promise<AgentMessage>;
  private settle!: { resolve: (m: AgentMessage) => void; reject: (e: Error) => void };

  constructor(private readonly client: AgentClient, readonly id: number) {
    this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.result.catch(() => {}); // awaited by the caller; never an unhandled rejection meanwhile
  }

  frame(f: Frame): void {
    if (f.kind !== FrameKind.Control) return;
    const msg = parse(f.payload);
    if (!msg || msg.type === "credit") return;
    this.client.release(this.id);
    if (msg.type === "error") this.settle.reject(new AgentError(msg.message, msg.code));
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

/** A file_write: Data frames sent against lohar's credit, then eof; settles with lohar's answer. */
class Upload implements StreamHandler {
  readonly result: Promise<void>;
  credit: number;
  settled = false;
  private settle!: { resolve: () => void; reject: (e: Error) => void };
  private wake: (() => void) | null = null;

  constructor(private readonly client: AgentClient, readonly id: number) {
    this.credit = client.flow ? STREAM_WINDOW : Infinity;
    this.result = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.result.catch(() => {}); // lohar may refuse before the upload is done: awaited later, never unhandled
  }

  frame(f: Frame): void {
    if (f.kind !== FrameKind.Control) return;
    const msg = parse(f.payload);
    if (!msg) return;
    if (msg.type === "credit") {
      if (Number.isSafeInteger(msg.bytes) && msg.bytes > 0) this.credit = Math.min(this.credit + msg.bytes, STREAM_WINDOW);
      return this.poke();
    }
    this.client.release(this.id);
    this.settled = true;
    if (msg.type === "error") this.settle.reject(new AgentError(msg.message, msg.code));
    else this.settle.resolve();
    this.poke();
  }

  fail(err: Error): void {
    this.client.release(this.id);
    this.settled = true;
    this.settle.reject(err);
    this.poke();
  }

  /** Until there is credit and the connection is not congested, or the upload is over. */
  async ready(congested: boolean): Promise<void> {
    if (congested && !this.settled) await this.client.drainedOr(this.result);
    while (!this.settled && this.credit <= 0) await new Promise<void>((r) => (this.wake = r));
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

/**
 * A file_read as a Readable. Frames wait in our own queue (at most the
 * window); a chunk is granted back to lohar when it moves into the Readable's
 * buffer, which happens only when the consumer asks for more (_read).
 */
export class FileStream extends Readable implements StreamHandler {
  /** The file as lohar opened it; null from a version 1 agent (size unknown). */
  stat: StatInfo | null = null;
  readonly opened: Promise<StatInfo | null>;
  private open!: { resolve: (s: StatInfo | null) => void; reject: (e: Error) => void };
  private isOpen = false;
  private finished = false; // lohar's final message arrived (or the stream failed)
  private complete = false; // ...and it was "result"
  private received = 0;
  private readonly credit: OutputCredit;
  private readonly queue: Buffer[] = [];
  private wanting = false;

  /** `sized` false: an archive_read, whose length stat.size does not tell. */
  constructor(private readonly client: AgentClient, readonly id: number, private readonly sized = true) {
    super({ highWaterMark: 64 * 1024 });
    this.credit = new OutputCredit(client, id);
    this.opened = new Promise((resolve, reject) => (this.open = { resolve, reject }));
    this.opened.catch(() => {});
  }

  frame(f: Frame): void {
    if (this.finished) return;
    // A version 1 agent sends no "opened": its first answer opens the stream, size unknown.
    if (!this.client.flow && !this.isOpen && (f.kind === FrameKind.Data || parse(f.payload)?.type === "result")) this.openAs(null);
    if (f.kind === FrameKind.Data) {
      if (!this.isOpen || !this.credit.received(f.payload.length)) return this.stop(new Error("agent broke the file_read protocol"));
      if (this.sized && this.stat && this.received + f.payload.length > this.stat.size) return this.stop(new Error("agent sent more than the file's size"));
      this.received += f.payload.length;
      this.queue.push(f.payload);
      return this.feed();
    }
    if (f.kind !== FrameKind.Control) return;
    const msg = parse(f.payload);
    if (!msg) return;
    if (msg.type === "opened" && !this.isOpen) {
      if (!isStat(msg.stat)) return this.stop(new Error("agent broke the file_read protocol"));
      return this.openAs(msg.stat);
    }
    if (msg.type === "result") {
      this.finished = true;
      this.client.release(this.id);
      if (!this.isOpen) return this.failWith(new Error("agent broke the file_read protocol"));
      if (this.sized && this.stat && this.received !== this.stat.size) return this.failWith(new Error("the file changed size while it was read"));
      this.complete = true;
      return this.feed();
    }
    if (msg.type === "error") {
      this.finished = true;
      this.client.release(this.id);
      this.failWith(new AgentError(msg.message, msg.code));
    }
  }

  fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.client.release(this.id);
    this.failWith(err);
  }

  /** Bytes received from lohar and not yet read by the consumer (bounded by the window plus the Readable's buffer). */
  get pending(): number {
    return this.queue.reduce((n, b) => n + b.length, 0) + this.readableLength;
  }

  override _read(): void {
    this.wanting = true;
    this.feed();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    // The consumer went away before the end: lohar stops reading (its final message is then ignored).
    if (!this.finished && this.client.flow) this.client.sendFrame(encodeControl(this.id, { type: "cancel" }));
    cb(err);
  }

  private feed(): void {
    while (this.wanting && this.queue.length && !this.destroyed) {
      const b = this.queue.shift()!;
      this.credit.consumed(b.length);
      this.wanting = this.push(b);
    }
    if (this.complete && this.queue.length === 0 && !this.destroyed) {
      this.complete = false;
      this.push(null);
    }
  }

  private openAs(stat: StatInfo | null): void {
    this.isOpen = true;
    this.stat = stat;
    this.open.resolve(stat);
  }

  private stop(err: Error): void {
    if (this.client.flow) this.client.sendFrame(encodeControl(this.id, { type: "cancel" }));
    this.failWith(err);
  }

  private failWith(err: Error): void {
    if (!this.isOpen) this.open.reject(err);
    else this.destroy(err);
  }
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
  /** Open exec/file streams: a sandbox with any is in use (the idle policy leaves it hot). */
  get activeStreams(): number {
    return this.streams.size;
  }
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

  /** The agent speaks flow control (protocol version 2; a sandbox started by an older daemon may not). */
  get flow(): boolean {
    return (this._hello?.version ?? 0) >= 2;
  }

  exec(spec: Omit<ExecStart, "type">, opts: ExecOptions = {}): ExecSession {
    const id = this.allocate();
    const e = new Exec(this, id, !!opts.manualAck);
    if (this._closed) {
      e.fail(new Error(this.closeReason));
      return e;
    }
    this.streams.set(id, e);
    this.sendFrame(encodeControl(id, { type: "exec", ...spec }));
    return e;
  }

  /**
   * Opens a file for reading: resolves once lohar opened it (a regular file,
   * not under /proc or /sys), with its stat; the stream then yields at most
   * stat.size bytes, as fast as its consumer reads them. Destroying the
   * stream cancels the read.
   */
  async openFile(path: string): Promise<FileStream> {
    const id = this.allocate();
    const f = new FileStream(this, id);
    if (this._closed) f.fail(new Error(this.closeReason));
    else {
      this.streams.set(id, f);
      this.sendFrame(encodeControl(id, { type: "file_read", path }));
    }
    await f.opened;
    return f;
  }

  /** A whole file in memory (tests, small files). */
  async readFile(path: string): Promise<Buffer> {
    const f = await this.openFile(path);
    const parts: Buffer[] = [];
    for await (const c of f) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }

  /**
   * Writes a file atomically. `data` is a buffer or a source of chunks pulled
   * only as fast as lohar writes them to disk. If the source throws (a client
   * that went away, a body over its limit), the upload is cancelled, lohar
   * drops the partial file, and the source's error is thrown. The source is
   * never closed by us: we only stop pulling.
   */
  async writeFile(path: string, data: Buffer | AsyncIterable<Buffer>, mode?: number): Promise<void> {
    return this.upload(mode === undefined ? { type: "file_write", path } : { type: "file_write", path, mode }, data);
  }

  /** A tar stream extracted by lohar under the directory `path` (cli: bhatti cp); flows like writeFile. */
  async writeArchive(path: string, data: AsyncIterable<Buffer>, rename?: string): Promise<void> {
    return this.upload(rename === undefined ? { type: "archive_write", path } : { type: "archive_write", path, rename }, data);
  }

  /** A tar stream of `path` (a file or a tree) packed by lohar (cli: bhatti cp); flows like openFile. */
  async openArchive(path: string): Promise<FileStream> {
    const id = this.allocate();
    const f = new FileStream(this, id, false);
    if (this._closed) f.fail(new Error(this.closeReason));
    else {
      this.streams.set(id, f);
      this.sendFrame(encodeControl(id, { type: "archive_read", path }));
    }
    await f.opened;
    return f;
  }

  private async upload(request: FileWrite | ArchiveWrite, data: Buffer | AsyncIterable<Buffer>): Promise<void> {
    const id = this.allocate();
    const u = new Upload(this, id);
    if (this._closed) u.fail(new Error(this.closeReason));
    else {
      this.streams.set(id, u);
      this.sendFrame(encodeControl(id, request));
    }
    const source = Buffer.isBuffer(data) ? [data][Symbol.iterator]() : data[Symbol.asyncIterator]();
    let congested = false;
    try {
      for (;;) {
        if (u.settled) break;
        const next = await source.next();
        if (next.done) break;
        const chunk = next.value;
        for (let off = 0; off < chunk.length; ) {
          await u.ready(congested);
          if (u.settled) break;
          const n = Math.min(DATA_CHUNK, chunk.length - off, u.credit);
          congested = !this.sendFrame(encodeFrame(FrameKind.Data, id, chunk.subarray(off, off + n)));
          u.credit -= n;
          off += n;
        }
      }
    } catch (e) {
      if (!u.settled && this.flow) this.sendFrame(encodeControl(id, { type: "cancel" }));
      else if (!u.settled) this.release(id); // a version 1 agent cannot cancel: forget the stream
      throw e;
    }
    if (!u.settled) this.sendFrame(encodeControl(id, { type: "eof" }));
    await u.result;
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

  /** Ends the session; frames already sent (a cancel, say) still reach lohar, for up to a second. */
  close(): void {
    this.shutdown("agent connection closed", true);
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

  /** @internal A stream whose handler the caller makes (sessions: src/engine/sessions.ts). */
  openStream<T extends StreamHandler>(make: (id: number) => T, msg: HostMessage): T {
    const id = this.allocate();
    const h = make(id);
    if (this._closed) h.fail(new Error(this.closeReason));
    else {
      this.streams.set(id, h);
      this.sendFrame(encodeControl(id, msg));
    }
    return h;
  }

  /** @internal One request, one answer (sessions: list, kill, start detached). */
  request(msg: HostMessage): Promise<AgentMessage> {
    return this.call(msg).result;
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

  /** @internal Resolves on the connection's next 'drain', on close, or when `other` settles. */
  drainedOr(other: Promise<unknown>): Promise<void> {
    // The 'drain' may already have come and gone while the caller waited for
    // something else (the next chunk of a request body): waiting for another
    // one would hang the upload for good.
    if (this._closed || !this.stream.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.off("drain", done);
        this.off("close", done);
        resolve();
      };
      this.on("drain", done);
      this.on("close", done);
      other.then(done, done);
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

  private shutdown(reason: string, flush = false): void {
    if (this._closed) return;
    this._closed = true;
    this.closeReason = reason;
    if (flush && !this.stream.destroyed) {
      this.stream.end();
      setTimeout(() => this.stream.destroy(), 1000).unref();
    } else this.stream.destroy();
    const err = new Error(reason);
    for (const s of [...this.streams.values()]) s.fail(err);
    this.streams.clear();
    this.onHello?.(err);
    this.emit("close");
  }
}
