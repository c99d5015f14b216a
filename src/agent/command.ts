// What exec streams and sessions share: checking a command request and
// turning it into argv, env and cwd, and starting it as the sandbox user in its
// own process group. The env is exactly exec's (env.ts): defaults < config
// drive env (secrets, then sandbox env) < the request's env.
import { spawn, type ChildProcess } from "node:child_process";
import { statSync } from "node:fs";
import { GUEST, errnoCode, type ErrorCode } from "../protocol/agent.js";
import type { Sandbox } from "./boot.js";
import { asUser } from "./creds.js";
import { commandEnv } from "./env.js";
import { errText } from "./log.js";
import { findScript, ttyArgv } from "./tty.js";
import { defaultCwd } from "./util.js";
import { asCommand } from "./oom.js";

export interface CommandSpec {
  cmd: unknown;
  env?: Record<string, string>;
  cwd?: string;
  tty?: boolean;
  rows?: number;
  cols?: number;
}

export interface Prepared {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  /** For messages: the command's first word, quoted and cut. */
  name: string;
}

/** A refused request: the message names the rule, `code` is the protocol's error code. */
export class CommandRefused extends Error {
  constructor(message: string, readonly code: ErrorCode) { super(message); }
}
const refused = (message: string, code: ErrorCode = "bad_request"): CommandRefused => new CommandRefused(message, code);

/** Checks a request; throws an Error whose message names the rule broken (never an env value). */
export function prepare(spec: CommandSpec, sandbox: Sandbox): Prepared {
  const cmd = spec.cmd;
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === "string")) throw refused("exec: cmd must be a non-empty array of strings");
  const name = JSON.stringify((cmd[0] as string).slice(0, 200));
  if (cmd.some((a: string) => a.includes("\0"))) throw refused(`exec ${name}: argument contains a NUL byte`);
  let env: Record<string, string>;
  try {
    env = commandEnv(sandbox.env, spec.env);
  } catch (e) {
    throw refused(`exec ${name}: ${(e as Error).message}`);
  }
  let cwd = defaultCwd();
  if (spec.cwd !== undefined) {
    if (typeof spec.cwd !== "string" || !spec.cwd.startsWith("/")) throw refused(`exec ${name}: cwd must be an absolute path`);
    let st;
    try {
      st = asUser(() => statSync(spec.cwd!));
    } catch (e) {
      throw refused(`exec ${name}: cwd ${JSON.stringify(spec.cwd)}: ${errText(e)}`, errnoCode(e));
    }
    if (!st.isDirectory()) throw refused(`exec ${name}: cwd ${JSON.stringify(spec.cwd)}: ENOTDIR (not a directory)`, "enotdir");
    cwd = spec.cwd;
  }
  let argv = cmd as string[];
  if (spec.tty) {
    const script = findScript();
    if (!script) throw refused("tty not supported");
    argv = ttyArgv(script, argv, spec.rows, spec.cols);
  }
  return { argv, env, cwd, name };
}

/** Starts a prepared command as uid 1000, detached into its own process group (its pid is the group id). */
export function startCommand(p: Prepared, stdin: boolean): ChildProcess {
  // asCommand: the OOM killer takes commands before lohar (oom.ts).
  return asCommand(() => spawn(p.argv[0], p.argv.slice(1), {
    uid: GUEST.user.uid,
    gid: GUEST.user.gid,
    cwd: p.cwd,
    env: p.env,
    detached: true,
    stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"],
  }));
}
