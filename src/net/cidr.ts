// IPv4 addresses and CIDR ranges as numbers: parsing, membership, and the
// ranges a sandbox may never reach. Pure; no I/O.

export interface Cidr { base: number; bits: number; text: string }

export function parseIPv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255 || (m[i].length > 1 && m[i][0] === "0")) return null;
    n = n * 256 + o;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

const mask = (bits: number) => (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);

/** "a.b.c.d/n" (a bare address is /32); null if malformed or host bits are set. */
export function parseCidr(s: string): Cidr | null {
  const [addr, len, extra] = s.split("/");
  if (extra !== undefined) return null;
  const base = parseIPv4(addr);
  const bits = len === undefined ? 32 : /^\d{1,2}$/.test(len) ? Number(len) : NaN;
  if (base === null || !(bits >= 0 && bits <= 32)) return null;
  if (((base & ~mask(bits)) >>> 0) !== 0) return null;
  return { base, bits, text: `${formatIPv4(base)}/${bits}` };
}

export function inCidr(ip: number, c: Cidr): boolean {
  return ((ip & mask(c.bits)) >>> 0) === c.base;
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.bits);
}

const cidrs = (l: string[]) => l.map((s) => parseCidr(s)!);

/** Never reachable from a sandbox, whatever its policy: loopback, link-local (incl. 169.254.169.254), multicast, reserved (incl. broadcast), "this network". */
export const HARD_DENIED = cidrs(["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4"]);

/** Private ranges: denied unless a sandbox's --allow-cidr names them (the daemon adds its own address pool and --private-cidr ranges). */
export const PRIVATE = cidrs(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15"]);
