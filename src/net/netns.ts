// The host side of a sandbox's network on the ns engine: a veth pair made in
// the host's namespace (host end addressed as the gateway, forwarding on for
// that one interface), whose other end is moved into the sandbox's own
// network namespace once runc has made it (it must belong to the sandbox's
// user namespace, or sysfs cannot be mounted there) and configured from the
// host with nsenter. The sandbox has no CAP_NET_ADMIN: it cannot change any of it.
import { writeFileSync } from "node:fs";
import { run } from "../util/run.js";

export interface Link { ifname: string; gateway: string; address: string; prefix: number }

export const peerName = (ifname: string) => `${ifname}p`;

export async function createVeth(l: Link): Promise<void> {
  await run("ip", ["-batch", "-"], {
    input: [
      `link add ${l.ifname} type veth peer name ${peerName(l.ifname)}`,
      `addr add ${l.gateway}/${l.prefix} dev ${l.ifname}`,
      `link set ${l.ifname} up`,
    ].join("\n") + "\n",
    timeoutMs: 10_000,
  });
  // Per interface, never the host-wide switches (net.ipv4.ip_forward stays as it is).
  writeFileSync(`/proc/sys/net/ipv4/conf/${l.ifname}/forwarding`, "1");
  try { writeFileSync(`/proc/sys/net/ipv6/conf/${l.ifname}/disable_ipv6`, "1"); } catch { /* no IPv6 on this host */ }
}

/** Moves the veth's inner end into the network namespace of pid (the sandbox's init) and configures it there. */
export async function moveIntoSandbox(l: Link, pid: number): Promise<void> {
  await run("ip", ["link", "set", peerName(l.ifname), "netns", String(pid)], { timeoutMs: 10_000 });
  await run("nsenter", ["-t", String(pid), "-n", "ip", "-batch", "-"], {
    input: [
      `link set ${peerName(l.ifname)} name eth0`,
      "link set lo up",
      `addr add ${l.address}/${l.prefix} dev eth0`,
      "link set eth0 up",
      `route add default via ${l.gateway}`,
    ].join("\n") + "\n",
    timeoutMs: 10_000,
  });
}

/** Removes the veth pair (both ends); idempotent. */
export async function removeVeth(ifname: string): Promise<void> {
  await run("ip", ["link", "del", ifname], { allowFail: true, timeoutMs: 10_000 });
}

/** Host interfaces whose name matches re. */
export async function linksMatching(re: RegExp): Promise<string[]> {
  const r = await run("ip", ["-o", "link", "show"], { allowFail: true, timeoutMs: 10_000 });
  return [...r.stdout.matchAll(/^\d+: ([^:@\s]+)[@:]/gm)].map((m) => m[1]).filter((n) => re.test(n));
}
