// Volumes of an ns sandbox (issue 14): each ext4 image is loop-mounted on the
// host at <rt>/sb/<id>/vol<i> (nosuid, nodev) and bind-mounted into the
// container (read-only if asked). Its files are first moved into the
// sandbox's uid range (reown), so uid 1000 inside owns what it owned before.
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { isMounted, run, unmountIfMounted } from "../runtime.js";
import type { EngineVolume } from "../types.js";
import { reown } from "../reown.js";
import { setVolumeBase, volumeBase } from "../../volumes/image.js";

export async function mountVolumes(sb: string, vols: EngineVolume[], base: number): Promise<{ source: string; destination: string; ro: boolean }[]> {
  const out: { source: string; destination: string; ro: boolean }[] = [];
  for (const [i, v] of vols.entries()) {
    const mnt = join(sb, `vol${i}`);
    mkdirSync(mnt, { mode: 0o700 });
    await run("mount", ["-t", "ext4", "-o", "loop,nosuid,nodev", v.file, mnt]); // the loop device autoclears on umount
    const from = volumeBase(v.file);
    if (from !== base) {
      reown(mnt, from, base);
      setVolumeBase(v.file, base);
    }
    out.push({ source: mnt, destination: v.path, ro: v.ro });
  }
  return out;
}

/** Unmounts every volume of runtime dir sb; throws if one stays mounted (the caller must then not remove sb). */
export async function unmountVolumes(sb: string): Promise<void> {
  let names: string[];
  try { names = readdirSync(sb).filter((n) => /^vol\d+$/.test(n)); } catch { return; }
  for (const n of names) {
    await unmountIfMounted(join(sb, n));
    if (isMounted(join(sb, n))) throw new Error(`could not unmount volume ${join(sb, n)}`);
  }
}
