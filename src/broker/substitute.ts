// What the egress proxy does with placeholders, as pure functions over one
// sandbox's brokered secrets (no sockets here):
// - towards a host a secret is bound to: its placeholder becomes its value in
//   the request's headers (only the bound header, if it names one; also inside
//   `Authorization: Basic`), the URL (if no header is named) and, for in-body
//   secrets, the body up to BODY_LIMIT bytes;
// - any placeholder left anywhere else (another secret's, a deleted secret's,
//   a form it may not take there, base64 or URL-encoded too) refuses the request;
// - in responses, a bound value becomes the placeholder again (same length).
// Values are Buffers and only ever go into the outgoing request: never into a
// message, an error or an event (Refused names the secret and where only).
import { encodingsOf, PatternSet, type Pattern } from "../secrets/redact.js";
import { hostMatches } from "../net/policy.js";
import type { BrokeredSecret } from "./types.js";

/** Request bodies are substituted in their first BODY_LIMIT bytes; a placeholder to substitute beyond is refused. Scanning for placeholders goes on to the end. */
export const BODY_LIMIT = 1024 * 1024;
/** Placeholders shorter than this are not looked for in names (they would match by chance). */
const MIN_NAME_MATCH = 8;

export type Where = "header" | "url" | "body" | "sni" | "dns" | "plaintext";

/** A request refused because a placeholder was where it may not be. Its message names the secret and the place, never a value. */
export class Refused extends Error {
  constructor(readonly secret: string, readonly where: Where) {
    super(`the placeholder of secret ${secret} may not be sent there (${where})`);
  }
}

export function boundTo(s: BrokeredSecret, host: string): boolean {
  const n = host.toLowerCase().replace(/\.$/, "");
  return s.hosts.some((h) => hostMatches(h.toLowerCase(), n));
}

/** Whether any of these secrets is bound to the host (its HTTPS is then intercepted, its plain HTTP refused). */
export function anyBound(secrets: BrokeredSecret[], host: string): BrokeredSecret | undefined {
  return secrets.find((s) => boundTo(s, host));
}

/** The secret whose placeholder a host name or DNS query name carries (case-insensitive, also split over labels), if any. */
export function placeholderInName(secrets: BrokeredSecret[], name: string): string | undefined {
  const n = name.toLowerCase();
  const flat = n.replace(/\./g, "");
  for (const s of secrets) {
    const p = s.placeholder.toLowerCase();
    if (p.length < MIN_NAME_MATCH) continue;
    if (n.includes(p) || flat.includes(p.replace(/\./g, ""))) return s.name;
  }
  return undefined;
}

interface Sub { s: BrokeredSecret; value: Buffer; ph: string; val: string }

/** The rules for one request from one sandbox to `host` (null: plain HTTP, where nothing is substituted). */
export class RequestRules {
  private readonly subs: Sub[];
  private readonly guards: { name: string; forms: string[] }[];

  /** `values`: the current value of each secret bound to host (null: deleted, so not substituted). */
  constructor(secrets: BrokeredSecret[], readonly host: string | null, values: Map<string, Buffer | null>) {
    this.subs = [];
    if (host) for (const s of secrets) {
      const v = values.get(s.name);
      if (v && boundTo(s, host)) this.subs.push({ s, value: v, ph: s.placeholder, val: v.toString("latin1") });
    }
    this.guards = secrets.map((s) => ({ name: s.name, forms: encodingsOf(s.placeholder).map((b) => b.toString("latin1")) }));
  }

  /** Whether anything can happen to this request at all (no secrets: nothing to look at). */
  get empty(): boolean {
    return this.guards.length === 0;
  }

  /** The request's raw headers (name, value pairs, latin1 strings as Node gives them) with placeholders substituted; throws Refused. */
  headers(raw: string[]): string[] {
    const out = raw.slice();
    for (let i = 0; i < out.length; i += 2) {
      const name = out[i].toLowerCase();
      let v = out[i + 1];
      const subs = this.subs.filter((x) => !x.s.header || x.s.header.toLowerCase() === name);
      if (subs.length) v = substituteHeader(v, subs);
      this.guard(v, "header");
      this.guard(out[i], "header");
      out[i + 1] = v;
    }
    return out;
  }

  /** The request target with placeholders substituted (secrets that name no header only); throws Refused. */
  url(u: string): string {
    for (const x of this.subs) if (!x.s.header && u.includes(x.ph)) u = u.split(x.ph).join(x.val);
    this.guard(u, "url");
    return u;
  }

  /**
   * The patterns a request body is streamed through: in-body secrets' placeholders
   * become values (tag "sub:NAME"), every other placeholder form is found (tag
   * "deny:NAME"). Null if there is nothing to look for.
   */
  body(): PatternSet | null {
    if (this.empty) return null;
    const pats: Pattern[] = [];
    for (const x of this.subs) if (x.s.inBody) pats.push({ bytes: Buffer.from(x.ph, "latin1"), replacement: x.value, tag: `sub:${x.s.name}` });
    for (const g of this.guards) for (const f of g.forms) { const b = Buffer.from(f, "latin1"); pats.push({ bytes: b, replacement: b, tag: `deny:${g.name}` }); }
    return new PatternSet(pats);
  }

  /** Whether substituting the body changes its length (a placeholder and value of different byte lengths): content-length must then go. */
  get bodyLengthChanges(): boolean {
    return this.subs.some((x) => x.s.inBody && x.value.length !== Buffer.byteLength(x.ph, "latin1"));
  }

  /** Response patterns: every value substituted into this request, back to its placeholder. Null if none. */
  response(): PatternSet | null {
    if (!this.subs.length) return null;
    return new PatternSet(this.subs.filter((x) => x.value.length >= 4).map((x) => ({ bytes: x.value, replacement: Buffer.from(x.ph, "latin1"), tag: x.s.name })));
  }

  /** A response header value with bound values turned back into placeholders. */
  responseHeader(v: string): string {
    for (const x of this.subs) if (x.val.length >= 4 && v.includes(x.val)) v = v.split(x.val).join(x.ph);
    return v;
  }

  private guard(text: string, where: Where): void {
    for (const g of this.guards) for (const f of g.forms) if (text.includes(f)) throw new Refused(g.name, where);
  }
}

/** Substitutes in one header value: the raw placeholder, and inside `Basic` credentials (base64 of user:password). */
function substituteHeader(v: string, subs: Sub[]): string {
  const basic = /^(Basic[ \t]+)([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(v);
  if (basic) {
    const dec = Buffer.from(basic[2], "base64").toString("latin1");
    let out = dec;
    for (const x of subs) if (out.includes(x.ph)) out = out.split(x.ph).join(x.val);
    if (out !== dec) return basic[1] + Buffer.from(out, "latin1").toString("base64");
  }
  for (const x of subs) if (v.includes(x.ph)) v = v.split(x.ph).join(x.val);
  return v;
}
