// Filesystem snapshots (issue 14): a copy of a sandbox's writable layer in
// <data_dir>/snapshots/<id>/upper plus what a fork needs to boot from it
// (image, size, the plain env age-encrypted, secret NAMES — never values:
// a fork resolves them again from its owner's store). Per user; another
// user's snapshot is simply not found.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { DB } from "../store/db.js";
import { recordEvent } from "../store/events.js";
import { conflict, notFound, UserError } from "../util/errors.js";
import type { User } from "../users/service.js";

export const MAX_SNAPSHOTS_PER_USER = 32;

export interface SnapshotView { name: string; sandbox: string; engine: string; image: string; cpus: number; memory_mb: number; created_at: string }

export interface SnapshotRow {
  id: string; user_id: number; name: string; sandbox: string; engine: string; image: string; cpus: number; memory_mb: number;
  disk_mb: number | null; base: number; boot_encrypted: Buffer | null; secret_names: string; created_at: string;
  network: string | null; // JSON policy of the source sandbox (netfix, migration 11); a fork gets its own network under it
}

const view = (r: SnapshotRow): SnapshotView => ({ name: r.name, sandbox: r.sandbox, engine: r.engine, image: r.image, cpus: r.cpus, memory_mb: r.memory_mb, created_at: r.created_at });

export class SnapshotService {
  constructor(private readonly db: DB, private readonly dataDir: string) {}

  dir(id: string): string {
    if (!/^snap[0-9a-f]+$/.test(id)) throw new Error(`bad snapshot id ${JSON.stringify(id)}`);
    return join(this.dataDir, "snapshots", id);
  }

  /** A new snapshot id and its (empty) directory; the row is written by record() once the copy is done. */
  reserve(user: User, name: string): { id: string; dir: string } {
    const n = (this.db.prepare("SELECT COUNT(*) AS n FROM snapshots WHERE user_id = ? AND name NOT LIKE '.%'").get(user.id) as { n: number }).n;
    if (n >= MAX_SNAPSHOTS_PER_USER) throw new UserError(403, `quota exceeded: at most ${MAX_SNAPSHOTS_PER_USER} snapshots`);
    if (this.db.prepare("SELECT 1 FROM snapshots WHERE user_id = ? AND name = ?").get(user.id, name)) throw conflict(`snapshot ${JSON.stringify(name)} already exists`);
    const id = "snap" + randomBytes(8).toString("hex");
    const dir = this.dir(id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return { id, dir };
  }

  record(user: User, r: Omit<SnapshotRow, "user_id" | "created_at">): SnapshotView {
    const now = new Date().toISOString();
    try {
      this.db.prepare(`INSERT INTO snapshots (id, user_id, name, sandbox, engine, image, cpus, memory_mb, disk_mb, base, boot_encrypted, secret_names, network, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(r.id, user.id, r.name, r.sandbox, r.engine, r.image, r.cpus, r.memory_mb, r.disk_mb, r.base, r.boot_encrypted, r.secret_names, r.network, now);
    } catch (e) {
      if (/UNIQUE/.test((e as Error).message)) throw conflict(`snapshot ${JSON.stringify(r.name)} already exists`);
      throw e;
    }
    recordEvent(this.db, "snapshot.created", user.name, r.name, { id: r.id, sandbox: r.sandbox });
    return view(this.get(user, r.name)!);
  }

  /** Removes a directory reserve() made (a snapshot that failed). */
  async discard(id: string): Promise<void> {
    await rm(this.dir(id), { recursive: true, force: true });
  }

  get(user: User, name: string): SnapshotRow | undefined {
    return this.db.prepare("SELECT * FROM snapshots WHERE user_id = ? AND name = ?").get(user.id, name) as SnapshotRow | undefined;
  }

  list(user: User): SnapshotView[] {
    return (this.db.prepare("SELECT * FROM snapshots WHERE user_id = ? AND name NOT LIKE '.%' ORDER BY name").all(user.id) as SnapshotRow[]).map(view);
  }

  async delete(user: User, name: string): Promise<void> {
    const r = this.get(user, name);
    if (!r) throw notFound(`snapshot ${JSON.stringify(name)} not found`);
    this.db.prepare("DELETE FROM snapshots WHERE id = ?").run(r.id);
    const dir = this.dir(r.id);
    if (existsSync(dir)) {
      // Out of the way at once, deleted after.
      const trash = join(this.dataDir, "snapshots", `.trash-${r.id}`);
      renameSync(dir, trash);
      await rm(trash, { recursive: true, force: true });
    }
    recordEvent(this.db, "snapshot.deleted", user.name, name, { id: r.id });
  }
}
