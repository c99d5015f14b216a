// The config drive: a small ext4 image on tmpfs holding config.json
// (ConfigDrive, with plaintext secret values). The plaintext is written from
// this process straight into the image, so it never exists as any other file,
// never in argv, never in a message.
//
// The image never has a name: it is an O_TMPFILE on the tmpfs runtime dir,
// reachable only through file descriptors, and it is never mounted on the
// host: the ns engine loop-mounts it inside the private mount namespace of
// its runc run (see ns/runc.ts; the loop device then holds it, and detaches
// itself when the last mount goes); the vm engine hands QEMU the fd.
// So a crash of the daemon at any moment leaves no file behind: what holds the
// plaintext is only ever a loop device or a QEMU process, both of which the
// next start finds and removes.
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, rmSync, rmdirSync, existsSync, writeSync } from "node:fs";
import { chmod, chown, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { ConfigDrive } from "../protocol/agent.js";
import { spawn } from "node:child_process";
import { assertTmpfs, detachLoopsUnder, isMounted, run, TOOL_ENV, unmountIfMounted } from "./runtime.js";

/** O_TMPFILE on x86_64 and arm64 (__O_TMPFILE | O_DIRECTORY); Node passes numeric flags through. */
const O_TMPFILE = 0o20200000;

/** A nameless drive image: only this fd (and whoever it is handed to) reaches it. */
export interface Drive {
  fd: number;
  /** Empties the file (freeing its tmpfs pages, even while QEMU holds it open) and closes our fd. Idempotent. */
  discard(): void;
}

function namelessFile(dir: string): Drive {
  const fd = openSync(dir, O_TMPFILE | constants.O_RDWR, 0o600);
  let open = true;
  return {
    fd,
    discard() {
      if (!open) return;
      open = false;
      try { ftruncateSync(fd, 0); } catch { /* closed below anyway */ }
      closeSync(fd);
    },
  };
}

/** The image as seen by a child process that got the drive's fd as its fd 3. */
export const CHILD_DRIVE_PATH = "/proc/self/fd/3";

/** The name older versions gave the image; only ever removed now (leftovers of an upgrade). */
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

// ---- fast path: a prepared filesystem with a placeholder config.json ----
//
// Per (owner, capacity) a drive is made once by mke2fs -d, holding config.json
// (0400, owner, root dir 0700) filled with random placeholder bytes; the
// template keeps the image's leading bytes and where each 4 KiB block of the
// placeholder sits. A drive is then that image with the JSON, padded with
// spaces (valid JSON whitespace), written over the placeholder blocks: one
// write of a file on tmpfs, no mount, no process. The value goes from this
// process's memory straight into the image, as before.

const BLOCK = 4096;
const MIN_CAPACITY = 64 * 1024;
const MAX_CAPACITY = 1024 * 1024; // larger configs take the mount path
const MAX_TEMPLATES = 64;

interface Prepared { head: Buffer; size: number; blocks: number[] }

const prepared = new Map<string, Promise<Prepared | null>>();

function capacityFor(bytes: number): number {
  let c = MIN_CAPACITY;
  while (c < bytes) c *= 2;
  return c;
}

function preparedTemplate(dir: string, owner: number, capacity: number): Promise<Prepared | null> {
  const key = `${owner}:${capacity}`;
  let t = prepared.get(key);
  if (t) {
    prepared.delete(key); // re-insert: most recently used last
    prepared.set(key, t);
    return t;
  }
  // A template that cannot be made (missing debugfs, odd layout) stays null: the mount path is used.
  t = makePrepared(dir, owner, capacity).catch(() => null);
  prepared.set(key, t);
  while (prepared.size > MAX_TEMPLATES) prepared.delete(prepared.keys().next().value as string);
  return t;
}

async function makePrepared(dir: string, owner: number, capacity: number): Promise<Prepared | null> {
  const src = join(dir, `.prep-${owner}-${capacity}`);
  const img = `${src}.ext4`;
  const kib = sizeKib(capacity);
  try {
    mkdirSync(src, { mode: 0o700 });
    await chown(src, owner, owner);
    const placeholder = randomBytes(capacity);
    await writeFile(join(src, CONFIG_JSON), placeholder, { mode: 0o400, flag: "wx" });
    await chown(join(src, CONFIG_JSON), owner, owner);
    await run("mke2fs", ["-q", "-F", "-t", "ext4", "-b", String(BLOCK), "-O", "^has_journal", "-m", "0", "-N", "64",
      "-E", `root_owner=${owner}:${owner}`, "-d", src, img, `${kib}k`]);
    await run("debugfs", ["-w", "-R", "sif <2> mode 040700", img]);
    const image = await readFile(img);
    // Where each placeholder block landed (the file need not be contiguous).
    const want = new Map<string, number>();
    for (let i = 0; i < capacity / BLOCK; i++) want.set(placeholder.subarray(i * BLOCK, i * BLOCK + 32).toString("hex"), i);
    const blocks: number[] = new Array<number>(capacity / BLOCK).fill(-1);
    let end = 0;
    for (let off = 0; off < image.length; off += BLOCK) {
      const blk = image.subarray(off, off + BLOCK);
      const i = want.get(blk.subarray(0, 32).toString("hex"));
      if (i !== undefined && blk.equals(placeholder.subarray(i * BLOCK, (i + 1) * BLOCK))) {
        blocks[i] = off;
        blk.fill(0);
      }
      if (blk.some((b) => b !== 0)) end = off + BLOCK;
    }
    if (blocks.some((b) => b < 0)) return null; // not laid out as plain blocks: use the mount path
    for (const b of blocks) end = Math.max(end, b + BLOCK);
    return { head: Buffer.from(image.subarray(0, end)), size: image.length, blocks };
  } finally {
    rmSync(src, { recursive: true, force: true });
    rmSync(img, { force: true });
  }
}

/** Writes the drive from a prepared template into the nameless file. false: no template fits, nothing written. */
async function writePrepared(drive: Drive, dir: string, body: Buffer, owner: number): Promise<boolean> {
  if (body.length > MAX_CAPACITY) return false;
  const t = await preparedTemplate(dir, owner, capacityFor(body.length));
  if (!t) return false;
  const out = Buffer.from(t.head);
  try {
    for (let i = 0; i < t.blocks.length; i++) {
      const at = t.blocks[i];
      const from = i * BLOCK;
      const n = Math.max(0, Math.min(BLOCK, body.length - from));
      if (n > 0) body.copy(out, at, from, from + n);
      out.fill(0x20, at + n, at + BLOCK);
    }
    writeAll(drive.fd, out);
    ftruncateSync(drive.fd, t.size);
    return true;
  } finally {
    out.fill(0);
  }
}

function writeAll(fd: number, buf: Buffer): void {
  for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off, off);
}

