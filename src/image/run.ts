// Runs a host tool for the image builder with a cleared, explicit environment
// and collects its output. Nothing the builder runs ever sees a secret: the
// image holds none, and the environment is built here from scratch.
import { run as runTool, type RunResult } from "../util/run.js";

export type { RunResult };

export interface RunOptions {
  cwd?: string;
  input?: string;
  /** Extra variables on top of the minimal environment. */
  env?: Record<string, string>;
  /** Resolve with the exit code instead of rejecting. */
  allowFail?: boolean;
}

const PROXY_VARS = ["http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"];

export function toolEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { LC_ALL: "C" };
  // apt may need the host's proxy settings to reach its mirrors.
  for (const k of PROXY_VARS) {
    const v = process.env[k];
    if (v) env[k] = v;
  }
  return { ...env, ...extra };
}

/**
 * src/util/run.ts with the builder's environment (proxies for apt) and no
 * timeout: packing an image takes a while. Each tool runs in its own pid
 * namespace (`tree`): dpkg-deb's tar and apt's download methods die with it
 * when the builder dies.
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runTool(cmd, args, { cwd: opts.cwd, input: opts.input ?? "", env: toolEnv(opts.env), tree: true, allowFail: opts.allowFail });
}
