// `bhatti events [--since S] [--type T] [--limit N] [--cursor C] [--follow] [--json]`:
// your own audit trail. --json prints JSON lines (one event per line), for log shippers.
import { Writable } from "node:stream";
import type { Command } from "commander";
import { clientOptions, intOption, run, UsageError } from "../args.js";
import { clientFrom } from "../client.js";
import type { AuditEvent, EventQuery } from "../../client/index.js";

const USAGE = "bhatti events [--since TIME|30m|2h|7d] [--type secret.set|secret.*] [--limit N] [--cursor C] [--follow] [--json]";

export interface EventFilterOpts { since?: string; type?: string; limit?: string; cursor?: string; follow?: boolean; json?: boolean }

/** The filter flags `events` and `admin events` share. */
export function eventFilterOptions(cmd: Command): Command {
  return cmd
    .option("--since <time>", "only events at or after this ISO time, or this long ago (30m, 2h, 7d)")
    .option("--type <type>", "only this event type (secret.set), or a prefix ending in * (secret.*)")
    .option("--limit <n>", "at most this many events (default 100)")
    .option("--cursor <c>", "continue after an earlier answer's next cursor")
    .option("-f, --follow", "keep printing new events as they happen");
}

export function register(cmd: Command): void {
  eventFilterOptions(clientOptions(cmd.description("your audit trail: secret, sandbox, template and key events (never values); JSON lines with --json")))
    .action(run((o: EventFilterOpts & { url?: string; token?: string }) => eventsCommand(o)));
}

/** One event as a line for people: time, actor, action, object, result, detail. */
export function eventLine(e: AuditEvent): string {
  const detail = e.detail ? " " + JSON.stringify(e.detail) : "";
  return `${e.at}  ${e.actor}  ${e.action}  ${e.object ?? "-"}  ${e.result}${e.user && e.user !== e.actor ? `  owner=${e.user}` : ""}${detail}\n`;
}

/** Writes to stdout, waiting when it is full (a slow pipe slows the reader, never grows memory). */
export function writeOut(s: string, out: Writable = process.stdout): Promise<void> {
  return new Promise((resolve, reject) => {
    if (out.write(s)) return resolve();
    out.once("drain", resolve);
    out.once("error", reject);
  });
}

async function eventsCommand(values: EventFilterOpts & { url?: string; token?: string }): Promise<number> {
  const q: EventQuery = {
    ...(values.since ? { since: values.since } : {}),
    ...(values.type ? { type: values.type } : {}),
    ...(values.limit ? { limit: intOption("limit", values.limit, 100) } : {}),
    ...(values.cursor !== undefined ? { cursor: cursorOption(values.cursor) } : {}),
  };
  const client = clientFrom(values);
  const show = (e: AuditEvent) => writeOut(values.json ? JSON.stringify(e) + "\n" : eventLine(e));
  if (!values.follow) {
    const page = await client.events(q);
    for (const e of page.events) await show(e);
    if (!values.json && page.next_cursor !== null && page.events.length === (q.limit ?? 100)) process.stderr.write(`more: --cursor ${page.next_cursor}\n`);
    return 0;
  }
  const res = await client.followEvents(q);
  let rest = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    rest += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, i);
      rest = rest.slice(i + 1);
      if (line) await show(JSON.parse(line) as AuditEvent);
    }
  }
  return 0;
}

export function cursorOption(v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`--cursor must be a non-negative integer (an earlier answer's next cursor)\nusage: ${USAGE}`);
  return Number(v);
}
