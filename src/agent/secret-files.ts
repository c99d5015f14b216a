// Secret files: each value is written into the secrets tmpfs (SECRETS_DIR),
// owned by the sandbox user with the requested mode, and a symlink to it is
// put at the requested path. The value never reaches the writable layer (the
// host's disk): only the symlink, which holds a path, lives there.
import { closeSync, fchmodSync, fchownSync, lchownSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, statfsSync, symlinkSync, writeSync, constants } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";
import { GUEST, SECRETS_DIR, type SecretFileConfig } from "../protocol/agent.js";
import { mkdirsOwned } from "./config.js";
import { run } from "./run.js";
import { tempName } from "./util.js";

const TMPFS_MAGIC = 0x01021994;

/** vm: lohar (real root) mounts the tmpfs itself; ns: runc mounted it (the bundle), and seccomp refuses mount. */
export async function mountSecretsDir(dir = SECRETS_DIR): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  await run("/bin/mount", ["-t", "tmpfs", "-o", "nosuid,nodev,noexec,mode=0711,size=16m", "tmpfs", dir]);
}

/** Writes every secret file; throws (naming the path, never the value) if one cannot be delivered safely. */
export function writeSecretFiles(files: SecretFileConfig[], dir = SECRETS_DIR): void {
  if (files.length === 0) return;
  // Never onto a disk: refuse unless the directory really is a tmpfs.
  if (BigInt(statfsSync(dir, { bigint: true }).type) !== BigInt(TMPFS_MAGIC)) throw new Error(`${dir} is not a tmpfs: secret files not written`);
  files.forEach((f, i) => {
    if (typeof f.path !== "string" || !isAbsolute(f.path) || typeof f.value !== "string") throw new Error(`secret file ${i}: malformed entry`);
    const mode = typeof f.mode === "number" ? f.mode & 0o777 : 0o400;
    const target = join(dir, String(i));
    const fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      const buf = Buffer.from(f.value, "utf8");
      for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off);
      buf.fill(0);
      fchownSync(fd, GUEST.user.uid, GUEST.user.gid);
      fchmodSync(fd, mode);
    } finally {
      closeSync(fd);
    }
    link(target, f.path);
  });
}

function link(target: string, path: string): void {
  mkdirsOwned(dirname(path));
  let existing: ReturnType<typeof lstatSync> | undefined;
  try { existing = lstatSync(path); } catch { /* absent */ }
  if (existing?.isDirectory()) throw new Error(`secret file ${JSON.stringify(path)}: a directory is in the way`);
  const tmp = join(dirname(path), tempName(basename(path)));
  symlinkSync(target, tmp);
  try {
    lchownSync(tmp, GUEST.user.uid, GUEST.user.gid);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
