// A new sandbox's link in one host process, run once runc has made the
// sandbox's network namespace, while lohar boots (so it costs the create
// almost nothing): the veth pair is made with its inner end directly in that
// namespace (as eth0; the namespace belongs to the sandbox's user namespace,
// which is what moving it there achieved), the host end gets the gateway
// address, and the inner end is configured from the host (nsenter); the
// sandbox's nft elements go in first, in one transaction. Every process spawned by
// the daemon costs it milliseconds of its own thread (fork of a large
// process), so one shell runs the three tools instead of four spawns.
// Arguments are interface names, addresses, numbers and nft element lines:
// nothing from a request but the already-validated policy CIDRs.
import { writeFileSync } from "node:fs";
import { run } from "../util/run.js";
import type { Link } from "./netns.js";

// The nft elements go in first (the ifaces set holds names, so the veth need not exist yet):
// by the time the sandbox has an interface, its rules are in force (its init command may already run).
const SCRIPT = 'printf "%s" "$3" | nft -f - || exit 3; printf "%s" "$1" | ip -batch - || exit 1; printf "%s" "$2" | nsenter -t "$4" -n ip -batch - || exit 2';

/** Creates and configures the sandbox's link (inner end in the network namespace of pid) and adds its nft lines. */
export async function linkUp(l: Link, pid: number, nftLines: string[]): Promise<void> {
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`bad sandbox pid ${pid}`);
  const host = [
    `link add ${l.ifname} type veth peer name eth0 netns ${pid}`,
    `addr add ${l.gateway}/${l.prefix} dev ${l.ifname}`,
    `link set ${l.ifname} up`,
  ];
  const inner = [
    "link set lo up",
    `addr add ${l.address}/${l.prefix} dev eth0`,
    "link set eth0 up",
    `route add default via ${l.gateway}`,
  ];
  const r = await run("/bin/sh", ["-c", SCRIPT, "sh", host.join("\n") + "\n", inner.join("\n") + "\n", nftLines.join("\n") + "\n", String(pid)], { allowFail: true, timeoutMs: 10_000 });
  if (r.code !== 0) {
    const what = r.code === 1 ? "creating the veth pair" : r.code === 2 ? "configuring the sandbox's end" : r.code === 3 ? "adding its nft elements" : `exit ${r.code}`;
    throw new Error(`sandbox link ${l.ifname}: ${what} failed: ${r.stderr.trim().split("\n").slice(-2).join("; ")}`);
  }
  // Per interface, never the host-wide switches (net.ipv4.ip_forward stays as it is).
  writeFileSync(`/proc/sys/net/ipv4/conf/${l.ifname}/forwarding`, "1");
  try { writeFileSync(`/proc/sys/net/ipv6/conf/${l.ifname}/disable_ipv6`, "1"); } catch { /* no IPv6 on this host */ }
}
