// The config drive: a small ext4 image, config.ext4, on tmpfs, holding
// config.json (ConfigDrive, with plaintext secret values). The plaintext is
// written from this process straight into the loop-mounted filesystem, so it
// never exists as any other file, never in argv, never in a message.
import { mkdirSync, rmSync, rmdirSync, existsSync } from "node:fs";
import { chmod, chown, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ConfigDrive } from "../protocol/agent.js";
import { assertTmpfs, detachLoops, isMounted, run, unmountIfMounted } from "./runtime.js";

export const CONFIG_IMAGE = "config.ext4";
export const CONFIG_JSON = "config.json";
const BUILD_MOUNT = "config.build";
export const HOST_MOUNT = "config.mnt";

export interface ConfigDriveOptions {
  /** Host uid/gid that owns config.json and the fs root (ns: the sandbox's root, base). Default 0. */
  owner?: number;
}

export function configImagePath(dir: string): string {
  return join(dir, CONFIG_IMAGE);
}

export function configMountPath(dir: string): string {
  return join(dir, HOST_MOUNT);
}

// mke2fs output for a given size does not depend on the contents to come, so
// each size is made once per process (on tmpfs, never holding a value) and
// copied per drive: one process spawn fewer on the create path.
const templates = new Map<number, Promise<Buffer>>();

function template(dir: string, kib: number): Promise<Buffer> {
  let t = templates.get(kib);
  if (!t) {
    t = (async () => {
      const tmp = join(dir, `.empty-${kib}.ext4`);
      try {
        await run("mke2fs", ["-q", "-F", "-t", "ext4", "-O", "^has_journal", "-m", "0", "-N", "64", tmp, `${kib}k`]);
        return await readFile(tmp);
      } finally {
        rmSync(tmp, { force: true });
      }
    })();
    t.catch(() => templates.delete(kib));
    templates.set(kib, t);
  }
  return t;
}

/** Drive size: 4 MiB, doubled until it holds the JSON twice over. */
function sizeKib(bytes: number): number {
  let kib = 4096;
  while (kib * 1024 < 2 * bytes + 1024 * 1024) kib *= 2;
  return kib;
}

/**
 * Creates <dir>/config.ext4 and mounts it at mnt: writes config.json (0400,
 * owner), syncs, then either remounts read-only (keep) or unmounts and detaches.
 */
async function populate(dir: string, mnt: string, config: ConfigDrive, owner: number, keep: boolean): Promise<string> {
  assertTmpfs(dir);
  const img = configImagePath(dir);
  const body = Buffer.from(JSON.stringify(config), "utf8");
  try {
    await writeFile(img, await template(dir, sizeKib(body.length)), { mode: 0o600, flag: "wx" });
    mkdirSync(mnt, { mode: 0o700 });
    await run("mount", ["-t", "ext4", "-o", "loop,nosuid,nodev,noexec", img, mnt]);
    await chown(mnt, owner, owner);
    await chmod(mnt, 0o700);
    let fh;
    try {
      fh = await open(join(mnt, CONFIG_JSON), "wx", 0o400);
      await fh.chown(owner, owner);
      await fh.writeFile(body);
      await fh.sync();
    } catch (e) {
      throw new Error(`config drive: writing ${CONFIG_JSON} failed (${(e as NodeJS.ErrnoException).code ?? "error"})`);
    } finally {
      await fh?.close();
    }
    if (keep) {
      await run("mount", ["-o", "remount,ro,nosuid,nodev,noexec", mnt]);
    } else {
      await run("umount", [mnt]);
      await detachLoops(img);
      rmdirSync(mnt);
    }
    return img;
  } catch (e) {
    await destroyConfigDrive(dir).catch(() => {});
    throw e;
  } finally {
    body.fill(0);
  }
}

/**
 * Builds <dir>/config.ext4 (dir must be on tmpfs) holding config.json mode 0400.
 * The image is left unmounted and detached. Errors name the failing step only.
 */
export async function buildConfigDrive(dir: string, config: ConfigDrive, opts: ConfigDriveOptions = {}): Promise<string> {
  return populate(dir, join(dir, BUILD_MOUNT), config, opts.owner ?? 0, false);
}

/**
 * Like buildConfigDrive, but leaves the drive loop-mounted read-only
 * (nosuid,nodev,noexec) at <dir>/config.mnt (the ns engine bind-mounts that).
 * Returns the mount path.
 */
export async function buildMountedConfigDrive(dir: string, config: ConfigDrive, opts: ConfigDriveOptions = {}): Promise<string> {
  const mnt = configMountPath(dir);
  await populate(dir, mnt, config, opts.owner ?? 0, true);
  return mnt;
}

/** Loop-mounts the drive read-only (nosuid,nodev,noexec) at <dir>/config.mnt and returns that path. */
export async function mountConfigDrive(dir: string): Promise<string> {
  const mnt = configMountPath(dir);
  mkdirSync(mnt, { recursive: true, mode: 0o700 });
  await run("mount", ["-t", "ext4", "-o", "loop,ro,nosuid,nodev,noexec", configImagePath(dir), mnt]);
  return mnt;
}

/** Unmounts every host mount of the drive, detaches its loop devices, deletes the image. Idempotent. */
export async function destroyConfigDrive(dir: string): Promise<void> {
  const img = configImagePath(dir);
  for (const m of [join(dir, BUILD_MOUNT), configMountPath(dir)]) {
    await unmountIfMounted(m);
    if (existsSync(m) && !isMounted(m)) rmSync(m, { recursive: true, force: true });
  }
  await detachLoops(img);
  rmSync(img, { force: true });
}
