// Accelerator probe QEMUs left behind by a daemon that died before it could
// end them (a daemon from before probes were tied to it, or one killed in the
// instant between starting a probe and arming its parent-death signal). On
// this kind of host a KVM probe hangs silently, so such a process would run
// forever. A probe is recognised by its argv (PROBE_FLAG on the kernel command
// line, which no sandbox QEMU carries) and ended only when orphaned: its
// parent is gone (pid 1, or a subreaper that is not Node), so a probe that a
// live daemon or test on this host is running is never touched.
import { readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import { PROBE_FLAG, QEMU_BIN } from "./qemu.js";
import { listPids } from "../../util/proc.js";

export interface StrayProbe {
  pid: number;
  ppid: number;
  accel: string;
  kernel: string;
}

/** True for the argv of an accelerator probe QEMU (see accel.ts bootToMarker). */
export function isProbeArgv(argv: string[]): boolean {
  if (basename(argv[0] ?? "") !== QEMU_BIN) return false;
  const i = argv.indexOf("-append");
  return i >= 0 && (argv[i + 1] ?? "").split(" ").includes(PROBE_FLAG);
}

function argvOf(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
  } catch {
    return null;
  }
}

/** Parent pid and state letter from /proc/<pid>/stat, or null if gone. */
function statOf(pid: number): { ppid: number; state: string } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { state: f[0], ppid: Number(f[1]) };
  } catch {
    return null;
  }
}

/** A probe's parent is always the Node process that started it (setpriv and sh exec). */
function isNode(pid: number): boolean {
  try {
    return /^node/.test(basename(readlinkSync(`/proc/${pid}/exe`)));
  } catch {
    return false;
  }
}

function strayProbe(pid: number): StrayProbe | null {
  const argv = argvOf(pid);
  if (!argv || !isProbeArgv(argv)) return null;
  const st = statOf(pid);
  if (!st || st.state === "Z") return null;
  if (st.ppid > 1 && isNode(st.ppid)) return null; // a live daemon's (or test's) probe
  const at = (flag: string): string => argv[argv.indexOf(flag) + 1] ?? "?";
  return { pid, ppid: st.ppid, accel: at("-accel"), kernel: at("-kernel") };
}

export function findStrayProbes(): StrayProbe[] {
  const out: StrayProbe[] = [];
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    const p = strayProbe(pid);
    if (p) out.push(p);
  }
  return out;
}

/** SIGKILLs every stray probe (each checked again just before) and returns those it ended. */
export function endStrayProbes(): StrayProbe[] {
  const ended: StrayProbe[] = [];
  for (const p of findStrayProbes()) {
    if (!strayProbe(p.pid)) continue; // exited, or the pid was reused meanwhile
    try {
      process.kill(p.pid, "SIGKILL");
      ended.push(p);
    } catch {
      // already gone
    }
  }
  return ended;
}
