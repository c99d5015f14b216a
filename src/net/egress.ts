// Sandbox networking, the daemon's side: address leases, the per-sandbox
// veth/netns (netns.ts), the nft table (nft.ts), the DNS server (dns.ts) and
// the egress proxy (proxy.ts). One instance per daemon. The SandboxService
// calls prepare/release/reattach/setPolicy; DNS and proxy ask it who a
// source address is and what its policy allows.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import type { Broker } from "../broker/types.js";
import type { DB } from "../store/db.js";
import { recordEvent, type EventType } from "../store/events.js";
import { HARD_DENIED, PRIVATE, inCidr, parseCidr, type Cidr } from "./cidr.js";
import { DnsServer } from "./dns.js";
import { DeniedLog, SNAPLEN, logTag, type DroppedPacket } from "./denied-log.js";
import { dropLease, leaseAgeMs, leasesOf, takeLease } from "./leases.js";
import { linksMatching, removeVeth } from "./netns.js";
import { linkUp } from "./fastlink.js";
import { createTap, macFor } from "./tap.js";
import { deleteTable, dynLine, nft, policyLines, sandboxLines, tableText, type Ports } from "./nft.js";
import { addressAllowed, hostAllowed, type NetworkPolicy } from "./policy.js";
import { EgressProxy } from "./proxy.js";
import { assertFree } from "./hostnets.js";
import { addresses, hostNameserver, query, type Upstream } from "./upstream.js";
import { timedPhase } from "../util/phases.js";

export const DEFAULT_POOL = "10.213.0.0/16";

export interface NetOptions {
  instance: string;
  runtimeDir: string;
  pool?: string; // CIDR the /30s come from (serve --net-pool)
  upstream?: Upstream; // serve --dns-upstream
  privateCidrs?: string[]; // more ranges treated as private (serve --private-cidr)
  broker?: Broker; // brokered secrets (issue 11): the proxy and DNS ask it about each sandbox
}

export interface SandboxNet {
  id: string;
  name: string;
  user: string;
  address: string;
  gateway: string;
  prefix: number;
  ifname: string;
  policy: NetworkPolicy;
  dyn: Set<string>; // addresses told to nft from this sandbox's DNS answers
}

/** What the ns engine needs to put the sandbox on its network. */
export interface SandboxLink { resolvConf: string; attach(pid: number): Promise<void>; guest?: GuestLink }

/** netvm (issue 10): what the vm engine needs: the tap QEMU opens and the guest side lohar configures. */
export interface GuestLink { ifname: string; mac: string; address: string; prefix: number; gateway: string; nameserver: string }

/** The host side of a sandbox's network: a veth moved into its netns (ns) or a tap a QEMU opens (vm). */
export type NetDevice = "veth" | "tap";

/** What the DNS server and the proxy ask. */
export interface Egress {
  readonly upstream: Upstream;
  readonly broker?: Broker;
  sandboxFor(ip: string): SandboxNet | undefined;
  nameAllowed(sb: SandboxNet, name: string): boolean;
  addressAllowed(sb: SandboxNet, ip: string, byName: boolean): { ok: boolean; rule: string };
  denied(sb: SandboxNet, type: EventType, detail: Record<string, unknown>): void;
  learn(sb: SandboxNet, ips: string[], ttl: number): Promise<void>;
  resolve(name: string): Promise<string[]>;
  warn(line: string): void; // rate-limited daemon log line (never a payload)
}

const EVENTS_PER_MINUTE = 30;
const DEDUP_MS = 10_000;
const MIN_TTL = 30;
const MAX_TTL = 3600;

export class NetManager implements Egress {
  readonly upstream: Upstream;
  get broker(): Broker | undefined {
    return this.opts.broker;
  }
  private readonly pool: Cidr;
  private readonly privateRanges: Cidr[];
  private readonly byAddr = new Map<string, SandboxNet>();
  private readonly byId = new Map<string, SandboxNet>();
  private readonly dns: DnsServer;
  private readonly proxy: EgressProxy;
  private ports?: Ports;
  private started?: Promise<void>;
  private hostAddrs = new Set<string>();
  private hostAddrsAt = 0;
  private readonly budget = new Map<string, { at: number; n: number; dropped: number }>();
  private readonly dropLog: DeniedLog;
  private readonly recentDrops = new Map<string, number>(); // "<sandbox> <proto> <ip>:<port>" -> when last recorded

