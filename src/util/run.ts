// Runs a host tool with a cleared, explicit environment and collects its
// output. Rejects on a non-zero exit with the command line and the tail of
// stderr: callers pass only paths and flags (never a value), so both are safe
// to show.
import { spawn } from "node:child_process";

/** The base environment of every host tool bhatti starts. */
export const TOOL_ENV: Record<string, string> = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" };

export interface RunResult { stdout: string; stderr: string; code: number }

export interface RunOptions {
  cwd?: string;
  input?: string; // fed on stdin; otherwise stdin is /dev/null
  env?: Record<string, string>; // on top of TOOL_ENV
  allowFail?: boolean; // resolve with the exit code instead of rejecting
  timeoutMs?: number; // SIGTERM after this long
  fds?: number[]; // open file descriptors handed to the child as its fds 3, 4, …
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...TOOL_ENV, ...opts.env },
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe", ...(opts.fds ?? [])],
      timeout: opts.timeoutMs,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on("close", (code, signal) => {
      const res = { stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), code: code ?? 128 };
      if (res.code === 0 || opts.allowFail) return resolve(res);
      const tail = res.stderr.trim().split("\n").slice(-5).join("\n");
      reject(new Error(`${cmd} ${args.join(" ")} failed (${signal ?? `exit ${code}`})${tail ? `: ${tail}` : ""}`));
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}
