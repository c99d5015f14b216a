// A secret's binding to hosts (issue 11): which hosts its value may be sent
// to, in which header, and whether request bodies are substituted too. The
// rules for what a client may send; messages name the rule, never a value.
import { badRequest } from "../util/errors.js";
import { normalizeHostPattern } from "../net/policy.js";

export interface Binding {
  hosts: string[]; // exact names or "*.suffix", as network policy's allow_hosts
  header: string | null; // lower case; null: any header or the URL
  in_body: boolean;
}

/** What a set request says about the binding. */
export type BindingChange =
  | { kind: "keep" } // nothing said: a rotation keeps the binding
  | { kind: "unbind" } // hosts: []
  | { kind: "bind"; binding: Binding } // hosts given: the whole binding is replaced
  | { kind: "amend"; header?: string | null; in_body?: boolean }; // header/in_body only: changes a bound secret's

export const MAX_BOUND_HOSTS = 16;
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
/** Headers a value may never be confined to: hop-by-hop ones, and those the proxy itself must own. */
const FORBIDDEN_HEADERS = new Set([
  "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
  "transfer-encoding", "upgrade", "host", "content-length",
]);

export function validateHeader(v: unknown): string | null {
  if (v === null) return null;
  if (typeof v !== "string" || !TOKEN_RE.test(v)) throw badRequest("header must be an HTTP header name: 1 to 64 token characters (letters, digits and !#$%&'*+-.^_`|~)");
  const h = v.toLowerCase();
  if (FORBIDDEN_HEADERS.has(h)) throw badRequest(`header must not be ${h}: hop-by-hop headers, host and content-length cannot carry a brokered secret`);
  return h;
}

export function validateHosts(v: unknown): string[] {
  if (!Array.isArray(v)) throw badRequest("hosts must be an array of host names (\"api.example.com\" or \"*.example.com\")");
  if (v.length > MAX_BOUND_HOSTS) throw badRequest(`hosts: at most ${MAX_BOUND_HOSTS} per secret`);
  const out: string[] = [];
  v.forEach((s, i) => {
    if (typeof s !== "string") throw badRequest(`hosts[${i}] must be a string`);
    const h = normalizeHostPattern(s);
    if (h === null) throw badRequest(`hosts[${i}] is not a host name ("api.example.com" or "*.example.com", no port, no scheme, no path)`);
    if (!out.includes(h)) out.push(h);
  });
  return out;
}

/** The binding fields of a POST /secrets body. */
export function bindingChange(body: { hosts?: unknown; header?: unknown; in_body?: unknown }): BindingChange {
  const { hosts, header, in_body } = body;
  if (in_body !== undefined && typeof in_body !== "boolean") throw badRequest("in_body must be true or false");
  const h = header === undefined ? undefined : validateHeader(header);
  if (hosts === undefined || hosts === null) {
    if (h === undefined && in_body === undefined) return { kind: "keep" };
    return { kind: "amend", ...(h !== undefined ? { header: h } : {}), ...(in_body !== undefined ? { in_body } : {}) };
  }
  const list = validateHosts(hosts);
  if (list.length === 0) {
    if ((h !== undefined && h !== null) || in_body === true) throw badRequest("hosts: [] unbinds the secret; it takes no header or in_body");
    return { kind: "unbind" };
  }
  return { kind: "bind", binding: { hosts: list, header: h ?? null, in_body: in_body ?? false } };
}

/** The binding after a change, given the stored one (null: unbound). Throws for an amend of an unbound secret. */
export function applyBinding(prev: Binding | null, c: BindingChange): Binding | null {
  switch (c.kind) {
    case "keep": return prev;
    case "unbind": return null;
    case "bind": return c.binding;
    case "amend":
      if (!prev) throw badRequest("header and in_body need hosts: bind the secret with hosts first");
      return { hosts: prev.hosts, header: c.header !== undefined ? c.header : prev.header, in_body: c.in_body ?? prev.in_body };
  }
}

/** The stored columns as a Binding (null: unbound). */
export function bindingOf(row: { hosts: string | null; header: string | null; in_body: number }): Binding | null {
  return row.hosts === null ? null : { hosts: JSON.parse(row.hosts) as string[], header: row.header, in_body: row.in_body === 1 };
}
