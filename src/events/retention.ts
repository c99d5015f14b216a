// Retention of the audit trail: events older than N days are pruned at start
// and then every hour (`serve --events-retention-days`).
import type { DB } from "../store/db.js";
import { pruneEvents } from "../store/events.js";

export const DEFAULT_EVENTS_RETENTION_DAYS = 90;
export const PRUNE_EVERY_MS = 3_600_000;

export function startEventRetention(db: DB, days: number, log: (l: string) => void, everyMs = PRUNE_EVERY_MS): NodeJS.Timeout {
  const prune = () => {
    try {
      const n = pruneEvents(db, days);
      if (n) log(`events: pruned ${n} older than ${days} days`);
    } catch (e) {
      log(`events: pruning failed: ${(e as Error).message}`);
    }
  };
  prune();
  const t = setInterval(prune, everyMs);
  t.unref();
  return t;
}
