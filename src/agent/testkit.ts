// Test helper: run the real bundled lohar (dist/lohar.js) on the host as root
// over a unix socket, with a config dir in a fresh temp dir.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, chownSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { AgentClient } from "../engine/agent-client.js";
import type { ConfigDrive } from "../protocol/agent.js";

export const LOHAR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "lohar.js");

export interface Lohar {
  dir: string; // temp dir, owned by uid 1000 (commands can write in it)
  socket: string;
  proc: ChildProcess;
  stderr: () => string;
  connect(token?: string): Promise<AgentClient>;
  stop(): Promise<void>;
}

export function config(over: Partial<ConfigDrive> = {}): ConfigDrive {
  return { sandbox_id: "sbtest", hostname: "sbtest", token: "tok-" + Math.random().toString(36).slice(2), env: {}, files: [], ...over };
}

export async function startLohar(cfg: ConfigDrive, opts: { env?: NodeJS.ProcessEnv; extraArgs?: string[]; configDir?: string } = {}): Promise<Lohar> {
  const dir = mkdtempSync(join(tmpdir(), "lohar-test-"));
  chownSync(dir, 1000, 1000);
  const configDir = opts.configDir ?? join(dir, "config");
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, "config.json"), JSON.stringify(cfg));
  const socket = join(dir, "agent", "lohar.sock");
  const args = [LOHAR, "--transport", "unix", "--socket", socket, "--config-dir", configDir, "--no-hostname", ...(opts.extraArgs ?? ["--no-unmount"])];
  const proc = spawn(process.execPath, args, { env: opts.env ?? {}, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const l: Lohar = {
    dir,
    socket,
    proc,
    stderr: () => err,
    connect: (token = cfg.token) => AgentClient.open(connect(socket), token, 5000),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // Wait for the socket to accept.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`lohar exited ${proc.exitCode}: ${err}`);
    }
    const ok = await new Promise<boolean>((r) => {
      const s = connect(socket);
      s.once("connect", () => { s.destroy(); r(true); });
      s.once("error", () => r(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`lohar did not listen: ${err}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return l;
}

/** Run a command to completion, collecting output. */
export async function run(c: AgentClient, cmd: string[], extra: Record<string, unknown> = {}): Promise<{ stdout: Buffer; stderr: Buffer; exit: import("../protocol/agent.js").ExecExit }> {
  const e = c.exec({ cmd, cwd: "/", ...extra });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  e.on("stdout", (d: Buffer) => out.push(d));
  e.on("stderr", (d: Buffer) => err.push(d));
  const exit = await e.done;
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err), exit };
}
