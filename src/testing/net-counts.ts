// Test-only: what one daemon instance holds on the host for sandbox
// networking (veths, lease files, nft elements, net_leases rows, DNS
// listeners), counted from the host's own tools.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import Database from "better-sqlite3";
import { LEASES_DIR } from "../net/leases.js";

export function peek<T>(dataDir: string, sql: string, ...a: unknown[]): T[] {
  const db = new Database(join(dataDir, "state.db"), { readonly: true });
  try { return db.prepare(sql).all(...a) as T[]; } finally { db.close(); }
}

export const instanceOf = (dataDir: string) => peek<{ value: string }>(dataDir, "SELECT value FROM meta WHERE key = 'instance_id'")[0].value;

const hexName = (gateway: string) => "bh" + gateway.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join("");

/**
 * Counts of this instance's networking on the host (addresses from poolPrefix + poolFrom on are
 * sandboxes'); DNS listeners are those of the daemon process `pid` (other daemons may share the pool).
 */
export function netCounts(dataDir: string, pid: number, poolPrefix = "198.51.100.", poolFrom = 64) {
  const inst = instanceOf(dataDir);
  let files: string[] = [];
  try { files = readdirSync(LEASES_DIR); } catch { /* none */ }
  const leases = files.filter((g) => { try { return readFileSync(join(LEASES_DIR, g), "utf8").startsWith(`${inst}:`); } catch { return false; } });
  const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
  const veths = leases.map(hexName).filter((n) => links.includes(`${n}:`) || links.includes(`${n}@`));
  const table = spawnSync("nft", ["list", "table", "inet", `bhatti_${inst}`], { encoding: "utf8" });
  const re = new RegExp(`(?<![-\\d.])${poolPrefix.replace(/\./g, "\\.")}(\\d+)(?![\\d/-])`, "g");
  const elements = table.status === 0 ? [...table.stdout.matchAll(re)].filter((m) => Number(m[1]) >= poolFrom).length : 0;
  const rows = peek<{ n: number }>(dataDir, "SELECT COUNT(*) AS n FROM net_leases")[0].n;
  // DNS listeners (UDP and TCP port 53) on any of the pool's addresses.
  const ss = spawnSync("ss", ["-Hlntup"], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.includes(`pid=${pid},`)).join("\n");
  const dns = [...ss.matchAll(new RegExp(`${poolPrefix.replace(/\./g, "\\.")}(\\d+):53\\b`, "g"))].filter((m) => Number(m[1]) >= poolFrom).length;
  return { leases: leases.length, veths: veths.length, elements, rows, dns };
}
