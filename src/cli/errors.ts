// How the CLI ends on an error: one line on stderr (or a JSON object with
// --json) and the conventional exit code. 2 = usage, 1 = failure. Messages are
// safe to show: API errors, key-file errors and errno messages name paths and
// rules, never values.
import { UsageError } from "./args.js";
import { Interrupted } from "./tty-read.js";

/** --json anywhere before a `--` (after it, the words belong to the command exec runs). */
export function wantsJson(argv: string[]): boolean {
  const dash = argv.indexOf("--");
  return (dash < 0 ? argv : argv.slice(0, dash)).includes("--json");
}

/** Prints err and returns the exit code. */
export function reportError(err: unknown, json: boolean): number {
  if (err instanceof Interrupted) return 130; // Ctrl-C: quiet, 128 + SIGINT
  const usage = err instanceof UsageError || (err as { usage?: boolean } | null)?.usage === true;
  const msg = (err instanceof Error ? err.message : String(err)).split("\n");
  const code = usage ? "usage" : errorCode(err);
  if (json) process.stderr.write(JSON.stringify({ error: msg[0], code }) + "\n");
  else process.stderr.write(`bhatti: ${usage ? msg.join("\n") : msg[0]}\n`);
  return usage ? 2 : 1;
}

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; status?: unknown } | null;
  if (e && typeof e.code === "string" && /^[a-z][a-z0-9_]*$/.test(e.code)) return e.code; // the API's code
  if (e && typeof e.code === "string") return e.code.toLowerCase(); // errno (ENOENT -> enoent)
  if (e && typeof e.status === "number") return e.status === 0 ? "unreachable" : `http_${e.status}`;
  return "error";
}

/**
 * `bhatti file ls … | head -1`: when the reader goes away, stop quietly with
 * 141 (128 + SIGPIPE, what a shell reports for tools that die of it).
 */
export function installPipeGuard(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(141);
      throw e;
    });
  }
}
