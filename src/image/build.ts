// `bhatti image build`: makes <imagesDir>/<name>/ with rootfs/ (ns engine),
// rootfs.ext4 + vmlinux + initramfs.cpio (vm engine) and manifest.json.
// Idempotent (skips when the inputs hash is unchanged) and atomic (built in
// <name>.tmp-<pid>/, renamed into place). The replaced image is renamed aside
// and removed only once no sandbox uses it: an ns sandbox's overlay reads its
// lower layer for as long as it runs, and sandboxes outlive daemon restarts.
import { access, constants, mkdir, readdir, readFile, realpath, rename, rm } from "node:fs/promises";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveDebs } from "./apt.js";
import { assemble } from "./assemble.js";
import { HashCache } from "./hashes.js";
import { collectInputs, inputsHash, PACKAGES } from "./inputs.js";
import { acquireLock } from "./lock.js";
import { defaultLoharJs } from "./paths.js";
import { NODE_PATH } from "./skeleton.js";
import type { BuildOptions, ImageInfo, Manifest } from "./types.js";
import { KERNEL_META_PACKAGE, kernelInputs } from "./vm-artifacts.js";

export type { BuildOptions, ImageInfo, Manifest } from "./types.js";
export { BUILDER_VERSION } from "./inputs.js";

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function checkName(name: string): void {
  if (!NAME_RE.test(name)) throw new Error(`bad image name ${JSON.stringify(name)} (want ${NAME_RE.source})`);
}

function infoFrom(dir: string, m: Manifest, rebuilt: boolean): ImageInfo {
  const has = (p: string): boolean => m.files.some((f) => f.path === p);
  return {
    name: m.name,
    dir,
    rootfs: join(dir, "rootfs"),
    rootfsExt4: has("rootfs.ext4") ? join(dir, "rootfs.ext4") : undefined,
    kernel: has("vmlinux") ? join(dir, "vmlinux") : undefined,
    initramfs: has("initramfs.cpio") ? join(dir, "initramfs.cpio") : undefined,
    inputsHash: m.inputsHash,
    builtAt: m.builtAt,
    rebuilt,
  };
}

/** The built image `name`, or null if there is none (or it is incomplete). */
export async function loadImage(imagesDir: string, name: string): Promise<ImageInfo | null> {
  checkName(name);
  const dir = join(imagesDir, name);
  let m: Manifest;
  try {
    m = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
  } catch {
    return null;
  }
  if (m.name !== name || typeof m.inputsHash !== "string" || !Array.isArray(m.files)) return null;
  try {
    await access(join(dir, "rootfs", NODE_PATH.slice(1)));
  } catch {
    return null;
  }
  return infoFrom(dir, m, false);
}

/**
 * Whether a sandbox may still be reading image `dir`: an overlay mount naming
 * its rootfs (ns), or a process started with its files (vm's QEMU). Mount
 * options keep the path given at mount time, so after the image is renamed
 * aside this answers for every version of the name: it errs on keeping.
 */
export function imageInUse(dir: string): boolean {
  const rootfs = join(dir, "rootfs");
  try {
    if (readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.includes(" overlay ") && l.includes(rootfs))) return true;
  } catch { /* no procfs: assume unused */ }
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`${dir}/`)) return true;
    } catch { /* exited */ }
  }
  return false;
}

/** Removes leftovers of crashed builds and replaced images nothing uses any more; puts back an old image a crash left renamed aside. */
async function recover(imagesDir: string, name: string): Promise<void> {
  const entries = await readdir(imagesDir);
  const current = entries.includes(name);
  const inUse = imageInUse(join(imagesDir, name));
  for (const e of entries) {
    if (e.startsWith(`${name}.tmp-`)) await rm(join(imagesDir, e), { recursive: true, force: true });
    else if (e.startsWith(`${name}.old-`)) {
      if (!current && (await loadImage(imagesDir, name).catch(() => null)) === null) {
        if (await rename(join(imagesDir, e), join(imagesDir, name)).then(() => true, () => false)) continue;
      }
      if (!inUse) await rm(join(imagesDir, e), { recursive: true, force: true });
    }
  }
}

export async function buildImage(opts: BuildOptions): Promise<ImageInfo> {
  const started = Date.now();
  const name = opts.name ?? "base";
  checkName(name);
  const vm = opts.vm ?? true;
  const log = opts.log ?? (() => undefined);
  const imagesDir = opts.imagesDir;
  const cacheDir = opts.cacheDir ?? join(imagesDir, ".cache");
  const nodeBinary = await realpath(opts.nodeBinary ?? process.execPath);
  const loharJs = opts.loharJs ?? defaultLoharJs();
  await access(loharJs).catch(() => {
    throw new Error(`${loharJs} not found: build lohar first (npm run build)`);
  });
  if (process.getuid?.() !== 0) throw new Error("image build must run as root (the image's files are owned by root and uid 1000)");

  await mkdir(imagesDir, { recursive: true, mode: 0o755 });
  await mkdir(cacheDir, { recursive: true, mode: 0o755 });
  const lock = await acquireLock(join(imagesDir, `.${name}.lock`), {
    timeoutMs: opts.lockTimeoutMs ?? 15 * 60_000,
    onWait: (pid) => log(`waiting for the image build in process ${pid}`),
  });
  try {
    await recover(imagesDir, name);
    const hashes = await HashCache.open(join(cacheDir, "hashes.json"));
    const debs = await resolveDebs(vm ? [...PACKAGES, KERNEL_META_PACKAGE] : PACKAGES, cacheDir, log);
    const kernel = vm ? await kernelInputs(debs[KERNEL_META_PACKAGE]) : null;
    const inputs = await collectInputs({ debs, nodeBinary, loharJs, vm, kernel, hashes });
    const hash = inputsHash(inputs);
    await hashes.save();

    const existing = await loadImage(imagesDir, name);
    if (existing && existing.inputsHash === hash && !opts.force) {
      log(`image ${name} is up to date (${hash.slice(0, 12)})`);
      return existing;
    }
    log(existing ? `rebuilding image ${name} (${opts.force && existing.inputsHash === hash ? "forced" : "inputs changed"})` : `building image ${name}`);

    const tmp = join(imagesDir, `${name}.tmp-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    let manifest: Manifest;
    try {
      manifest = await assemble({ dir: tmp, name, inputs, inputsHash: hash, nodeBinary, loharJs, cacheDir, vm, log, started });
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }

    // Swap into place: the window between the two renames is a few microseconds,
    // and recover() puts the old image back if a crash lands inside it.
    const dir = join(imagesDir, name);
    const old = join(imagesDir, `${name}.old-${process.pid}-${Date.now()}`);
    const hadOld = await access(dir, constants.F_OK).then(() => true, () => false);
    const oldInUse = hadOld && imageInUse(dir);
    if (hadOld) await rename(dir, old);
    await rename(tmp, dir);
    if (oldInUse) log(`keeping the previous image as ${old} while sandboxes use it; a later build removes it`);
    else if (hadOld) await rm(old, { recursive: true, force: true });
    log(`image ${name} built in ${((Date.now() - started) / 1000).toFixed(1)} s: rootfs ${(manifest.rootfs.bytes / 1048576).toFixed(0)} MiB in ${manifest.rootfs.files} files`);
    return infoFrom(dir, manifest, true);
  } finally {
    await lock.release();
  }
}
