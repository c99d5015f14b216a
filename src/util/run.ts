// Runs a host tool with a cleared, explicit environment and collects its
// output. Rejects on a non-zero exit with the command line and the tail of
// stderr: callers pass only paths and flags (never a value), so both are safe
// to show.
//
// Every tool started here dies with the process that started it (see
// tiedToParent): a daemon or `bhatti image build` killed half way leaves no
// helper behind. Sandbox processes are started elsewhere (vm/proc.ts) and are
// never tied: they outlive daemon restarts on purpose.
import { spawn } from "node:child_process";

/** The base environment of every host tool bhatti starts. */
export const TOOL_ENV: Record<string, string> = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" };

/** Exit code of a tied tool whose parent died before the tool could start. */
export const ORPHANED_EXIT = 97;

// sh's $PPID is its parent when sh started, i.e. after setpriv has set the
// parent-death signal: if that parent is no longer us, we died in between (the
// signal was armed too late to fire) and the tool must not start.
const GUARD = `[ "$PPID" = "$0" ] || exit ${ORPHANED_EXIT}; exec "$@"`;

/**
 * The command line that runs cmd as this process's child with SIGKILL as its
 * parent-death signal (util-linux setpriv). The signal fires when the thread
 * that forked the child exits; Node forks from its main thread, so that is
 * when this process exits, however it exits (SIGKILL included). setpriv and sh
 * exec, so the tool keeps the pid spawn() reports. The signal reaches the tool
 * only, not processes it forks: use `tree` in RunOptions for tools with helpers.
 */
export function tiedToParent(cmd: string, args: string[], parent = process.pid): [string, string[]] {
  return ["setpriv", ["--pdeathsig", "KILL", "--", "/bin/sh", "-c", GUARD, String(parent), cmd, ...args]];
}

/**
 * Like tiedToParent for a shell script of the caller's own: the guard is its
 * first line, so there is one shell fewer between setpriv and the tools. In
 * the script "$@" are args. Callers build the script from fixed text and
 * quoted paths only.
 */
export function tiedScript(script: string, args: string[], parent = process.pid): [string, string[]] {
  return ["setpriv", ["--pdeathsig", "KILL", "--", "/bin/sh", "-c", `[ "$PPID" = "$0" ] || exit ${ORPHANED_EXIT}\n${script}`, String(parent), ...args]];
}

/**
 * Like tiedToParent, and the tool runs as init of its own pid namespace, so
 * everything it forks (dpkg-deb's tar, apt's methods) dies with it. unshare
 * ignores SIGTERM while it waits, so such a tool is stopped with SIGKILL.
 */
export function treeTiedToParent(cmd: string, args: string[], parent = process.pid): [string, string[]] {
  return tiedToParent("unshare", ["--pid", "--fork", "--kill-child=KILL", "--", cmd, ...args], parent);
}

export interface RunResult { stdout: string; stderr: string; code: number }

export interface RunOptions {
  cwd?: string;
  input?: string; // fed on stdin; otherwise stdin is /dev/null
  env?: Record<string, string>; // on top of TOOL_ENV
  allowFail?: boolean; // resolve with the exit code instead of rejecting
  timeoutMs?: number; // SIGTERM (SIGKILL with tree) after this long
  tree?: boolean; // the tool starts helpers of its own: kill them with it (pid namespace, see treeTiedToParent)
  fds?: number[]; // open file descriptors handed to the child as its fds 3, 4, …
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [file, argv] = (opts.tree ? treeTiedToParent : tiedToParent)(cmd, args);
    const child = spawn(file, argv, {
      cwd: opts.cwd,
      env: { ...TOOL_ENV, ...opts.env },
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe", ...(opts.fds ?? [])],
      timeout: opts.timeoutMs,
      killSignal: opts.tree ? "SIGKILL" : "SIGTERM",
    });
    // First: a spawn that fails (EMFILE, ENOENT…) has no stdio, and its
    // 'error' comes on the next tick; unheard, it would kill the daemon.
    child.on("error", (e) => reject(new Error(`${cmd}: ${e.message}`)));
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.on("close", (code, signal) => {
      const res = { stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), code: code ?? 128 };
      if (res.code === 0 || opts.allowFail) return resolve(res);
      const tail = res.stderr.trim().split("\n").slice(-5).join("\n");
      reject(new Error(`${cmd} ${args.join(" ")} failed (${signal ?? `exit ${code}`})${tail ? `: ${tail}` : ""}`));
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
