// Address leases: each networked sandbox gets a /30 of the daemon's pool
// (gateway = .1 on the host's veth, the sandbox = .2). A lease is a file
// /run/bhatti/net-leases/<gateway> made with O_EXCL, so daemons on one host
// sharing a pool never hand out the same addresses; the daemon also records
// it in state.db (net_leases) so a restart finds it again.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { cidrSize, formatIPv4, type Cidr } from "./cidr.js";

export const LEASES_DIR = "/run/bhatti/net-leases";
export const PREFIX = 30;

export interface Lease { gateway: string; address: string; prefix: number }

export function takeLease(pool: Cidr, owner: string): Lease {
  mkdirSync(LEASES_DIR, { recursive: true, mode: 0o755 });
  const taken = new Set(readdirSync(LEASES_DIR));
  for (let i = 0; i < cidrSize(pool) / 4; i++) {
    const net = pool.base + i * 4;
    const gateway = formatIPv4(net + 1);
    if (taken.has(gateway)) continue;
    let fd: number;
    try {
      fd = openSync(join(LEASES_DIR, gateway), "wx", 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw e;
    }
    writeSync(fd, `${owner}\n`);
    closeSync(fd);
    return { gateway, address: formatIPv4(net + 2), prefix: PREFIX };
  }
  throw new Error(`no free address in the pool ${pool.text} (${cidrSize(pool) / 4} sandboxes); give serve a larger --net-pool`);
}

/** Frees a lease, but only if `owner` holds it. */
export function dropLease(gateway: string, owner: string): void {
  const p = join(LEASES_DIR, gateway);
  try {
    if (readFileSync(p, "utf8").trim() === owner) unlinkSync(p);
  } catch { /* already free */ }
}

/** Leases held by owners starting with prefix: [gateway, owner]. */
export function leasesOf(prefix: string): [string, string][] {
  let names: string[] = [];
  try { names = readdirSync(LEASES_DIR); } catch { return []; }
  const out: [string, string][] = [];
  for (const n of names) {
    try {
      const o = readFileSync(join(LEASES_DIR, n), "utf8").trim();
      if (o.startsWith(prefix)) out.push([n, o]);
    } catch { /* gone */ }
  }
  return out;
}

/** How long ago a lease was taken (Infinity if it is gone). */
export function leaseAgeMs(gateway: string): number {
  try { return Date.now() - statSync(join(LEASES_DIR, gateway)).mtimeMs; } catch { return Infinity; }
}
