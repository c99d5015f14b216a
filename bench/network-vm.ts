// bench/network-vm: what networking adds to a vm sandbox's create → first exec
// (a tap, a lease, nft elements, a DNS listener on the host; virtio-net and
// lohar bringing up eth0 and resolv.conf in the guest), against egress none,
// measured in the same run, interleaved in pairs so load drifts hit both alike.
// Uses the test internet (src/testing/internet.ts) as DNS upstream; nothing
// leaves this machine. Run: bench/network-vm [--runs N]   (after npm run build)
import { parseArgs } from "node:util";
import { api, createUser, startDaemon, type Daemon } from "../src/testing/harness.js";
import { POOL, PRIVATE_RANGE, buildTestInternet, type TestInternet } from "../src/testing/internet.js";
import { teardown } from "./teardown.js";
import { machine, percentile, printTable } from "./stats.js";

const IMAGES = process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images";
const { values } = parseArgs({ options: { runs: { type: "string" } } });
const RUNS = Number(values.runs ?? 8);

async function main(): Promise<void> {
  let net: TestInternet | undefined;
  let d: Daemon | undefined;
  let key = "";
  try {
    net = await buildTestInternet();
    d = await startDaemon({ args: ["--engine", "vm", "--rate-limit", "0", "--default-egress", "public", "--dns-upstream", net.dnsUpstream, "--net-pool", POOL, "--private-cidr", PRIVATE_RANGE], env: { BHATTI_IMAGES_DIR: IMAGES } });
    key = createUser(d.dataDir, "bench", ["--max-sandboxes", "20", "--max-cpus", "20", "--max-memory", "20000"]);
    const dd = d;
    const h = (await api(dd, "GET", "/health")).json;
    const accel = h?.engines?.vm?.accel ?? h?.accel ?? "?";
    console.log(`bench/network-vm --runs ${RUNS} on ${machine()}, ${new Date().toISOString()}\n`);
    const once = async (egress: string, name: string): Promise<number> => {
      const t = performance.now();
      const c = await api(dd, "POST", "/sandboxes", { key, body: { name, memory_mb: 256, network: { egress } } });
      if (c.status !== 201) throw new Error(c.text);
      const x = await api(dd, "POST", `/sandboxes/${name}/exec`, { key, body: { cmd: ["true"] } });
      if (x.json?.exit_code !== 0) throw new Error(x.text);
      const ms = performance.now() - t;
      if (egress === "public" && name.endsWith("w")) {
        // Once: the network is really there when create returns.
        const g = await api(dd, "POST", `/sandboxes/${name}/exec`, { key, body: { cmd: ["wget", "-qO-", "http://api.bhatti.test/ready"] } });
        if (g.json?.exit_code !== 0) throw new Error(`no network right after create: ${g.text}`);
      }
      if ((await api(dd, "DELETE", `/sandboxes/${name}`, { key })).status !== 204) throw new Error(`destroy ${name}`);
      return ms;
    };
    await once("none", "nonew");
    await once("public", "pubw");
    const none: number[] = [];
    const pub: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // Alternate which goes first.
      if (i % 2) { pub.push(await once("public", `p${i}`)); none.push(await once("none", `n${i}`)); }
      else { none.push(await once("none", `n${i}`)); pub.push(await once("public", `p${i}`)); }
    }
    none.sort((a, b) => a - b);
    pub.sort((a, b) => a - b);
    printTable(`create → first exec, engine vm (accel ${accel}, 1 vcpu / 256 MiB, image minimal) (ms)`, [
      { name: "egress none", samples: none },
      { name: "egress public (tap, lease, nft, DNS listener; eth0 + resolv.conf by lohar)", samples: pub, ref: "egress none" },
    ]);
    console.log(`added by networking: p50 ${(percentile(pub, 50) - percentile(none, 50)).toFixed(0)} ms, ratio ${(percentile(pub, 50) / percentile(none, 50)).toFixed(3)}`);
  } finally {
    await teardown(d, key, net);
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
