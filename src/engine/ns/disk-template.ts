// Fresh sandbox disks without a mke2fs per create. A new, empty ext4 image of
// a given size is always the same bytes, and almost all of it is holes: for
// 1 GiB, 656 KiB of metadata. So per size, mke2fs runs once (into a scratch
// file, in the background after the first create of that size), its data
// extents (filefrag) are read into memory, and every later disk of that size
// is a sparse file of that size with those extents written back: no process,
// well under a millisecond. The images are identical (same UUID), which ext4
// does not mind; nothing in them is per sandbox or secret.
//
// Bounded: at most MAX_SIZES sizes are kept (least recently used goes), and a
// size whose metadata passes MAX_BYTES is never kept (it is made by mke2fs
// each time, as before).
import { closeSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { run } from "../runtime.js";

const MAX_SIZES = 4;
const MAX_BYTES = 8 * 1024 * 1024;
const BLOCK = 4096;

interface Extent { offset: number; data: Buffer }

/** mke2fs flags of every sandbox disk: no journal and no reserved blocks (a scratch layer that dies with its sandbox). */
export const MKFS_ARGS = ["-q", "-F", "-t", "ext4", "-b", "4096", "-O", "^has_journal", "-m", "0", "-E", "root_owner=0:0,lazy_itable_init=1"];

/** Runs mke2fs on a new sparse file img of mb MiB (created exclusively, 0600). */
export async function mkfsDisk(img: string, mb: number): Promise<void> {
  const fh = await open(img, "wx", 0o600);
  try {
    await fh.truncate(mb * 1024 * 1024); // sparse: blocks are allocated as the sandbox writes
  } finally {
    await fh.close();
  }
  await run("mke2fs", [...MKFS_ARGS, img]);
}

export class DiskTemplates {
  private readonly ready = new Map<number, Extent[]>(); // insertion order = least recently used first
  private readonly building = new Map<number, Promise<void>>();
  private readonly refused = new Set<number>();

  /** scratch: a directory on the data dir's filesystem where templates are made (and removed at once). */
  constructor(private readonly scratch: () => string) {}

  /** Makes a fresh, empty ext4 image of mb MiB at img (created exclusively). */
  async make(img: string, mb: number): Promise<void> {
    const t = this.ready.get(mb);
    if (t) {
      this.ready.delete(mb); // most recently used goes last
      this.ready.set(mb, t);
      writeImage(img, mb, t);
      return;
    }
    await mkfsDisk(img, mb);
    this.prepare(mb);
  }

  /** Builds the template of size mb in the background (once; failures only mean mke2fs keeps being used). */
  prepare(mb: number): void {
    if (this.ready.has(mb) || this.building.has(mb) || this.refused.has(mb)) return;
    const job = this.build(mb).catch(() => { this.refused.add(mb); }).finally(() => this.building.delete(mb));
    this.building.set(mb, job);
  }

  /** Waits for templates being built (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.building.values()]);
  }

  /** Whether a template of size mb is ready. */
  has(mb: number): boolean {
    return this.ready.has(mb);
  }

  private async build(mb: number): Promise<void> {
    const img = `${this.scratch()}/.disk-template-${mb}-${process.pid}-${Date.now()}`;
    try {
      await mkfsDisk(img, mb);
      const extents = await readExtents(img, mb);
      if (!extents) {
        this.refused.add(mb);
        return;
      }
      this.ready.set(mb, extents);
      while (this.ready.size > MAX_SIZES) this.ready.delete(this.ready.keys().next().value as number);
    } finally {
      rmSync(img, { force: true });
    }
  }
}

/** The data extents of img (from filefrag), read into memory; null if they pass MAX_BYTES or cannot be listed. */
async function readExtents(img: string, mb: number): Promise<Extent[] | null> {
  const r = await run("filefrag", ["-e", "-b4096", img], { allowFail: true });
  if (r.code !== 0) return null;
  const spans: [number, number][] = [];
  for (const m of r.stdout.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+\d+\.\.\s*\d+:\s+\d+:.*$/gm)) {
    if (/unwritten/.test(m[0])) continue; // reads as zeros: a hole does as well
    spans.push([Number(m[1]), Number(m[2])]);
  }
  const size = mb * 1024 * 1024;
  let total = 0;
  for (const [a, b] of spans) {
    if (b < a || (b + 1) * BLOCK > size) return null;
    total += (b - a + 1) * BLOCK;
  }
  if (total > MAX_BYTES || spans.length === 0) return null;
  const fd = openSync(img, "r");
  try {
    return spans.map(([a, b]) => {
      const data = Buffer.alloc((b - a + 1) * BLOCK);
      for (let off = 0; off < data.length;) {
        const n = readSync(fd, data, off, data.length - off, a * BLOCK + off);
        if (n <= 0) throw new Error("short read of a disk template");
        off += n;
      }
      return { offset: a * BLOCK, data };
    });
  } finally {
    closeSync(fd);
  }
}

function writeImage(img: string, mb: number, extents: Extent[]): void {
  const fd = openSync(img, "wx", 0o600);
  try {
    ftruncateSync(fd, mb * 1024 * 1024);
    for (const e of extents) {
      for (let off = 0; off < e.data.length;) off += writeSync(fd, e.data, off, e.data.length - off, e.offset + off);
    }
  } catch (e) {
    closeSync(fd);
    rmSync(img, { force: true });
    throw e;
  }
  closeSync(fd);
}
