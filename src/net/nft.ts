// bhatti's kernel rules: one nftables table per daemon instance
// (`inet bhatti_<instance>`), so several daemons on a host never touch each
// other's rules and `nft list ruleset` shows exactly what bhatti added.
// Per-sandbox facts are set elements, so a sandbox's create, policy change or
// destroy is one small `nft -f -` transaction, never a rule rewrite.
import { run } from "../util/run.js";
import type { Cidr } from "./cidr.js";

export interface Ports { http: number; tls: number }

export const tableName = (instance: string) => `bhatti_${instance}`;

/** Where the drop rules log to (denied-log.ts): an NFLOG group and this instance's prefix tag. */
export interface DropLog { group: number; tag: string; snaplen: number }

/** Per sandbox (source address) and in all: what the kernel sends to the NFLOG group at most. */
export const LOG_RATE = { perSandbox: "5/second burst 10 packets", total: "200/second burst 200 packets" };

/** The table's full text (created atomically; an older copy of it is replaced). */
export function tableText(instance: string, ports: Ports, hard: Cidr[], priv: Cidr[], dropLog?: DropLog): string {
  const t = tableName(instance);
  const elems = (l: Cidr[]) => l.map((c) => c.text).join(", ");
  // A drop worth an event: logged (rate-limited in the kernel) just before the rule that drops it.
  const log = (rule: string) => dropLog
    ? ` update @logrl { ip saddr limit rate ${LOG_RATE.perSandbox} } limit name "droplog" log prefix "${dropLog.tag}:${rule}" group ${dropLog.group} snaplen ${dropLog.snaplen}`
    : "";
  const logLine = (match: string, rule: string) => dropLog ? `\n    iifname @ifaces ${match}${log(rule)}` : "";
  return `table inet ${t}
delete table inet ${t}
table inet ${t} {
  set ifaces { type ifname; }
  set sbaddrs { type ipv4_addr; }
  set ifaddr { type ifname . ipv4_addr; }
  set dnsgw { type ipv4_addr . inet_service; }
  set pubsb { type ipv4_addr; }
  set dynallow { type ipv4_addr . ipv4_addr; flags timeout; }
  set cidrallow { type ipv4_addr . ipv4_addr; flags interval; }
  set hardnets { type ipv4_addr; flags interval; auto-merge; elements = { ${elems(hard)} } }
  set privnets { type ipv4_addr; flags interval; auto-merge; elements = { ${elems(priv)} } }
  set logrl { type ipv4_addr; flags dynamic,timeout; timeout 1m; size 65536; }
  limit droplog { rate ${LOG_RATE.total} }
  chain sb_guard {
    type filter hook prerouting priority raw; policy accept;
    iifname @ifaces iifname . ip saddr != @ifaddr drop
  }
  chain sb_pre {
    type nat hook prerouting priority dstnat; policy accept;
    iifname @ifaces tcp dport 80 redirect to :${ports.http}
    iifname @ifaces tcp dport 443 redirect to :${ports.tls}
  }
  chain sb_post {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr @sbaddrs ip daddr != @sbaddrs masquerade
  }
  chain sb_in {
    type filter hook input priority filter; policy accept;
    iifname @ifaces ct state established,related accept
    iifname @ifaces ip daddr . udp dport @dnsgw accept
    iifname @ifaces ip daddr . tcp dport @dnsgw accept
    iifname @ifaces ct status dnat tcp dport { ${ports.http}, ${ports.tls} } accept${logLine("meta l4proto { tcp, udp }", "host_address")}
    iifname @ifaces drop
  }
  chain sb_fwd {
    type filter hook forward priority filter; policy accept;
    iifname @ifaces ct state established,related accept
    oifname @ifaces ct state established,related accept
    iifname @ifaces meta nfproto != ipv4 drop${logLine("meta l4proto udp", "udp_denied")}
    iifname @ifaces meta l4proto != tcp drop${logLine("ip daddr @hardnets", "always_denied")}
    iifname @ifaces ip daddr @hardnets drop
    iifname @ifaces ip saddr . ip daddr @cidrallow accept${logLine("ip daddr @privnets", "private_range")}
    iifname @ifaces ip daddr @privnets reject with tcp reset
    iifname @ifaces ip saddr @pubsb accept
    iifname @ifaces ip saddr . ip daddr @dynallow accept${logLine("ct state new", "not_allowed")}
    iifname @ifaces reject with tcp reset
    oifname @ifaces drop
  }
}
`;
}

