// GET /events: the caller's own audit trail (filters since/type/limit, a
// cursor, and ?follow=1 for a stream of JSON lines). Operators read everyone's
// with `bhatti admin events` on the local database.
import { contract } from "../../api/routes-more.js";
import type { Router } from "../http.js";
import { HANDLED } from "../reply.js";
import { UserError } from "../../util/errors.js";
import type { DB } from "../../store/db.js";
import { listEvents } from "../../store/events.js";
import { parseEventFilter } from "../../events/query.js";
import { followEvents } from "../../events/follow.js";
import type { OpenStreams } from "../streams.js";

/** Concurrent ?follow=1 streams per user: each holds a connection and polls. */
export const MAX_FOLLOWERS_PER_USER = 4;

export function eventRoutes(router: Router, db: DB, streams: OpenStreams): void {
  const followers = new Map<number, number>();
  router.route(contract("GET", "/events"), async ({ req, res, query, user }) => {
    const f = parseEventFilter((k) => query.get(k));
    // Owner: by id, and never from before the user existed (a deleted user's id can be given to a new user).
    const q = { ...f, userId: user.id, notBefore: user.created_at };
    const follow = query.get("follow");
    if (follow !== "1" && follow !== "true") {
      const events = listEvents(db, q);
      return { events, next_cursor: events.length ? events[events.length - 1].id : (f.after ?? null) };
    }
    const n = followers.get(user.id) ?? 0;
    if (n >= MAX_FOLLOWERS_PER_USER) throw new UserError(429, `at most ${MAX_FOLLOWERS_PER_USER} event streams per user at a time`);
    followers.set(user.id, n + 1);
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const unregister = streams.add({ stop: () => { stop(); res.end(); }, kill: () => res.destroy() });
    res.on("close", () => stop());
    req.socket.setTimeout(0);
    res.writeHead(200, { "Content-Type": "application/x-ndjson", "Cache-Control": "no-store" });
    res.flushHeaders();
    const sink = {
      get closed() { return res.destroyed || res.writableEnded; },
      write: (line: string) => new Promise<void>((resolve) => {
        if (res.destroyed || res.writableEnded || res.write(line)) return resolve();
        const done = () => { res.off("drain", done); res.off("close", done); resolve(); };
        res.on("drain", done);
        res.on("close", done);
      }),
    };
    try {
      await followEvents(db, q, sink, stopped);
    } finally {
      unregister();
      const left = (followers.get(user.id) ?? 1) - 1;
      if (left > 0) followers.set(user.id, left); else followers.delete(user.id);
      if (!res.writableEnded) res.end();
    }
    return HANDLED;
  });
}
