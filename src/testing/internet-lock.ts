// One test internet at a time on a host: its addresses are fixed, and a new
// one removes what an earlier one left. Test files that build one (the
// network suite on ns and on vm, the broker tests, bench/network*) may run in
// parallel (scripts/test runs two files at once): each waits here for the
// lock, a file holding the pid of the process that has it. A lock whose
// process is gone (a killed test) is taken over. Not part of the product.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";

const LOCK = "/run/bhatti/test-internet.lock";
const WAIT_MS = 20 * 60_000;

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === "EPERM"; }
}

/** Waits for the host's test-internet lock; resolves with its release. */
export async function holdInternetLock(): Promise<() => void> {
  mkdirSync("/run/bhatti", { recursive: true, mode: 0o755 });
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(LOCK, "wx", 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let held = true;
      return () => {
        if (!held) return;
        held = false;
        try { if (readFileSync(LOCK, "utf8").trim() === String(process.pid)) unlinkSync(LOCK); } catch { /* gone */ }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let holder = NaN;
    try { holder = Number(readFileSync(LOCK, "utf8").trim()); } catch { continue; }
    if (holder === process.pid) throw new Error("this process already holds the test internet");
    if (!alive(holder)) {
      try { if (Number(readFileSync(LOCK, "utf8").trim()) === holder) unlinkSync(LOCK); } catch { /* someone else took it over */ }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`the test internet is held by pid ${holder} for over ${WAIT_MS / 60_000} min`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
