// Which accelerator actually boots our kernel here. /dev/kvm existing proves
// nothing (nested setups expose a KVM that cannot run a normal guest), so we
// boot the real kernel + initramfs to the initramfs's probe marker: first with
// KVM and a short timeout, then with TCG.
//
// A probe QEMU is the daemon's helper, not a sandbox: it dies with the daemon
// (parent-death signal, see tiedToParent), is killed by stopProbes() on a
// graceful stop, and one a crashed daemon left is ended by the next one
// (strays.ts, which recognises it by PROBE_FLAG in its argv).
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve as resolvePath } from "node:path";
import { PROBE_MARKER } from "../../image/initramfs.js";
import { tiedToParent } from "../../util/run.js";
import { RUN_BHATTI, TOOL_ENV } from "../runtime.js";
import { type Accel, QEMU_BIN, kernelCmdline } from "./qemu.js";

export interface ProbeAttempt {
  accel: Accel;
  ok: boolean;
  ms: number;
  detail: string; // why it failed (QEMU's stderr / console tail), or "" when ok
}

export interface ProbeResult {
  accel: Accel | null;
  attempts: ProbeAttempt[];
}

const TIMEOUT_MS: Record<Accel, number> = { kvm: 10_000, tcg: 60_000 };
// A working KVM prints the first early-console line within milliseconds; a KVM
// that cannot run the guest (seen in nested setups) prints nothing at all.
const FIRST_OUTPUT_MS: Record<Accel, number> = { kvm: 3_000, tcg: 60_000 };

/**
 * The host-wide cache of probe answers (tmpfs, shared by every daemon on the
 * host). BHATTI_ACCEL_CACHE moves it: tests that must see a probe run use
 * their own file instead of deleting the one other daemons rely on.
 */
export function accelCacheFile(): string {
  const override = process.env.BHATTI_ACCEL_CACHE;
  return override ? resolvePath(override) : join(RUN_BHATTI, "vm-accel.json");
}

// Probe QEMUs of this process that have not exited yet, each with a promise of its exit.
const running = new Map<ChildProcess, Promise<void>>();
let stopped = false;

/**
 * Kills every running probe of this process and waits until each has exited
 * (reaped); no probe starts afterwards. For the daemon's shutdown.
 */
export async function stopProbes(): Promise<void> {
  stopped = true;
  for (const child of running.keys()) child.kill("SIGKILL");
  await Promise.all(running.values());
}

/** Boot once to the probe marker; resolves when it shows up, QEMU dies, or the timeout passes. */
export function bootToMarker(accel: Accel, kernel: string, initramfs: string, timeoutMs = TIMEOUT_MS[accel]): Promise<ProbeAttempt> {
  const started = Date.now();
  if (stopped) return Promise.resolve({ accel, ok: false, ms: 0, detail: "not probed: shutting down" });
  const args = [
    "-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on,pit=on,pic=off",
    "-accel", accel, "-cpu", accel === "kvm" ? "host" : "max", "-smp", "1", "-m", "256M",
    "-nodefaults", "-no-user-config", "-nographic", "-display", "none", "-no-reboot",
    "-kernel", kernel, "-initrd", initramfs,
    "-append", `${kernelCmdline({ accel, probe: true })}${accel === "kvm" ? " earlyprintk=ttyS0" : ""}`,
    "-serial", "stdio",
  ];
  return new Promise((resolve) => {
    const child = spawn(...tiedToParent(QEMU_BIN, args), { env: TOOL_ENV, stdio: ["ignore", "pipe", "pipe"] });
    running.set(child, new Promise<void>((r) => {
      const gone = (): void => { running.delete(child); r(); };
      child.once("close", gone);
      child.once("error", gone); // never started
    }));
    let out = "";
    let err = "";
    let done = false;
    const finish = (ok: boolean, why: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(silent);
      child.kill("SIGKILL");
      const reason = stopped ? "stopped: shutting down" : why;
      const tail = `${err.trim()}\n${out.trim()}`.trim().split("\n").slice(-6).join("\n");
      resolve({ accel, ok, ms: Date.now() - started, detail: ok ? "" : `${reason}${tail ? `: ${tail}` : ""}` });
    };
    const timer = setTimeout(() => finish(false, `no boot marker within ${timeoutMs} ms`), timeoutMs);
    const silent = setTimeout(() => finish(false, `no console output within ${FIRST_OUTPUT_MS[accel]} ms`), Math.min(timeoutMs, FIRST_OUTPUT_MS[accel]));
    child.stdout.on("data", (b: Buffer) => {
      clearTimeout(silent);
      out = (out + b.toString()).slice(-8192);
      if (out.includes(PROBE_MARKER)) finish(true, "");
    });
    child.stderr.on("data", (b: Buffer) => {
      err = (err + b.toString()).slice(-8192);
      // A KVM that cannot run the guest reports an internal/emulation error and pauses the VM.
      if (/KVM internal error|emulation failure|failed to initialize kvm|Could not access KVM/i.test(err)) finish(false, "KVM cannot run the guest");
    });
    child.on("error", (e) => finish(false, `cannot run ${QEMU_BIN}: ${e.message}`));
    child.on("exit", (code, sig) => finish(out.includes(PROBE_MARKER), `QEMU exited (${sig ?? code}) before the boot marker`));
  });
}

const cache = new Map<string, Promise<ProbeResult>>();

function probeKey(kernel: string, initramfs: string): string {
  return [kernel, initramfs].map((f) => {
    try {
      const st = statSync(f);
      return `${f}:${st.size}:${st.mtimeMs}`;
    } catch {
      return `${f}:missing`;
    }
  }).join("|");
}

/**
 * probeAccel, once per process for a given kernel + initramfs (by path, size and
 * mtime), and once per boot of the host when cacheFile (on tmpfs, shared by every
 * daemon on the host) is given: a restarted daemon does not pay for the probe boots again.
 */
export function probeAccelCached(kernel: string, initramfs: string, cacheFile?: string): Promise<ProbeResult> {
  const key = probeKey(kernel, initramfs);
  let p = cache.get(key);
  if (p) return p;
  // The cache file maps probe keys to accelerators, so daemons with different data dirs share it.
  const saved = (): Record<string, Accel> => {
    try {
      const v = JSON.parse(readFileSync(cacheFile!, "utf8")) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(v).filter(([, a]) => a === "kvm" || a === "tcg")) as Record<string, Accel>;
    } catch {
      return {}; // no or unreadable cache: probe
    }
  };
  if (cacheFile) {
    const accel = saved()[key];
    if (accel) p = Promise.resolve({ accel, attempts: [] });
  }
  if (!p) {
    p = probeAccel(kernel, initramfs);
    if (cacheFile) {
      void p.then((r) => {
        if (!r.accel) return;
        try {
          writeFileSync(cacheFile, JSON.stringify({ ...saved(), [key]: r.accel }), { mode: 0o600 });
        } catch {
          // /run/bhatti does not exist yet; the next start probes again
        }
      });
    }
  }
  cache.set(key, p);
  return p;
}

/** KVM if it really boots the guest, else TCG if that does, else null (with the reasons). */
export async function probeAccel(kernel: string, initramfs: string): Promise<ProbeResult> {
  const attempts: ProbeAttempt[] = [];
  for (const accel of ["kvm", "tcg"] as const) {
    const a = await bootToMarker(accel, kernel, initramfs);
    attempts.push(a);
    if (a.ok) return { accel, attempts };
  }
  return { accel: null, attempts };
}
