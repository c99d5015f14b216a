// Where the egress path guards brokered secrets outside interception: a
// placeholder in a TLS SNI or a DNS query name, and plain HTTP (port 80) —
// which may never reach a host a secret is bound to, and may carry no
// placeholder anywhere (headers, URL, body). Each refusal is a `broker.exfil`
// event (sandbox, secret name, destination, where), never a value.
import type { IncomingMessage } from "node:http";
import type { Transform } from "node:stream";
import { anyBound, placeholderInName, Refused, RequestRules, type Where } from "../broker/substitute.js";
import { patternTransform } from "../broker/transform.js";
import type { BrokeredSecret, SandboxBroker } from "../broker/types.js";
import type { Egress, SandboxNet } from "./egress.js";

/**
 * The sandbox's brokering: null if it has none, "error" if the store could not
 * say (the caller then refuses: failing open could let a placeholder or a
 * cleartext request through). Never throws.
 */
export function brokeringOf(egress: Egress, sb: SandboxNet): { b: SandboxBroker; secrets: BrokeredSecret[] } | null | "error" {
  try {
    const b = egress.broker?.forSandbox(sb.id);
    if (!b) return null;
    const secrets = b.secrets();
    return secrets.length ? { b, secrets } : null;
  } catch (e) {
    egress.warn(`broker: sandbox ${sb.id}: reading its brokered secrets failed: ${(e as Error).name}`);
    return "error";
  }
}

export function recordExfil(egress: Egress, sb: SandboxNet, secret: string, dest: string, where: Where): void {
  egress.denied(sb, "broker.exfil", { secret, dest: dest.slice(0, 253), where });
}

/** Whether a name (an SNI or a DNS question) carries a placeholder of this sandbox: if so, recorded, and the caller refuses. */
export function nameCarriesPlaceholder(egress: Egress, sb: SandboxNet, name: string, where: "sni" | "dns"): boolean {
  const br = brokeringOf(egress, sb);
  if (br === "error") return true;
  if (!br) return false;
  const secret = placeholderInName(br.secrets, name);
  if (!secret) return false;
  recordExfil(egress, sb, secret, name, where);
  return true;
}

/**
 * A plain-HTTP request's verdict: refused (recorded) if its host is one a
 * secret is bound to or its head carries a placeholder; otherwise the
 * transform its body must go through to be scanned (null: no brokered secrets).
 */
export function guardPlainRequest(egress: Egress, sb: SandboxNet, host: string, req: IncomingMessage): { refused: true } | { refused: false; body: Transform | null } {
  const br = brokeringOf(egress, sb);
  if (br === "error") return { refused: true };
  if (!br) return { refused: false, body: null };
  const secrets = br.secrets;
  const bound = anyBound(secrets, host);
  if (bound) {
    recordExfil(egress, sb, bound.name, host, "plaintext");
    return { refused: true };
  }
  const rules = new RequestRules(secrets, null, new Map());
  try {
    rules.headers(req.rawHeaders);
    rules.url(req.url ?? "");
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
    recordExfil(egress, sb, e.secret, host, e.where);
    return { refused: true };
  }
  const set = rules.body();
  return {
    refused: false,
    body: set ? patternTransform(set, (p) => {
      const e = new Refused(p.tag!.replace(/^\w+:/, ""), "body");
      recordExfil(egress, sb, e.secret, host, "body");
      return e;
    }) : null,
  };
}
