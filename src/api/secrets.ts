// Secrets: write-only. Nothing here ever carries a value back.
import { Type, type Static } from "@sinclair/typebox";
import { ENV_NAME_PATTERN, Timestamp } from "./common.js";

// brokerstore (issue 11): a secret bound to hosts is brokered: sandboxes get a placeholder, the egress proxy adds the value.
const Hosts = Type.Array(Type.String({ errorMessage: "{path} must be a string" }), {
  maxItems: 16,
  errorMessage: { type: "hosts must be an array of host names (\"api.example.com\" or \"*.example.com\")", default: "hosts: at most 16 per secret" },
  description: "Bind the secret to these hosts (exact names or \"*.suffix\", as network allow_hosts; at most 16): sandboxes then hold a placeholder and the egress proxy puts the value into HTTPS requests to these hosts only. [] unbinds (sandboxes created later get the value). Omitted: the binding is kept.",
});
const Header = Type.Union([Type.String(), Type.Null()], { description: "The only request header the value may be placed in (e.g. Authorization); null: any header or the URL" });
const InBody = Type.Boolean({ errorMessage: "in_body must be true or false", description: "Substitute the value in request bodies too" });

export const SetSecretRequest = Type.Object({
  name: Type.String({ pattern: ENV_NAME_PATTERN, errorMessage: { type: "name must be a string", default: "name must be a valid environment variable name: a letter or underscore, then letters, digits or underscores, at most 256 characters (^[A-Za-z_][A-Za-z0-9_]{0,255}$)" } }),
  value: Type.Optional(Type.String({ minLength: 1, errorMessage: { type: "value must be a string", default: "value must not be empty (1 to 65536 bytes)" }, description: "1 to 65536 bytes of UTF-8, no NUL; never returned. Required, except to change only an existing secret's binding" })),
  hosts: Type.Optional(Hosts),
  header: Type.Optional(Header),
  in_body: Type.Optional(InBody),
}, { $id: "SetSecretRequest" });
export type SetSecretRequest = Static<typeof SetSecretRequest>;

export const SecretMeta = Type.Object({
  name: Type.String(), version: Type.Integer({ minimum: 1, description: "1, then +1 per replace of the value" }), created_at: Timestamp, updated_at: Timestamp,
  hosts: Type.Optional(Type.Array(Type.String(), { description: "only for a secret bound to hosts (brokered)" })),
  header: Type.Optional(Type.String({ description: "the one header (lower case) a bound secret may be placed in" })),
  in_body: Type.Optional(Type.Boolean({ description: "a bound secret is substituted in request bodies too" })),
}, { $id: "SecretMeta", additionalProperties: false });
export type SecretMeta = Static<typeof SecretMeta>;

export const SecretList = Type.Array(SecretMeta);
