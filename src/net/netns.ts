// Host links of sandbox networks: removing a sandbox's veth or tap, and finding
// bhatti's links (the sweep). The veth itself is made by fastlink.ts, the tap by tap.ts.
import { run } from "../util/run.js";

export interface Link { ifname: string; gateway: string; address: string; prefix: number }

/** Removes the veth pair (both ends); idempotent. */
export async function removeVeth(ifname: string): Promise<void> {
  await run("ip", ["link", "del", ifname], { allowFail: true, timeoutMs: 10_000 });
}

/** Host interfaces whose name matches re. */
export async function linksMatching(re: RegExp): Promise<string[]> {
  const r = await run("ip", ["-o", "link", "show"], { allowFail: true, timeoutMs: 10_000 });
  return [...r.stdout.matchAll(/^\d+: ([^:@\s]+)[@:]/gm)].map((m) => m[1]).filter((n) => re.test(n));
}
