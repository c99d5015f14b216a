// Moves a stopped ns sandbox's writable layer from one uid range to another.
// A stopped sandbox gives its user-namespace slot back; when it starts again
// and that slot is taken, its files (owned by host ids base..base+65535) are
// re-owned into the new range, keeping each id's offset, so inside the
// sandbox every file keeps its owner. Ids outside the old range (none should
// exist) are left as they are.
import { lchownSync, lstatSync, opendirSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { UID_RANGE, run } from "./runtime.js";

export function reown(dir: string, from: number, to: number): number {
  if (from === to) return 0;
  const map = (id: number) => (id >= from && id < from + UID_RANGE ? to + (id - from) : id);
  let n = 0;
  // An explicit stack: a sandbox can nest directories deeper than any call stack.
  const todo = [dir];
  for (let path = todo.pop(); path !== undefined; path = todo.pop()) {
    const st = lstatSync(path);
    const uid = map(st.uid);
    const gid = map(st.gid);
    if (uid !== st.uid || gid !== st.gid) {
      lchownSync(path, uid, gid);
      // chown clears set-id bits of regular files: put them back.
      if (st.isFile() && st.mode & 0o6000) chmodSync(path, st.mode & 0o7777);
      n++;
    }
    if (st.isDirectory()) {
      const d = opendirSync(path);
      try {
        for (let e = d.readSync(); e; e = d.readSync()) todo.push(join(path, e.name));
      } finally {
        d.closeSync();
      }
    }
  }
  return n;
}

/**
 * Copies a writable layer (an overlay upper dir: files, whiteouts, overlay
 * xattrs, owners, modes, times) from src to dst (which must not exist), then
 * moves its ids from range `from` to range `to`.
 */
export async function copyLayer(src: string, dst: string, from: number, to: number): Promise<void> {
  mkdirSync(dirname(dst), { recursive: true, mode: 0o700 });
  await run("cp", ["-a", "--reflink=auto", "--no-target-directory", src, dst], { timeoutMs: 600_000 });
  reown(dst, from, to);
}
