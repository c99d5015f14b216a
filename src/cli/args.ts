// Shared option helpers for commands built on commander, and the usage error
// (exit 2) that commands throw for bad flags or arguments.
import { Option, type Command } from "commander";

export class UsageError extends Error {}

/** Flags every client command takes: where the daemon is, the key, JSON output. */
export function clientOptions(cmd: Command): Command {
  return cmd
    .option("--url <url>", "daemon URL (default: $BHATTI_URL, ~/.bhatti/config.yaml, http://127.0.0.1:8080)")
    .option("--token <key>", "API key (default: $BHATTI_TOKEN or ~/.bhatti/config.yaml)")
    .option("--json", "print JSON on stdout, and errors as JSON on stderr");
}

/** Flags every operator command takes: the daemon's data dir, JSON output. */
export function operatorOptions(cmd: Command): Command {
  return cmd
    .option("--data-dir <dir>", "the daemon's data dir (default: $BHATTI_DATA_DIR or ~/.bhatti)")
    .option("--json", "print JSON on stdout, and errors as JSON on stderr");
}

/** A repeatable flag (--env A=1 --env B=2). */
export function repeatable(flags: string, description: string): Option {
  return new Option(flags, description).argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
}

export function intOption(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--${name} must be a positive integer (got ${JSON.stringify(v)})`);
  return Number(v);
}

/** What an action returns: the process exit code. */
export type Action = (...args: never[]) => Promise<number>;

/** Runs an action and records its exit code (commander ignores return values). */
export function run<A extends unknown[]>(fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => { process.exitCode = await fn(...args); };
}
