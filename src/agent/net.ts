// netvm (issue 10), vm engine: lohar brings up the guest's NIC from the config
// drive's `net` field. It uses busybox `ip` in every image (minimal: /sbin/ip;
// debian and imported images: the vm init's static busybox in /opt/bhatti/bin),
// so one syntax works everywhere without depending on the image's own iproute2.
// resolv.conf is written on /run (tmpfs) and bind-mounted read-only over
// /etc/resolv.conf: nothing goes into the image, and commands (uid 1000, no
// CAP_NET_ADMIN) can change neither it nor the address.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { ConfigNet } from "../protocol/agent.js";
import { run } from "./run.js";

const IP_TOOLS = ["/opt/bhatti/bin/ip", "/sbin/ip", "/bin/ip", "/usr/sbin/ip"];
const RESOLV = "/etc/resolv.conf";
const RESOLV_SRC = "/run/bhatti/resolv.conf";

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** The `net` field checked (it comes from the host, but a malformed one must not reach argv half-valid). */
export function validNet(n: unknown): ConfigNet | null {
  if (!n || typeof n !== "object") return null;
  const c = n as ConfigNet;
  if (typeof c.mac !== "string" || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(c.mac)) return null;
  for (const k of ["address", "gateway", "nameserver"] as const) if (typeof c[k] !== "string" || !IPV4.test(c[k])) return null;
  if (!Number.isInteger(c.prefix) || c.prefix < 1 || c.prefix > 32) return null;
  return c;
}

/** The interface whose MAC is mac (the kernel names the only virtio-net NIC eth0; found by MAC all the same). */
function ifaceWithMac(mac: string): string | null {
  for (const name of readdirSync("/sys/class/net")) {
    try {
      if (readFileSync(`/sys/class/net/${name}/address`, "utf8").trim() === mac) return name;
    } catch { /* gone */ }
  }
  return null;
}

async function waitForIface(mac: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const name = ifaceWithMac(mac);
    if (name) return name;
    if (Date.now() > deadline) throw new Error(`no network interface with MAC ${mac}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * One shell for every step: each process lohar (a large Node) spawns costs a
 * fork of it, which under TCG is tens to hundreds of milliseconds; busybox
 * forks from a small shell are cheap. argv holds addresses and paths only.
 */
const SCRIPT = [
  "set -e",
  '"$1" addr add "$2" dev "$3"',
  '"$1" link set "$3" up',
  '"$1" route add default via "$4"',
  '/bin/mount --bind "$5" "$6"',
  '/bin/mount -o remount,bind,ro "$6"',
].join("\n");

export async function configureNet(n: ConfigNet): Promise<void> {
  const ip = IP_TOOLS.find((p) => existsSync(p));
  if (!ip) throw new Error("no ip tool in the image");
  mkdirSync("/run/bhatti", { recursive: true, mode: 0o755 });
  writeFileSync(RESOLV_SRC, `nameserver ${n.nameserver}\noptions ndots:0 attempts:2 timeout:2\n`, { mode: 0o644 });
  // The mount point must be a plain file (an image's may be a symlink, or missing): made in the overlay's upper, in guest RAM.
  let st;
  try { st = lstatSync(RESOLV); } catch { /* missing */ }
  if (!st || !st.isFile()) {
    if (st) rmSync(RESOLV, { force: true });
    writeFileSync(RESOLV, "", { mode: 0o644 });
  }
  const dev = await waitForIface(n.mac, 5000);
  await run("/bin/sh", ["-c", SCRIPT, "sh", ip, `${n.address}/${n.prefix}`, dev, n.gateway, RESOLV_SRC, RESOLV]);
}
