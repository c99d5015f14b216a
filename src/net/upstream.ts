// The daemon's own DNS client: asks the upstream resolver (serve
// --dns-upstream, default the host's first nameserver) over UDP. Used by the
// sandbox DNS server and the egress proxy, so a name is resolved the same
// way whichever path a sandbox takes. Never the host's stub resolver.
import { createSocket } from "node:dgram";
import { randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import dnsPacket from "dns-packet";

export interface Upstream { host: string; port: number }
export interface Answer { rcode: string; answers: dnsPacket.Answer[] }

const TIMEOUT_MS = 2000;
const MAX_IN_FLIGHT = 512;
let inFlight = 0;

export function parseUpstream(s: string): Upstream {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(s);
  if (!m || (m[2] && Number(m[2]) > 65535)) throw new Error(`--dns-upstream must be IPV4[:PORT] (got ${JSON.stringify(s)})`);
  return { host: m[1], port: m[2] ? Number(m[2]) : 53 };
}

/** The host's first IPv4 nameserver (the default upstream). */
export function hostNameserver(): Upstream | null {
  try {
    const m = /^nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/m.exec(readFileSync("/etc/resolv.conf", "utf8"));
    return m ? { host: m[1], port: 53 } : null;
  } catch {
    return null;
  }
}

/** One question to the upstream; rejects on timeout (after one retry) or too many queries in flight. */
export async function query(up: Upstream, name: string, type: dnsPacket.RecordType): Promise<Answer> {
  if (inFlight >= MAX_IN_FLIGHT) throw new Error("too many DNS queries in flight");
  inFlight++;
  try {
    try {
      return await once(up, name, type);
    } catch {
      return await once(up, name, type);
    }
  } finally {
    inFlight--;
  }
}

function once(up: Upstream, name: string, type: dnsPacket.RecordType): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const id = randomInt(0, 65536);
    const sock = createSocket("udp4");
    const done = (f: () => void) => {
      clearTimeout(timer);
      sock.close();
      f();
    };
    const timer = setTimeout(() => done(() => reject(new Error("upstream DNS timed out"))), TIMEOUT_MS);
    sock.on("error", (e) => done(() => reject(e)));
    sock.on("message", (msg, rinfo) => {
      if (rinfo.address !== up.host || rinfo.port !== up.port) return;
      let p: dnsPacket.Packet;
      try { p = dnsPacket.decode(msg); } catch { return; }
      if (p.id !== id || p.type !== "response") return;
      const q = p.questions?.[0];
      if (!q || q.name.toLowerCase() !== name.toLowerCase()) return;
      done(() => resolve({ rcode: (p as { rcode?: string }).rcode ?? "NOERROR", answers: p.answers ?? [] }));
    });
    const buf = dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: "IN" }] });
    sock.send(buf, up.port, up.host, (e) => { if (e) done(() => reject(e)); });
  });
}

/** A records of an answer (after any CNAME chain) and their smallest TTL. */
export function addresses(a: Answer): { ips: string[]; ttl: number } {
  const ips: string[] = [];
  let ttl = 3600;
  for (const r of a.answers) {
    if (r.type === "A" && typeof r.data === "string") {
      ips.push(r.data);
      ttl = Math.min(ttl, r.ttl ?? 60);
    }
  }
  return { ips, ttl };
}
