// Listening TCP ports of a sandbox, read from the host: /proc/<init pid>/net/tcp
// and tcp6 show the sockets of the sandbox's network namespace.
import { readFileSync } from "node:fs";

export interface ListeningPort { port: number; address: string; family: 4 | 6 }

const LISTEN = "0A";

/** Parses /proc/net/tcp or tcp6 text; only LISTEN sockets. */
export function parseProcNetTcp(text: string, family: 4 | 6): ListeningPort[] {
  const out: ListeningPort[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== LISTEN) continue;
    const [hexAddr, hexPort] = f[1].split(":");
    if (!hexAddr || !hexPort) continue;
    out.push({ port: parseInt(hexPort, 16), address: family === 4 ? ipv4(hexAddr) : ipv6(hexAddr), family });
  }
  return out;
}

function ipv4(hex: string): string {
  const n = parseInt(hex, 16); // little-endian on x86
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
}

function ipv6(hex: string): string {
  if (/^0+$/.test(hex)) return "::";
  const words: string[] = [];
  for (let i = 0; i < 32; i += 8) {
    const w = hex.slice(i, i + 8).match(/../g)!.reverse().join("");
    words.push(w.slice(0, 4), w.slice(4));
  }
  return words.map((w) => w.replace(/^0{1,3}/, "")).join(":").toLowerCase();
}

/** Listening ports of the network namespace of pid, sorted, one entry per port and address. */
export function listeningPorts(pid: number): ListeningPort[] {
  const all: ListeningPort[] = [];
  for (const [file, fam] of [["tcp", 4], ["tcp6", 6]] as const) {
    try { all.push(...parseProcNetTcp(readFileSync(`/proc/${pid}/net/${file}`, "utf8"), fam)); } catch { /* no IPv6 */ }
  }
  return all.sort((a, b) => a.port - b.port || a.family - b.family);
}
