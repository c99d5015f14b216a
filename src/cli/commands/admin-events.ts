// `bhatti admin events [--user NAME] [filters] [--follow] [--json]`: every
// user's audit trail, read from the local state.db (an operator command, like
// `admin backup`; it works whether or not the daemon runs).
import { intOption, UsageError } from "../args.js";
import { resolveDataDir, dataPaths } from "../../util/paths.js";
import { cursorOption, eventLine, writeOut, type EventFilterOpts } from "./events.js";
import type { UserError } from "../../util/errors.js";

const USAGE = "bhatti admin events [--user NAME] [--since TIME|30m|2h|7d] [--type T] [--limit N] [--cursor C] [--follow] [--json] [--data-dir DIR]";

export async function adminEventsCommand(values: EventFilterOpts & { user?: string; dataDir?: string }): Promise<number> {
  const { openDb } = await import("../../store/db.js");
  const { listEvents } = await import("../../store/events.js");
  const { parseSince } = await import("../../events/query.js");
  const { followEvents } = await import("../../events/follow.js");
  let since: string | undefined;
  try {
    since = values.since ? parseSince(values.since) : undefined;
  } catch (e) {
    throw new UsageError(`--${(e as UserError).message}\nusage: ${USAGE}`);
  }
  if (values.type !== undefined && !/^[a-z][a-z_.]{0,63}\*?$/.test(values.type)) throw new UsageError(`--type must be an event type (secret.set) or a prefix ending in '*' (secret.*)\nusage: ${USAGE}`);
  const q = {
    ...(values.user ? { userName: values.user } : {}),
    ...(since ? { since } : {}),
    ...(values.type ? { type: values.type } : {}),
    ...(values.cursor !== undefined ? { after: cursorOption(values.cursor) } : {}),
    limit: intOption("limit", values.limit, 100),
  };
  const db = openDb(dataPaths(resolveDataDir(values.dataDir)).db);
  const show = (e: import("../../store/events.js").EventView) => writeOut(values.json ? JSON.stringify(e) + "\n" : eventLine(e));
  try {
    if (!values.follow) {
      for (const e of listEvents(db, q)) await show(e);
      return 0;
    }
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    process.once("SIGINT", () => stop());
    process.once("SIGTERM", () => stop());
    process.stdout.once("error", () => stop()); // the reader went away (EPIPE)
    let closed = false;
    void stopped.then(() => { closed = true; });
    await followEvents(db, q, { write: (l) => writeOut(l.startsWith("{") && !values.json ? eventLine(JSON.parse(l)) : l), get closed() { return closed; } }, stopped);
    return 0;
  } finally {
    db.close();
  }
}
