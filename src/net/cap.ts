// The per-user egress cap (user create|update --max-egress): the most egress
// a user's sandboxes may have, ordered public > deny > none. A request that
// asks for more is refused (403 egress_cap_exceeded); a request that asks for
// nothing gets the daemon's default lowered to the cap.
import { UserError } from "../util/errors.js";
import { PRIVATE, inCidr, parseCidr } from "./cidr.js";
import { EGRESS, type Egress, type NetworkPolicy } from "./policy.js";

const RANK: Record<Egress, number> = { none: 0, deny: 1, public: 2 };

/**
 * Under a deny cap an allow_cidrs entry may not stand in for public egress:
 * one wider than this (outside the private ranges) is refused.
 */
export const DENY_CAP_WIDEST_PUBLIC_CIDR = 16;

export function parseEgress(v: unknown, what = "max-egress"): Egress {
  if (typeof v !== "string" || !(EGRESS as readonly string[]).includes(v)) throw new UserError(400, `${what} must be one of public, deny, none`);
  return v as Egress;
}

/** The daemon's default policy, lowered to the cap (a create that names no policy). */
export function lowerToCap(p: NetworkPolicy, cap: Egress): NetworkPolicy {
  if (RANK[p.egress] <= RANK[cap]) return p;
  return { egress: cap, allow_hosts: [], allow_cidrs: [] };
}

/** Why p asks for more than the cap allows, or null. */
export function overCap(p: NetworkPolicy, cap: Egress): string | null {
  if (RANK[p.egress] > RANK[cap]) return `network.egress ${p.egress} is over your egress cap (${cap})`;
  if (cap === "deny") {
    for (const s of p.allow_cidrs) {
      const c = parseCidr(s);
      if (!c || c.bits >= DENY_CAP_WIDEST_PUBLIC_CIDR) continue;
      if (PRIVATE.some((r) => r.bits <= c.bits && inCidr(c.base, r))) continue; // inside a private range
      return `network.allow_cidrs ${c.text} is wider than /${DENY_CAP_WIDEST_PUBLIC_CIDR} over public addresses, which your egress cap (deny) does not allow`;
    }
  }
  return null;
}

/** 403 egress_cap_exceeded naming the cap when p is over it; `what` says whose policy (e.g. `template "t"`). */
export function requireWithinCap(p: NetworkPolicy, cap: Egress, what?: string): void {
  const why = overCap(p, cap);
  if (why) throw new UserError(403, `${what ? `${what}: ` : ""}${why}; ask the operator to raise it (user update --max-egress)`, {}, "egress_cap_exceeded");
}
