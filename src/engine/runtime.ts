// Helpers shared by the engines: running host tools with a cleared environment,
// the tmpfs runtime dir, mount/loop inspection and host-global uid-slot
// reservations for user namespaces. Nothing here ever sees a secret value:
// arguments passed to run() must be paths and flags only.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statfsSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { run as runTool, type RunResult } from "../util/run.js";
import { join } from "node:path";
import { connect, type Socket } from "node:net";

export const TMPFS_MAGIC = 0x01021994;
export const RUN_BHATTI = "/run/bhatti";
export const UID_SLOTS_DIR = join(RUN_BHATTI, "uid-slots");
export const UID_BASE = 1_000_000;
export const UID_RANGE = 65536;
export const MAX_SLOTS = 4096;

export { TOOL_ENV, type RunResult } from "../util/run.js";

/** Runs a host tool (see src/util/run.ts); engine steps get a 30 s timeout unless they say otherwise. */
export function run(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number; fds?: number[] } = {}): Promise<RunResult> {
  return runTool(cmd, args, { timeoutMs: 30_000, ...opts });
}

export function isTmpfs(path: string): boolean {
  return statfsSync(path).type === TMPFS_MAGIC;
}

export function assertTmpfs(path: string): void {
  if (!isTmpfs(path)) throw new Error(`${path} is not on tmpfs; refusing to place a config drive there`);
}

/**
 * File in a runtime dir naming the data dir it belongs to: the dir's name is
 * only a hash of that path, and a later daemon needs the path to tell whether
 * the dir is stale (see stale-runtime.ts).
 */
export const DATADIR_RECORD = "datadir";

/**
 * Makes sure /run/bhatti is a tmpfs (mounting one if the host's /run is not)
 * and creates the daemon's runtime dir 0711 inside it, recording dataDir in it.
 */
export async function ensureRuntimeDir(runtimeDir: string, dataDir?: string): Promise<void> {
  mkdirSync(RUN_BHATTI, { recursive: true, mode: 0o755 });
  if (!isTmpfs(RUN_BHATTI)) {
    await run("mount", ["-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "bhatti-run", RUN_BHATTI]);
  }
  mkdirSync(runtimeDir, { recursive: true, mode: 0o711 });
  if (dataDir) {
    const rec = join(runtimeDir, DATADIR_RECORD);
    writeFileSync(`${rec}.tmp`, `${dataDir}\n`, { mode: 0o600 });
    renameSync(`${rec}.tmp`, rec);
  }
  // 0711, not 0700: runc sets up a sandbox's mounts from inside its user
  // namespace, so the sandbox's root (an unprivileged host uid) must be able to
  // traverse to <rt>/sb/<id>/. Nothing here is listable, and each sandbox dir
  // is root:<base> 0710, so no other host user gets further.
  chmodSync(runtimeDir, 0o711);
  mkdirSync(join(runtimeDir, "sb"), { recursive: true, mode: 0o711 });
  if (!isTmpfs(runtimeDir)) throw new Error(`runtime dir ${runtimeDir} is not on tmpfs`);
}

/**
 * Marks the runtime dir as this daemon instance's (file <rt>/instance). The
 * runtime dir's path comes from the data dir's path, so it is normally ours;
 * if it holds another instance's mark (its state.db was replaced while its
 * sandboxes ran) and still has sandboxes, the mark is kept and that instance
 * is returned: the caller then leaves what it finds there alone.
 */
export function claimRuntimeDir(runtimeDir: string, instance: string): string | null {
  const f = join(runtimeDir, "instance");
  let prev: string | null = null;
  try {
    prev = readFileSync(f, "utf8").trim() || null;
  } catch {
    // no mark yet
  }
  if (prev === instance) return null;
  if (prev && sandboxDirsWith(runtimeDir, ["bundle", "rootfs", "agent", "agent.sock", "qemu.log", "console.log"]).length > 0) return prev;
  writeFileSync(f, `${instance}\n`, { mode: 0o600 });
  return null;
}

export function sandboxRuntimeDir(runtimeDir: string, id: string): string {
  return join(runtimeDir, "sb", id);
}

// ---- mounts and loop devices ----

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points (field 5 of /proc/self/mountinfo) of the host's mount namespace. */
export function mountPoints(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => unescapeMount(l.split(" ")[4]));
}

export function isMounted(path: string): boolean {
  return mountPoints().includes(path);
}

/** Unmounts path if mounted (lazily if busy). */
export async function unmountIfMounted(path: string): Promise<void> {
  if (!isMounted(path)) return;
  const r = await run("umount", [path], { allowFail: true });
  if (r.code !== 0 && isMounted(path)) await run("umount", ["-l", path]);
}

/** Every bound loop device with its backing file as the kernel shows it (a deleted one ends in " (deleted)"). */
function boundLoops(): { dev: string; backing: string }[] {
  const out: { dev: string; backing: string }[] = [];
  let names: string[] = [];
  try {
    names = readdirSync("/sys/block").filter((n) => n.startsWith("loop"));
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      out.push({ dev: `/dev/${n}`, backing: readFileSync(`/sys/block/${n}/loop/backing_file`, "utf8").trim() });
    } catch {
      // not bound
    }
  }
  return out;
}

