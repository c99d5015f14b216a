// The audit detail of a secret injection: which secrets a sandbox received,
// how, and which version of each. Names, paths and numbers only, never a value.
import type { SecretFileRef } from "./secret-files.js";

/** brokered: the sandbox got a placeholder, not the value (a secret bound to hosts, issue 11). */
export interface InjectedSecret { name: string; version: number; as: "env" | "file"; path?: string; brokered?: true }

export function secretInjection(sandboxId: string, env: string[], files: SecretFileRef[], versions: Record<string, number>, bound?: Map<string, number>): { sandbox_id: string; secrets: InjectedSecret[] } | null {
  const b = (name: string) => (bound?.has(name) ? { brokered: true as const } : {});
  const secrets: InjectedSecret[] = [
    ...env.map((name) => ({ name, version: versions[name], as: "env" as const, ...b(name) })),
    ...files.map((f) => ({ name: f.name, version: versions[f.name], as: "file" as const, path: f.path, ...b(f.name) })),
  ];
  return secrets.length ? { sandbox_id: sandboxId, secrets } : null;
}
