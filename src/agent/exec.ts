// One exec stream: a command run as the sandbox user in its own session and
// process group, its stdin/stdout/stderr carried as frames. Output is sent only
// against the host's credit (src/protocol/agent.ts, flow control): out of
// credit, or with the connection congested, the command's pipes are paused and
// the command blocks on write. Stdin is granted back to the host as the
// command's pipe takes it.
import type { ChildProcess } from "node:child_process";
import { constants as osConstants } from "node:os";
import { FrameKind, STREAM_WINDOW, encodeFrame, encodeControl, errnoCode, type ExecStart, type ExecExit, type AgentMessage, type ErrorCode } from "../protocol/agent.js";
import type { Sandbox } from "./boot.js";
import type { Out, Pausable } from "./out.js";
import { errText } from "./log.js";
import { resizeTty } from "./tty.js";
import { CommandRefused, prepare, startCommand, type Prepared } from "./command.js";

const CHUNK = 64 * 1024;
const STDIO_GRACE_MS = 200; // after exit, how long to wait for output a background child keeps open
/** Exit statuses for a command that could not be started, as shells use them. */
const SPAWN_STATUS: Record<string, number> = { ENOENT: 127, ENOTDIR: 127, EACCES: 126, ENOEXEC: 126, EISDIR: 126, EPERM: 126 };


export class ExecStream implements Pausable {
  private child: ChildProcess | null = null;
  private pgid = 0;
  private finished = false;
  private timedOut = false;
  private timer: NodeJS.Timeout | null = null;
  private env: Record<string, string> = {};
  private credit = STREAM_WINDOW; // output bytes the host will still take
  private held: { kind: FrameKind; buf: Buffer }[] = []; // read from a pipe, waiting for credit (at most a chunk per pipe)
  private congested = false; // the session's connection is full
  private discard = false; // cancelled or detached: output is read and dropped
  private pendingExit: ExecExit | null = null;

  constructor(private readonly id: number, private out: Out | null) {}

  start(spec: ExecStart, sandbox: Sandbox): void {
    let p: Prepared;
    try {
      p = prepare(spec, sandbox);
    } catch (e) {
      return this.fail((e as Error).message, e instanceof CommandRefused ? e.code : "bad_request");
    }
    const name = p.name;
    this.env = p.env;
    let child: ChildProcess;
    try {
      child = startCommand(p, !!spec.stdin);
    } catch (e) {
      return this.fail(`exec ${name}: ${errText(e)}`, errnoCode(e));
    }
    this.child = child;
    child.on("error", (e) => {
      // spawn failure (ENOENT, EACCES, ...): no process exists.
      if (this.pgid) return;
      const status = SPAWN_STATUS[(e as NodeJS.ErrnoException).code ?? ""];
      if (status) this.spawnFailed(`exec ${name}: ${status === 127 ? "command not found" : "cannot be run"} (${errText(e)})`, status);
      else this.fail(`exec ${name}: ${errText(e)}`, errnoCode(e));
    });
    if (child.pid === undefined) return; // 'error' follows
    this.pgid = child.pid;
    child.stdin?.on("error", () => {}); // EPIPE when the command does not read its input
    this.pipe(child.stdout!, FrameKind.Stdout);
    this.pipe(child.stderr!, FrameKind.Stderr);
    if (spec.timeout_ms && spec.timeout_ms > 0) {
      this.timer = setTimeout(() => {
        this.timedOut = true;
        this.killGroup("SIGKILL");
      }, spec.timeout_ms);
    }

    let ended = 0;
    let exitMsg: ExecExit | null = null;
    let grace: NodeJS.Timeout | null = null;
    const finish = () => {
      if (grace) clearTimeout(grace);
      if (exitMsg) this.exitAfterOutput(exitMsg);
    };
    const onEnd = () => {
      if (++ended === 2 && exitMsg) finish();
    };
    child.stdout!.on("end", onEnd);
    child.stderr!.on("end", onEnd);
    child.on("exit", (code, signal) => {
      if (this.timer) clearTimeout(this.timer);
      const msg: ExecExit = { type: "exit", exit_code: code ?? 0 };
      if (signal) {
        msg.exit_code = 128 + (osConstants.signals[signal] ?? 0);
        msg.signal = signal;
      }
      if (this.timedOut) msg.timed_out = true;
      exitMsg = msg;
      if (ended === 2) return finish();
      // A background child may hold the pipes open: wait a little, but never
      // cut output we are merely slow to forward (a source paused by backpressure).
      const wait = () => {
        grace = setTimeout(() => {
          if (!this.discard && [child.stdout!, child.stderr!].some((s) => !s.readableEnded && s.isPaused())) wait();
          else finish();
        }, STDIO_GRACE_MS);
      };
      wait();
    });
  }

