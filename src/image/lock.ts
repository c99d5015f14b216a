// One image build per image name at a time, across processes: an O_EXCL lock
// file holding the builder's pid; a lock whose pid is gone is taken over.
import { open, readFile, unlink } from "node:fs/promises";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface Lock { release(): Promise<void> }

export async function acquireLock(path: string): Promise<Lock> {
  for (let attempt = 0; attempt < 3; attempt++) {
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
      throw new Error(`another image build (pid ${pid}) holds ${path}`);
    }
    await unlink(path).catch(() => undefined); // stale: its builder died
  }
  throw new Error(`could not take ${path}`);
}
