// One image build per image name at a time, across processes: an O_EXCL lock
// file holding the builder's pid. A second builder waits for the first (test
// files run in parallel and may all ask for the same image); a lock whose pid
// is gone is taken over.
import { open, readFile, unlink } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface Lock { release(): Promise<void> }

export interface LockOptions {
  timeoutMs?: number; // how long to wait for a live holder; default 0 (fail at once)
  onWait?: (holderPid: number) => void; // called once when we start waiting
}

export async function acquireLock(path: string, opts: LockOptions = {}): Promise<Lock> {
  const deadline = Date.now() + (opts.timeoutMs ?? 0);
  let told = false;
  for (;;) {
    try {
      const fh = await open(path, "wx", 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return { release: () => unlink(path).catch(() => undefined) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
      if (Date.now() >= deadline) throw new Error(`another image build (pid ${pid}) holds ${path}`);
      if (!told) opts.onWait?.(pid);
      told = true;
      await sleep(200);
    } else if (pid > 0) {
      await unlink(path).catch(() => undefined); // stale: its builder died
    } else {
      await sleep(50); // created but pid not written yet
      if (Date.now() >= deadline + 2000) await unlink(path).catch(() => undefined);
    }
  }
}
