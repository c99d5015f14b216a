// The sandbox root: an overlay on the host with the image rootfs as the
// read-only bottom layer and a per-sandbox upper layer under
// <dataDir>/sandboxes/<id>/. Image files belong to host uid 0, which the
// sandbox's user namespace does not map, so every entry must appear owned by
// base+uid in the merged view.
//
// That re-owning is done once per (image, id range), not per sandbox: an
// "ownership layer" (metadata-only copies, overlay metacopy) is made by
// chowning every entry of an overlay over the image, and kept on tmpfs under
// <rt>/layers/<image key>/<base>/. A sandbox's overlay stacks its own upper
// on that layer on the image. Both lower layers are read-only to the sandbox
// (writes copy up into its upper), and only the sandbox holding the id range
// ever uses a layer, so nothing passes between sandboxes; the image itself is
// never touched. Without metacopy support each sandbox is re-owned as before.
import { chmod, lstat, lchown, readdir, rename, rm } from "node:fs/promises";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { UID_RANGE, isMounted, run, unmountIfMounted } from "../runtime.js";
import { run as runTool } from "../../util/run.js";

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

function checkPaths(paths: string[]): void {
  for (const x of paths) {
    if (/[,:\\\s]/.test(x)) throw new Error(`unsupported character in path ${x}`);
  }
}

async function chownAll(lower: string, merged: string, base: number): Promise<void> {
  const entries = await imageManifest(lower);
  // Children before parents does not matter for chown; batch to bound open requests.
  const BATCH = 64;
  for (let i = 0; i < entries.length; i += BATCH) {
    await Promise.all(
      entries.slice(i, i + BATCH).map((e) => lchown(join(merged, e.rel), base + mapId(e.uid), base + mapId(e.gid))),
    );
  }
}

/**
 * Identity of an image's rootfs: its path, the root dir's inode and mtime
 * (an image rebuild swaps in a new directory) and the manifest's inputs hash.
 */
function imageKey(lower: string): string {
  const st = statSync(lower);
  let inputs = "";
  try {
    inputs = String((JSON.parse(readFileSync(join(lower, "..", "manifest.json"), "utf8")) as { inputsHash?: unknown }).inputsHash ?? "");
  } catch {
    // no manifest: path and inode still tell images apart
  }
  return createHash("sha256").update(`${lower}\0${st.dev}:${st.ino}:${st.mtimeMs}\0${inputs}`).digest("hex").slice(0, 20);
}

const SOURCE = "source"; // in each <layers>/<key>/: the lower path the key was made from

const building = new Map<string, Promise<string | null>>();

/** The ownership layer of image `lower` for the id range at base, made on first use; null without metacopy. */
async function ownershipLayer(layers: string, lower: string, base: number): Promise<string | null> {
  const keyDir = join(layers, imageKey(lower));
  const final = join(keyDir, String(base));
  if (existsSync(final)) {
    metacopyWorks ??= true; // it was made with metacopy (e.g. by this daemon before a restart)
    return final;
  }
  let job: Promise<string | null> | undefined = building.get(final);
  if (!job) {
    job = makeLayer(keyDir, lower, base, final).finally(() => building.delete(final));
    building.set(final, job);
  }
  return job;
}

