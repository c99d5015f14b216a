// Parsing of event filters (HTTP query and CLI flags share it). Messages name the rule.
import { badRequest } from "../util/errors.js";

export const DEFAULT_EVENT_LIMIT = 100;
export const MAX_EVENT_LIMIT = 1000;
const TYPE_RE = /^[a-z][a-z_.]{0,63}\*?$|^\*$/;
const DURATION_RE = /^(\d{1,6})([smhd])$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export interface EventFilter { since?: string; type?: string; after?: number; limit: number }

/** `since`: an ISO-8601 time, or a duration back from now (30s, 15m, 2h, 7d). Returns the ISO time. */
export function parseSince(v: string, now = Date.now()): string {
  const m = DURATION_RE.exec(v);
  if (m) return new Date(now - Number(m[1]) * UNIT_MS[m[2]]).toISOString();
  const t = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw badRequest("since must be an ISO-8601 time (2026-11-30T18:00:00Z) or a duration back from now (30s, 15m, 2h, 7d)");
  return new Date(t).toISOString();
}

export function parseEventFilter(get: (k: string) => string | null | undefined): EventFilter {
  const f: EventFilter = { limit: DEFAULT_EVENT_LIMIT };
  const since = get("since");
  if (since != null && since !== "") f.since = parseSince(since);
  const type = get("type");
  if (type != null && type !== "") {
    if (!TYPE_RE.test(type)) throw badRequest("type must be an event type (secret.set) or a prefix ending in '*' (secret.*)");
    if (type !== "*") f.type = type;
  }
  const limit = get("limit");
  if (limit != null && limit !== "") {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_EVENT_LIMIT) throw badRequest(`limit must be an integer between 1 and ${MAX_EVENT_LIMIT}`);
    f.limit = n;
  }
  const cursor = get("cursor");
  if (cursor != null && cursor !== "") {
    if (!/^\d{1,15}$/.test(cursor)) throw badRequest("cursor must be the next_cursor of an earlier answer (a non-negative integer)");
    f.after = Number(cursor);
  }
  return f;
}
