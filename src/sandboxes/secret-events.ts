// The audit detail of a secret injection: which secrets a sandbox received,
// how, and which version of each. Names, paths and numbers only, never a value.
import type { SecretFileRef } from "./secret-files.js";

export interface InjectedSecret { name: string; version: number; as: "env" | "file"; path?: string }

export function secretInjection(sandboxId: string, env: string[], files: SecretFileRef[], versions: Record<string, number>): { sandbox_id: string; secrets: InjectedSecret[] } | null {
  const secrets: InjectedSecret[] = [
    ...env.map((name) => ({ name, version: versions[name], as: "env" as const })),
    ...files.map((f) => ({ name: f.name, version: versions[f.name], as: "file" as const, path: f.path })),
  ];
  return secrets.length ? { sandbox_id: sandboxId, secrets } : null;
}
