// The config drive: a small ext4 image, config.ext4, on tmpfs, holding
// config.json (ConfigDrive, with plaintext secret values). The plaintext is
// written from this process straight into the loop-mounted filesystem, so it
// never exists as any other file, never in argv, never in a message.
import { mkdirSync, rmSync, rmdirSync, existsSync } from "node:fs";
import { open, chown, chmod } from "node:fs/promises";
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

/**
 * Builds <dir>/config.ext4 (dir must be on tmpfs) holding config.json mode 0400.
 * The image is left unmounted and detached. Errors name the failing step only.
 */
export async function buildConfigDrive(dir: string, config: ConfigDrive, opts: ConfigDriveOptions = {}): Promise<string> {
  assertTmpfs(dir);
  const owner = opts.owner ?? 0;
  const img = configImagePath(dir);
  const mnt = join(dir, BUILD_MOUNT);
  const body = Buffer.from(JSON.stringify(config), "utf8");
  try {
    const kib = 4096 + Math.ceil((body.length * 2) / 1024);
    await run("mke2fs", ["-q", "-F", "-t", "ext4", "-O", "^has_journal", "-m", "0", "-N", "64", "-E", `root_owner=${owner}:${owner}`, img, `${kib}k`]);
    mkdirSync(mnt, { mode: 0o700 });
    await run("mount", ["-t", "ext4", "-o", "loop,nosuid,nodev,noexec", img, mnt]);
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
    await chown(mnt, owner, owner);
    await run("umount", [mnt]);
    await detachLoops(img);
    rmdirSync(mnt);
    return img;
  } catch (e) {
    body.fill(0);
    await destroyConfigDrive(dir).catch(() => {});
    throw e;
  } finally {
    body.fill(0);
  }
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
