// Sessions (background commands) and web terminal links.
import { Type, type Static } from "@sinclair/typebox";
import { Timestamp } from "./common.js";

export const Session = Type.Object({
  id: Type.String(),
  cmd: Type.Array(Type.String()),
  tty: Type.Boolean(),
  started_at: Timestamp,
  state: Type.Union([Type.Literal("running"), Type.Literal("exited")]),
  exit_code: Type.Optional(Type.Integer({ description: "once exited normally" })),
  signal: Type.Optional(Type.String({ description: "the signal that ended it" })),
  ended_at: Type.Optional(Timestamp),
  keep: Type.Boolean({ description: "kept (with its scrollback) after it exits" }),
  idle_timeout_ms: Type.Number({ description: "killed after this long without a viewer (0: never)" }),
  viewers: Type.Integer(),
  idle_killed: Type.Optional(Type.Literal(true)),
}, { $id: "Session", additionalProperties: false });
export type Session = Static<typeof Session>;

export const SessionList = Type.Array(Session, { $id: "SessionList" });

export const ShareLink = Type.Object({
  sandbox: Type.String({ description: "the sandbox's name" }),
  path: Type.String({ description: "/share/#<token>: append to the daemon's URL" }),
  token: Type.String({ description: "one use; opens one terminal" }),
  expires_at: Timestamp,
}, { $id: "ShareLink", additionalProperties: false });
export type ShareLink = Static<typeof ShareLink>;

export const ShareRevoked = Type.Object({
  sandbox: Type.String(),
  tokens: Type.Integer({ description: "links revoked" }),
  terminals: Type.Integer({ description: "open web terminals closed" }),
}, { $id: "ShareRevoked", additionalProperties: false });
export type ShareRevoked = Static<typeof ShareRevoked>;
