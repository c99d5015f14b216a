// Where the CLI finds the daemon and its key: flag > env > config file > default.
import { readFileSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { writeFileAtomic } from "../util/atomic.js";
import { UsageError } from "./args.js";

/** The YAML parser, loaded only when a config file is read or written. */
const yaml = (): typeof import("yaml") => createRequire(import.meta.url)("yaml");

export const DEFAULT_URL = "http://127.0.0.1:8080";

export function configPath(): string {
  return join(homedir(), ".bhatti", "config.yaml");
}

export interface CliConfig { url?: string; token?: string }

export function readConfig(path = configPath()): CliConfig {
  let text: string;
  try { text = readFileSync(path, "utf8"); } catch { return {}; }
  let doc: unknown;
  try { doc = yaml().parse(text); } catch { throw new UsageError(`${path} is not valid YAML`); }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object") throw new UsageError(`${path} must be a YAML mapping with url and token`);
  const { url, token } = doc as Record<string, unknown>;
  return { url: typeof url === "string" ? url : undefined, token: typeof token === "string" ? token : undefined };
}

export function writeConfig(cfg: Required<CliConfig>, path = configPath()): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileAtomic(path, yaml().stringify({ url: cfg.url, token: cfg.token }), 0o600);
}

export function resolveConnection(flags: { url?: string; token?: string }): { url: string; token?: string } {
  const url = flags.url ?? process.env.BHATTI_URL;
  const token = flags.token ?? process.env.BHATTI_TOKEN;
  if (url !== undefined && token !== undefined) return { url, token }; // the config file (and the YAML parser) is not needed
  const file = readConfig();
  return {
    url: flags.url ?? process.env.BHATTI_URL ?? file.url ?? DEFAULT_URL,
    token: flags.token ?? process.env.BHATTI_TOKEN ?? file.token,
  };
}
