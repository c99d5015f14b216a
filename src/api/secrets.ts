// Secrets: write-only. Nothing here ever carries a value back.
import { Type, type Static } from "@sinclair/typebox";
import { ENV_NAME_PATTERN, Timestamp } from "./common.js";

export const SetSecretRequest = Type.Object({
  name: Type.String({ pattern: ENV_NAME_PATTERN, errorMessage: { type: "name must be a string", default: "name must be a valid environment variable name: a letter or underscore, then letters, digits or underscores, at most 256 characters (^[A-Za-z_][A-Za-z0-9_]{0,255}$)" } }),
  value: Type.String({ minLength: 1, errorMessage: { type: "value must be a string", default: "value must not be empty (1 to 65536 bytes)" }, description: "1 to 65536 bytes of UTF-8, no NUL; never returned" }),
}, { $id: "SetSecretRequest" });
export type SetSecretRequest = Static<typeof SetSecretRequest>;

export const SecretMeta = Type.Object({ name: Type.String(), version: Type.Integer({ minimum: 1, description: "1, then +1 per replace" }), created_at: Timestamp, updated_at: Timestamp }, { $id: "SecretMeta", additionalProperties: false });
export type SecretMeta = Static<typeof SecretMeta>;

export const SecretList = Type.Array(SecretMeta);
