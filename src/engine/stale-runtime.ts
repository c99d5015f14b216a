// Runtime dirs (/run/bhatti/<hash of a data dir>/) outlive a daemon that was
// killed, and tmpfs holds them until the host reboots. At start a daemon
// removes those whose data dir no longer exists and in which nothing can still
// be running. Every other daemon on the host has a data dir that exists, so
// its runtime dir is never touched; a dir that cannot be proven stale (no
// record of its data dir, runc state, a process, mount or loop device using
// it) is left alone and reported.
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, unlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { runtimeDirFor } from "../util/paths.js";
import { DATADIR_RECORD, loopBackingFiles, mountPoints, RUN_BHATTI, UID_SLOTS_DIR } from "./runtime.js";

export interface RuntimeSweep {
  removed: { dir: string; dataDir: string; uidSlots: number }[];
  kept: { dir: string; why: string }[]; // could not be proven stale
}

const HASH_DIR = /^[0-9a-f]{12}$/;

/** Paths every live process names in its argv or has as its cwd. */
function processPaths(): { pid: number; text: string }[] {
  const out: { pid: number; text: string }[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let text = "";
    try { text += readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " "); } catch { continue; }
    try { text += ` ${readlinkSync(`/proc/${d}/cwd`)}/`; } catch { /* kernel thread or gone */ }
    out.push({ pid: Number(d), text });
  }
  return out;
}

/** Why dir (whose data dir is gone) may still be in use, or null if nothing uses it. */
function inUse(dir: string, procs: { pid: number; text: string }[], mounts: string[], loops: string[]): string | null {
  const below = (p: string): boolean => p === dir || p.startsWith(`${dir}/`);
  let containers: string[] = [];
  try {
    containers = readdirSync(join(dir, "runc")).filter((n) => statSync(join(dir, "runc", n)).isDirectory());
  } catch { /* no runc state */ }
  if (containers.length) return `runc state for container(s) ${containers.join(", ")}`;
  const user = procs.find((p) => p.pid !== process.pid && p.text.includes(`${dir}/`));
  if (user) return `process ${user.pid} uses it`;
  if (mounts.some(below)) return "something is mounted in it";
  if (loops.some(below)) return "a loop device is backed by a file in it";
  return null;
}

/** Frees the host-global uid slots the dir's sandboxes held (owner "<dir>:<id>"). */
function freeSlotsOf(dir: string): number {
  let n = 0;
  let slots: string[] = [];
  try { slots = readdirSync(UID_SLOTS_DIR); } catch { return 0; }
  for (const s of slots) {
    try {
      if (!readFileSync(join(UID_SLOTS_DIR, s), "utf8").startsWith(`${dir}:`)) continue;
      unlinkSync(join(UID_SLOTS_DIR, s));
      n++;
    } catch { /* freed meanwhile */ }
  }
  return n;
}

/** Removes the stale runtime dirs under /run/bhatti other than own; never throws. */
export function sweepStaleRuntimeDirs(own: string): RuntimeSweep {
  const res: RuntimeSweep = { removed: [], kept: [] };
  let names: string[];
  try { names = readdirSync(RUN_BHATTI); } catch { return res; }
  let procs: { pid: number; text: string }[] | null = null;
  let mounts: string[] | null = null;
  let loops: string[] | null = null;
  for (const name of names) {
    const dir = join(RUN_BHATTI, name);
    if (!HASH_DIR.test(name) || dir === own) continue; // uid-slots/, vm-accel.json, test dirs, ours
    let dataDir: string;
    try {
      dataDir = readFileSync(join(dir, DATADIR_RECORD), "utf8").trim();
    } catch {
      res.kept.push({ dir, why: `no ${DATADIR_RECORD} record` });
      continue;
    }
    if (basename(runtimeDirFor(dataDir)) !== name) {
      res.kept.push({ dir, why: `its ${DATADIR_RECORD} record does not match its name` });
      continue;
    }
    if (existsSync(dataDir)) continue; // a daemon's, live or stopped
    try {
      procs ??= processPaths();
      mounts ??= mountPoints();
      loops ??= loopBackingFiles();
      const why = inUse(dir, procs, mounts, loops);
      if (why) {
        res.kept.push({ dir, why: `data dir ${dataDir} is gone but ${why}` });
        continue;
      }
      if (existsSync(dataDir)) continue; // created again meanwhile
      rmSync(dir, { recursive: true, force: true });
      res.removed.push({ dir, dataDir, uidSlots: freeSlotsOf(dir) });
    } catch (e) {
      res.kept.push({ dir, why: `could not check or remove it: ${(e as Error).message}` });
    }
  }
  return res;
}
