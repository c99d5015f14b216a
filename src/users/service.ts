// Users and their API keys. Keys are shown once; only their SHA-256 is stored.
import { createHash, randomBytes } from "node:crypto";
import type { DB } from "../store/db.js";
import { recordEvent } from "../store/events.js";
import { UserError, badRequest, conflict, notFound } from "../util/errors.js";
import type { Egress } from "../net/policy.js";
import { parseEgress } from "../net/cap.js";
import { ownedFiles, removeOwnedFiles } from "./purge.js";

export const USER_NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;
export const API_KEY_RE = /^bht_[0-9a-f]{64}$/;

export interface User {
  id: number;
  name: string;
  max_sandboxes: number;
  max_cpus: number;
  max_memory_mb: number;
  max_disk_mb: number;
  max_egress: Egress; // the most egress its sandboxes may have: public > deny > none
  created_at: string;
  key_rotated_at: string;
}

/** What a user delete took: counts of its things. */
export interface DeleteSummary { secrets: number; sandboxes: number; volumes: number; snapshots: number }

export interface Limits { max_sandboxes: number; max_cpus: number; max_memory_mb: number; max_disk_mb: number }
/** max_disk_mb: the writable disk of all live sandboxes together (five debian sandboxes at their default size). */
export const DEFAULT_LIMITS: Limits = { max_sandboxes: 5, max_cpus: 4, max_memory_mb: 4096, max_disk_mb: 20480 };

