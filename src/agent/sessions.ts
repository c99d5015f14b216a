// Sessions (issue 12): commands that outlive the stream that started them,
// with a bounded scrollback, any number of viewers (attached streams), detach
// and reattach, list and kill, and an idle timeout when nobody watches.
// The protocol is described in src/protocol/agent.ts ("sessions").
//
// Memory: the scrollback is the only buffer a session owns (SESSION_SCROLLBACK
// bytes). A viewer holds at most what it was handed while the command's pipe
// is paused for it: while any viewer is out of credit (or its connection is
// congested) the pipe is paused and the command blocks on write. With no
// viewer, output only goes to the scrollback, oldest bytes dropped.
import { existsSync } from "node:fs";
import { constants as osConstants } from "node:os";
import type { ChildProcess } from "node:child_process";
import {
  FrameKind, MAX_SESSIONS, SESSION_IDLE_MS, SESSION_SCROLLBACK, STREAM_WINDOW, encodeControl, encodeFrame,
  type AgentMessage, type ErrorCode, type SessionInfo, type SessionStart,
} from "../protocol/agent.js";
import type { Sandbox } from "./boot.js";
import type { Out, Pausable } from "./out.js";
import { errText } from "./log.js";
import { resizeTty } from "./tty.js";
import { prepare, startCommand } from "./command.js";

const CHUNK = 64 * 1024;
const STDIO_GRACE_MS = 200; // after exit, how long to wait for output a background child keeps open
const KILL_GRACE_MS = 2000; // idle timeout: SIGHUP, then SIGKILL this much later
const MAX_IDLE_MS = 30 * 24 * 3600 * 1000;

/** An error whose code the host maps to a status. */
export class SessionError extends Error {
  constructor(message: string, readonly code?: ErrorCode) {
    super(message);
  }
}

/** The last `cap` bytes of output. */
export class Scrollback {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly cap = SESSION_SCROLLBACK) {}

  add(b: Buffer): void {
    if (b.length >= this.cap) {
      this.parts = [Buffer.from(b.subarray(b.length - this.cap))];
      this.size = this.cap;
      return;
    }
    this.parts.push(b);
    this.size += b.length;
    while (this.size > this.cap) {
      const over = this.size - this.cap;
      const first = this.parts[0];
      if (first.length <= over) {
        this.parts.shift();
        this.size -= first.length;
      } else {
        this.parts[0] = first.subarray(over);
        this.size -= over;
      }
    }
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

/** One stream watching a session: output under the stream's credit, like an exec stream. */
export class Viewer implements Pausable {
  private credit = STREAM_WINDOW;
  private held: Buffer[] = [];
  private congested = false;
  private pendingEnd: AgentMessage | null = null;
  ended = false;

  constructor(readonly stream: number, private readonly out: Out, readonly session: TermSession) {}

  /** True while this viewer cannot take more output now (the session's pipe is paused for it). */
  get blocked(): boolean {
    return !this.ended && (this.congested || this.credit <= 0 || this.held.length > 0);
  }

  push(b: Buffer): void {
    if (this.ended || b.length === 0) return;
    this.held.push(b);
    this.flush();
  }

  grant(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) return;
    this.credit = Math.min(this.credit + bytes, STREAM_WINDOW);
    this.flush();
  }

  pause(): void {
    this.congested = true;
    this.session.updateFlow();
  }

  resume(): void {
    this.congested = false;
    this.flush();
  }

  /** Stdin for the session; the credit goes back once its pipe took it. */
  stdin(data: Buffer): void {
    this.session.write(data, () => {
      if (!this.ended && this.out.open) this.out.send(encodeControl(this.stream, { type: "credit", bytes: data.length }));
    });
  }

  /** End the stream with `msg` after the output it still holds. */
  finish(msg: AgentMessage): void {
    if (this.ended) return;
    this.pendingEnd = msg;
    if (this.held.length === 0 || !this.out.open) this.end(msg);
  }

  /** End the stream now with `msg` (held output dropped). */
  end(msg: AgentMessage): void {
    if (this.ended) return;
    this.drop();
    if (this.out.open) this.out.send(encodeControl(this.stream, msg));
  }

  /** The connection is gone: forget this viewer, no message. */
  drop(): void {
    if (this.ended) return;
    this.ended = true;
    this.held = [];
    this.session.removeViewer(this);
  }

  private flush(): void {
    while (this.held.length && this.credit > 0 && !this.ended && this.out.open) {
      const h = this.held[0];
      const n = Math.min(h.length, this.credit);
      for (let off = 0; off < n; off += CHUNK) {
        this.out.send(encodeFrame(FrameKind.Stdout, this.stream, h.subarray(off, Math.min(off + CHUNK, n))), this);
      }
      this.credit -= n;
      if (n === h.length) this.held.shift();
      else this.held[0] = h.subarray(n);
    }
    if (this.held.length === 0 && this.pendingEnd) return this.end(this.pendingEnd);
    this.session.updateFlow();
  }
}

