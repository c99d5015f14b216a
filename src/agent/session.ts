// One host session over a byte stream: AUTH, then requests on streams.
// Nothing is served before a correct AUTH; a wrong token closes the session.
import { FrameDecoder, FrameKind, PROTOCOL_VERSION, encodeControl, type Frame, type HostMessage } from "../protocol/agent.js";
import type { Sandbox } from "./boot.js";
import type { Out, Pausable } from "./out.js";
import { ExecStream } from "./exec.js";
import { FileReader, FileWriter, fileList, fileStat } from "./files.js";
import { ArchiveReader, ArchiveWriter } from "./archive.js";
import { log } from "./log.js";
import { sessions, SessionError, type Viewer } from "./sessions.js";
import { sameBytes } from "./util.js";

/** The byte stream under a session (a net.Socket, or the virtio port wrapper). */
export interface Conn {
  write(buf: Buffer): boolean;
  on(event: "drain", fn: () => void): unknown;
  off(event: "drain", fn: () => void): unknown;
  /** Close the connection (unix) or just drop the session (virtio). */
  end(): void;
}


export class Session implements Out {
  private readonly decoder = new FrameDecoder();
  private authed = false;
  private ended = false;
  private readonly execs = new Map<number, ExecStream>();
  private readonly writers = new Map<number, FileWriter | ArchiveWriter>();
  private readonly readers = new Map<number, FileReader | ArchiveReader>();
  private readonly viewers = new Map<number, Viewer>(); // streams watching a session (sessions.ts)
  private readonly paused = new Set<Pausable>();
  private congested = false;
  private waiters: (() => void)[] = [];
  private readonly onDrain = () => {
    this.congested = false;
    for (const s of this.paused) s.resume();
    this.paused.clear();
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  };

  private readonly token: Buffer;

  constructor(private readonly conn: Conn, private readonly sandbox: Sandbox, private readonly bootMs: number) {
    this.token = Buffer.from(sandbox.token, "utf8");
    conn.on("drain", this.onDrain);
  }

  get open(): boolean {
    return !this.ended;
  }

  send(frame: Buffer, source?: Pausable): void {
    if (this.ended) return;
    if (!this.conn.write(frame)) {
      this.congested = true;
      if (source && !this.paused.has(source)) {
        source.pause();
        this.paused.add(source);
      }
    }
  }

