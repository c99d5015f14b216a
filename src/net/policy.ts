// A sandbox's egress policy: validation of what a client sends, and the
// decisions made on it (is this name allowed, may this address be reached).
import { UserError } from "../util/errors.js";
import { HARD_DENIED, inCidr, parseCidr, parseIPv4, type Cidr } from "./cidr.js";

export type Egress = "public" | "deny" | "none";
export const EGRESS: readonly Egress[] = ["public", "deny", "none"];

export interface NetworkPolicy {
  egress: Egress;
  allow_hosts: string[]; // "api.example.com" or "*.example.com"
  allow_cidrs: string[]; // "198.51.100.0/24"
}

export const MAX_RULES = 64;
const HOST_RE = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

const bad = (msg: string) => new UserError(400, msg);

/** One allow_hosts entry ("api.example.com" or "*.example.com") normalized (lower case, no trailing dot), or null if it is not one. Also the rule for brokered secrets' hosts. */
export function normalizeHostPattern(s: string): string | null {
  const h = s.toLowerCase().replace(/\.$/, "");
  return h.length <= 253 && HOST_RE.test(h) ? h : null;
}

/** body.network of a create or PATCH; undefined fields take `base`'s (or the default). Never echoes a value it rejects beyond its position. */
export function validateNetwork(v: unknown, defaults: NetworkPolicy): NetworkPolicy {
  if (v === undefined || v === null) return { ...defaults, allow_hosts: [...defaults.allow_hosts], allow_cidrs: [...defaults.allow_cidrs] };
  if (typeof v !== "object" || Array.isArray(v)) throw bad("network must be an object {egress, allow_hosts, allow_cidrs}");
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!["egress", "allow_hosts", "allow_cidrs"].includes(k)) throw bad(`network: unknown field ${JSON.stringify(k.slice(0, 40))} (allowed: egress, allow_hosts, allow_cidrs)`);
  const egress = o.egress === undefined ? defaults.egress : o.egress;
  if (typeof egress !== "string" || !(EGRESS as string[]).includes(egress)) throw bad("network.egress must be one of public, deny, none");
  const list = (field: string, fallback: string[], check: (s: string) => string | null): string[] => {
    const x = o[field];
    if (x === undefined) return [...fallback];
    if (!Array.isArray(x)) throw bad(`network.${field} must be an array of strings`);
    if (x.length > MAX_RULES) throw bad(`network.${field}: at most ${MAX_RULES} entries`);
    const out: string[] = [];
    x.forEach((s, i) => {
      if (typeof s !== "string") throw bad(`network.${field}[${i}] must be a string`);
      const norm = check(s);
      if (norm === null) throw bad(field === "allow_hosts"
        ? `network.allow_hosts[${i}] is not a host name ("api.example.com" or "*.example.com", lower case, no port)`
        : `network.allow_cidrs[${i}] is not an IPv4 CIDR range like 198.51.100.0/24 (host bits must be zero)`);
      if (!out.includes(norm)) out.push(norm);
    });
    return out;
  };
  const allow_hosts = list("allow_hosts", defaults.allow_hosts, (s) => {
    const h = s.toLowerCase().replace(/\.$/, "");
    return h.length <= 253 && HOST_RE.test(h) ? h : null;
  });
  const allow_cidrs = list("allow_cidrs", defaults.allow_cidrs, (s) => {
    const c = parseCidr(s);
    if (!c) return null;
    // Nothing opens loopback, link-local, multicast or broadcast.
    if (HARD_DENIED.some((d) => overlaps(c, d))) throw bad(`network.allow_cidrs: ${c.text} overlaps a range no policy can open (loopback, link-local, multicast, broadcast)`);
    return c.text;
  });
  if (egress === "none" && (allow_hosts.length || allow_cidrs.length)) throw bad("network: egress none takes no allow_hosts or allow_cidrs (use egress deny with an allow-list)");
  return { egress: egress as Egress, allow_hosts, allow_cidrs };
}

function overlaps(a: Cidr, b: Cidr): boolean {
  return inCidr(a.base, b) || inCidr(b.base, a);
}

/** Whether the policy lets the sandbox resolve and connect to this host name. */
export function hostAllowed(p: NetworkPolicy, name: string): boolean {
  if (p.egress === "none") return false;
  const n = name.toLowerCase().replace(/\.$/, "");
  if (p.egress === "public") return true;
  return p.allow_hosts.some((rule) => hostMatches(rule, n));
}

/** Whether a host pattern ("api.example.com", or "*.example.com": subdomains only) matches a lower-case name. Brokered secrets' hosts match the same way. */
export function hostMatches(rule: string, n: string): boolean {
  return rule.startsWith("*.") ? n.endsWith(rule.slice(1)) && n.length > rule.length - 1 : n === rule;
}

/**
 * Whether an address may be reached: never a hard-denied one or the host's
 * own; a private one (or another sandbox's) only if an allow_cidr names it;
 * anything else if the name that led there was allowed (`byName`), or in
 * public mode, or inside an allow_cidr.
 */
export function addressAllowed(p: NetworkPolicy, ip: string, ctx: { privateRanges: Cidr[]; hostAddrs: Set<string>; byName: boolean }): { ok: boolean; rule: string } {
  if (p.egress === "none") return { ok: false, rule: "egress_none" };
  const n = parseIPv4(ip);
  if (n === null) return { ok: false, rule: "not_ipv4" };
  if (HARD_DENIED.some((c) => inCidr(n, c))) return { ok: false, rule: "always_denied" };
  if (ctx.hostAddrs.has(ip)) return { ok: false, rule: "host_address" };
  const cidrs = p.allow_cidrs.map((s) => parseCidr(s)!);
  if (cidrs.some((c) => inCidr(n, c))) return { ok: true, rule: "allow_cidr" };
  if (ctx.privateRanges.some((c) => inCidr(n, c))) return { ok: false, rule: "private_range" };
  if (p.egress === "public" || ctx.byName) return { ok: true, rule: p.egress === "public" ? "public" : "allow_host" };
  return { ok: false, rule: "not_allowed" };
}