export class TermSession {
  // node:crypto loads only when a session starts: at boot it would cost lohar milliseconds.
  readonly id = "s" + process.getBuiltinModule("node:crypto").randomBytes(9).toString("base64url").replace(/[-_]/g, "x").toLowerCase();
  readonly startedAt = new Date();
  private child: ChildProcess | null = null;
  private pgid = 0;
  private env: Record<string, string> = {};
  private readonly scrollback = new Scrollback();
  private readonly viewers = new Set<Viewer>();
  private idleTimer: NodeJS.Timeout | null = null;
  private exit: { exit_code: number; signal?: string } | null = null;
  private endedAt: Date | null = null;
  private idleKilled = false;

  constructor(readonly cmd: string[], readonly tty: boolean, readonly keep: boolean, readonly idleMs: number) {}

  /** Starts the command; throws a SessionError naming the rule broken. */
  start(spec: SessionStart, sandbox: Sandbox): void {
    let p;
    try {
      p = prepare({ cmd: this.cmd, env: spec.env, cwd: spec.cwd, tty: this.tty, rows: spec.rows, cols: spec.cols }, sandbox);
    } catch (e) {
      throw new SessionError((e as Error).message);
    }
    this.env = p.env;
    let child: ChildProcess;
    try {
      child = startCommand(p, this.tty);
    } catch (e) {
      throw new SessionError(`session ${p.name}: ${errText(e)}`);
    }
    if (child.pid === undefined) {
      // spawn failed synchronously-late (ENOENT...): 'error' follows; report it now.
      child.on("error", () => {});
      throw new SessionError(`session ${p.name}: cannot start the command`);
    }
    child.on("error", () => {});
    this.child = child;
    this.pgid = child.pid;
    child.stdin?.on("error", () => {}); // EPIPE after the command ended
    for (const s of [child.stdout!, child.stderr!]) s.on("data", (b: Buffer) => this.output(b));
    let ended = 0;
    let grace: NodeJS.Timeout | null = null;
    let exitSeen = false;
    const done = () => {
      if (grace) clearTimeout(grace);
      this.exited();
    };
    const onEnd = () => {
      if (++ended === 2 && exitSeen) done();
    };
    child.stdout!.on("end", onEnd);
    child.stderr!.on("end", onEnd);
    child.on("exit", (code, signal) => {
      this.exit = { exit_code: code ?? 0 };
      if (signal) this.exit = { exit_code: 128 + (osConstants.signals[signal] ?? 0), signal };
      exitSeen = true;
      if (ended === 2) return done();
      // A background child may hold the pipes open: wait a little, but not for output a viewer is slow to take.
      const wait = () => {
        grace = setTimeout(() => {
          if ([child.stdout!, child.stderr!].some((s) => !s.readableEnded && s.isPaused())) wait();
          else done();
        }, STDIO_GRACE_MS);
      };
      wait();
    });
    this.armIdle();
  }

  get running(): boolean {
    return this.endedAt === null;
  }

  info(): SessionInfo {
    return {
      id: this.id,
      cmd: this.cmd,
      tty: this.tty,
      started_at: this.startedAt.toISOString(),
      state: this.running ? "running" : "exited",
      ...(this.exit && !this.running ? { exit_code: this.exit.exit_code, ...(this.exit.signal ? { signal: this.exit.signal } : {}) } : {}),
      ...(this.endedAt ? { ended_at: this.endedAt.toISOString() } : {}),
      keep: this.keep,
      idle_timeout_ms: this.idleMs,
      viewers: this.viewers.size,
      ...(this.idleKilled ? { idle_killed: true } : {}),
    };
  }

  /**
   * A stream starts watching: the scrollback first (replay), then live output
   * (follow). Without follow, or once the command ended, the stream ends after the scrollback.
   */
  attach(stream: number, out: Out, replay: boolean, follow: boolean): Viewer {
    const v = new Viewer(stream, out, this);
    out.send(encodeControl(stream, { type: "session", session: this.info() }));
    if (follow && this.running) {
      this.viewers.add(v);
      this.disarmIdle();
    }
    if (replay) v.push(this.scrollback.bytes());
    if (!this.running) v.finish(this.exitMsg());
    else if (!follow) v.finish({ type: "detached" });
    return v;
  }