/** mount(8) of the nameless drive, given to it as its fd 3. */
function mountDriveFd(drive: Drive, mnt: string, options: string): Promise<unknown> {
  return run("mount", ["-t", "ext4", "-o", `loop,${options}`, CHILD_DRIVE_PATH, mnt], { fds: [drive.fd] });
}

/**
 * A loop mount of the drive that only exists in a private mount namespace of
 * a helper process (unshare(1) + mount(8) on /proc/self/fd/3, then it waits on
 * its stdin). This process reaches the mounted filesystem through
 * /proc/<helper>/root; the host never has a mount of it. close() ends the
 * helper: its namespace, the mount with it, and the loop device detaches
 * itself. If this daemon dies, the helper reads EOF and does the same.
 */
async function privateMount(drive: Drive, mnt: string): Promise<{ path: string; close: () => Promise<void> }> {
  const child = spawn("unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c",
    'mount -t ext4 -o loop,nosuid,nodev,noexec /proc/self/fd/3 "$1" || exit 125; exec 3<&-; echo ready; read _ || true', "sh", mnt], {
    env: TOOL_ENV, stdio: ["pipe", "pipe", "pipe", drive.fd],
  });
  const exited = new Promise<number>((resolve) => {
    child.on("error", () => resolve(127));
    child.on("close", (code) => resolve(code ?? 128));
  });
  child.stdin!.on("error", () => {});
  const ready = await Promise.race([
    new Promise<boolean>((resolve) => child.stdout!.on("data", (d: Buffer) => { if (d.includes("ready")) resolve(true); })),
    exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000).unref()),
  ]);
  const close = async () => {
    child.stdin!.end();
    const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
  };
  if (!ready || child.pid === undefined) {
    await close();
    throw new Error("config drive: mounting it for the write failed");
  }
  return { path: `/proc/${child.pid}/root${mnt}`, close };
}

