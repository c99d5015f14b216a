// The create path's side of brokering (issue 11): what a sandbox about to
// boot (create, start, fork) gets for the bound secrets it asked for — their
// placeholders, put where the values would have gone — and the env that makes
// its TLS stacks trust its CA. Called by src/sandboxes/service.ts.
import { UserError } from "../util/errors.js";
import type { Resolved } from "../secrets/service.js";
import { trustEnv } from "./ca.js";
import type { BrokerBase, BrokerStore, Brokering } from "./store.js";

/**
 * Placeholders for `resolved.bound` (read from the store, never decrypted),
 * set into `resolved.values` under their names, so env, secret files and
 * redaction all see what the sandbox sees. null: nothing brokered.
 */
export async function bootBrokering(broker: BrokerStore | undefined, userId: number, resolved: Resolved, base?: BrokerBase): Promise<Brokering | null> {
  const names = [...resolved.bound.keys()];
  if (!broker) {
    if (names.length) throw new UserError(400, `secret ${JSON.stringify(names[0])} is bound to hosts, and this daemon cannot broker secrets`);
    return null;
  }
  const b = await broker.prepare(userId, names, base);
  if (b) for (const n of names) resolved.values.set(n, b.placeholders.get(n)!);
  return b;
}

/** A sandbox env with the trust variables underneath (the default layer: secrets and --env win). */
export function brokeredEnv(b: Brokering | null, env: Record<string, string>): Record<string, string> {
  return b ? { ...trustEnv(), ...env } : env;
}
