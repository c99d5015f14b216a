// Following the audit trail: events as they are appended, one JSON line each.
//
// Bounded and paced by the reader: at most one batch (BATCH rows) is read from
// the database at a time, and the next is read only once the sink took the
// last one (a slow reader slows the follower; memory stays one batch). New
// events are found by polling an index (events' primary key) every POLL_MS, so
// events written by other processes (operator commands) are seen too.
import type { DB } from "../store/db.js";
import { lastEventId, listEvents, type EventQuery, type EventView } from "../store/events.js";

export const POLL_MS = 200;
const BATCH = 200;

export interface EventSink {
  /** Writes one line; resolves when the sink can take more (backpressure). */
  write(line: string): Promise<void>;
  readonly closed: boolean;
}

/**
 * Sends the events of `q` (its cursor, since or the latest `limit`), then every
 * later one, until the sink closes or `stop` resolves.
 */
export async function followEvents(db: DB, q: EventQuery, sink: EventSink, stop: Promise<void>): Promise<void> {
  let stopped = false;
  void stop.then(() => { stopped = true; });
  let first: EventView[] = listEvents(db, q);
  let after = first.length ? first[first.length - 1].id : (q.after ?? lastEventId(db)) // nothing matched yet: from the newest on;
  while (!stopped && !sink.closed) {
    const batch = first.length ? first : listEvents(db, { ...q, since: undefined, after, limit: BATCH });
    first = [];
    for (const e of batch) {
      if (stopped || sink.closed) return;
      await sink.write(JSON.stringify(e) + "\n");
      after = e.id;
    }
    if (batch.length < BATCH) await Promise.race([new Promise((r) => setTimeout(r, POLL_MS)), stop]);
  }
}
