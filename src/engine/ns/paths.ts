// Where an ns sandbox keeps its things: runtime (tmpfs) and persistent.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { EngineEnv } from "../types.js";
import { sandboxRuntimeDir } from "../runtime.js";

export interface NsPaths {
  sb: string; // <rt>/sb/<id>: tmpfs, holds everything below except upper/work
  bundle: string; // runc bundle dir (config.json)
  rootfs: string; // overlay mount point
  agentDir: string; // bind-mounted at GUEST.agentDir
  socket: string; // host path of lohar's socket
  log: string; // container stdio (lohar's log, runc errors)
  pidFile: string;
  data: string; // <dataDir>/sandboxes/<id>
  upper: string;
  work: string;
  runcRoot: string; // <rt>/runc, runc's state for this daemon
}

export function nsPaths(env: EngineEnv, id: string): NsPaths {
  if (!/^[a-z0-9]+$/.test(id)) throw new Error(`bad sandbox id ${JSON.stringify(id)}`);
  const sb = sandboxRuntimeDir(env.runtimeDir, id);
  const data = join(env.dataDir, "sandboxes", id);
  return {
    sb,
    bundle: join(sb, "bundle"),
    rootfs: join(sb, "rootfs"),
    agentDir: join(sb, "agent"),
    socket: join(sb, "agent", "lohar.sock"),
    log: join(sb, "lohar.log"),
    pidFile: join(sb, "pid"),
    data,
    upper: join(data, "upper"),
    work: join(data, "work"),
    runcRoot: join(env.runtimeDir, "runc"),
  };
}

/** Host cgroup directories of a sandbox's cgroup path (e.g. /bhatti/<instance>/<id>) that still exist (v1: one per controller; v2: one). */
export function cgroupDirs(cgroup: string): string[] {
  const root = "/sys/fs/cgroup";
  const out: string[] = [];
  const rel = cgroup.replace(/^\/+/, "");
  const candidates = [join(root, rel)];
  try {
    for (const c of readdirSync(root)) candidates.push(join(root, c, rel));
  } catch {
    // no cgroupfs
  }
  for (const c of candidates) if (existsSync(c)) out.push(c);
  return out;
}
