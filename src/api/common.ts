// Shared pieces of the API contract: the error body, names, sizes, env.
// Every schema here is TypeBox: one definition gives the TypeScript type
// (Static<>), the JSON Schema in GET /openapi.json, and the server's checks.
// `errorMessage` on a schema is the message a request breaking it gets (see
// check.ts): it names the rule, never the value. `{path}` becomes the field.
import { Type, type Static } from "@sinclair/typebox";
import { ERROR_CODES } from "./codes.js";
import { ENGINE_NAMES } from "../engine/names.js";

export const ErrorBody = Type.Object({
  error: Type.String({ description: "What went wrong, for people. Never quotes a secret value." }),
  code: Type.Union(Object.keys(ERROR_CODES).map((c) => Type.Literal(c)), { description: "Stable machine-readable reason: see ErrorCode." }),
}, { $id: "ErrorBody" });
export type ErrorBody = Static<typeof ErrorBody>;

export { NAME_PATTERN, ENV_NAME_PATTERN } from "./patterns.js";
import { NAME_PATTERN, ENV_NAME_PATTERN } from "./patterns.js";
export const nameRule = (what: string) => `${what} must be 1-63 characters: a letter or digit, then letters, digits, '.', '_' or '-' (${NAME_PATTERN})`;
export const Name = (what = "name") => Type.String({ pattern: NAME_PATTERN, errorMessage: { type: `${what} must be a string`, default: nameRule(what) } });


export const EngineName = Type.Union(ENGINE_NAMES.map((n) => Type.Literal(n)));

export const int = (what: string, min: number, max: number, description?: string) =>
  Type.Integer({ minimum: min, maximum: max, errorMessage: { type: `${what} must be an integer`, default: `${what} must be between ${min} and ${max}` }, ...(description ? { description } : {}) });

export const Cpus = int("cpus", 1, 64);
export const MemoryMb = int("memory_mb", 64, 262144, "MiB");
export const DiskMb = int("disk_mb", 16, 262144, "size limit of the writable layer, MiB");

/** Environment for sandboxes, templates and WebSocket exec: NAME -> value (no NUL, at most 64 KiB of UTF-8 each). */
export const Env = Type.Record(Type.String({ pattern: ENV_NAME_PATTERN }), Type.String({ pattern: "^[^\\u0000]*$", errorMessage: { type: "env {rawkey} must be a string", default: "env {rawkey} must not contain a NUL byte" } }), {
  errorMessage: { type: "env must be an object of NAME: value strings", additional: `env name {key} must be a valid environment variable name (${ENV_NAME_PATTERN})` },
  description: "NAME: value; names match " + ENV_NAME_PATTERN,
});

export const SecretNames = Type.Array(Type.String({ pattern: ENV_NAME_PATTERN, errorMessage: "secrets must be an array of secret names (^[A-Za-z_][A-Za-z0-9_]{0,255}$)" }), {
  errorMessage: "secrets must be an array of secret names",
});

/** A secret delivered as a file on a tmpfs in the sandbox (src/sandboxes/secret-files.ts checks path and mode). */
export const SecretFileRef = Type.Object({
  name: Type.String({ pattern: ENV_NAME_PATTERN, errorMessage: "a secret file's name must be a secret name (^[A-Za-z_][A-Za-z0-9_]{0,255}$)" }),
  path: Type.String({ pattern: "^/", maxLength: 4096, errorMessage: "a secret file's path must be an absolute path" }),
  mode: Type.Optional(Type.Union([Type.Integer(), Type.String()], { description: "octal permission mode, default 0400" })),
}, { errorMessage: "a secret is a name or {name, path, mode}" });

/**
 * Secrets of a sandbox or template: names (env variables) or files
 * (SecretFileRef). Items are checked by src/sandboxes/secret-files.ts, whose
 * messages name each rule (path under /proc, .., modes...), so the schema
 * documents their shape without checking it first.
 */
export const SecretRefs = Type.Array(Type.Unknown({ description: "a secret name (string), or a SecretFileRef {name, path, mode}" }), {
  errorMessage: "secrets must be an array of secret names or {name, path, mode} objects",
});

/** A secret file as a sandbox or template shows it. */
export const SecretFile = Type.Object({ name: Type.String(), path: Type.String(), mode: Type.Integer() });

export const Timestamp = Type.String({ description: "ISO-8601 time" });
