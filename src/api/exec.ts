// Exec: one set of rules for POST /sandboxes/:id/exec (buffered or NDJSON)
// and the WebSocket exec's first message, so the two agree on cmd, cwd,
// NUL bytes and timeouts.
import { Type, type Static } from "@sinclair/typebox";
import { Env } from "./common.js";

/** The most a buffered exec may keep of each of stdout and stderr, and the default. */
export const MAX_OUTPUT_CAP = 64 << 20;
export const DEFAULT_OUTPUT_CAP = 16 << 20;
export const MAX_TIMEOUT_SEC = 86400;

const NO_NUL = "^[^\\u0000]*$";

const base = {
  cmd: Type.Array(Type.String({ pattern: NO_NUL }), { minItems: 1, errorMessage: "cmd must be a non-empty array of strings without NUL" }),
  cwd: Type.Optional(Type.String({ pattern: "^/[^\\u0000]*$", maxLength: 4096, errorMessage: "cwd must be an absolute path" })),
  timeout_sec: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_TIMEOUT_SEC, errorMessage: `timeout_sec must be a number of seconds between 0 and ${MAX_TIMEOUT_SEC}`, description: "the command's process group is killed after this" })),
};

export const ExecRequest = Type.Object({
  ...base,
  stdin: Type.Optional(Type.String({ errorMessage: "stdin must be a string" })),
  max_output_bytes: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_OUTPUT_CAP, errorMessage: `max_output_bytes must be an integer between 0 and ${MAX_OUTPUT_CAP}`, description: `per stream; default ${DEFAULT_OUTPUT_CAP}` })),
  redact: Type.Optional(Type.Boolean({ errorMessage: "redact must be true or false", description: "replace the sandbox's secret values in this output with [REDACTED:NAME]" })),
  env: Type.Optional(Type.Unknown({ description: "accepted and ignored: POST exec runs with the sandbox's env (WebSocket exec takes a per-command env)" })),
}, { $id: "ExecRequest" });
export type ExecRequest = Static<typeof ExecRequest>;

/** The first (JSON text) message of a WebSocket exec. */
export const WsExecRequest = Type.Object({
  ...base,
  env: Type.Optional(Type.Union([Env, Type.Null()], { errorMessage: "env must be an object of NAME: value strings" })),
  tty: Type.Optional(Type.Boolean({ errorMessage: "tty must be a boolean" })),
  rows: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, errorMessage: "rows must be an integer between 1 and 65535" })),
  cols: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, errorMessage: "cols must be an integer between 1 and 65535" })),
}, { $id: "WsExecRequest" });
export type WsExecRequest = Static<typeof WsExecRequest>;

const exitFields = {
  exit_code: Type.Integer({ description: "128+signal when killed by a signal" }),
  signal: Type.Optional(Type.String()),
  timed_out: Type.Optional(Type.Literal(true)),
  message: Type.Optional(Type.String()),
};

export const ExecResult = Type.Object({
  ...exitFields,
  stdout: Type.Optional(Type.String()), stdout_base64: Type.Optional(Type.String({ description: "stdout when it is not valid UTF-8" })),
  stderr: Type.Optional(Type.String()), stderr_base64: Type.Optional(Type.String()),
  stdout_truncated: Type.Optional(Type.Literal(true)), stderr_truncated: Type.Optional(Type.Literal(true)),
}, { $id: "ExecResult" });
export type ExecResult = Static<typeof ExecResult>;

/** One line of an NDJSON exec (Accept: application/x-ndjson), and the shape of WebSocket exec's text frames. */
export const ExecEvent = Type.Union([
  Type.Object({ type: Type.Union([Type.Literal("stdout"), Type.Literal("stderr")]), data: Type.Optional(Type.String()), data_base64: Type.Optional(Type.String()) }),
  Type.Object({ type: Type.Literal("exit"), ...exitFields }),
  Type.Object({ type: Type.Literal("error"), message: Type.String(), code: Type.Optional(Type.String()) }),
], { $id: "ExecEvent" });
export type ExecEvent = Static<typeof ExecEvent>;

/** WebSocket control messages after the first (text frames); binary frames are stdin. */
export const WsControl = Type.Union([
  Type.Object({ type: Type.Literal("eof") }),
  Type.Object({ type: Type.Literal("resize"), rows: Type.Integer(), cols: Type.Integer() }),
  Type.Object({ type: Type.Literal("signal"), signal: Type.String() }),
]);
