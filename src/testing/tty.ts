// Runs the real CLI on a pseudo-terminal (util-linux `script`), feeding input
// only once the output shows `waitFor` — so nothing typed can be echoed
// before the CLI has set the terminal up.
import { spawn } from "node:child_process";
import { BIN, childEnv } from "./harness.js";

export interface TtyRun { code: number | null; output: string }

const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;

export function onTty(args: string[], opts: { env?: Record<string, string | undefined>; waitFor?: RegExp; input?: string; timeoutMs?: number } = {}): Promise<TtyRun> {
  const p = spawn("script", ["-qec", [BIN, ...args].map(quote).join(" "), "/dev/null"], { env: childEnv(opts.env), stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  let fed = false;
  const feed = () => {
    if (fed || opts.input === undefined) return;
    fed = true;
    p.stdin.write(opts.input);
  };
  const onData = (d: Buffer) => {
    output += d.toString();
    if (opts.waitFor && opts.waitFor.test(output)) feed();
  };
  p.stdout.on("data", onData);
  p.stderr.on("data", onData);
  if (!opts.waitFor) feed();
  const timer = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  return new Promise((resolve) => p.on("close", (code) => { clearTimeout(timer); resolve({ code, output }); }));
}
