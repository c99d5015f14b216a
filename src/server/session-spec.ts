// Checks a client's session request (POST /sandboxes/:id/sessions, the first
// message of GET /sandboxes/:id/ws): every rule broken is named, no value echoed.
import { badRequest } from "../util/errors.js";
import { validateEnv } from "../sandboxes/validate.js";
import type { SessionStart } from "../protocol/agent.js";

const MAX_IDLE_SEC = 30 * 24 * 3600;

export type SessionSpec = Omit<SessionStart, "type" | "attach">;

export function sizeOf(body: Record<string, unknown>): { rows?: number; cols?: number } {
  const out: { rows?: number; cols?: number } = {};
  for (const k of ["rows", "cols"] as const) {
    const v = body[k];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > 1000) throw badRequest(`${k} must be an integer between 1 and 1000`);
    out[k] = v as number;
  }
  return out;
}

/** `withEnv`: the WebSocket takes an env map (as WebSocket exec does); POST, like POST exec, ignores one. */
export function sessionSpec(body: Record<string, unknown>, withEnv: boolean, ttyDefault: boolean): SessionSpec {
  const { cmd, cwd, tty, keep, idle_timeout_sec } = body;
  const spec: SessionSpec = { tty: ttyDefault, ...sizeOf(body) };
  if (cmd !== undefined) {
    if (!Array.isArray(cmd) || cmd.length === 0 || cmd.length > 4096 || !cmd.every((a) => typeof a === "string" && !a.includes("\u0000"))) {
      throw badRequest("cmd must be a non-empty array of strings without NUL");
    }
    spec.cmd = cmd as string[];
  }
  if (cwd !== undefined) {
    if (typeof cwd !== "string" || !cwd.startsWith("/")) throw badRequest("cwd must be an absolute path");
    spec.cwd = cwd;
  }
  if (tty !== undefined) {
    if (typeof tty !== "boolean") throw badRequest("tty must be true or false");
    spec.tty = tty;
  }
  if (keep !== undefined) {
    if (typeof keep !== "boolean") throw badRequest("keep must be true or false");
    spec.keep = keep;
  }
  if (idle_timeout_sec !== undefined) {
    if (typeof idle_timeout_sec !== "number" || !(idle_timeout_sec > 0) || idle_timeout_sec > MAX_IDLE_SEC) {
      throw badRequest(`idle_timeout_sec must be a number of seconds between 0 and ${MAX_IDLE_SEC}`);
    }
    spec.idle_timeout_ms = Math.max(1, Math.round(idle_timeout_sec * 1000));
  }
  if (withEnv) spec.env = validateEnv(body.env);
  return spec;
}
