// Where the daemon keeps things. One function per location, so the CLI,
// the daemon and tests agree on every path.
import { createHash } from "node:crypto";
import { mkdirSync, chmodSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export function resolveDataDir(flag?: string): string {
  const dir = flag ?? process.env.BHATTI_DATA_DIR ?? join(homedir(), ".bhatti");
  return resolve(dir);
}

/** Creates the data dir (0700) if needed and returns its real path. */
export function ensureDataDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return realpathSync(dir);
}

export function dataPaths(dataDir: string) {
  return {
    dataDir,
    key: join(dataDir, "age.key"),
    db: join(dataDir, "state.db"),
    socket: join(dataDir, "bhatti.sock"),
    pidFile: join(dataDir, "daemon.pid"),
    rotateLock: join(dataDir, "rotate.lock"),
    sandboxes: join(dataDir, "sandboxes"),
    images: process.env.BHATTI_IMAGES_DIR ? resolve(process.env.BHATTI_IMAGES_DIR) : join(dataDir, "images"),
  };
}

/** Runtime dir on tmpfs, unique per data dir so several daemons can share a host. */
export function runtimeDirFor(dataDir: string): string {
  const hash = createHash("sha256").update(dataDir).digest("hex").slice(0, 12);
  return join("/run/bhatti", hash);
}
