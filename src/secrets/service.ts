// The per-user, write-only secret store. Values go in, are encrypted to the
// daemon's age recipient, and come out again only as plaintext for a sandbox's
// config drive (resolveForSandbox) — never through the API.
import { purgeFreedPages, type DB } from "../store/db.js";
import { recordEvent } from "../store/events.js";
import { notFound, UserError } from "../util/errors.js";
import type { Keyring } from "./keyring.js";
import { validateSecretName, validateSecretValue } from "./validate.js";

export interface SecretMeta { name: string; created_at: string; updated_at: string }
export interface Caller { id: number; name: string }

export const secretNotFound = (name: string) => notFound(`secret ${JSON.stringify(name)} not found`, "secret_not_found");

export class SecretService {
  private readonly q;

  constructor(private readonly db: DB, private readonly keyring: Keyring) {
    // Prepared once: these are the hot paths (set at p50 ~ the cost of one age encryption).
    this.q = {
      createdAt: db.prepare("SELECT created_at FROM secrets WHERE user_id = ? AND name = ?"),
      update: db.prepare("UPDATE secrets SET value_encrypted = ?, updated_at = ? WHERE user_id = ? AND name = ?"),
      insert: db.prepare("INSERT INTO secrets (user_id, name, value_encrypted, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"),
      listJson: db.prepare(
        `SELECT json_group_array(json_object('name', name, 'created_at', created_at, 'updated_at', updated_at)) AS j
         FROM (SELECT name, created_at, updated_at FROM secrets WHERE user_id = ? ORDER BY name)`,
      ),
      blob: db.prepare("SELECT value_encrypted FROM secrets WHERE user_id = ? AND name = ?"),
      delete: db.prepare("DELETE FROM secrets WHERE user_id = ? AND name = ?"),
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
      const prev = this.q.createdAt.get(user.id, name) as { created_at: string } | undefined;
      if (prev) this.q.update.run(blob, now, user.id, name);
      else this.q.insert.run(user.id, name, blob, now, now);
      recordEvent(this.db, "secret.set", user.name, name, { replaced: !!prev });
      return { secret: { name, created_at: prev?.created_at ?? now, updated_at: now }, created: !prev };
    })();
    if (!res.created) purgeFreedPages(this.db); // the old ciphertext's page images leave the WAL
    return res;
  }

  /** The caller's secrets ({name, created_at, updated_at}, by name) as JSON, serialized by SQLite itself: the API's hot path at 10k secrets. */
  listJson(user: Caller): string {
    return (this.q.listJson.get(user.id) as { j: string }).j;
  }

  delete(user: Caller, rawName: string): void {
    // An invalid name cannot exist, so it is simply not found: same answer as any missing name.
    const res = this.q.delete.run(user.id, rawName);
    if (res.changes === 0) throw secretNotFound(rawName);
    recordEvent(this.db, "secret.deleted", user.name, rawName);
    purgeFreedPages(this.db);
  }

  /**
   * Decrypts the named secrets of this user for a sandbox's config drive. An
   * unknown name — missing or another user's — is one and the same 400.
   * The returned map holds plaintext: keep it in memory only.
   */
  async resolveForSandbox(user: Caller, names: string[]): Promise<Map<string, string>> {
    const blobs: [string, Buffer][] = [];
    for (const name of names) {
      const row = this.q.blob.get(user.id, name) as { value_encrypted: Buffer } | undefined;
      if (!row) throw new UserError(400, `secret ${JSON.stringify(name)} not found`, {}, "secret_not_found");
      blobs.push([name, row.value_encrypted]);
    }
    const out = new Map<string, string>();
    const plain = await Promise.all(blobs.map(([, b]) => this.keyring.decrypt(b)));
    blobs.forEach(([name], i) => out.set(name, plain[i]));
    return out;
  }
}