  constructor(private readonly db: DB, private readonly log: (l: string) => void, private readonly opts: NetOptions) {
    const pool = parseCidr(opts.pool ?? DEFAULT_POOL);
    if (!pool || pool.bits > 30) throw new Error(`--net-pool must be an IPv4 CIDR of /30 or larger, host bits zero (got ${JSON.stringify(opts.pool)})`);
    if (HARD_DENIED.some((d) => inCidr(pool.base, d) || inCidr(d.base, pool))) throw new Error(`--net-pool ${pool.text} lies in a reserved range`);
    this.pool = pool;
    const extra = (opts.privateCidrs ?? []).map((s) => {
      const c = parseCidr(s);
      if (!c) throw new Error(`--private-cidr must be an IPv4 CIDR (got ${JSON.stringify(s)})`);
      return c;
    });
    this.privateRanges = [...PRIVATE, pool, ...extra];
    const up = opts.upstream ?? hostNameserver();
    if (!up) throw new Error("no DNS upstream: give serve --dns-upstream ADDR (the host's /etc/resolv.conf names no IPv4 nameserver)");
    this.upstream = up;
    this.dns = new DnsServer(this);
    this.proxy = new EgressProxy(this);
    this.dropLog = new DeniedLog(opts.instance, (p) => this.dropped(p), log);
  }

  private get owner(): string {
    return `${this.opts.instance}:`;
  }

  /** Starts the DNS server and the proxy and (re)creates this instance's nft table. Once; every caller waits for it. */
  start(): Promise<void> {
    this.started ??= (async () => {
      await this.checkPool();
      this.ports = await this.proxy.start();
      const group = await this.dropLog.start();
      await nft(tableText(this.opts.instance, this.ports, HARD_DENIED, this.privateRanges, group === undefined ? undefined : { group, tag: logTag(this.opts.instance), snaplen: SNAPLEN }));
      mkdirSync(join(this.opts.runtimeDir, "net"), { recursive: true, mode: 0o711 });
      this.log(`network: pool ${this.pool.text}, DNS upstream ${this.upstream.host}:${this.upstream.port}, nft table inet bhatti_${this.opts.instance}${group === undefined ? "" : `, dropped connections logged to NFLOG group ${group}`}`);
    })();
    this.started.catch(() => { this.started = undefined; }); // a later create tries again
    return this.started;
  }

  /** A pool over the host's own networks would steal its traffic (routes, gateway, nameservers): refused, naming the clash. */
  checkPool(): Promise<void> {
    return assertFree(this.pool, /^bh[0-9a-f]{8}p?$/, "the sandbox address pool (serve --net-pool)");
  }

  /** Sets up a new sandbox's network (lease, veth, netns, rules, resolv.conf). */
  async prepare(id: string, user: string, name: string, policy: NetworkPolicy, device: NetDevice = "veth"): Promise<SandboxLink> {
    await timedPhase(id, "net start", () => this.start());
    const lease = takeLease(this.pool, this.owner + id);
    const sb: SandboxNet = { id, name, user, ...lease, ifname: ifnameFor(lease.gateway), policy, dyn: new Set() };
    this.db.prepare("INSERT OR REPLACE INTO net_leases (sandbox_id, gateway, address, prefix, ifname, netns) VALUES (?, ?, ?, ?, ?, ?)")
      .run(id, sb.gateway, sb.address, sb.prefix, sb.ifname, "");
    this.byId.set(id, sb);
    try {
      const resolvConf = this.resolvConf(id);
      writeFileSync(resolvConf, `nameserver ${sb.gateway}\noptions ndots:0 attempts:2 timeout:2\n`, { mode: 0o644 });
      if (device === "tap") {
        // vm: the tap must exist before QEMU opens it; the guest configures its side from the config drive.
        await Promise.all([
          createTap(sb).then(() => this.dns.listen(sb.gateway)),
          nft(sandboxLines(this.opts.instance, "add", elems(sb)).join("\n") + "\n"),
        ]);
        this.byAddr.set(sb.address, sb);
        return { resolvConf, attach: async () => {}, guest: { ifname: sb.ifname, mac: macFor(sb.address), address: sb.address, prefix: sb.prefix, gateway: sb.gateway, nameserver: sb.gateway } };
      }
      this.byAddr.set(sb.address, sb);
      // The veth, its addresses and the nft elements are made in one process once runc has made
      // the sandbox's netns, while lohar boots (fastlink.ts); the DNS listener needs the gateway address.
      const attach = async (pid: number) => {
        await timedPhase(id, "net link", () => linkUp(sb, pid, sandboxLines(this.opts.instance, "add", elems(sb))));
        await this.dns.listen(sb.gateway);
      };
      return { resolvConf, attach };
    } catch (e) {
      await this.release(id);
      throw e;
    }
  }

  private resolvConf(id: string): string {
    return join(this.opts.runtimeDir, "net", `${id}.resolv`);
  }

