// What of a user lives on the host outside state.db: its volume images and
// snapshot directories. A forced user delete (operator command, local
// database) reads their ids before the rows go and removes the files after;
// its live sandboxes are the daemon's to reap (SandboxService.reapOrphans
// while it runs, recover() at its next start).
import { existsSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { DB } from "../store/db.js";
import { removeVolumeImage } from "../volumes/image.js";

export interface OwnedFiles { volumes: string[]; snapshots: string[] }

/** The ids of the user's volumes and snapshots (call inside the delete's transaction). */
export function ownedFiles(db: DB, userId: number): OwnedFiles {
  const ids = (sql: string) => (db.prepare(sql).all(userId) as { id: string }[]).map((r) => r.id);
  return {
    volumes: ids("SELECT id FROM volumes WHERE user_id = ?"),
    snapshots: ids("SELECT id FROM snapshots WHERE user_id = ?"),
  };
}

/**
 * Removes the files of volumes and snapshots whose rows are gone. A volume an
 * ns sandbox still has mounted keeps its inode until the daemon unmounts it;
 * the name is gone at once. Returns what could not be removed (logged by the caller).
 */
export function removeOwnedFiles(dataDir: string, files: OwnedFiles): string[] {
  const failed: string[] = [];
  for (const id of files.volumes) {
    try { removeVolumeImage(dataDir, id); } catch (e) { failed.push(`volume ${id}: ${(e as Error).message}`); }
  }
  for (const id of files.snapshots) {
    if (!/^snap[0-9a-f]+$/.test(id)) { failed.push(`snapshot ${JSON.stringify(id)}: not a snapshot id`); continue; }
    const dir = join(dataDir, "snapshots", id);
    try {
      if (!existsSync(dir)) continue;
      // Out of the way at once (as SnapshotService.delete does), then removed.
      const trash = join(dataDir, "snapshots", `.trash-${id}`);
      renameSync(dir, trash);
      rmSync(trash, { recursive: true, force: true });
    } catch (e) { failed.push(`snapshot ${id}: ${(e as Error).message}`); }
  }
  return failed;
}
