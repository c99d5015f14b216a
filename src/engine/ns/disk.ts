// A size-limited writable layer for an ns sandbox (`disk_mb`): a sparse ext4
// image in the sandbox's data dir, loop-mounted, holding the overlay's upper
// and work dirs. Writes past its size fail with ENOSPC inside the sandbox and
// the host's disk gives it at most that much. The mount is the host's (the
// sandbox never sees it: it only sees the overlay on top).
import { existsSync, mkdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { isMounted, run, unmountIfMounted } from "../runtime.js";
import { mkfsDisk, type DiskTemplates } from "./disk-template.js";
import { timedPhase } from "../../util/phases.js";
import type { HostMount } from "./runc.js";

export const DISK_FILE = "disk.ext4";
export const DISK_MOUNT = "disk";

/** Makes and mounts the disk of sandbox data dir `data`; returns the mount point (upper and work go inside). */
export async function mountDisk(data: string, mb: number, templates?: DiskTemplates, id = ""): Promise<string> {
  const img = join(data, DISK_FILE);
  const mnt = join(data, DISK_MOUNT);
  // No journal and no reserved blocks (MKFS_ARGS); from a template of that size when there is one.
  await timedPhase(id, templates?.has(mb) ? "disk image (template)" : "disk image (mke2fs)", () => (templates ? templates.make(img, mb) : mkfsDisk(img, mb)));
  mkdirSync(mnt, { mode: 0o700 });
  await timedPhase(id, "disk mount", () => run("mount", ["-t", "ext4", "-o", "loop,nosuid,nodev", img, mnt])); // the loop device autoclears on umount
  return mnt;
}

/**
 * The disk of sandbox data dir `data` made but not mounted: returns its mount
 * point and the host steps (Runc.start) that mount it and make the overlay's
 * upper (owned uid:gid, mode) and work dirs on it.
 */
export async function diskSteps(data: string, mb: number, templates: DiskTemplates, id: string, upper: { uid: number; gid: number; mode: number }): Promise<{ mnt: string; steps: HostMount[] }> {
  const img = join(data, DISK_FILE);
  const mnt = join(data, DISK_MOUNT);
  await timedPhase(id, templates.has(mb) ? "disk image (template)" : "disk image (mke2fs)", () => templates.make(img, mb));
  mkdirSync(mnt, { mode: 0o700 });
  return {
    mnt,
    steps: [
      { args: ["-t", "ext4", "-o", "loop,nosuid,nodev", img, mnt] }, // the loop device autoclears on umount
      { cmd: "install", args: ["-d", "-o", String(upper.uid), "-g", String(upper.gid), "-m", (upper.mode & 0o7777).toString(8), join(mnt, "upper")] },
      { cmd: "mkdir", args: ["-m", "700", join(mnt, "work")] },
    ],
  };
}

/** Mounts the existing disk of a stopped sandbox's data dir `data` again (start); returns the mount point. */
export async function remountDisk(data: string): Promise<string> {
  const img = join(data, DISK_FILE);
  const mnt = join(data, DISK_MOUNT);
  if (!existsSync(img)) throw new Error(`the sandbox's disk ${img} is missing`);
  mkdirSync(mnt, { recursive: true, mode: 0o700 });
  if (!isMounted(mnt)) await run("mount", ["-t", "ext4", "-o", "loop,nosuid,nodev", img, mnt]);
  return mnt;
}

/** Unmounts the disk of data dir `data` (if any) and keeps its image (stop); the overlay on it must be gone. */
export async function unmountDisk(data: string): Promise<void> {
  const mnt = join(data, DISK_MOUNT);
  await unmountIfMounted(mnt);
  if (isMounted(mnt)) throw new Error(`could not unmount ${mnt}`);
}

/** Unmounts the disk of data dir `data` (if any) and deletes its image; the overlay on it must be gone. */
export async function releaseDisk(data: string): Promise<void> {
  const mnt = join(data, DISK_MOUNT);
  await unmountIfMounted(mnt);
  if (isMounted(mnt)) throw new Error(`could not unmount ${mnt}`);
  if (existsSync(join(data, DISK_FILE))) await rm(join(data, DISK_FILE), { force: true });
}
