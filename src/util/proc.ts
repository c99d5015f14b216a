// Reading another process's /proc files without mistaking our own trouble
// for its death: only ENOENT/ESRCH mean the process is gone. Anything else
// (EMFILE when the daemon is out of descriptors, EACCES…) says nothing about
// the process, and a caller that decides "dead, so remove its sandbox" must
// not take it as a yes.
import { readdirSync, readFileSync } from "node:fs";

/** The file's text, or null when the process no longer exists. Other failures throw. */
export function readProcFile(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return null;
    throw e;
  }
}

/** Whether a /proc/<pid>/stat text is a zombie's. */
export function isZombie(stat: string): boolean {
  return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

/** The pids of the processes there are now (none if /proc cannot be listed). */
export function listPids(): number[] {
  try {
    return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);
  } catch {
    return [];
  }
}
