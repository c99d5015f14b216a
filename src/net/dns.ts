// The DNS server sandboxes talk to (every UDP 53 packet of a networked
// sandbox is redirected here by nft). The sender's address says which
// sandbox asks; its policy decides: a name it does not allow gets NXDOMAIN
// with no upstream query (nothing leaks out by DNS); an allowed name is
// resolved upstream, and an answer pointing into a range the sandbox may not
// reach is refused (DNS rebinding). Allowed addresses are told to nft before
// the answer goes back, so the connection that follows is let through.
// DNS over TCP on the same address gets the same answers (dns-tcp.ts).
import { createSocket, type Socket } from "node:dgram";
import type { Server } from "node:net";
import { DnsTcp } from "./dns-tcp.js";
import dnsPacket from "dns-packet";
import { addresses, query } from "./upstream.js";
import type { Egress } from "./egress.js";
import { nameCarriesPlaceholder } from "./broker-guard.js";

const RCODE = { FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
const MAX_PENDING_PER_SANDBOX = 64;

export class DnsServer {
  private readonly socks = new Map<string, Socket>();
  private readonly pending = new Map<string, number>();
  private readonly tcpServers = new Map<string, Server>();
  private readonly tcp: DnsTcp;

  constructor(private readonly egress: Egress) {
    this.tcp = new DnsTcp((msg, from) => this.handle(msg, from), (ip) => !!egress.sandboxFor(ip), (l) => egress.warn(l));
  }

  /**
   * Listens on a sandbox's gateway address, port 53: one socket per sandbox,
   * no NAT in the path (a redirected A and AAAA pair sent back to back loses
   * one to conntrack's insertion race).
   */
  async listen(gateway: string): Promise<void> {
    if (this.socks.has(gateway)) return;
    const sock = createSocket({ type: "udp4", reuseAddr: false });
    sock.on("message", (msg, rinfo) => {
      const n = this.pending.get(rinfo.address) ?? 0;
      if (n >= MAX_PENDING_PER_SANDBOX) return; // a flood is dropped, never queued
      this.pending.set(rinfo.address, n + 1);
      this.handle(msg, rinfo.address)
        .then((out) => { if (out) sock.send(out, rinfo.port, rinfo.address); })
        .catch((e: Error) => this.egress.warn(`DNS: answering ${rinfo.address} failed: ${e.message}`))
        .finally(() => {
          const left = (this.pending.get(rinfo.address) ?? 1) - 1;
          if (left <= 0) this.pending.delete(rinfo.address);
          else this.pending.set(rinfo.address, left);
        });
    });
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.bind(53, gateway, () => { sock.off("error", reject); resolve(); });
    });
    sock.on("error", () => { /* a send to a gone sandbox; nothing to do */ });
    this.socks.set(gateway, sock);
    try {
      this.tcpServers.set(gateway, await this.tcp.listen(gateway));
    } catch (e) {
      this.unlisten(gateway);
      throw e;
    }
  }

  unlisten(gateway: string): void {
    const s = this.socks.get(gateway);
    this.socks.delete(gateway);
    try { s?.close(); } catch { /* closed */ }
    this.tcpServers.get(gateway)?.close();
    this.tcpServers.delete(gateway);
    this.tcp.closeFor(gateway);
  }

  close(): void {
    for (const g of [...this.socks.keys()]) this.unlisten(g);
    this.tcp.closeAll();
  }

  /** The reply to one packet from a sandbox, or null to stay silent. */
  async handle(msg: Buffer, from: string): Promise<Buffer | null> {
    const sb = this.egress.sandboxFor(from);
    if (!sb) return null;
    let req: dnsPacket.Packet;
    try { req = dnsPacket.decode(msg); } catch { return null; }
    if (req.type !== "query") return null;
    const q = req.questions?.[0];
    const reply = (rcode: number, answers: dnsPacket.Answer[] = []) => dnsPacket.encode({
      type: "response", id: req.id ?? 0, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode,
      questions: req.questions ?? [], answers,
    });
    if (!q || req.questions!.length !== 1) return reply(RCODE.FORMERR);
    const name = q.name.toLowerCase().replace(/\.$/, "");
    // A brokered secret's placeholder in a query name: NXDOMAIN, no upstream query, recorded.
    if (nameCarriesPlaceholder(this.egress, sb, name, "dns")) return reply(RCODE.NXDOMAIN);
    if (!this.egress.nameAllowed(sb, name)) {
      this.egress.denied(sb, "dns.denied", { name, rule: sb.policy.egress === "none" ? "egress_none" : "not_allowed" });
      return reply(RCODE.NXDOMAIN);
    }
    if (q.type === "AAAA") return reply(0); // sandboxes have IPv4 only: no address, no error
    let up;
    try {
      up = await query(this.egress.upstream, name, q.type === "A" ? "A" : q.type);
    } catch {
      return reply(RCODE.SERVFAIL);
    }
    if (up.rcode !== "NOERROR") return reply(up.rcode === "NXDOMAIN" ? RCODE.NXDOMAIN : RCODE.SERVFAIL);
    if (q.type !== "A") {
      // Other types of an allowed name are passed on, without addresses (those come only from A queries, checked).
      return reply(0, up.answers.filter((a) => a.type !== "A" && a.type !== "AAAA").map((a) => ({ ...a, name: a.name })));
    }
    const { ips, ttl } = addresses(up);
    for (const ip of ips) {
      const v = this.egress.addressAllowed(sb, ip, true);
      if (!v.ok) {
        this.egress.denied(sb, "dns.rebinding", { name, ip, rule: v.rule });
        return reply(RCODE.REFUSED);
      }
    }
    if (ips.length) await this.egress.learn(sb, ips, ttl);
    return reply(0, ips.map((ip) => ({ type: "A", name: q.name, ttl, class: "IN", data: ip })));
  }
}
