// The sandbox root: an overlay on the host with the image rootfs as the
// read-only lower layer and a per-sandbox upper layer under
// <dataDir>/sandboxes/<id>/. Image files belong to host uid 0, which the
// sandbox's user namespace does not map, so every entry is re-owned to
// base+uid in the merged view; with metacopy=on that copies up metadata only
// and the image itself is never touched.
import { lstat, lchown, readdir } from "node:fs/promises";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { UID_RANGE, isMounted, run, unmountIfMounted } from "../runtime.js";

interface Entry { rel: string; uid: number; gid: number }

const manifests = new Map<string, { mtimeMs: number; entries: Entry[] }>();

async function walk(root: string, rel: string, out: Entry[]): Promise<void> {
  const names = await readdir(join(root, rel));
  await Promise.all(
    names.map(async (n) => {
      const r = rel ? `${rel}/${n}` : n;
      const st = await lstat(join(root, r));
      out.push({ rel: r, uid: st.uid, gid: st.gid });
      if (st.isDirectory()) await walk(root, r, out);
    }),
  );
}

/** Every path of the image with its owner; cached per image until its root dir changes. */
export async function imageManifest(lower: string): Promise<Entry[]> {
  const mtimeMs = statSync(lower).mtimeMs;
  const hit = manifests.get(lower);
  if (hit && hit.mtimeMs === mtimeMs) return hit.entries;
  const st = statSync(lower);
  const entries: Entry[] = [{ rel: "", uid: st.uid, gid: st.gid }];
  await walk(lower, "", entries);
  manifests.set(lower, { mtimeMs, entries });
  return entries;
}

// ids the range cannot hold become the overflow id, like the kernel shows them
const mapId = (id: number) => (id < UID_RANGE ? id : 65534);

let metacopyWorks: boolean | undefined;

export interface RootfsPaths { lower: string; upper: string; work: string; merged: string }

/** Mounts the overlay at paths.merged and re-owns it for the id range starting at base. */
export async function prepareRootfs(p: RootfsPaths, base: number): Promise<void> {
  for (const x of [p.lower, p.upper, p.work, p.merged]) {
    if (/[,:\\\s]/.test(x)) throw new Error(`unsupported character in path ${x}`);
  }
  mkdirSync(p.upper, { recursive: true, mode: 0o755 });
  mkdirSync(p.work, { recursive: true, mode: 0o700 });
  mkdirSync(p.merged, { recursive: true, mode: 0o755 });
  const manifest = imageManifest(p.lower);
  const opts = `lowerdir=${p.lower},upperdir=${p.upper},workdir=${p.work}`;
  if (metacopyWorks !== false) {
    const r = await run("mount", ["-t", "overlay", "-o", `${opts},metacopy=on`, "bhatti-root", p.merged], { allowFail: true });
    metacopyWorks = r.code === 0;
  }
  if (!metacopyWorks) await run("mount", ["-t", "overlay", "-o", opts, "bhatti-root", p.merged]);
  const entries = await manifest;
  // Children before parents does not matter for chown; batch to bound open requests.
  const BATCH = 64;
  for (let i = 0; i < entries.length; i += BATCH) {
    await Promise.all(
      entries.slice(i, i + BATCH).map((e) => lchown(join(p.merged, e.rel), base + mapId(e.uid), base + mapId(e.gid))),
    );
  }
}

export async function releaseRootfs(merged: string): Promise<void> {
  await unmountIfMounted(merged);
  if (isMounted(merged)) throw new Error(`could not unmount ${merged}`);
}

export function metacopyInUse(): boolean | undefined {
  return metacopyWorks;
}