  drained(): Promise<void> {
    if (!this.congested || this.ended) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Bytes from the host. */
  push(chunk: Buffer): void {
    if (this.ended) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch {
      log("bad frame from host, closing the session");
      return this.close();
    }
    for (const f of frames) {
      if (this.ended) return;
      this.frame(f);
    }
  }

  /** The host went away (or the session is being replaced): streams are dropped, processes keep running. */
  detach(): void {
    if (this.ended) return;
    this.ended = true;
    this.conn.off("drain", this.onDrain);
    this.dropStreams();
  }

  private dropStreams(): void {
    for (const e of this.execs.values()) e.detach();
    for (const w of this.writers.values()) w.abort();
    for (const r of this.readers.values()) r.cancel();
    for (const v of this.viewers.values()) v.drop();
    this.execs.clear();
    this.viewers.clear();
    this.writers.clear();
    this.readers.clear();
    for (const s of this.paused) s.resume();
    this.paused.clear();
    this.onDrain();
  }

  close(): void {
    this.detach();
    this.conn.end();
  }

  private frame(f: Frame): void {
    if (this.authed && f.kind === FrameKind.Auth && f.stream === 0 && sameBytes(f.payload, this.token)) {
      // A host that reconnected faster than we could see it leave (possible on
      // virtio-serial): the old session's streams are gone with it; start afresh.
      log("re-authenticated: new host session");
      this.dropStreams();
      this.authed = false;
    }
    if (!this.authed) {
      if (f.kind !== FrameKind.Auth || f.stream !== 0 || !sameBytes(f.payload, this.token)) {
        log("authentication failed");
        this.send(encodeControl(0, { type: "error", message: "authentication failed" }));
        return this.close();
      }
      this.authed = true;
      this.send(encodeControl(0, {
        type: "hello",
        version: PROTOCOL_VERSION,
        sandbox_id: this.sandbox.id,
        hostname: this.sandbox.hostname,
        config: "consumed",
        boot_ms: this.bootMs,
      }));
      return;
    }
    const id = f.stream;
    switch (f.kind) {
      case FrameKind.Control: {
        let msg: HostMessage;
        try {
          msg = JSON.parse(f.payload.toString("utf8")) as HostMessage;
        } catch {
          return this.send(encodeControl(id, { type: "error", message: "bad control message", code: "bad_request" }));
        }
        if (!msg || typeof msg !== "object") return this.send(encodeControl(id, { type: "error", message: "bad control message", code: "bad_request" }));
        return this.control(id, msg);
      }
      case FrameKind.Stdin:
        this.execs.get(id)?.stdin(f.payload);
        this.viewers.get(id)?.stdin(f.payload);
        return;
      case FrameKind.Data: {
        const w = this.writers.get(id);
        w?.data(f.payload);
        if (w?.done) this.writers.delete(id);
        return;
      }
      default:
        return; // Auth again, or agent->host kinds: ignore
    }
  }

  private control(id: number, msg: HostMessage): void {
    const exec = this.execs.get(id);
    const writer = this.writers.get(id);
    const reader = this.readers.get(id);
    const viewer = this.viewers.get(id);
    switch (msg.type) {
      case "detach":
        if (viewer) {
          viewer.end({ type: "detached" });
          this.viewers.delete(id);
        }
        return;
      case "credit":
        viewer?.grant(msg.bytes);
        exec?.grant(msg.bytes);
        reader?.grant(msg.bytes);
        return;
      case "cancel":
        if (viewer) {
          // A viewer never kills its session: cancelling a viewer detaches it.
          viewer.end({ type: "detached" });
          this.viewers.delete(id);
        }
        exec?.cancel();
        reader?.cancel();
        if (writer) {
          writer.cancel();
          this.writers.delete(id);
        }
        return;
      case "eof":
        exec?.eof();
        if (writer) {
          writer.eof();
          this.writers.delete(id);
        }
        return;
      case "signal":
        exec?.signal(msg.signal);
        viewer?.session.signal(msg.signal);
        return;
      case "resize":
        exec?.resize(msg.rows, msg.cols);
        viewer?.session.resize(msg.rows, msg.cols);
        return;
    }
    this.sweep();
    if (id === 0 || this.execs.has(id) || this.writers.has(id) || this.readers.has(id) || this.viewers.has(id)) {
      return this.send(encodeControl(id, { type: "error", message: id === 0 ? "stream 0 takes no requests" : "stream id in use", code: "bad_request" }));
    }
    switch (msg.type) {
      case "exec": {
        const e = new ExecStream(id, this);
        this.execs.set(id, e);
        e.start(msg, this.sandbox);
        return;
      }
      case "file_write": {
        const w = new FileWriter(id, this);
        w.start(msg.path, msg.mode);
        if (!w.done) this.writers.set(id, w);
        return;
      }
      case "file_read": {
        const r = new FileReader(id, this);
        this.readers.set(id, r);
        void r.start(msg.path).finally(() => {
          if (this.readers.get(id) === r) this.readers.delete(id);
        });
        return;
      }
      // cli (issue 8): tar streams for `bhatti cp`
      case "archive_write": {
        const w = new ArchiveWriter(id, this);
        w.start(msg.path, msg.rename);
        if (!w.done) this.writers.set(id, w);
        return;
      }
      case "archive_read": {
        const r = new ArchiveReader(id, this);
        this.readers.set(id, r);
        void r.start(msg.path).finally(() => {
          if (this.readers.get(id) === r) this.readers.delete(id);
        });
        return;
      }
      case "file_stat":
        return fileStat(this, id, msg.path);
      case "file_list":
        return fileList(this, id, msg.path);
      case "ping":
        return this.send(encodeControl(id, { type: "pong" }));
      case "session_start":
      case "session_attach":
      case "session_list":
      case "session_kill":
        return this.sessionRequest(id, msg);
      default:
        return this.send(encodeControl(id, { type: "error", message: `unknown request ${JSON.stringify(String((msg as { type?: unknown }).type).slice(0, 40))}`, code: "bad_request" }));
    }
  }

  /** Forget finished exec streams and viewers (their ids may be reused). */
  private sweep(): void {
    for (const [id, e] of this.execs) if (e.done) this.execs.delete(id);
    for (const [id, v] of this.viewers) if (v.ended) this.viewers.delete(id);
  }

  private sessionRequest(id: number, msg: Extract<HostMessage, { type: "session_start" | "session_attach" | "session_list" | "session_kill" }>): void {
    try {
      switch (msg.type) {
        case "session_start": {
          const s = sessions.start(msg, this.sandbox);
          if (!msg.attach) return this.send(encodeControl(id, { type: "session", session: s.info() }));
          return this.watch(id, s.attach(id, this, false, true));
        }
        case "session_attach":
          return this.watch(id, sessions.get(msg.id).attach(id, this, msg.replay !== false, msg.follow !== false));
        case "session_list":
          return this.send(encodeControl(id, { type: "sessions", sessions: sessions.list().map((s) => s.info()) }));
        case "session_kill": {
          const s = sessions.get(msg.id);
          if (!s.signal(msg.signal)) throw new SessionError(`unknown signal ${JSON.stringify(String(msg.signal).slice(0, 20))}`);
          return this.send(encodeControl(id, { type: "session", session: s.info() }));
        }
      }
    } catch (e) {
      const code = e instanceof SessionError ? e.code : undefined;
      return this.send(encodeControl(id, { type: "error", message: (e as Error).message, ...(code ? { code } : {}) }));
    }
  }

  private watch(id: number, v: Viewer): void {
    if (!v.ended) this.viewers.set(id, v);
  }
}
