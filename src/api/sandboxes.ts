// Sandboxes: create, list, inspect, delete.
import { Type, type Static } from "@sinclair/typebox";
import { ENGINE_LIST } from "../engine/names.js";
import { Cpus, DiskMb, EngineName, Env, MemoryMb, Name, SecretFile, SecretRefs, Timestamp } from "./common.js";

export const ConfigFileSpec = Type.Object({
  path: Type.String({ pattern: "^/", maxLength: 4096, errorMessage: "{path} must be an absolute path without '..'" }),
  content: Type.String({ pattern: "^[A-Za-z0-9+/]*={0,2}$", errorMessage: "{path} must be base64" }),
  mode: Type.Optional(Type.Integer({ minimum: 0, maximum: 0o7777, errorMessage: "{path} must be an integer permission mode (0 to 0o7777)" })),
}, { errorMessage: "{path} must be an object {path, content, mode}" });

/** A sandbox's egress policy as a request gives it (src/net/policy.ts checks it and names each rule). */
export const NetworkSpec = Type.Object({
  egress: Type.Optional(Type.Unknown({ description: "public | deny | none" })),
  allow_hosts: Type.Optional(Type.Unknown({ description: "host names: api.example.com or *.example.com" })),
  allow_cidrs: Type.Optional(Type.Unknown({ description: "IPv4 ranges the sandbox may reach, private ones included" })),
}, { additionalProperties: true, description: "docs/networking.md" });
export const NetworkPolicyView = Type.Object({
  egress: Type.Union([Type.Literal("public"), Type.Literal("deny"), Type.Literal("none")]),
  allow_hosts: Type.Array(Type.String()), allow_cidrs: Type.Array(Type.String()),
}, { additionalProperties: true });

export const CreateSandboxRequest = Type.Object({
  name: Name(),
  engine: Type.Optional(Type.Union([EngineName, Type.Null()], { errorMessage: `engine must be ${ENGINE_LIST}` })),
  image: Type.Optional(Type.Union([Type.String(), Type.Null()], { errorMessage: "image must be an image name", description: 'default: the daemon\'s (serve --image); a template\'s image wins' })),
  template: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Null()], { errorMessage: "template must be a template id or name" })),
  cpus: Type.Optional(Cpus),
  memory_mb: Type.Optional(MemoryMb),
  disk_mb: Type.Optional(Type.Union([DiskMb, Type.Null()], { errorMessage: "disk_mb must be an integer between 16 and 262144" })),
  env: Type.Optional(Type.Union([Env, Type.Null()], { errorMessage: "env must be an object of NAME: value strings" })),
  secrets: Type.Optional(Type.Union([SecretRefs, Type.Null()], { errorMessage: "secrets must be an array of secret names or {name, path, mode} objects" })),
  redact: Type.Optional(Type.Boolean({ errorMessage: "redact must be true or false", description: "replace this sandbox's secret values in all exec output with [REDACTED:NAME]" })),
  files: Type.Optional(Type.Union([Type.Array(ConfigFileSpec), Type.Null()], { errorMessage: "files must be an array of {path, content, mode}" })),
  network: Type.Optional(Type.Union([NetworkSpec, Type.Null()], { errorMessage: "network must be an object {egress, allow_hosts, allow_cidrs}" })),
  keep_hot: Type.Optional(Type.Boolean({ errorMessage: "keep_hot must be true or false", description: "never paused or stopped by the idle policy" })),
  volumes: Type.Optional(Type.Array(Type.Union([Type.String(), Type.Object({ name: Type.String(), path: Type.String(), ro: Type.Optional(Type.Boolean()) })]), { errorMessage: "volumes must be an array of NAME:/path[:ro] or {name, path, ro}" })),
  from: Type.Optional(Type.String({ minLength: 1, errorMessage: "from must be the name of a snapshot or sandbox", description: "fork: a snapshot's name, or a sandbox's (snapshotted now)" })),
  init: Type.Optional(Type.Union([Type.String({ maxLength: 65536, pattern: "^[^\\u0000]*$" }), Type.Null()], { errorMessage: "init must be a string without NUL, at most 65536 characters" })),
}, { $id: "CreateSandboxRequest" });
export type CreateSandboxRequest = Static<typeof CreateSandboxRequest>;

export const Sandbox = Type.Object({
  id: Type.String(),
  name: Type.String(),
  engine: EngineName,
  image: Type.String(),
  cpus: Type.Integer(),
  memory_mb: Type.Integer(),
  disk_mb: Type.Union([Type.Integer(), Type.Null()], { description: "writable-layer limit, MiB (null: made before limits existed)" }),
  status: Type.Union(["creating", "running", "unreachable", "dead", "deleting", "lost", "paused", "stopping", "stopped", "starting"].map((s) => Type.Literal(s))),
  env: Type.Array(Type.String(), { description: "names only" }),
  secrets: Type.Array(Type.String(), { description: "names only" }),
  brokered: Type.Array(Type.String(), { description: "names of the secrets this sandbox holds only as placeholders (bound to hosts; the egress proxy adds the value)" }),
  secret_files: Type.Array(SecretFile, { description: "secrets delivered as files (names, paths, modes; never values)" }),
  secret_versions: Type.Record(Type.String(), Type.Integer(), { description: "the version of each secret the sandbox received" }),
  redact: Type.Boolean(),
  network: NetworkPolicyView,
  keep_hot: Type.Boolean(),
  idle: Type.Union([Type.Literal("warm"), Type.Literal("cold"), Type.Null()], { description: "set when the idle policy (not a user) paused or stopped it" }),
  volumes: Type.Array(Type.Object({ name: Type.String(), path: Type.String(), ro: Type.Boolean() })),
  template_id: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
}, { $id: "Sandbox" });
export type Sandbox = Static<typeof Sandbox>;

export const CreatedSandbox = Type.Composite([Sandbox, Type.Object({ warnings: Type.Array(Type.String()) })], { $id: "CreatedSandbox" });
export type CreatedSandbox = Static<typeof CreatedSandbox>;

export const SandboxList = Type.Array(Sandbox);
