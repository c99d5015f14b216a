// Argument parsing on top of node:util parseArgs, with usage errors that exit 2.
import { parseArgs, type ParseArgsConfig } from "node:util";

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

export const GLOBAL_OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  "data-dir": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

export function parse<O extends Options>(argv: string[], options: O, opts: { positionals?: [number, number]; usage: string }) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split("\n")[0]}\nusage: ${opts.usage}`);
  }
  const [min, max] = opts.positionals ?? [0, 0];
  const n = parsed.positionals.length;
  if (n < min || n > max) throw new UsageError(`expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${n}\nusage: ${opts.usage}`);
  return parsed;
}

export function intOption(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--${name} must be a positive integer (got ${JSON.stringify(v)})`);
  return Number(v);
}
