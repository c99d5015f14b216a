// The images in an images dir as users see them: list, inspect, delete.
// Building is build.ts; this module only reads manifests and removes images.
import { readdirSync } from "node:fs";
import { readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { imageInUse, loadImage, readManifest } from "./build.js";
import { acquireLock } from "./lock.js";
import { ALIASES, canonicalImage, checkImageName, DEFAULT_IMAGE, defaultDiskMb } from "./names.js";
import type { Manifest } from "./types.js";

export interface ImageSummary {
  name: string;
  aliases: string[];
  default: boolean;
  built_at: string;
  build_ms: number;
  inputs_hash: string;
  engines: ("ns" | "vm")[];
  /** rootfs/ (apparent size of its files) plus the artifacts next to it */
  size_bytes: number;
  rootfs: { files: number; bytes: number };
  packages: number; // Debian packages installed (0: not a Debian image)
  /** The writable disk a sandbox gets when it asks for no size, MiB. */
  default_disk_mb: number;
}

export interface ImageDetail extends ImageSummary {
  inputs: Record<string, unknown>;
  files: { path: string; size: number }[];
  package_list: Record<string, string>; // name -> version
}

const aliasesOf = (name: string): string[] => Object.entries(ALIASES).filter(([, t]) => t === name).map(([a]) => a);

function summary(m: Manifest): ImageSummary {
  const has = (p: string): boolean => m.files.some((f) => f.path === p);
  return {
    name: m.name,
    aliases: aliasesOf(m.name),
    default: m.name === DEFAULT_IMAGE,
    built_at: m.builtAt,
    build_ms: m.buildMs,
    inputs_hash: m.inputsHash,
    engines: has("vmlinux") && has("initramfs.cpio") && has("rootfs.ext4") ? ["ns", "vm"] : ["ns"],
    size_bytes: m.rootfs.bytes + m.files.reduce((a, f) => a + f.size, 0),
    rootfs: m.rootfs,
    packages: Object.keys(m.packages ?? {}).length,
    default_disk_mb: defaultDiskMb(m.name),
  };
}

/** Built images, by name (leftovers of builds and hidden files skipped). */
export async function listImages(imagesDir: string): Promise<ImageSummary[]> {
  let entries: string[];
  try {
    entries = await readdir(imagesDir);
  } catch {
    return [];
  }
  const out: ImageSummary[] = [];
  for (const e of entries.sort()) {
    if (e.startsWith(".") || e.includes(".tmp-") || e.includes(".old-") || Object.hasOwn(ALIASES, e)) continue;
    try {
      checkImageName(e);
    } catch {
      continue;
    }
    if (!(await loadImage(imagesDir, e))) continue;
    const m = await readManifest(join(imagesDir, e));
    if (m) out.push(summary(m));
  }
  return out;
}

/** One image's manifest in full, or null if `name` (or its alias) is not built. */
export async function inspectImage(imagesDir: string, name: string): Promise<ImageDetail | null> {
  checkImageName(name);
  const info = await loadImage(imagesDir, name);
  if (!info) return null;
  const m = await readManifest(info.dir);
  if (!m) return null;
  return { ...summary(m), inputs: m.inputs, files: m.files, package_list: m.packages ?? {} };
}

/** Whether image `name` (or an alias of it) is built in imagesDir; cheap enough for every sandbox create. */
export function imageExists(imagesDir: string, name: string): boolean {
  try {
    checkImageName(name);
    const n = canonicalImage(name);
    return readdirSync(join(imagesDir, n)).includes("manifest.json");
  } catch {
    return false;
  }
}

export class ImageInUseError extends Error {}

/**
 * Removes image `name`. Refused while `usedBy` (sandboxes and templates that
 * name it, from the caller's database) is non-empty or a sandbox process
 * still reads its files. Renamed aside first, so a crash mid-removal never
 * leaves a half image under the name.
 */
export async function deleteImage(imagesDir: string, name: string, usedBy: string[]): Promise<void> {
  checkImageName(name);
  const n = canonicalImage(name);
  const dir = join(imagesDir, n);
  if (!(await loadImage(imagesDir, n)) && !imageExists(imagesDir, n)) throw new Error(`image ${n} is not built`);
  if (usedBy.length) throw new ImageInUseError(`image ${n} is in use by ${usedBy.slice(0, 5).join(", ")}${usedBy.length > 5 ? ` and ${usedBy.length - 5} more` : ""}; delete those first`);
  const lock = await acquireLock(join(imagesDir, `.${n}.lock`), { timeoutMs: 0 });
  try {
    if (imageInUse(dir)) throw new ImageInUseError(`image ${n} is in use by a running sandbox on this host; destroy it first`);
    // not ".old-": build.ts puts an ".old-" image back when the name is empty
    const gone = join(imagesDir, `${n}.deleting-${process.pid}-${Date.now()}`);
    await rename(dir, gone);
    for (const e of await readdir(imagesDir)) if (e.startsWith(`${n}.deleting-`)) await rm(join(imagesDir, e), { recursive: true, force: true });
  } finally {
    await lock.release();
  }
}
