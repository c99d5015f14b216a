// Walks a directory tree without following symlinks.
import { lstat, readdir } from "node:fs/promises";
import type { Stats } from "node:fs";
import { join } from "node:path";

export interface TreeEntry {
  path: string; // absolute path on the host
  rel: string; // path inside the tree, "/" for the root
  st: Stats; // lstat
}

export async function* walk(root: string, rel = "/"): AsyncGenerator<TreeEntry> {
  const path = rel === "/" ? root : join(root, rel);
  const st = await lstat(path);
  yield { path, rel, st };
  if (!st.isDirectory()) return;
  for (const name of (await readdir(path)).sort()) yield* walk(root, rel === "/" ? `/${name}` : `${rel}/${name}`);
}

export interface TreeSize {
  files: number; // entries of any kind, the root included
  bytes: number; // apparent size of regular files
  allocated: number; // what the tree occupies, in bytes (4 KiB per directory and per regular file's block)
}

export async function treeSize(root: string): Promise<TreeSize> {
  const s: TreeSize = { files: 0, bytes: 0, allocated: 0 };
  for await (const e of walk(root)) {
    s.files++;
    if (e.st.isFile()) {
      s.bytes += e.st.size;
      s.allocated += Math.ceil(e.st.size / 4096) * 4096;
    } else if (e.st.isDirectory()) s.allocated += 4096;
  }
  return s;
}
