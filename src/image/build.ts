// `bhatti image build`: makes <imagesDir>/<name>/ with rootfs/ (ns engine),
// rootfs.ext4 + vmlinux + initramfs.cpio (vm engine) and manifest.json.
// Idempotent (skips when the inputs hash is unchanged) and atomic (built in
// <name>.tmp-<pid>/, renamed into place). The replaced image is renamed aside
// and removed only once no sandbox uses it: an ns sandbox's overlay reads its
// lower layer for as long as it runs, and sandboxes outlive daemon restarts.
import { access, constants, mkdir, readdir, readFile, realpath, rename, rm } from "node:fs/promises";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkExtraPackages, debianRecipe } from "./debian.js";
import { HashCache } from "./hashes.js";
import { acquireLock } from "./lock.js";
import { minimalRecipe } from "./minimal.js";
import { ALIASES, canonicalImage, checkImageName, isRecipe, RECIPES } from "./names.js";
import { defaultLoharJs } from "./paths.js";
import type { Recipe, RecipeContext } from "./recipe.js";
import { NODE_PATH } from "./skeleton.js";
import type { BuildOptions, ImageInfo, Manifest } from "./types.js";

export type { BuildOptions, ImageInfo, Manifest } from "./types.js";
export { BUILDER_VERSION } from "./inputs.js";

const checkName = checkImageName;

/** The manifest of the image in `dir`, or null. */
export async function readManifest(dir: string): Promise<Manifest | null> {
  try {
    return JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
  } catch {
    return null;
  }
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
  name = canonicalImage(name);
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

/**
 * Puts a finished build `tmp` in place as image `name` (the caller holds its
 * lock). The window between the two renames is a few microseconds, and
 * recover() puts the old image back if a crash lands inside it.
 */
export async function swapIn(imagesDir: string, name: string, tmp: string, log: (l: string) => void): Promise<string> {
  const dir = join(imagesDir, name);
  const old = join(imagesDir, `${name}.old-${process.pid}-${Date.now()}`);
  const hadOld = await access(dir, constants.F_OK).then(() => true, () => false);
  const oldInUse = hadOld && imageInUse(dir);
  if (hadOld) await rename(dir, old);
  await rename(tmp, dir);
  if (oldInUse) log(`keeping the previous image as ${old} while sandboxes use it; a later build removes it`);
  else if (hadOld) await rm(old, { recursive: true, force: true });
  return dir;
}

/** Removes leftovers of crashed builds and replaced images nothing uses any more; puts back an old image a crash left renamed aside. */
export async function recover(imagesDir: string, name: string): Promise<void> {
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

/** An image built under an old name that is now an alias of `name` (base -> minimal): removed once nothing uses it. */
async function dropAliasDirs(imagesDir: string, name: string, log: (l: string) => void): Promise<void> {
  for (const [alias, target] of Object.entries(ALIASES)) {
    if (target !== name) continue;
    for (const e of await readdir(imagesDir)) {
      if (e !== alias && !e.startsWith(`${alias}.old-`) && !e.startsWith(`${alias}.tmp-`)) continue;
      const dir = join(imagesDir, e);
      if (imageInUse(dir)) continue;
      await rm(dir, { recursive: true, force: true });
      log(`removed ${e}: the image is called ${name} now`);
    }
  }
}

/**
 * The extra packages of an image derived from debian (empty for bhatti's own
 * images): from --from/--packages, or, on a rebuild, from its manifest.
 */
async function derivedFrom(opts: BuildOptions, name: string): Promise<string[]> {
  const given = opts.from !== undefined || (opts.packages?.length ?? 0) > 0;
  if (isRecipe(name)) {
    if (given) throw new Error(`${name} is one of bhatti's own images; give an image derived from it another name`);
    return [];
  }
  if (given) {
    if (opts.from !== "debian") throw new Error(`--from must be debian (the image extra packages are added to)`);
    if (!opts.packages?.length) throw new Error("--packages must name at least one Debian package");
    return checkExtraPackages(opts.packages);
  }
  const inputs = (await readManifest(join(opts.imagesDir, name)))?.inputs;
  if (inputs?.recipe === "debian" && Array.isArray(inputs.extra)) return checkExtraPackages(inputs.extra as string[]);
  if (inputs?.recipe === "import") throw new Error(`image ${name} was imported from a tarball; import it again to change it`);
  throw new Error(`bhatti has no recipe for an image called ${name}: it builds ${RECIPES.join(", ")}, or NAME --from debian --packages "PKG …"`);
}

export async function buildImage(opts: BuildOptions): Promise<ImageInfo> {
  const started = Date.now();
  const name = canonicalImage(opts.name ?? "minimal"); // callers that name none: the small image
  checkName(name);
  const extra = await derivedFrom(opts, name);
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
    await dropAliasDirs(imagesDir, name, log);
    const hashes = await HashCache.open(join(cacheDir, "hashes.json"));
    const ctx: RecipeContext = { name, imagesDir, cacheDir, nodeBinary, loharJs, vm, log, started, hashes };
    const recipe: Recipe = name === "minimal" ? minimalRecipe(ctx) : debianRecipe(ctx, extra);
    const existing = await loadImage(imagesDir, name);
    const hash = await recipe.currentHash(existing ? await readManifest(existing.dir) : null);
    await hashes.save();

    if (existing && existing.inputsHash === hash && !opts.force) {
      log(`image ${name} is up to date (${hash.slice(0, 12)})`);
      return existing;
    }
    log(existing ? `rebuilding image ${name} (${opts.force && existing.inputsHash === hash ? "forced" : "inputs changed"})` : `building image ${name}`);

    const tmp = join(imagesDir, `${name}.tmp-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    let manifest: Manifest;
    try {
      manifest = await recipe.assemble(tmp);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }

    const dir = await swapIn(imagesDir, name, tmp, log);
    log(`image ${name} built in ${((Date.now() - started) / 1000).toFixed(1)} s: rootfs ${(manifest.rootfs.bytes / 1048576).toFixed(0)} MiB in ${manifest.rootfs.files} files`);
    return infoFrom(dir, manifest, true);
  } finally {
    await lock.release();
  }
}
