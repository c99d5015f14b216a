// A volume's storage: a sparse ext4 image in <data_dir>/volumes/<id>.ext4
// whose root belongs to uid/gid 1000 (the sandbox user) as seen inside a
// sandbox. Its ids are kept "unshifted" (as the guest sees them) except while
// an ns sandbox holds it: <id>.base then records the uid range they were
// moved into (see ns/reown.ts), and the next holder moves them from there.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../engine/runtime.js";

export function volumesDir(dataDir: string): string {
  return join(dataDir, "volumes");
}

export function volumeFile(dataDir: string, id: string): string {
  if (!/^vol[0-9a-f]+$/.test(id)) throw new Error(`bad volume id ${JSON.stringify(id)}`);
  return join(volumesDir(dataDir), `${id}.ext4`);
}

export async function makeVolumeImage(dataDir: string, id: string, mb: number): Promise<void> {
  mkdirSync(volumesDir(dataDir), { recursive: true, mode: 0o700 });
  const img = volumeFile(dataDir, id);
  const fh = await open(img, "wx", 0o600);
  try {
    await fh.truncate(mb * 1024 * 1024);
  } finally {
    await fh.close();
  }
  try {
    await run("mke2fs", ["-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-E", "root_owner=1000:1000,lazy_itable_init=1", "-L", "bhatti-vol", img]);
  } catch (e) {
    rmSync(img, { force: true });
    throw e;
  }
}

export function removeVolumeImage(dataDir: string, id: string): void {
  rmSync(volumeFile(dataDir, id), { force: true });
  rmSync(volumeFile(dataDir, id).replace(/\.ext4$/, ".base"), { force: true });
}

/** The uid range base the volume's ids are in now (0: unshifted). */
export function volumeBase(file: string): number {
  const f = file.replace(/\.ext4$/, ".base");
  if (!existsSync(f)) return 0;
  const n = Number(readFileSync(f, "utf8").trim());
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

export function setVolumeBase(file: string, base: number): void {
  const f = file.replace(/\.ext4$/, ".base");
  if (base === 0) rmSync(f, { force: true });
  else writeFileSync(f, String(base), { mode: 0o600 });
}
