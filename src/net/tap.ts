// netvm (issue 10): the host side of a vm sandbox's network. A persistent tap
// (named like the ns engine's veth, bh<gateway hex>, so the nft table's
// iifname/oifname rules apply unchanged) made by the daemon before QEMU
// starts; QEMU (run by the daemon, as root) opens it by name with
// `-netdev tap,ifname=…,script=no,downscript=no`. Because it is persistent it
// outlives a QEMU that is stopped into a memory snapshot and one that keeps
// running across a daemon restart; release removes it (`ip link del`, as for a
// veth). Strict reverse-path filtering on the tap drops any packet whose
// source address does not route back through this tap: a guest (whose root is
// outside the daemon's control) that changes its address gets nothing.
import { writeFileSync } from "node:fs";
import { run } from "../util/run.js";
import type { Link } from "./netns.js";

export async function createTap(l: Link): Promise<void> {
  await run("ip", ["-batch", "-"], {
    input: [
      `tuntap add dev ${l.ifname} mode tap`,
      `addr add ${l.gateway}/${l.prefix} dev ${l.ifname}`,
      `link set ${l.ifname} up`,
    ].join("\n") + "\n",
    timeoutMs: 10_000,
  });
  // Per interface, never the host-wide switches.
  writeFileSync(`/proc/sys/net/ipv4/conf/${l.ifname}/forwarding`, "1");
  writeFileSync(`/proc/sys/net/ipv4/conf/${l.ifname}/rp_filter`, "1");
  try { writeFileSync(`/proc/sys/net/ipv6/conf/${l.ifname}/disable_ipv6`, "1"); } catch { /* no IPv6 on this host */ }
}

/** The guest NIC's MAC, from its address: locally administered (02:…), unique per lease. */
export function macFor(address: string): string {
  const o = address.split(".").map((x) => Number(x).toString(16).padStart(2, "0"));
  return `02:62:${o.join(":")}`;
}
