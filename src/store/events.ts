// The audit trail. Events carry who, what and when — never a secret value.
//
// An event is (time, actor, action, object, result) plus a JSON detail:
//   at       ISO-8601 time
//   actor    who did it: a user name, "operator" (a local operator command) or "daemon"
//   type     the action, e.g. "secret.set"
//   subject  the object it was done to (a secret, sandbox, template or user name)
//   result   "ok", or "error" / "denied" for an attempt that failed
//   user_id / user_name  the owner: the user whose trail it belongs to (null: operator-only)
// The table is append-only (triggers in migration 6): rows are never updated,
// and only rows older than a day can be deleted (retention: pruneEvents).
import type Database from "better-sqlite3";
import type { DB } from "./db.js";

export type EventType =
  | "secret.set" | "secret.deleted" | "secret.injected"
  | "user.created" | "user.deleted" | "user.key_rotated"
  | "key.rotated"
  | "sandbox.created" | "sandbox.destroyed" | "sandbox.dead"
  | "sandbox.unreachable" | "sandbox.reattached" | "sandbox.create_rolled_back" | "sandbox.lost" | "daemon.instance"
  | "template.created" | "template.deleted" | "template.used"
  | "user.updated" // cli: quota change by `bhatti user update`
  | "sandbox.shared" | "sandbox.share_revoked" // sess: web terminal links issued and revoked (never the token)
  // life (issue 14)
  | "sandbox.stopped" | "sandbox.started" | "sandbox.paused" | "sandbox.resumed" | "volume.created" | "volume.deleted"
  | "snapshot.created" | "snapshot.deleted"
  // networking (issue 10): denials, never payloads
  | "net.denied" | "dns.denied" | "dns.rebinding" | "net.policy_changed" | "net.events_suppressed"
  // brokered secrets, network side (issue 11): a placeholder where it may not go (names the secret, never a value)
  | "broker.exfil";

export type EventResult = "ok" | "error" | "denied";

export interface EventOptions {
  /** Who did it; default: the owner's name, or "daemon" when there is no owner. */
  actor?: string;
  result?: EventResult;
}

export interface EventView {
  id: number;
  at: string;
  actor: string;
  action: string;
  object: string | null;
  user: string | null;
  result: string;
  detail: Record<string, unknown> | null;
}

const inserts = new WeakMap<DB, Database.Statement<unknown[]>>();

/** Appends one event. `userName` is the owner (their own trail shows it); the signature of old callers keeps working. */
export function recordEvent(db: DB, type: EventType, userName: string | null, subject: string | null, detail?: Record<string, unknown>, opts: EventOptions = {}): void {
  let ins = inserts.get(db);
  if (!ins) {
    ins = db.prepare(`INSERT INTO events (at, type, user_name, user_id, subject, detail, actor, result)
      VALUES (?, ?, ?, (SELECT id FROM users WHERE name = ?), ?, ?, ?, ?)`);
    inserts.set(db, ins);
  }
  ins.run(new Date().toISOString(), type, userName, userName, subject, detail ? JSON.stringify(detail) : null,
    opts.actor ?? userName ?? "daemon", opts.result ?? "ok");
}

export interface EventQuery {
  /** Only this owner's events (undefined: everyone's, for operators). */
  userId?: number;
  /** Nothing before this ISO time (a user's creation: SQLite may reuse a deleted user's id). */
  notBefore?: string;
  /** Operators: only events of this user name. */
  userName?: string;
  /** ISO time: events at or after it. */
  since?: string;
  /** Exact action, or a prefix ending in "*" ("secret.*"). */
  type?: string;
  /** Cursor: events with an id greater than this. */
  after?: number;
  limit: number;
}

interface Row { id: number; at: string; type: string; user_name: string | null; subject: string | null; detail: string | null; actor: string | null; result: string }

export const toView = (r: Row): EventView => ({
  id: r.id, at: r.at, actor: r.actor ?? r.user_name ?? "daemon", action: r.type, object: r.subject, user: r.user_name,
  result: r.result, detail: r.detail ? JSON.parse(r.detail) as Record<string, unknown> : null,
});

/**
 * Events in id (= time) order. With a cursor or `since`: the first `limit`
 * after it; with neither: the latest `limit`.
 */
export function listEvents(db: DB, q: EventQuery): EventView[] {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.userId !== undefined) { where.push("user_id = ?"); args.push(q.userId); }
  if (q.notBefore !== undefined) { where.push("at >= ?"); args.push(q.notBefore); }
  if (q.userName !== undefined) { where.push("user_name = ?"); args.push(q.userName); }
  if (q.since !== undefined) { where.push("at >= ?"); args.push(q.since); }
  if (q.after !== undefined) { where.push("id > ?"); args.push(q.after); }
  if (q.type !== undefined) {
    if (q.type.endsWith("*")) { where.push("substr(type, 1, ?) = ?"); args.push(q.type.length - 1, q.type.slice(0, -1)); }
    else { where.push("type = ?"); args.push(q.type); }
  }
  const cond = where.length ? `WHERE ${where.join(" AND ")}` : "";
  const fromStart = q.after !== undefined || q.since !== undefined;
  const sql = fromStart
    ? `SELECT * FROM events ${cond} ORDER BY id ASC LIMIT ?`
    : `SELECT * FROM (SELECT * FROM events ${cond} ORDER BY id DESC LIMIT ?) ORDER BY id ASC`;
  return (db.prepare(sql).all(...args, q.limit) as Row[]).map(toView);
}

/** The newest event id (0: none): where a follower starts that wants only new events. */
export function lastEventId(db: DB): number {
  return (db.prepare("SELECT COALESCE(MAX(id), 0) AS n FROM events").get() as { n: number }).n;
}

/** Retention: deletes events older than `days` (at least 1). Returns how many went. */
export function pruneEvents(db: DB, days: number): number {
  if (!(days >= 1)) throw new Error("events retention must be at least 1 day");
  const cutoff = new Date(Date.now() - days * 86_400_000).toISOString();
  return db.prepare("DELETE FROM events WHERE at < ?").run(cutoff).changes;
}
