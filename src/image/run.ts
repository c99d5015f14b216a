// Runs a host tool for the image builder with a cleared, explicit environment
// and collects its output. Nothing the builder runs ever sees a secret: the
// image holds none, and the environment is built here from scratch.
import { spawn } from "node:child_process";

export interface RunOptions {
  cwd?: string;
  input?: string;
  /** Extra variables on top of the minimal environment. */
  env?: Record<string, string>;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const PROXY_VARS = ["http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"];

export function toolEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C", LC_ALL: "C" };
  // apt may need the host's proxy settings to reach its mirrors.
  for (const k of PROXY_VARS) {
    const v = process.env[k];
    if (v) env[k] = v;
  }
  return { ...env, ...extra };
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: toolEnv(opts.env), stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on("close", (code, signal) => {
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (code === 0) return resolve({ stdout, stderr });
      const tail = stderr.trim().split("\n").slice(-5).join("\n");
      reject(new Error(`${cmd} ${args.join(" ")} failed (${signal ?? `exit ${code}`})${tail ? `: ${tail}` : ""}`));
    });
    child.stdin.end(opts.input ?? "");
  });
}