export function newApiKey(): string {
  return "bht_" + randomBytes(32).toString("hex");
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

const COLUMNS = "id, name, max_sandboxes, max_cpus, max_memory_mb, max_disk_mb, max_egress, created_at, key_rotated_at";

/** A quota change: the numeric limits and/or the egress cap. */
export type LimitChange = Partial<Limits> & { max_egress?: Egress };

export class UserService {
  private readonly byKeyHash;

  constructor(private readonly db: DB) {
    this.byKeyHash = db.prepare(`SELECT ${COLUMNS} FROM users WHERE api_key_sha256 = ?`); // every request
  }

  create(name: string, limits: Limits = DEFAULT_LIMITS, maxEgress: Egress = "public"): { user: User; apiKey: string } {
    if (!USER_NAME_RE.test(name)) throw badRequest("user name must be 1-32 characters: a lowercase letter, then lowercase letters, digits, '_' or '-' (^[a-z][a-z0-9_-]{0,31}$)");
    for (const [k, v] of Object.entries(limits)) {
      if (!Number.isInteger(v) || v < 1) throw badRequest(`${k.replace("max_", "max-").replace("_mb", "")} must be a positive integer`);
    }
    parseEgress(maxEgress);
    const apiKey = newApiKey();
    const now = new Date().toISOString();
    return this.db.transaction(() => {
      if (this.byName(name)) throw conflict(`user ${JSON.stringify(name)} already exists`, "name_taken");
      const res = this.db.prepare(
        "INSERT INTO users (name, api_key_sha256, max_sandboxes, max_cpus, max_memory_mb, max_disk_mb, max_egress, created_at, key_rotated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ).run(name, hashKey(apiKey), limits.max_sandboxes, limits.max_cpus, limits.max_memory_mb, limits.max_disk_mb, maxEgress, now, now);
      recordEvent(this.db, "user.created", name, name, undefined, { actor: "operator" });
      return { user: this.byId(Number(res.lastInsertRowid))!, apiKey };
    }).immediate();
  }

  list(): (User & { secrets: number; sandboxes: number })[] {
    return this.db.prepare(
      `SELECT ${COLUMNS.split(", ").map((c) => "u." + c).join(", ")},
        (SELECT COUNT(*) FROM secrets s WHERE s.user_id = u.id) AS secrets,
        (SELECT COUNT(*) FROM sandboxes b WHERE b.user_id = u.id) AS sandboxes
       FROM users u ORDER BY u.name`,
    ).all() as (User & { secrets: number; sandboxes: number })[];
  }

  byName(name: string): User | undefined {
    return this.db.prepare(`SELECT ${COLUMNS} FROM users WHERE name = ?`).get(name) as User | undefined;
  }

  byId(id: number): User | undefined {
    return this.db.prepare(`SELECT ${COLUMNS} FROM users WHERE id = ?`).get(id) as User | undefined;
  }

  /** The user a presented key belongs to, or undefined. */
  authenticate(key: string): User | undefined {
    if (!API_KEY_RE.test(key)) return undefined;
    return this.byKeyHash.get(hashKey(key)) as User | undefined;
  }

  rotateKey(name: string): string {
    const apiKey = newApiKey();
    this.db.transaction(() => {
      const res = this.db.prepare("UPDATE users SET api_key_sha256 = ?, key_rotated_at = ? WHERE name = ?").run(hashKey(apiKey), new Date().toISOString(), name);
      if (res.changes === 0) throw notFound(`user ${JSON.stringify(name)} not found`, "user_not_found");
      recordEvent(this.db, "user.key_rotated", name, name, undefined, { actor: "operator" });
    }).immediate();
    return apiKey;
  }

  /** Changes some of a user's quotas; the rest stay. Lowering below current use stops new sandboxes only. */
  updateLimits(name: string, change: LimitChange): User {
    for (const [k, v] of Object.entries(change)) {
      if (k === "max_egress") { parseEgress(v); continue; }
      if (!(k in DEFAULT_LIMITS)) throw badRequest(`unknown quota ${k}`);
      if (!Number.isInteger(v) || (v as number) < 1) throw badRequest(`${k.replace("max_", "max-").replace("_mb", "")} must be a positive integer`);
    }
    return this.db.transaction(() => {
      const user = this.byName(name);
      if (!user) throw notFound(`user ${JSON.stringify(name)} not found`, "user_not_found");
      const next = { max_sandboxes: user.max_sandboxes, max_cpus: user.max_cpus, max_memory_mb: user.max_memory_mb, max_disk_mb: user.max_disk_mb, max_egress: user.max_egress, ...change };
      // A lowered egress cap binds new creates and policy changes; running sandboxes keep their policy.
      this.db.prepare("UPDATE users SET max_sandboxes = ?, max_cpus = ?, max_memory_mb = ?, max_disk_mb = ?, max_egress = ? WHERE id = ?").run(next.max_sandboxes, next.max_cpus, next.max_memory_mb, next.max_disk_mb, next.max_egress, user.id);
      recordEvent(this.db, "user.updated", name, name, change, { actor: "operator" });
      return this.byId(user.id)!;
    }).immediate();
  }

  /**
   * Deletes a user. Without force it refuses while the user owns secrets, sandboxes (live or dead),
   * volumes or snapshots. With force every row of it goes (ON DELETE CASCADE: secrets, sandboxes and
   * their broker records, volumes, snapshots and theirs, templates); events stay (the audit trail).
   * Given the data dir, its volume images and snapshot directories are removed too; its live
   * sandboxes are the daemon's to destroy (reapOrphans while it runs, recover at its next start).
   */
  delete(name: string, force: boolean, dataDir?: string): DeleteSummary {
    const { summary, files } = this.db.transaction(() => {
      const user = this.byName(name);
      if (!user) throw notFound(`user ${JSON.stringify(name)} not found`, "user_not_found");
      const count = (table: string) => (this.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE user_id = ?`).get(user.id) as { n: number }).n;
      const summary: DeleteSummary = { secrets: count("secrets"), sandboxes: count("sandboxes"), volumes: count("volumes"), snapshots: count("snapshots") };
      if (!force && Object.values(summary).some((n) => n > 0)) {
        throw new UserError(409, `user ${JSON.stringify(name)} still owns ${summary.secrets} secret(s), ${summary.sandboxes} sandbox(es), ${summary.volumes} volume(s) and ${summary.snapshots} snapshot(s); delete them first or pass --force`, {}, "has_dependents");
      }
      const files = ownedFiles(this.db, user.id);
      const templates = count("templates");
      this.db.prepare("DELETE FROM users WHERE id = ?").run(user.id);
      // Counts and ids only (no names of its things): enough to find what the delete took.
      recordEvent(this.db, "user.deleted", name, name, { ...summary, templates, force, volume_ids: files.volumes, snapshot_ids: files.snapshots }, { actor: "operator" });
      return { summary, files };
    }).immediate();
    if (dataDir) {
      const failed = removeOwnedFiles(dataDir, files);
      if (failed.length) throw new Error(`user ${JSON.stringify(name)} was deleted, but removing some of its files failed: ${failed.join("; ")}`);
    }
    return summary;
  }
}
