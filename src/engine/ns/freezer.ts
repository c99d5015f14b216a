// Pause/resume of an ns sandbox through the cgroup freezer, written directly
// (no runc call: a thaw is one write, well under a millisecond, where
// `runc resume` costs a process spawn). cgroup v1 (`freezer.state`, used when
// the freezer controller is mounted, as on hybrid hosts) or v2 (`cgroup.freeze`).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = "/sys/fs/cgroup";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Freezer { kind: "v1" | "v2"; dir: string }

/** The freezer of a cgroup path (e.g. /bhatti/<instance>/<id>), or null if the host has none for it. */
export function freezerOf(cgroup: string): Freezer | null {
  const rel = cgroup.replace(/^\/+/, "");
  const v1 = join(ROOT, "freezer", rel);
  if (existsSync(join(v1, "freezer.state"))) return { kind: "v1", dir: v1 };
  for (const base of [ROOT, join(ROOT, "unified")]) {
    const v2 = join(base, rel);
    if (existsSync(join(v2, "cgroup.freeze"))) return { kind: "v2", dir: v2 };
  }
  return null;
}

/** Whether this host has a freezer at all (cgroup v1 freezer controller, or cgroup v2). */
export function hostHasFreezer(): boolean {
  return existsSync(join(ROOT, "freezer", "freezer.state")) || existsSync(join(ROOT, "freezer", "cgroup.procs"))
    || existsSync(join(ROOT, "cgroup.controllers")) || existsSync(join(ROOT, "unified", "cgroup.controllers"));
}

function need(cgroup: string): Freezer {
  const f = freezerOf(cgroup);
  if (!f) throw new Error(`no cgroup freezer for ${cgroup} on this host (neither v1 freezer.state nor v2 cgroup.freeze)`);
  return f;
}

export function isFrozen(cgroup: string): boolean {
  const f = freezerOf(cgroup);
  if (!f) return false;
  try {
    if (f.kind === "v1") return readFileSync(join(f.dir, "freezer.state"), "utf8").trim() !== "THAWED";
    return /^frozen 1$/m.test(readFileSync(join(f.dir, "cgroup.events"), "utf8"));
  } catch {
    return false;
  }
}

/** Freezes every process of the cgroup and waits until the kernel reports it frozen (timeoutMs). */
export async function freeze(cgroup: string, timeoutMs = 5000): Promise<void> {
  const f = need(cgroup);
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    // v1: a write of FROZEN may leave it FREEZING (a task in an uninterruptible wait); writing again retries.
    if (f.kind === "v1") writeFileSync(join(f.dir, "freezer.state"), "FROZEN");
    else writeFileSync(join(f.dir, "cgroup.freeze"), "1");
    const done = f.kind === "v1"
      ? readFileSync(join(f.dir, "freezer.state"), "utf8").trim() === "FROZEN"
      : /^frozen 1$/m.test(readFileSync(join(f.dir, "cgroup.events"), "utf8"));
    if (done) return;
    if (Date.now() > deadline) {
      await thaw(cgroup);
      throw new Error(`the sandbox's processes did not freeze within ${timeoutMs} ms`);
    }
    await sleep(delay);
  }
}

/** Thaws the cgroup (one write; the processes run again at once). */
export async function thaw(cgroup: string): Promise<void> {
  const f = need(cgroup);
  if (f.kind === "v1") writeFileSync(join(f.dir, "freezer.state"), "THAWED");
  else writeFileSync(join(f.dir, "cgroup.freeze"), "0");
}