  /** Stdin from the host; its credit goes back once the command's pipe took it (or it was dropped). */
  stdin(data: Buffer): void {
    const s = this.child?.stdin;
    const grant = () => {
      if (!this.finished && this.out?.open) this.out.send(encodeControl(this.id, { type: "credit", bytes: data.length }));
    };
    if (s && !s.destroyed && !s.writableEnded) s.write(data, grant);
    else grant();
  }

  /** The host took `bytes` more output. */
  grant(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) return;
    this.credit = Math.min(this.credit + bytes, STREAM_WINDOW);
    this.flush();
  }

  /** The host gave up on this command: kill its process group, drop its output, still answer with its exit. */
  cancel(): void {
    this.dropOutput();
    this.eof();
    this.killGroup("SIGKILL");
  }

  /** Session congestion (Pausable). */
  pause(): void {
    this.congested = true;
    this.updateFlow();
  }

  resume(): void {
    this.congested = false;
    this.updateFlow();
  }

  eof(): void {
    const s = this.child?.stdin;
    if (s && !s.destroyed && !s.writableEnded) s.end();
  }

  signal(name: string): void {
    if (typeof name !== "string" || !(name in osConstants.signals)) return; // unknown: ignore
    this.killGroup(name as NodeJS.Signals);
  }

  resize(rows: number, cols: number): void {
    if (this.child?.pid && rows > 0 && cols > 0) resizeTty(this.child.pid, rows, cols, this.env);
  }

  /** The session is gone: keep the process, drop its output, close its stdin. */
  detach(): void {
    this.out = null;
    this.eof();
    this.dropOutput();
  }

  get done(): boolean {
    return this.finished;
  }

  private killGroup(sig: NodeJS.Signals): void {
    if (!this.pgid) return;
    try {
      process.kill(-this.pgid, sig);
    } catch {
      // the group is already gone
    }
  }

  private pipe(src: NodeJS.ReadableStream, kind: FrameKind): void {
    src.on("data", (chunk: Buffer) => {
      if (this.finished || this.discard || !this.out?.open) return;
      this.held.push({ kind, buf: chunk });
      this.flush();
    });
  }

  /** Send held output as far as the credit goes; pause or resume the pipes accordingly. */
  private flush(): void {
    while (this.held.length && this.credit > 0 && !this.discard && this.out?.open) {
      const h = this.held[0];
      const n = Math.min(h.buf.length, this.credit);
      for (let off = 0; off < n; off += CHUNK) {
        this.out.send(encodeFrame(h.kind, this.id, h.buf.subarray(off, Math.min(off + CHUNK, n))), this);
      }
      this.credit -= n;
      if (n === h.buf.length) this.held.shift();
      else h.buf = h.buf.subarray(n);
    }
    this.updateFlow();
    if (this.held.length === 0 && this.pendingExit) this.reply(this.pendingExit);
  }

  private updateFlow(): void {
    const c = this.child;
    if (!c) return;
    const stop = !this.discard && !this.finished && (this.congested || this.credit <= 0 || this.held.length > 0);
    for (const s of [c.stdout, c.stderr]) {
      if (!s) continue;
      if (stop) s.pause();
      else s.resume();
    }
  }

  private dropOutput(): void {
    this.discard = true;
    this.held = [];
    this.updateFlow();
    if (this.pendingExit) this.reply(this.pendingExit);
  }

  /** The exit goes out after every byte of output the host may still take. */
  private exitAfterOutput(msg: ExecExit): void {
    this.pendingExit = msg;
    if (this.held.length === 0 || this.discard || !this.out?.open) this.reply(msg);
  }

  /** As a shell does: the reason on stderr, then exit 127 (not found) or 126 (found, cannot be run). */
  private spawnFailed(message: string, exitCode: number): void {
    if (this.out?.open) this.held.push({ kind: FrameKind.Stderr, buf: Buffer.from(`${message}\n`) });
    this.exitAfterOutput({ type: "exit", exit_code: exitCode });
    this.flush();
  }

  private fail(message: string, code: ErrorCode = "io_error"): void {
    this.reply({ type: "error", message, code });
  }

  private reply(msg: AgentMessage): void {
    if (this.finished) return;
    this.finished = true;
    this.held = [];
    if (this.out?.open) this.out.send(encodeControl(this.id, msg));
    // Output still arriving from background children after the exit is dropped.
    this.updateFlow();
  }
}
