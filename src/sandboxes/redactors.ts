// The redactors of sandboxes created with `redact`: built once from the values
// the sandbox received and held for its life (the one place the daemon keeps
// plaintext after a create — see docs/secrets.md, "Redaction"). A sandbox
// without `redact` has none; an exec that asks for redaction builds a
// throw-away one from the store's current values.
import { Redactor } from "../secrets/redact.js";

export class SandboxRedactors {
  private readonly byId = new Map<string, Redactor>();

  /** At create: the values the sandbox received (the caller clears its map after). */
  remember(id: string, values: Map<string, string>): void {
    this.byId.set(id, new Redactor(values));
  }

  get(id: string): Redactor | undefined {
    return this.byId.get(id);
  }

  set(id: string, r: Redactor): void {
    this.byId.set(id, r);
  }

  forget(id: string): void {
    this.byId.delete(id);
  }
}