/** Loop devices whose backing file is `file` ("/dev/loopN"). */
export function loopDevicesFor(file: string): string[] {
  return boundLoops().filter((l) => l.backing.replace(/ \(deleted\)$/, "") === file).map((l) => l.dev);
}

/** Every bound loop device's backing file. */
export function loopBackingFiles(): string[] {
  return boundLoops().map((l) => l.backing);
}

export async function detachLoops(file: string): Promise<void> {
  for (const dev of loopDevicesFor(file)) await run("losetup", ["-d", dev], { allowFail: true });
}

/** Loop devices whose backing file lies in dir (named or not: a nameless file shows as `<dir>/#<inode> (deleted)`). */
export function loopDevicesUnder(dir: string): string[] {
  return boundLoops().filter((l) => l.backing.startsWith(`${dir}/`)).map((l) => l.dev);
}

export async function detachLoopsUnder(dir: string): Promise<void> {
  for (const dev of loopDevicesUnder(dir)) await run("losetup", ["-d", dev], { allowFail: true });
}

// ---- uid slots (host-global user-namespace range reservations) ----

export interface UidSlot { slot: number; base: number }

export function slotBase(slot: number): number {
  return UID_BASE + slot * UID_RANGE;
}

/**
 * Reserves a free slot by creating /run/bhatti/uid-slots/<n> with O_EXCL, so
 * several daemons on one host never hand out the same id range.
 */
export function allocateUidSlot(owner: string, prefer?: number): UidSlot {
  mkdirSync(UID_SLOTS_DIR, { recursive: true, mode: 0o755 });
  const taken = new Set(readdirSync(UID_SLOTS_DIR));
  // prefer: a stopped sandbox's former slot, tried first (its files then need no re-owning).
  const order = prefer !== undefined && prefer >= 0 && prefer < MAX_SLOTS ? [prefer] : [];
  for (let slot = 0; slot < MAX_SLOTS; slot++) if (slot !== prefer) order.push(slot);
  for (const slot of order) {
    if (taken.has(String(slot))) continue;
    let fd: number;
    try {
      fd = openSync(join(UID_SLOTS_DIR, String(slot)), "wx", 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw e;
    }
    writeSync(fd, `${owner}\n`);
    closeSync(fd);
    return { slot, base: slotBase(slot) };
  }
  throw new Error(`no free user-namespace slot (all ${MAX_SLOTS} in ${UID_SLOTS_DIR} taken)`);
}

/** Frees a slot, but only if `owner` still holds it. */
export function freeUidSlot(slot: number, owner: string): void {
  const p = join(UID_SLOTS_DIR, String(slot));
  try {
    if (readFileSync(p, "utf8").trim() !== owner) return;
    unlinkSync(p);
  } catch {
    // already free
  }
}

export function slotOwner(slot: number): string | null {
  try {
    return readFileSync(join(UID_SLOTS_DIR, String(slot)), "utf8").trim();
  } catch {
    return null;
  }
}

/** A connected unix socket, or null if nothing listens there (yet). */
export function tryConnect(path: string): Promise<Socket | null> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", () => {
      s.destroy();
      resolve(null);
    });
  });
}

/** Sandbox ids that have a runtime dir (<rt>/sb/<id>) holding any of the given entries. */
export function sandboxDirsWith(runtimeDir: string, entries: string[]): string[] {
  const sb = join(runtimeDir, "sb");
  let ids: string[];
  try { ids = readdirSync(sb); } catch { return []; }
  return ids.filter((id) => /^[a-z0-9]+$/.test(id) && entries.some((e) => existsSync(join(sb, id, e))));
}
