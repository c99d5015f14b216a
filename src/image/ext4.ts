// Packs a root tree into an ext4 image with mke2fs -d (no loop mount, no root
// privileges needed beyond reading the tree). Sized tree + 30% + 64 MiB.
import { open, rm } from "node:fs/promises";
import { run } from "./run.js";
import { treeSize } from "./tree.js";

const MiB = 1024 * 1024;

export function ext4SizeFor(allocatedBytes: number): number {
  const raw = allocatedBytes * 1.3 + 64 * MiB;
  return Math.ceil(raw / MiB) * MiB;
}

export async function makeExt4(tree: string, out: string, label = "bhatti-root"): Promise<number> {
  const size = ext4SizeFor((await treeSize(tree)).allocated);
  await rm(out, { force: true });
  const fh = await open(out, "wx", 0o644);
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
  await run("mke2fs", ["-q", "-F", "-t", "ext4", "-b", "4096", "-O", "^has_journal", "-m", "0", "-L", label, "-E", "root_owner=0:0", "-d", tree, out]);
  return size;
}
