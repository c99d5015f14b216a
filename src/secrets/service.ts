// The per-user, write-only secret store. Values go in, are encrypted to the
// daemon's age recipient, and come out again only as plaintext for a sandbox's
// config drive (resolveForSandbox) — never through the API.
import { purgeFreedPages, type DB } from "../store/db.js";
import { recordEvent } from "../store/events.js";
import { badRequest, conflict, notFound, UserError } from "../util/errors.js";
import type { Keyring } from "./keyring.js";
import { validateSecretName, validateSecretValue } from "./validate.js";
import { applyBinding, bindingOf, type Binding, type BindingChange } from "../broker/binding.js";
import { shapeOf, unbrokerable } from "../broker/placeholder.js";

/** A secret as the API shows it; the binding fields only for a secret bound to hosts (issue 11). */
export interface SecretMeta { name: string; version: number; created_at: string; updated_at: string; hosts?: string[]; header?: string; in_body?: boolean }
/**
 * Plaintext values (memory only) and the version of each that was read.
 * Secrets bound to hosts are never decrypted here: they are in `bound` (name
 * -> version), and a sandbox gets a placeholder for them (src/broker/).
 */
export interface Resolved { values: Map<string, string>; versions: Record<string, number>; bound: Map<string, number> }
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
      prev: db.prepare("SELECT created_at, version, hosts, header, in_body FROM secrets WHERE user_id = ? AND name = ?"),
      update: db.prepare("UPDATE secrets SET value_encrypted = ?, updated_at = ?, version = ?, hosts = ?, header = ?, in_body = ?, shape = ? WHERE user_id = ? AND name = ?"),
      rebind: db.prepare("UPDATE secrets SET updated_at = ?, hosts = ?, header = ?, in_body = ?, shape = ? WHERE user_id = ? AND name = ?"),
      insert: db.prepare("INSERT INTO secrets (user_id, name, value_encrypted, created_at, updated_at, hosts, header, in_body, shape) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
      // The binding's fields only for a bound secret (json_patch drops a null header): an unbound secret lists exactly as before.
      listJson: db.prepare(
        `SELECT json_group_array(json_patch(json_object('name', name, 'version', version, 'created_at', created_at, 'updated_at', updated_at),
           CASE WHEN hosts IS NULL THEN '{}' ELSE json_object('hosts', json(hosts), 'header', header, 'in_body', json(CASE in_body WHEN 1 THEN 'true' ELSE 'false' END)) END)) AS j
         FROM (SELECT name, version, created_at, updated_at, hosts, header, in_body FROM secrets WHERE user_id = ? ORDER BY name)`,
      ),
      blob: db.prepare("SELECT value_encrypted, version, hosts FROM secrets WHERE user_id = ? AND name = ?"),
      delete: db.prepare("DELETE FROM secrets WHERE user_id = ? AND name = ?"),
      dataVersion: db.prepare("PRAGMA data_version").pluck(),
    };
  }

  /**
   * Create or replace. Returns the metadata and whether it was created.
   * `change` is what the request says about the secret's binding to hosts
   * (issue 11): a plain replace keeps it. Without a value (undefined), only
   * the binding of an existing secret changes and its version stays.
   */
  async set(user: Caller, rawName: unknown, rawValue: unknown, change: BindingChange = { kind: "keep" }): Promise<{ secret: SecretMeta; created: boolean }> {
    const name = validateSecretName(rawName);
    const value = rawValue === undefined ? undefined : validateSecretValue(rawValue);
    type Prev = { created_at: string; version: number; hosts: string | null; header: string | null; in_body: number };
    const before = this.q.prev.get(user.id, name) as Prev | undefined;
    let checked: string | null = null; // why the value (new or kept) cannot be brokered, or null
    let shape: string | null = null; // what its placeholders copy, if it is (or stays) bound
    let blob: Buffer | null = null;
    if (value === undefined) {
      if (change.kind === "keep") throw badRequest("value must be a string: it is required (to change only a secret's binding, give hosts, header or in_body)");
      if (!before) throw badRequest("value must be a string: it is required to create a secret (only an existing secret's binding can change without one)");
      if (applyBinding(bindingOf(before), change)) {
        // Binding a stored value: it must be brokerable too. Decrypted in memory for this only.
        const stored = await this.storedValue(user.id, name);
        checked = unbrokerable(stored);
        if (!checked) shape = JSON.stringify(shapeOf(stored));
      }
    } else {
      applyBinding(before ? bindingOf(before) : null, change); // an amend of an unbound secret fails before any work
      checked = unbrokerable(value);
      if (!checked) shape = JSON.stringify(shapeOf(value));
      blob = await this.keyring.encrypt(value);
    }
    const now = new Date().toISOString();
    // Synchronous from here: no other request can interleave between the read and the write.
    const res = this.db.transaction(() => {
      const prev = this.q.prev.get(user.id, name) as Prev | undefined;
      if (value === undefined && (!prev || prev.version !== before!.version)) throw conflict(`secret ${JSON.stringify(name)} changed meanwhile; retry`);
      const binding: Binding | null = applyBinding(prev ? bindingOf(prev) : null, change);
      if (binding && checked) throw badRequest(checked);
      if (binding && !shape) throw conflict(`secret ${JSON.stringify(name)} changed meanwhile; retry`);
      const cols = binding ? [JSON.stringify(binding.hosts), binding.header, binding.in_body ? 1 : 0, shape] : [null, null, 0, null];
      const version = !prev ? 1 : blob ? prev.version + 1 : prev.version;
      if (!prev) this.q.insert.run(user.id, name, blob, now, now, ...cols);
      else if (blob) this.q.update.run(blob, now, version, ...cols, user.id, name);
      else this.q.rebind.run(now, ...cols, user.id, name);
      const bindingDetail = binding ? { hosts: binding.hosts, header: binding.header, in_body: binding.in_body } : prev?.hosts ? { unbound: true } : {};
      recordEvent(this.db, "secret.set", user.name, name, { version, replaced: !!prev, ...(blob ? {} : { binding_only: true }), ...bindingDetail });
      const secret: SecretMeta = { name, version, created_at: prev?.created_at ?? now, updated_at: now };
      if (binding) Object.assign(secret, { hosts: binding.hosts, ...(binding.header ? { header: binding.header } : {}), in_body: binding.in_body });
      return { secret, created: !prev };
    })();
    this.forgetList(user.id);
    this.changed(user.id, name);
    if (!res.created && blob) purgeFreedPages(this.db); // the old ciphertext's page images leave the WAL
    return res;
  }

  private async storedValue(userId: number, name: string): Promise<string> {
    const row = this.q.blob.get(userId, name) as { value_encrypted: Buffer } | undefined;
    if (!row) throw secretNotFound(name);
    return this.keyring.decrypt(row.value_encrypted);
  }

  // ---- for the broker (src/broker/store.ts): told of every change, so its caches follow at once ----
  private readonly listeners: ((userId: number, name: string) => void)[] = [];
  onChange(f: (userId: number, name: string) => void): void {
    this.listeners.push(f);
  }
  private changed(userId: number, name: string): void {
    for (const f of this.listeners) f(userId, name);
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
    this.changed(user.id, rawName);
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
    const bound = new Map<string, number>();
    for (const name of names) {
      const row = this.q.blob.get(user.id, name) as { value_encrypted: Buffer; version: number; hosts: string | null } | undefined;
      if (!row && opts.skipMissing) continue;
      if (!row) throw new UserError(400, `secret ${JSON.stringify(name)} not found`, {}, "secret_not_found");
      versions[name] = row.version;
      // Bound to hosts: brokered. Its value is not even decrypted for a sandbox (read with the row: no race with a bind).
      if (row.hosts !== null) bound.set(name, row.version);
      else blobs.push([name, row.value_encrypted]);
    }
    const values = new Map<string, string>();
    const plain = await Promise.all(blobs.map(([, b]) => this.keyring.decrypt(b)));
    blobs.forEach(([name], i) => values.set(name, plain[i]));
    return { values, versions, bound };
  }
}
