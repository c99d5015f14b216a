// One exec stream: a command run as the sandbox user in its own session and
// process group, its stdin/stdout/stderr carried as frames.
import { spawn, type ChildProcess } from "node:child_process";
import { statSync } from "node:fs";
import { constants as osConstants } from "node:os";
import type { Readable } from "node:stream";
import { GUEST, FrameKind, encodeFrame, encodeControl, type ExecStart, type ExecExit, type AgentMessage } from "../protocol/agent.js";
import type { Sandbox } from "./boot.js";
import type { Out } from "./out.js";
import { asUser } from "./creds.js";
import { commandEnv } from "./env.js";
import { errText } from "./log.js";
import { findScript, ttyArgv, resizeTty } from "./tty.js";
import { defaultCwd } from "./util.js";
import { asCommand } from "./oom.js";

const CHUNK = 64 * 1024;
const STDIO_GRACE_MS = 200; // after exit, how long to wait for output a background child keeps open


export class ExecStream {
  private child: ChildProcess | null = null;
  private pgid = 0;
  private finished = false;
  private timedOut = false;
  private timer: NodeJS.Timeout | null = null;
  private env: Record<string, string> = {};

  constructor(private readonly id: number, private out: Out | null) {}

  start(spec: ExecStart, sandbox: Sandbox): void {
    const cmd = spec.cmd;
    if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === "string")) return this.fail("exec: cmd must be a non-empty array of strings");
    const name = JSON.stringify(cmd[0].slice(0, 200));
    if (cmd.some((a) => a.includes("\0"))) return this.fail(`exec ${name}: argument contains a NUL byte`);
    try {
      this.env = commandEnv(sandbox.env, spec.env);
    } catch (e) {
      return this.fail(`exec ${name}: ${(e as Error).message}`);
    }
    let cwd = defaultCwd();
    if (spec.cwd !== undefined) {
      if (typeof spec.cwd !== "string" || !spec.cwd.startsWith("/")) return this.fail(`exec ${name}: cwd must be an absolute path`);
      try {
        const st = asUser(() => statSync(spec.cwd!));
        if (!st.isDirectory()) return this.fail(`exec ${name}: cwd ${JSON.stringify(spec.cwd)}: ENOTDIR (not a directory)`);
      } catch (e) {
        return this.fail(`exec ${name}: cwd ${JSON.stringify(spec.cwd)}: ${errText(e)}`);
      }
      cwd = spec.cwd;
    }
    let argv = cmd;
    if (spec.tty) {
      const script = findScript();
      if (!script) return this.fail("tty not supported");
      argv = ttyArgv(script, cmd, spec.rows, spec.cols);
    }

    let child: ChildProcess;
    try {
      // asCommand: the OOM killer takes commands before lohar (oom.ts).
      child = asCommand(() => spawn(argv[0], argv.slice(1), {
        uid: GUEST.user.uid,
        gid: GUEST.user.gid,
        cwd,
        env: this.env,
        detached: true,
        stdio: [spec.stdin ? "pipe" : "ignore", "pipe", "pipe"],
      }));
    } catch (e) {
      return this.fail(`exec ${name}: ${errText(e)}`);
    }
    this.child = child;
    child.on("error", (e) => {
      // spawn failure (ENOENT, EACCES, ...): no process exists.
      if (!this.pgid) this.fail(`exec ${name}: ${errText(e)}`);
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
      if (exitMsg) this.reply(exitMsg);
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
          if ([child.stdout!, child.stderr!].some((s) => !s.readableEnded && s.isPaused())) wait();
          else finish();
        }, STDIO_GRACE_MS);
      };
      wait();
    });
  }

  stdin(data: Buffer): void {
    const s = this.child?.stdin;
    if (s && !s.destroyed && !s.writableEnded) s.write(data);
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
    this.child?.stdout?.resume();
    this.child?.stderr?.resume();
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

  private pipe(src: Readable, kind: FrameKind): void {
    src.on("data", (chunk: Buffer) => {
      if (this.finished || !this.out?.open) return;
      for (let off = 0; off < chunk.length; off += CHUNK) {
        this.out.send(encodeFrame(kind, this.id, chunk.subarray(off, off + CHUNK)), src);
      }
    });
  }

  private fail(message: string): void {
    this.reply({ type: "error", message });
  }

  private reply(msg: AgentMessage): void {
    if (this.finished) return;
    this.finished = true;
    if (this.out?.open) this.out.send(encodeControl(this.id, msg));
    // Output still arriving from background children after the exit is dropped.
    this.child?.stdout?.resume();
    this.child?.stderr?.resume();
  }
}
