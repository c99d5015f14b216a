// Which process owns a data dir. A pid file is trusted only if that pid is
// alive and is a bhatti process, so a stale file from a crash never blocks.
import { readFileSync, unlinkSync, openSync, writeSync, closeSync } from "node:fs";

export function livePid(path: string, marker: string): number | null {
  let pid: number;
  try { pid = Number(readFileSync(path, "utf8").trim()); } catch { return null; }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return null;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return cmd.some((a) => a.includes(marker)) ? pid : null;
  } catch {
    return null;
  }
}

/** Creates the pid file exclusively; replaces a stale one. Throws if a live owner holds it. */
export function claimPidFile(path: string, marker: string, what: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = livePid(path, marker);
      if (owner) throw new Error(`${what} (pid ${owner}) is already running on this data dir`);
      try { unlinkSync(path); } catch { /* raced with another cleaner */ }
    }
  }
  throw new Error(`could not claim ${path}`);
}

export function releasePidFile(path: string): void {
  try {
    if (Number(readFileSync(path, "utf8").trim()) === process.pid) unlinkSync(path);
  } catch { /* already gone */ }
}
