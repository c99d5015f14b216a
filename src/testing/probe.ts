// Test-only: builds src/testing/probe.c into a static binary (gcc -static),
// cached by source hash under the temp dir, and installs it into a sandbox
// through the files API. The binary is never committed.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO, api, type Daemon } from "./harness.js";

export const PROBE_SOURCE = join(REPO, "src", "testing", "probe.c");
export const PROBE_GUEST_PATH = "/home/lohar/probe";

/** Path of the built probe (built on first use). Throws with gcc's output if it cannot be built. */
export function buildProbe(): string {
  const src = readFileSync(PROBE_SOURCE);
  const hash = createHash("sha256").update(src).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), "bhatti-probe");
  const out = join(dir, `probe-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${out}.${process.pid}`;
  const r = spawnSync("gcc", ["-static", "-O1", "-Wall", "-o", tmp, PROBE_SOURCE], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`gcc -static failed (is libc6-dev installed?): ${r.stderr || r.error}`);
  renameSync(tmp, out);
  return out;
}

/** Copies the probe into sandbox `sb` (PUT /sandboxes/:id/files) at PROBE_GUEST_PATH, mode 0755. */
export async function installProbe(d: Daemon, key: string, sb: string): Promise<void> {
  const r = await api(d, "PUT", `/sandboxes/${sb}/files?path=${encodeURIComponent(PROBE_GUEST_PATH)}&mode=0755`, { key, raw: readFileSync(buildProbe()) });
  if (r.status !== 200) throw new Error(`installing the probe: ${r.status} ${r.text}`);
}

/** Parses the probe's "name number [number]" lines. */
export function probeLines(stdout: string): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const line of stdout.split("\n")) {
    const [k, ...v] = line.trim().split(/\s+/);
    if (k) m.set(k, v.map(Number));
  }
  return m;
}
