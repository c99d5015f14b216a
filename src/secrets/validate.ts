// The rules for secret names and values. Messages name the rule, never the value.
import { badRequest } from "../util/errors.js";
import { ENV_NAME_PATTERN } from "../api/patterns.js";

export const SECRET_NAME_RE = new RegExp(ENV_NAME_PATTERN);
export const MAX_SECRET_BYTES = 65536;

export function validateSecretName(name: unknown): string {
  if (typeof name !== "string") throw badRequest("name must be a string");
  if (!SECRET_NAME_RE.test(name)) {
    throw badRequest("name must be a valid environment variable name: a letter or underscore, then letters, digits or underscores, at most 256 characters (^[A-Za-z_][A-Za-z0-9_]{0,255}$)");
  }
  return name;
}

export function validateSecretValue(value: unknown): string {
  if (typeof value !== "string") throw badRequest("value must be a string");
  if (value.length === 0) throw badRequest("value must not be empty (1 to 65536 bytes)");
  if (value.includes("\u0000")) throw badRequest("value must not contain a NUL byte");
  if (!value.isWellFormed()) throw badRequest("value must be valid UTF-8 (it contains an unpaired surrogate)");
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_SECRET_BYTES) throw badRequest(`value must be at most 65536 bytes of UTF-8 (it is ${bytes} bytes)`);
  return value;
}