  /** After a daemon restart: the sandbox runs on; its rules come back (the table was recreated at start). */
  async reattach(id: string, user: string, name: string, policy: NetworkPolicy): Promise<void> {
    const row = this.db.prepare("SELECT gateway, address, prefix, ifname FROM net_leases WHERE sandbox_id = ?").get(id) as { gateway: string; address: string; prefix: number; ifname: string } | undefined;
    if (!row) return;
    await this.start();
    const sb: SandboxNet = { id, name, user, ...row, policy, dyn: new Set() };
    await nft(sandboxLines(this.opts.instance, "add", elems(sb)).join("\n") + "\n");
    await this.dns.listen(sb.gateway);
    this.byId.set(id, sb);
    this.byAddr.set(sb.address, sb);
  }

  /** Removes everything of a sandbox's network; idempotent, also for sandboxes this daemon never prepared (a crash's leftovers). */
  async release(id: string): Promise<void> {
    const row = (this.byId.get(id) ?? this.db.prepare("SELECT * FROM net_leases WHERE sandbox_id = ?").get(id)) as SandboxNet | undefined;
    this.byId.delete(id);
    if (!row) return;
    if (this.byAddr.get(row.address)?.id === id) this.byAddr.delete(row.address);
    const errors: string[] = [];
    if (this.ports) {
      const lines = sandboxLines(this.opts.instance, "delete", { ifname: row.ifname, address: row.address, gateway: row.gateway, public: true, cidrs: [] });
      await nft(lines.join("\n") + "\n").catch((e: Error) => errors.push(e.message));
      const dyn = row.dyn ? [...row.dyn] : [];
      const cidrs = row.policy?.allow_cidrs ?? [];
      if (dyn.length || cidrs.length) await nft(policyLines(this.opts.instance, row.address, { public: false, cidrs: [] }, { public: false, cidrs: [] }, dyn).concat(
        cidrs.length ? [`add element inet bhatti_${this.opts.instance} cidrallow { ${cidrs.map((c) => `${row.address} . ${c}`).join(", ")} }`, `delete element inet bhatti_${this.opts.instance} cidrallow { ${cidrs.map((c) => `${row.address} . ${c}`).join(", ")} }`] : [],
      ).join("\n") + "\n").catch((e: Error) => errors.push(e.message));
    }
    this.dns.unlisten(row.gateway);
    await removeVeth(row.ifname);
    rmSync(this.resolvConf(id), { force: true });
    dropLease(row.gateway, this.owner + id);
    this.db.prepare("DELETE FROM net_leases WHERE sandbox_id = ?").run(id);
    this.budget.delete(id);
    if (errors.length) this.log(`sandbox ${id}: removing its network rules: ${errors.join("; ")}`);
  }

  /** The sandbox's address, if it has a network on this daemon. */
  addressOf(id: string): string | undefined {
    return this.byId.get(id)?.address;
  }

  /** A running sandbox's new policy; its new connections and DNS queries follow it at once. */
  async setPolicy(id: string, policy: NetworkPolicy): Promise<void> {
    const sb = this.byId.get(id);
    if (!sb) return;
    const before = sb.policy;
    const dyn = [...sb.dyn];
    const lines = policyLines(this.opts.instance, sb.address, { public: before.egress === "public", cidrs: before.allow_cidrs }, { public: policy.egress === "public", cidrs: policy.allow_cidrs }, dyn);
    if (lines.length) await nft(lines.join("\n") + "\n");
    // Only once the kernel has it: DNS and the proxy decide by the new policy from here on.
    sb.policy = policy;
    for (const ip of dyn) sb.dyn.delete(ip);
  }

  /**
   * Start-up, after sandboxes were reattached: leases, netns and veths of this
   * instance that no live sandbox holds are removed.
   */
  async sweep(live: Set<string>): Promise<number> {
    let n = 0;
    const rows = this.db.prepare("SELECT sandbox_id FROM net_leases").all() as { sandbox_id: string }[];
    // A lease of a sandbox that is gone (its owner deleted while no daemon ran): its elements are in
    // the previous run's nft table, which release() edits only once the table is this daemon's.
    if (rows.some((r) => !live.has(r.sandbox_id))) await this.start().catch((e: Error) => this.log(`network: starting it to remove leftovers failed: ${e.message}`));
    for (const r of rows) if (!live.has(r.sandbox_id)) { await this.release(r.sandbox_id); n++; }
    for (const [gateway, owner] of leasesOf(this.owner)) {
      const id = owner.slice(this.owner.length);
      if (!live.has(id)) { await removeVeth(ifnameFor(gateway)); dropLease(gateway, owner); n++; }
    }
    // Any daemon's: a lease whose veth is gone (its sandbox died with its daemon), a bhatti veth with no lease.
    const links = new Set(await linksMatching(/^bh[0-9a-f]{8}$/));
    const leased = new Set<string>();
    for (const [gateway, owner] of leasesOf("")) {
      leased.add(ifnameFor(gateway));
      if (!links.has(ifnameFor(gateway)) && leaseAgeMs(gateway) > 60_000) { dropLease(gateway, owner); n++; }
    }
    for (const l of links) if (!leased.has(l)) { await removeVeth(l); n++; }
    return n;
  }