async function makeLayer(keyDir: string, lower: string, base: number, final: string): Promise<string | null> {
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  if (!existsSync(join(keyDir, SOURCE))) writeFileSync(join(keyDir, SOURCE), lower, { mode: 0o600 });
  const tmp = join(keyDir, `.build-${base}-${process.pid}-${Date.now()}`);
  const p = { lower, upper: join(tmp, "upper"), work: join(tmp, "work"), merged: join(tmp, "merged") };
  checkPaths(Object.values(p));
  for (const d of [p.upper, p.work, p.merged]) mkdirSync(d, { recursive: true, mode: 0o700 });
  try {
    const r = await run("mount", ["-t", "overlay", "-o", `lowerdir=${lower},upperdir=${p.upper},workdir=${p.work},metacopy=on`, "bhatti-layer", p.merged], { allowFail: true });
    if (r.code !== 0) {
      metacopyWorks = false;
      return null;
    }
    metacopyWorks = true;
    await chownAll(lower, p.merged, base);
    await run("umount", [p.merged]);
    await rename(p.upper, final);
    return final;
  } finally {
    await unmountIfMounted(p.merged).catch(() => {});
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * Removes this id range's layers of images that have changed or gone since
 * they were made. Call only while the range is held and no sandbox of it has
 * its root mounted (destroy, after releaseRootfs).
 */
export function dropStaleLayers(layers: string, base: number): void {
  if (!existsSync(layers)) return;
  for (const key of readdirSync(layers)) {
    const keyDir = join(layers, key);
    let current = false;
    try {
      const lower = readFileSync(join(keyDir, SOURCE), "utf8");
      current = imageKey(lower) === key;
    } catch {
      // source unreadable or image gone: stale
    }
    if (current) continue;
    rmSync(join(keyDir, String(base)), { recursive: true, force: true });
    if (readdirSync(keyDir).every((n) => n === SOURCE)) rmSync(keyDir, { recursive: true, force: true });
  }
}

/** Clears half-made layers a crashed daemon left (call before any create of this runtime dir). */
export async function sweepLayerBuilds(layers: string): Promise<void> {
  if (!existsSync(layers)) return;
  for (const key of readdirSync(layers)) {
    for (const n of readdirSync(join(layers, key))) {
      if (!n.startsWith(".build-")) continue;
      await unmountIfMounted(join(layers, key, n, "merged"));
      rmSync(join(layers, key, n), { recursive: true, force: true });
    }
  }
}

/**
 * Mounts the sandbox overlay at paths.merged, owned for the id range starting
 * at base. layers: where ownership layers live (on tmpfs, root only).
 */
export async function prepareRootfs(p: RootfsPaths, base: number, layers: string): Promise<void> {
  const plan = await planRootfs(p, base, layers);
  if (!plan) return;
  try {
    await runTool("mount", plan.mountArgs, { cwd: plan.cwd, timeoutMs: 30_000 });
  } finally {
    plan.done();
  }
}

/** Owner and mode of an upper layer's root dir: the image root's, in the id range at base. */
export function upperOwner(lower: string, base: number): { uid: number; gid: number; mode: number } {
  const root = statSync(lower);
  return { uid: base + mapId(root.uid), gid: base + mapId(root.gid), mode: root.mode & 0o7777 };
}

/** The overlay mount prepareRootfs would run: `mount ...mountArgs` with cwd `cwd` (relative layer names); `done()` removes cwd after. */
export interface RootfsMount { cwd: string; mountArgs: string[]; done(): void }

/**
 * Everything of prepareRootfs but the overlay mount itself, which it returns
 * for the caller to run (the ns engine runs it in the same process as runc).
 * null: there was nothing left to run (no metacopy: mounted and re-owned here).
 */
export async function planRootfs(p: RootfsPaths, base: number, layers: string, upperMadeByCaller = false): Promise<RootfsMount | null> {
  checkPaths([p.lower, p.upper, p.work, p.merged, layers]);
  mkdirSync(p.merged, { recursive: true, mode: 0o755 });
  if (!upperMadeByCaller) {
    mkdirSync(p.upper, { recursive: true, mode: 0o755 });
    mkdirSync(p.work, { recursive: true, mode: 0o700 });
    // The upper's root dir is the overlay's root: give it the image root's owner and mode (upperOwner).
    const o = upperOwner(p.lower, base);
    await lchown(p.upper, o.uid, o.gid);
    await chmod(p.upper, o.mode);
  }
  if (metacopyWorks !== false) {
    const own = await ownershipLayer(layers, p.lower, base);
    if (own) return opaqueMount(p, [own, p.lower], "metacopy=on");
  }
  // Without metacopy the root is re-owned after mounting, which needs the upper now.
  if (upperMadeByCaller) throw new Error("overlay metacopy stopped working; the sandbox's upper layer must be made first (retry the create)");
  const plan = opaqueMount(p, [p.lower], "");
  try {
    await runTool("mount", plan.mountArgs, { cwd: plan.cwd, timeoutMs: 30_000 });
  } finally {
    plan.done();
  }
  await chownAll(p.lower, p.merged, base);
  return null;
}

/**
 * Mounts the overlay with short relative layer paths (symlinks in a scratch
 * dir beside the mount point, which is mount's cwd). The kernel shows overlay
 * options as given, so the sandbox's /proc/self/mountinfo then reads
 * `lowerdir=l0:l1,upperdir=u,workdir=w` instead of the host's data, runtime
 * and images paths. The symlinks are only needed while mounting.
 */
function opaqueMount(p: RootfsPaths, lowers: string[], extra: string): RootfsMount {
  const dir = join(dirname(p.merged), ".ovl-" + p.merged.split("/").pop());
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  const done = () => rmSync(dir, { recursive: true, force: true });
  try {
    lowers.forEach((l, i) => symlinkSync(l, join(dir, `l${i}`)));
    symlinkSync(p.upper, join(dir, "u"));
    symlinkSync(p.work, join(dir, "w"));
  } catch (e) {
    done();
    throw e;
  }
  const opts = `lowerdir=${lowers.map((_, i) => `l${i}`).join(":")},upperdir=u,workdir=w${extra ? `,${extra}` : ""}`;
  return { cwd: dir, mountArgs: ["-t", "overlay", "-o", opts, "bhatti-root", p.merged], done };
}

export async function releaseRootfs(merged: string): Promise<void> {
  await unmountIfMounted(merged);
  if (isMounted(merged)) throw new Error(`could not unmount ${merged}`);
}

export function metacopyInUse(): boolean | undefined {
  return metacopyWorks;
}
