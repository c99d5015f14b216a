// Pure parts of the sandbox lifecycle (issue 14): what a stopped sandbox keeps
// to boot again, and the idle policy's decision for one sandbox.
import { UserError } from "../util/errors.js";

/** What start needs beyond the row to rebuild the config drive. Stored age-encrypted (boot_encrypted). */
export interface BootConfig { env: Record<string, string>; init?: string }

export function parseBoot(json: string): BootConfig {
  const v = JSON.parse(json) as BootConfig;
  if (!v || typeof v !== "object" || typeof v.env !== "object" || v.env === null) throw new Error("malformed boot config");
  return { env: v.env, ...(typeof v.init === "string" ? { init: v.init } : {}) };
}

/** Idle policy of the daemon (serve --idle-warm-seconds / --idle-cold-minutes); 0 turns a step off. */
export interface IdlePolicy { warmMs: number; coldMs: number }

export const NO_IDLE: IdlePolicy = { warmMs: 0, coldMs: 0 };

/**
 * The idle step due for a sandbox idle for idleMs: "warm" (pause) when it is
 * running, "cold" (stop) when it is warm; null when nothing is due.
 * Cold counts from the last activity, like warm.
 */
export function idleStep(status: string, idleMs: number, policy: IdlePolicy, keepHot: boolean): "warm" | "cold" | null {
  if (keepHot) return null;
  if (status === "running" && policy.warmMs > 0 && idleMs >= policy.warmMs) return "warm";
  if (status === "paused" && policy.coldMs > 0 && idleMs >= policy.coldMs) return "cold";
  return null;
}

/** A lifecycle request the sandbox's state or engine cannot take. */
export function cannotNow(name: string, op: string, status: string): UserError {
  return new UserError(409, `sandbox ${JSON.stringify(name)} cannot ${op}: it is ${status}`);
}