  /** Daemon stop: the listeners close; with no networked sandbox left, the table goes too. */
  async close(): Promise<void> {
    this.dns.close();
    this.dropLog.close();
    await this.proxy.close();
    if (this.ports && this.byId.size === 0 && (this.db.open ? (this.db.prepare("SELECT COUNT(*) AS n FROM net_leases").get() as { n: number }).n === 0 : true)) await deleteTable(this.opts.instance);
  }

  // ---- Egress ----

  private lastWarn = 0;
  warn(line: string): void {
    if (Date.now() - this.lastWarn < 1000) return;
    this.lastWarn = Date.now();
    this.log(line);
  }

  sandboxFor(ip: string): SandboxNet | undefined {
    return this.byAddr.get(ip.replace(/^::ffff:/, ""));
  }

  nameAllowed(sb: SandboxNet, name: string): boolean {
    return hostAllowed(sb.policy, name);
  }

  addressAllowed(sb: SandboxNet, ip: string, byName: boolean): { ok: boolean; rule: string } {
    if (Date.now() - this.hostAddrsAt > 5000) {
      this.hostAddrs = new Set(Object.values(networkInterfaces()).flat().filter((a) => a && a.family === "IPv4").map((a) => a!.address));
      this.hostAddrsAt = Date.now();
    }
    return addressAllowed(sb.policy, ip, { privateRanges: this.privateRanges, hostAddrs: this.hostAddrs, byName });
  }

  /** Records a denial, at most EVENTS_PER_MINUTE per sandbox (a sandbox cannot flood the event log). */
  denied(sb: SandboxNet, type: EventType, detail: Record<string, unknown>): void {
    const now = Date.now();
    let b = this.budget.get(sb.id);
    if (!b || now - b.at > 60_000) {
      if (b?.dropped) recordEvent(this.db, "net.events_suppressed", sb.user, sb.name, { id: sb.id, dropped: b.dropped });
      b = { at: now, n: 0, dropped: 0 };
      this.budget.set(sb.id, b);
    }
    if (b.n >= EVENTS_PER_MINUTE) {
      b.dropped++;
      return;
    }
    b.n++;
    try {
      recordEvent(this.db, type, sb.user, sb.name, { id: sb.id, ...detail });
    } catch (e) {
      this.log(`sandbox ${sb.id}: recording a ${type} event failed: ${(e as Error).message}`);
    }
  }

  /**
   * A packet nft dropped (denied-log.ts): a net.denied event for the sandbox
   * that sent it, under the same budget as every denial. A connection's
   * retransmits (same destination within DEDUP_MS) are one event.
   */
  private dropped(p: DroppedPacket): void {
    if (p.lost) this.warn(`network: the kernel dropped ${p.lost} batch(es) of denied-connection logs (the reader fell behind)`);
    const sb = this.byAddr.get(p.src);
    if (!sb) return;
    const k = `${sb.id} ${p.proto} ${p.dst}:${p.port ?? ""}`;
    const now = Date.now();
    if (now - (this.recentDrops.get(k) ?? 0) < DEDUP_MS) return;
    if (this.recentDrops.size >= 4096) for (const [key, at] of this.recentDrops) if (now - at >= DEDUP_MS) this.recentDrops.delete(key);
    if (this.recentDrops.size >= 4096) this.recentDrops.clear();
    this.recentDrops.set(k, now);
    this.denied(sb, "net.denied", { ip: p.dst, ...(p.port !== undefined ? { port: p.port } : {}), protocol: p.proto, rule: p.rule });
  }

  async learn(sb: SandboxNet, ips: string[], ttl: number): Promise<void> {
    const t = Math.max(MIN_TTL, Math.min(MAX_TTL, ttl)) + 60; // a connection made just before expiry still gets through
    await nft(dynLine(this.opts.instance, sb.address, ips, t) + "\n");
    for (const ip of ips) sb.dyn.add(ip);
  }

  async resolve(name: string): Promise<string[]> {
    const a = await query(this.upstream, name, "A");
    return a.rcode === "NOERROR" ? addresses(a).ips : [];
  }
}

/** Host-side veth name from the lease's gateway: unique on the host because leases are. */
export function ifnameFor(gateway: string): string {
  return "bh" + gateway.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join("");
}

function elems(sb: SandboxNet) {
  return { ifname: sb.ifname, address: sb.address, gateway: sb.gateway, public: sb.policy.egress === "public", cidrs: sb.policy.allow_cidrs };
}