  removeViewer(v: Viewer): void {
    if (!this.viewers.delete(v)) return;
    this.armIdle();
    this.updateFlow();
  }

  write(data: Buffer, taken: () => void): void {
    const s = this.child?.stdin;
    if (s && !s.destroyed && !s.writableEnded && this.running) s.write(data, taken);
    else taken();
  }

  resize(rows: number, cols: number): void {
    if (!this.tty || !this.running || !this.child?.pid) return;
    if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows <= 0 || cols <= 0 || rows > 10000 || cols > 10000) return;
    resizeTty(this.child.pid, rows, cols, this.env);
  }

  /** Sends a signal to the session's process group; false if the name is not a signal. */
  signal(name: string): boolean {
    if (typeof name !== "string" || !(name in osConstants.signals)) return false;
    if (this.running && this.pgid) {
      try {
        process.kill(-this.pgid, name as NodeJS.Signals);
      } catch {
        // the group is already gone
      }
    }
    return true;
  }

  /** Pause the command's output while any viewer cannot take more. */
  updateFlow(): void {
    const c = this.child;
    if (!c) return;
    let stop = false;
    for (const v of this.viewers) if (v.blocked) stop = true;
    for (const s of [c.stdout, c.stderr]) {
      if (!s) continue;
      if (stop) s.pause();
      else s.resume();
    }
  }

  private output(b: Buffer): void {
    this.scrollback.add(b);
    for (const v of this.viewers) v.push(b);
  }

  private exitMsg(): AgentMessage {
    return { type: "exit", ...(this.exit ?? { exit_code: 0 }) };
  }

  private exited(): void {
    if (this.endedAt) return;
    this.endedAt = new Date();
    this.disarmIdle();
    const msg = this.exitMsg();
    for (const v of [...this.viewers]) v.finish(msg);
    this.updateFlow(); // output arriving later (background children) only goes to the scrollback
  }

  private armIdle(): void {
    if (this.keep || !this.running || this.viewers.size > 0 || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (!this.running || this.viewers.size > 0) return;
      this.idleKilled = true;
      this.signal("SIGHUP");
      setTimeout(() => { if (this.running) this.signal("SIGKILL"); }, KILL_GRACE_MS).unref();
    }, this.idleMs);
    this.idleTimer.unref();
  }

  private disarmIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}

function defaultShell(): string[] {
  return [existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh", "-l"];
}

/** Every session of this sandbox (one lohar process). */
export class SessionTable {
  private readonly all = new Map<string, TermSession>();

  start(spec: SessionStart, sandbox: Sandbox): TermSession {
    const cmd = spec.cmd === undefined ? defaultShell() : spec.cmd;
    if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === "string")) throw new SessionError("session: cmd must be a non-empty array of strings");
    let idle = SESSION_IDLE_MS;
    if (spec.idle_timeout_ms !== undefined) {
      if (!Number.isSafeInteger(spec.idle_timeout_ms) || spec.idle_timeout_ms <= 0 || spec.idle_timeout_ms > MAX_IDLE_MS) {
        throw new SessionError(`session: idle_timeout_ms must be an integer between 1 and ${MAX_IDLE_MS}`);
      }
      idle = spec.idle_timeout_ms;
    }
    this.makeRoom();
    const s = new TermSession(cmd, spec.tty === true, spec.keep === true, idle);
    s.start(spec, sandbox);
    this.all.set(s.id, s);
    return s;
  }

  get(id: unknown): TermSession {
    const s = typeof id === "string" ? this.all.get(id) : undefined;
    if (!s) throw new SessionError(`no session ${JSON.stringify(String(id).slice(0, 64))}`, "no_session");
    return s;
  }

  list(): TermSession[] {
    return [...this.all.values()];
  }

  /** At MAX_SESSIONS, forget the oldest ended session; if none ended, refuse. */
  private makeRoom(): void {
    if (this.all.size < MAX_SESSIONS) return;
    for (const s of this.all.values()) {
      if (!s.running) {
        this.all.delete(s.id);
        return;
      }
    }
    throw new SessionError(`too many sessions: a sandbox runs at most ${MAX_SESSIONS}; kill one first`, "too_many_sessions");
  }
}

export const sessions = new SessionTable();
