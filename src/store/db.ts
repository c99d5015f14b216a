// Opens state.db with the settings every bhatti process uses, and migrates it.
import Database from "better-sqlite3";
import { chmodSync, existsSync } from "node:fs";
import { migrations } from "./migrations.js";

export type DB = Database.Database;

/**
 * Settings, and why:
 * - WAL with synchronous=FULL: a write the API acknowledged (a secret set) is
 *   on disk when the response goes out, and survives power loss, not only a
 *   process crash (NORMAL would let the last commits vanish).
 * - secure_delete: freed pages are zeroed, so a deleted or replaced secret's
 *   ciphertext does not linger in the file (see purgeFreedPages for the WAL).
 * - state.db, -wal and -shm are 0600: created under umask 077 (SQLite gives
 *   -wal and -shm the database file's mode), and existing ones are fixed.
 */
export function openDb(path: string): DB {
  if (existsSync(path)) chmodSync(path, 0o600); // before the open: -wal and -shm inherit its mode
  const old = process.umask(0o077);
  let db: DB;
  try {
    db = new Database(path);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("secure_delete = ON");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
  } finally {
    process.umask(old);
  }
  for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  migrate(db);
  return db;
}

/**
 * After deleting or replacing sensitive rows: secure_delete zeroes the pages
 * in the database, but the WAL still holds the old page images until it is
 * checkpointed and reset. TRUNCATE checkpoints and empties it. Best effort: a
 * concurrent reader (an operator command) can make it a no-op this time; the
 * next one, or the next start, catches up.
 */
export function purgeFreedPages(db: DB): void {
  try {
    db.pragma("wal_checkpoint(TRUNCATE)");
  } catch {
    // busy: a later call does it
  }
}

export function migrate(db: DB): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const applied = new Set((db.prepare("SELECT version FROM schema_migrations").all() as { version: number }[]).map((r) => r.version));
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, new Date().toISOString());
    }).immediate();
  }
}

export function getMeta(db: DB, key: string): string | undefined {
  const row = db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
  return row?.value;
}

export function setMeta(db: DB, key: string, value: string): void {
  db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
}