export async function nft(script: string): Promise<void> {
  await run("nft", ["-f", "-"], { input: script, timeoutMs: 10_000 });
}

export async function deleteTable(instance: string): Promise<void> {
  await run("nft", ["delete", "table", "inet", tableName(instance)], { allowFail: true });
}

/** Every table name of bhatti on the host (`bhatti_<instance>`). */
export async function bhattiTables(): Promise<string[]> {
  const r = await run("nft", ["list", "tables"], { allowFail: true });
  return [...r.stdout.matchAll(/^table inet (bhatti_[a-z0-9]+)$/gm)].map((m) => m[1]);
}

export interface SandboxElems { ifname: string; address: string; gateway: string; public: boolean; cidrs: string[] }

/** Lines adding (op "add") or removing (op "delete") a sandbox's elements. dyn elements are removed separately. */
export function sandboxLines(instance: string, op: "add" | "delete", e: SandboxElems): string[] {
  const t = `inet ${tableName(instance)}`;
  const sets: [string, string][] = [["ifaces", `"${e.ifname}"`], ["sbaddrs", e.address], ["dnsgw", `${e.gateway} . 53`], ["ifaddr", `"${e.ifname}" . ${e.address}`]];
  if (e.public) sets.push(["pubsb", e.address]);
  if (e.cidrs.length) sets.push(["cidrallow", e.cidrs.map((c) => `${e.address} . ${c}`).join(", ")]);
  if (op === "delete") sets.push(["logrl", e.address]); // the drop-log meter's entry (made by the kernel)
  // A delete of a missing element fails the whole transaction: adding it first makes removal idempotent.
  return sets.flatMap(([set, el]) => op === "add" ? [`add element ${t} ${set} { ${el} }`] : [`add element ${t} ${set} { ${el} }`, `delete element ${t} ${set} { ${el} }`]);
}

export function policyLines(instance: string, address: string, before: { public: boolean; cidrs: string[] }, after: { public: boolean; cidrs: string[] }, dyn: string[]): string[] {
  const t = `inet ${tableName(instance)}`;
  const lines: string[] = [];
  if (before.public && !after.public) lines.push(`delete element ${t} pubsb { ${address} }`);
  if (!before.public && after.public) lines.push(`add element ${t} pubsb { ${address} }`);
  const gone = before.cidrs.filter((c) => !after.cidrs.includes(c));
  const added = after.cidrs.filter((c) => !before.cidrs.includes(c));
  if (gone.length) lines.push(`delete element ${t} cidrallow { ${gone.map((c) => `${address} . ${c}`).join(", ")} }`);
  if (added.length) lines.push(`add element ${t} cidrallow { ${added.map((c) => `${address} . ${c}`).join(", ")} }`);
  // dyn elements may have timed out already: (re)added first so the delete cannot fail.
  if (dyn.length) lines.push(`add element ${t} dynallow { ${dyn.map((ip) => `${address} . ${ip} timeout 1s`).join(", ")} }`, `delete element ${t} dynallow { ${dyn.map((ip) => `${address} . ${ip}`).join(", ")} }`);
  return lines;
}

export function dynLine(instance: string, address: string, ips: string[], ttlS: number): string {
  return `add element inet ${tableName(instance)} dynallow { ${ips.map((ip) => `${address} . ${ip} timeout ${ttlS}s`).join(", ")} }`;
}
