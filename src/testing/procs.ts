// Test-only: the host's process table from /proc, to find what a process
// started (its descendants) and to prove that those processes are gone.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface Proc {
  pid: number;
  ppid: number;
  start: string; // start time in clock ticks since boot: with pid, names one process for good
  state: string; // Z = zombie (dead, waiting for its parent to reap it)
  comm: string;
  argv: string[];
  cwd: string;
}

function read(pid: number): Proc | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const f = stat.slice(close + 2).split(" ");
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
    let cwd = "";
    try { cwd = readlinkSync(`/proc/${pid}/cwd`); } catch { /* kernel thread, zombie */ }
    return { pid, ppid: Number(f[1]), start: f[19], state: f[0], comm: stat.slice(stat.indexOf("(") + 1, close), argv, cwd };
  } catch {
    return null;
  }
}

export function processes(): Proc[] {
  const out: Proc[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const p = read(Number(d));
    if (p) out.push(p);
  }
  return out;
}

/** Every live process below pid (children, their children, ...). */
export function descendants(pid: number): Proc[] {
  const all = processes();
  const kids = new Map<number, Proc[]>();
  for (const p of all) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), p]);
  const out: Proc[] = [];
  const walk = (q: number): void => {
    for (const c of kids.get(q) ?? []) {
      out.push(c);
      walk(c.pid);
    }
  };
  walk(pid);
  return out.filter((p) => p.state !== "Z");
}

/** Still running: the same process (pid and start time), and not a zombie. */
export function running(p: Proc): boolean {
  const now = read(p.pid);
  return !!now && now.start === p.start && now.state !== "Z";
}

/** Live processes whose argv or cwd contains text. */
export function mentioning(text: string): Proc[] {
  return processes().filter((p) => p.pid !== process.pid && p.state !== "Z" && (p.argv.some((a) => a.includes(text)) || p.cwd.includes(text)));
}

/** Waits up to ms for all of procs to be gone; returns those still running. */
export async function gone(procs: Proc[], ms: number): Promise<Proc[]> {
  const deadline = Date.now() + ms;
  let left = procs.filter(running);
  while (left.length && Date.now() < deadline) {
    await sleep(20);
    left = left.filter(running);
  }
  return left;
}

/** Polls until f returns something truthy, or throws after ms. */
export async function until<T>(what: string, ms: number, f: () => T | null | undefined | false, everyMs = 10): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function describe(ps: Proc[]): string {
  return ps.map((p) => `${p.pid} ppid ${p.ppid} ${p.state} ${p.argv.join(" ").slice(0, 160)}`).join("\n");
}
