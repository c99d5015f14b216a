// Templates: per-user presets of image, size, env and secret names.
import { Type, type Static } from "@sinclair/typebox";
import { Cpus, Env, MemoryMb, Name, SecretFile, SecretRefs, Timestamp } from "./common.js";
import { NetworkPolicyView, NetworkSpec } from "./sandboxes.js";

export const CreateTemplateRequest = Type.Object({
  name: Name(),
  image: Type.Optional(Name("image")),
  cpus: Type.Optional(Cpus),
  memory_mb: Type.Optional(MemoryMb),
  env: Type.Optional(Type.Union([Env, Type.Null()], { errorMessage: "env must be an object of NAME: value strings" })),
  network: Type.Optional(Type.Union([NetworkSpec, Type.Null()], { errorMessage: "network must be an object {egress, allow_hosts, allow_cidrs}" })),
  secrets: Type.Optional(Type.Union([SecretRefs, Type.Null()], { errorMessage: "secrets must be an array of secret names or {name, path, mode} objects" })),
}, { $id: "CreateTemplateRequest" });
export type CreateTemplateRequest = Static<typeof CreateTemplateRequest>;

export const Template = Type.Object({
  id: Type.String(), name: Type.String(), image: Type.String(), cpus: Type.Integer(), memory_mb: Type.Integer(),
  env: Type.Record(Type.String(), Type.String()), secrets: Type.Array(Type.String()), secret_files: Type.Array(SecretFile), network: Type.Union([NetworkPolicyView, Type.Null()]), created_at: Timestamp,
}, { $id: "Template" });
export type Template = Static<typeof Template>;

export const TemplateList = Type.Array(Template);
