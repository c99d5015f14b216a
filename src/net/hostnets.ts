// What the host's own network already uses: addresses, routes (every table),
// the default gateways, nameservers and /etc/hosts entries. A sandbox
// address pool (or a test internet) that overlaps any of it would take the
// host's traffic away from it, so it is refused before anything is made.
import { readFileSync } from "node:fs";
import { run } from "../util/run.js";
import { inCidr, parseCidr, parseIPv4, type Cidr } from "./cidr.js";

export interface HostUse { what: string; range: Cidr }

/** Ranges and addresses in use on the host; interfaces whose name matches `skip` (bhatti's own) are left out. */
export async function hostUses(skip: RegExp): Promise<HostUse[]> {
  const out: HostUse[] = [];
  const add = (what: string, s: string | undefined) => {
    if (!s) return;
    const c = parseCidr(s.includes("/") ? networkOf(s) : s);
    if (c) out.push({ what, range: c });
  };
  const routes = JSON.parse((await run("ip", ["-j", "-4", "route", "show", "table", "all"], { timeoutMs: 10_000 })).stdout || "[]") as { dst?: string; dev?: string; gateway?: string; table?: string }[];
  for (const r of routes) {
    if (r.dev && skip.test(r.dev)) continue;
    if (r.gateway) add(`the gateway ${r.gateway}${r.dev ? ` on ${r.dev}` : ""}`, r.gateway);
    if (r.dst && r.dst !== "default") add(`the route ${r.dst}${r.dev ? ` on ${r.dev}` : ""}${r.table && r.table !== "main" ? ` (table ${r.table})` : ""}`, r.dst);
  }
  const addrs = JSON.parse((await run("ip", ["-j", "-4", "addr", "show"], { timeoutMs: 10_000 })).stdout || "[]") as { ifname: string; addr_info?: { local: string; prefixlen: number }[] }[];
  for (const a of addrs) {
    if (skip.test(a.ifname)) continue;
    for (const i of a.addr_info ?? []) add(`the address ${i.local}/${i.prefixlen} of ${a.ifname}`, `${i.local}/${i.prefixlen}`);
  }
  for (const [file, re] of [["/etc/resolv.conf", /^nameserver\s+(\S+)/gm], ["/etc/hosts", /^\s*(\d+\.\d+\.\d+\.\d+)\s/gm]] as const) {
    let text = "";
    try { text = readFileSync(file, "utf8"); } catch { continue; }
    for (const m of text.matchAll(re)) if (parseIPv4(m[1]) !== null) add(`${m[1]} in ${file}`, m[1]);
  }
  return out;
}

/** "192.0.2.2/24" -> "192.0.2.0/24" */
function networkOf(s: string): string {
  const [a, l] = s.split("/");
  const ip = parseIPv4(a);
  const bits = Number(l);
  if (ip === null || !(bits >= 0 && bits <= 32)) return s;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const n = (ip & mask) >>> 0;
  return `${[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".")}/${bits}`;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return inCidr(a.base, b) || inCidr(b.base, a);
}

/** Throws, naming what clashes, if `range` overlaps anything the host uses. */
export async function assertFree(range: Cidr, skip: RegExp, label: string): Promise<void> {
  const clash = (await hostUses(skip)).filter((u) => overlaps(u.range, range) && !(u.range.bits === 0));
  if (clash.length) throw new Error(`${label} ${range.text} overlaps what this host already uses (${clash.slice(0, 3).map((c) => c.what).join("; ")}); pick a range nothing on the host uses`);
}
