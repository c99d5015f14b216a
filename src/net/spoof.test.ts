// The guard in bhatti's nft table against a sandbox that changes its own
// address (a vm guest's root can; an ns sandbox has no CAP_NET_ADMIN): a
// packet that arrives on a sandbox's interface with any source but that
// interface's own address is dropped before anything else sees it. Tested on
// the real kernel with the daemon's own table text and elements, a leased /30
// of the test pool and a veth into a network namespace this test makes: the
// datagram from the sandbox's address reaches its gateway's DNS port, the same
// datagram from another sandbox's address (impersonation) does not.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { HARD_DENIED, PRIVATE, parseCidr, formatIPv4, parseIPv4 } from "./cidr.js";
import { ifnameFor } from "./egress.js";
import { dropLease, takeLease, type Lease } from "./leases.js";
import { deleteTable, nft, sandboxLines, tableText } from "./nft.js";
import { POOL } from "../testing/internet.js";

const tag = randomBytes(4).toString("hex");
const inst = `spoof${tag}`;
const owner = `spooftest-${tag}:x`;
const netns = `bhsp-${tag}`;
let lease: Lease;
let ifname: string;
let sock: Socket;
const got: string[] = [];

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
}

/** Sends one UDP datagram from `from` (an address inside the namespace) to the gateway's port 53. */
function sendFrom(from: string, text: string): void {
  sh("ip", ["netns", "exec", netns, process.execPath, "-e",
    `const s=require("dgram").createSocket("udp4");s.bind({address:process.argv[1]},()=>s.send(process.argv[3],53,process.argv[2],(e)=>{if(e)throw e;s.close()}))`,
    from, lease.gateway, text]);
}

const settle = () => new Promise((r) => setTimeout(r, 500));

before(async () => {
  lease = takeLease(parseCidr(POOL)!, owner); // a lease file: no daemon's sweep takes our veth for a leftover
  ifname = ifnameFor(lease.gateway);
  sh("ip", ["netns", "add", netns]);
  sh("ip", ["link", "add", ifname, "type", "veth", "peer", "name", "eth0", "netns", netns]);
  sh("ip", ["addr", "add", `${lease.gateway}/${lease.prefix}`, "dev", ifname]);
  sh("ip", ["link", "set", ifname, "up"]);
  sh("ip", ["-n", netns, "addr", "add", `${lease.address}/${lease.prefix}`, "dev", "eth0"]);
  sh("ip", ["-n", netns, "link", "set", "eth0", "up"]);
  await nft(tableText(inst, { http: 1, tls: 2 }, HARD_DENIED, [...PRIVATE, parseCidr(POOL)!]));
  await nft(sandboxLines(inst, "add", { ifname, address: lease.address, gateway: lease.gateway, public: true, cidrs: [] }).join("\n") + "\n");
  sock = createSocket("udp4");
  sock.on("message", (m) => got.push(m.toString()));
  await new Promise<void>((resolve, reject) => { sock.once("error", reject); sock.bind(53, lease.gateway, () => resolve()); });
});

after(async () => {
  sock?.close();
  spawnSync("ip", ["netns", "del", netns]);
  if (ifname) spawnSync("ip", ["link", "del", ifname]);
  await deleteTable(inst);
  if (lease) dropLease(lease.gateway, owner);
});

test("a datagram from the sandbox's own address passes; from another sandbox's address (a changed address) it is dropped", async () => {
  sendFrom(lease.address, "own");
  await settle();
  assert.deepEqual(got, ["own"], "the path works with the leased address");
  // The neighbouring lease's sandbox address: what a guest that rewrites its address would claim to be.
  const other = formatIPv4(parseIPv4(lease.address)! + 4);
  sh("ip", ["-n", netns, "addr", "add", `${other}/32`, "dev", "eth0"]);
  sendFrom(other, "spoofed");
  await settle();
  assert.deepEqual(got, ["own"], "the spoofed datagram never reached the host");
  sendFrom(lease.address, "own again");
  await settle();
  assert.deepEqual(got, ["own", "own again"]);
});