/**
 * Fills a nameless drive with config.json (0400, owner), unmounted. Large
 * configs (beyond the prepared templates) are written through a loop mount
 * that only exists in a helper's private mount namespace (see privateMount).
 */
async function populate(dir: string, mnt: string, config: ConfigDrive, owner: number): Promise<Drive> {
  assertTmpfs(dir);
  const body = Buffer.from(JSON.stringify(config), "utf8");
  const drive = namelessFile(dir);
  try {
    if (await writePrepared(drive, dir, body, owner)) return drive;
    writeAll(drive.fd, await template(dir, sizeKib(body.length)));
    mkdirSync(mnt, { mode: 0o700 });
    const m = await privateMount(drive, mnt);
    try {
      await chown(m.path, owner, owner);
      await chmod(m.path, 0o700);
      let fh;
      try {
        fh = await open(join(m.path, CONFIG_JSON), "wx", 0o400);
        await fh.chown(owner, owner);
        await fh.writeFile(body);
        await fh.sync();
      } catch (e) {
        throw new Error(`config drive: writing ${CONFIG_JSON} failed (${(e as NodeJS.ErrnoException).code ?? "error"})`);
      } finally {
        await fh?.close();
      }
    } finally {
      await m.close();
    }
    rmdirSync(mnt);
    return drive;
  } catch (e) {
    drive.discard();
    await destroyConfigDrive(dir).catch(() => {});
    throw e;
  } finally {
    body.fill(0);
  }
}

/**
 * Builds a nameless drive (dir must be on tmpfs; the file lives there but has
 * no name) holding config.json mode 0400, unmounted. The caller hands
 * drive.fd to whoever needs the image and calls drive.discard() when done.
 * Errors name the failing step only.
 */
export async function buildConfigDrive(dir: string, config: ConfigDrive, opts: ConfigDriveOptions = {}): Promise<Drive> {
  return populate(dir, join(dir, BUILD_MOUNT), config, opts.owner ?? 0);
}

/** Loop-mounts a drive read-only (nosuid,nodev,noexec) at <dir>/config.mnt and returns that path (tests; the ns engine mounts it inside runc's own namespace, see Runc.start). */
export async function mountConfigDrive(dir: string, drive: Drive): Promise<string> {
  const mnt = configMountPath(dir);
  mkdirSync(mnt, { recursive: true, mode: 0o700 });
  await mountDriveFd(drive, mnt, "ro,nosuid,nodev,noexec");
  return mnt;
}

/**
 * Unmounts every host mount of the drive, detaches every loop device backed
 * by a file in dir, and deletes a named image an older version may have left.
 * Idempotent.
 */
export async function destroyConfigDrive(dir: string): Promise<void> {
  for (const m of [join(dir, BUILD_MOUNT), configMountPath(dir)]) {
    await unmountIfMounted(m);
    if (existsSync(m) && !isMounted(m)) rmSync(m, { recursive: true, force: true });
  }
  await detachLoopsUnder(dir);
  rmSync(configImagePath(dir), { force: true });
}
