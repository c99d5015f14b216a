// The per-user, write-only secret store. Values go in, are encrypted to the
// daemon's age recipient, and come out again only as plaintext for a sandbox's
// config drive (resolveForSandbox) — never through the API.
import { purgeFreedPages, type DB } from "../store/db.js";
import { recordEvent } from "../store/events.js";
import { notFound, UserError } from "../util/errors.js";
import type { Keyring } from "./keyring.js";
import { validateSecretName, validateSecretValue } from "./validate.js";

export interface SecretMeta { name: string; version: number; created_at: string; updated_at: string }
/** Plaintext values (memory only) and the version of each that was read. */
export interface Resolved { values: Map<string, string>; versions: Record<string, number> }
export interface Caller { id: number; name: string }

export const secretNotFound = (name: string) => notFound(`secret ${JSON.stringify(name)} not found`, "secret_not_found");

/** Cached list answers: at most this many users' lists, this many characters in all. */
const LIST_CACHE_ENTRIES = 16;
const LIST_CACHE_CHARS = 32 << 20;

export class SecretService {
  private readonly q;
  // The list's JSON per user (names and timestamps only, never a value): SQLite
  // takes ~15 ms to build it at 10k secrets. Dropped on this user's set/delete;
  // all dropped when another process wrote to state.db (PRAGMA data_version).
  private readonly listCache = new Map<number, string>();
  private listCacheChars = 0;
  private listCacheVersion = -1;

  constructor(private readonly db: DB, private readonly keyring: Keyring) {
    // Prepared once: these are the hot paths (set at p50 ~ the cost of one age encryption).
    this.q = {
      prev: db.prepare("SELECT created_at, version FROM secrets WHERE user_id = ? AND name = ?"),
      update: db.prepare("UPDATE secrets SET value_encrypted = ?, updated_at = ?, version = ? WHERE user_id = ? AND name = ?"),
      insert: db.prepare("INSERT INTO secrets (user_id, name, value_encrypted, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"),
      listJson: db.prepare(
        `SELECT json_group_array(json_object('name', name, 'version', version, 'created_at', created_at, 'updated_at', updated_at)) AS j
         FROM (SELECT name, version, created_at, updated_at FROM secrets WHERE user_id = ? ORDER BY name)`,
      ),
      blob: db.prepare("SELECT value_encrypted, version FROM secrets WHERE user_id = ? AND name = ?"),
      delete: db.prepare("DELETE FROM secrets WHERE user_id = ? AND name = ?"),
      dataVersion: db.prepare("PRAGMA data_version").pluck(),
    };
  }

  /** Create or replace. Returns the metadata and whether it was created. */
  async set(user: Caller, rawName: unknown, rawValue: unknown): Promise<{ secret: SecretMeta; created: boolean }> {
    const name = validateSecretName(rawName);
    const value = validateSecretValue(rawValue);
    const blob = await this.keyring.encrypt(value);
    const now = new Date().toISOString();
    // Synchronous from here: no other request can interleave between the read and the write.
    const res = this.db.transaction(() => {
      const prev = this.q.prev.get(user.id, name) as { created_at: string; version: number } | undefined;
      const version = prev ? prev.version + 1 : 1;
      if (prev) this.q.update.run(blob, now, version, user.id, name);
      else this.q.insert.run(user.id, name, blob, now, now);
      recordEvent(this.db, "secret.set", user.name, name, { version, replaced: !!prev });
      return { secret: { name, version, created_at: prev?.created_at ?? now, updated_at: now }, created: !prev };
    })();
    this.forgetList(user.id);
    if (!res.created) purgeFreedPages(this.db); // the old ciphertext's page images leave the WAL
    return res;
  }

  /** The caller's secrets ({name, version, created_at, updated_at}, by name) as JSON, serialized by SQLite itself: the API's hot path at 10k secrets. */
  listJson(user: Caller): string {
    const v = this.q.dataVersion.get() as number;
    if (v !== this.listCacheVersion) {
      this.listCache.clear();
      this.listCacheChars = 0;
      this.listCacheVersion = v;
    }
    const hit = this.listCache.get(user.id);
    if (hit !== undefined) {
      this.listCache.delete(user.id); // most recently used goes last
      this.listCache.set(user.id, hit);
      return hit;
    }
    const j = (this.q.listJson.get(user.id) as { j: string }).j;
    if (j.length <= LIST_CACHE_CHARS / 4) {
      this.listCache.set(user.id, j);
      this.listCacheChars += j.length;
      for (const [id, old] of this.listCache) {
        if (this.listCache.size <= LIST_CACHE_ENTRIES && this.listCacheChars <= LIST_CACHE_CHARS) break;
        this.listCache.delete(id);
        this.listCacheChars -= old.length;
      }
    }
    return j;
  }

  private forgetList(userId: number): void {
    const old = this.listCache.get(userId);
    if (old === undefined) return;
    this.listCache.delete(userId);
    this.listCacheChars -= old.length;
  }

  delete(user: Caller, rawName: string): void {
    // An invalid name cannot exist, so it is simply not found: same answer as any missing name.
    this.db.transaction(() => {
      const row = this.q.prev.get(user.id, rawName) as { version: number } | undefined;
      const res = this.q.delete.run(user.id, rawName);
      if (res.changes === 0) throw secretNotFound(rawName);
      recordEvent(this.db, "secret.deleted", user.name, rawName, { version: row?.version });
    })();
    this.forgetList(user.id);
    purgeFreedPages(this.db);
  }

  /**
   * Decrypts the named secrets of this user for a sandbox's config drive. An
   * unknown name — missing or another user's — is one and the same 400.
   * The returned map holds plaintext: keep it in memory only.
   */
  async resolveForSandbox(user: Caller, names: string[]): Promise<Map<string, string>> {
    return (await this.resolve(user, names)).values;
  }

  /** resolveForSandbox, with the version of each value (read together: the version always matches the value). */
  async resolve(user: Caller, names: string[], opts: { skipMissing?: boolean } = {}): Promise<Resolved> {
    const blobs: [string, Buffer][] = [];
    const versions: Record<string, number> = {};
    for (const name of names) {
      const row = this.q.blob.get(user.id, name) as { value_encrypted: Buffer; version: number } | undefined;
      if (!row && opts.skipMissing) continue;
      if (!row) throw new UserError(400, `secret ${JSON.stringify(name)} not found`, {}, "secret_not_found");
      blobs.push([name, row.value_encrypted]);
      versions[name] = row.version;
    }
    const values = new Map<string, string>();
    const plain = await Promise.all(blobs.map(([, b]) => this.keyring.decrypt(b)));
    blobs.forEach(([name], i) => values.set(name, plain[i]));
    return { values, versions };
  }
}
