// The checks of sandbox and template requests that JSON Schema cannot say
// (byte sizes, totals, dedup); the shapes are checked first by src/api. Every message names the rule;
// none quotes an env value or file content.
import { badRequest } from "../util/errors.js";
import { SECRET_NAME_RE, validateSecretName } from "../secrets/validate.js";
import type { ConfigFile } from "../protocol/agent.js";
import { NAME_PATTERN } from "../api/patterns.js";

export const SANDBOX_NAME_RE = new RegExp(NAME_PATTERN);
export const MAX_FILES_BYTES = 8 << 20;

export function validateName(v: unknown, what = "name"): string {
  if (typeof v !== "string") throw badRequest(`${what} must be a string`);
  if (!SANDBOX_NAME_RE.test(v)) throw badRequest(`${what} must be 1-63 characters: a letter or digit, then letters, digits, '.', '_' or '-' (^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$)`);
  return v;
}

export function validateInt(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw badRequest(`${what} must be an integer`);
  if (v < min || v > max) throw badRequest(`${what} must be between ${min} and ${max}`);
  return v;
}

/** Sizes, for sandboxes and templates alike. */
export const validateCpus = (v: unknown): number => validateInt(v, "cpus", 1, 64);
export const validateMemory = (v: unknown): number => validateInt(v, "memory_mb", 64, 262144);
/** Size limit of a sandbox's writable layer, MiB (a filesystem of its own: at least 16 MiB). */
export const validateDisk = (v: unknown): number => validateInt(v, "disk_mb", 16, 262144);

export function validateEnv(v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw badRequest("env must be an object of NAME: value strings");
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!SECRET_NAME_RE.test(k)) throw badRequest(`env name ${JSON.stringify(k.slice(0, 64))} must be a valid environment variable name (^[A-Za-z_][A-Za-z0-9_]{0,255}$)`);
    if (typeof val !== "string") throw badRequest(`env ${k} must be a string`);
    if (val.includes("\u0000")) throw badRequest(`env ${k} must not contain a NUL byte`);
    if (Buffer.byteLength(val) > 65536) throw badRequest(`env ${k} must be at most 65536 bytes`);
    out[k] = val;
  }
  return out;
}

export function validateSecretNames(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest("secrets must be an array of secret names");
  const names = v.map((n) => validateSecretName(n));
  return [...new Set(names)];
}

export function validateFiles(v: unknown): ConfigFile[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest("files must be an array of {path, content, mode}");
  let total = 0;
  return v.map((f, i) => {
    if (typeof f !== "object" || f === null) throw badRequest(`files[${i}] must be an object {path, content, mode}`);
    const { path, content, mode } = f as Record<string, unknown>;
    if (typeof path !== "string" || !path.startsWith("/") || path.includes("\u0000") || path.split("/").includes("..") || path.length > 4096) {
      throw badRequest(`files[${i}].path must be an absolute path without '..'`);
    }
    if (typeof content !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(content) || content.length % 4 !== 0) {
      throw badRequest(`files[${i}].content must be base64`);
    }
    total += Math.floor((content.length * 3) / 4);
    if (total > MAX_FILES_BYTES) throw badRequest(`files must total at most ${MAX_FILES_BYTES} bytes`);
    const m = mode === undefined ? 0o644 : mode;
    if (typeof m !== "number" || !Number.isInteger(m) || m < 0 || m > 0o7777) throw badRequest(`files[${i}].mode must be an integer permission mode (0 to 0o7777)`);
    return { path, content, mode: m };
  });
}

export function validateOptionalString(v: unknown, what: string, max = 65536): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || v.includes("\u0000") || v.length > max) throw badRequest(`${what} must be a string without NUL, at most ${max} characters`);
  return v;
}
