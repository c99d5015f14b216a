// bench/broker: what TLS interception for a brokered secret adds to a warm
// HTTPS request, measured on loopback in one run against the same HTTPS echo
// server: the real EgressProxy (with a fake Egress and Broker standing in for
// the daemon's, as in src/net/intercept.test.ts), keep-alive connections on
// every side, one request at a time:
// - host direct: client → server;
// - not intercepted: client → proxy (SNI read, spliced) → server;
// - brokered: client → proxy (TLS terminated, placeholder substituted in a
//   header, re-encrypted over a pooled upstream connection) → server.
// Target: brokered ≤ +2 ms p50 over not intercepted. Also the cost of minting
// one leaf certificate. Run: bench/broker [--runs N]
import { createServer as createHttpsServer, request, Agent } from "node:https";
import { parseArgs } from "node:util";
import { EgressProxy } from "../src/net/proxy.js";
import type { Egress, SandboxNet } from "../src/net/egress.js";
import { LeafCache, mintLeaf, newLeafKey, signerFor } from "../src/broker/leaf.js";
import { testCa } from "../src/broker/test-ca.js";
import type { SandboxBroker } from "../src/broker/types.js";
import { machine, percentile, printTable, timeit } from "./stats.js";

const { values } = parseArgs({ options: { runs: { type: "string" } } });
const RUNS = Number(values.runs ?? 2000);

async function main(): Promise<void> {
  const sandboxCa = await testCa("ec", "sandbox CA");
  const internetCa = await testCa("ec", "internet CA");
  const PH = "sk-PHaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  const VAL = Buffer.from("sk-REALaaaaaaaaaaaaaaaaaaaaaaaaa01");
  const sb: SandboxNet = { id: "sb", name: "b", user: "u", address: "127.0.0.1", gateway: "127.0.0.1", prefix: 30, ifname: "lo", policy: { egress: "public", allow_hosts: [], allow_cidrs: [] }, dyn: new Set() };
  const broker: SandboxBroker = { sandboxId: "sb", ca: async () => sandboxCa, secrets: () => [{ name: "K", placeholder: PH, hosts: ["api.test"], inBody: false }], value: async () => Buffer.from(VAL) };
  const egress: Egress = {
    upstream: { host: "127.0.0.1", port: 9 }, broker: { forSandbox: () => broker },
    sandboxFor: (ip) => (ip.replace(/^::ffff:/, "") === "127.0.0.1" ? sb : undefined),
    nameAllowed: () => true, addressAllowed: () => ({ ok: true, rule: "public" }), denied: () => {}, learn: async () => {}, resolve: async () => ["127.0.0.1"], warn: () => {},
  };
  const site = new LeafCache();
  const siteBroker: SandboxBroker = { sandboxId: "site", ca: async () => internetCa, secrets: () => [], value: async () => null };
  const ctx = { "api.test": await site.context(siteBroker, "api.test"), "plain.test": await site.context(siteBroker, "plain.test") } as Record<string, import("node:tls").SecureContext>;
  const body = JSON.stringify({ ok: true, pad: "x".repeat(200) });
  const server = createHttpsServer({ SNICallback: (n, cb) => cb(null, ctx[n]), keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body));
  });
  const port = await new Promise<number>((r) => server.listen(0, "127.0.0.1", () => r((server.address() as { port: number }).port)));
  const proxy = new EgressProxy(egress, { ports: { http: 1, tls: port }, upstreamCa: internetCa.certPem });
  const pp = await proxy.start();

  const client = (p: number, name: string, ca: string) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    return () => new Promise<void>((resolve, reject) => {
      request({ host: "127.0.0.1", port: p, servername: name, ca, agent, headers: { host: name, authorization: `Bearer ${PH}` } }, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
      }).on("error", reject).end();
    });
  };
  const direct = client(port, "api.test", internetCa.certPem);
  const spliced = client(pp.tls, "plain.test", internetCa.certPem);
  const brokered = client(pp.tls, "api.test", sandboxCa.certPem);
  console.log(`bench/broker on ${machine()}, ${new Date().toISOString()}\n`);
  for (const f of [direct, spliced, brokered]) await timeit(200, f, 0); // warm: connections, leaf, pools, JIT
  // Interleaved in batches so load drifts hit all three alike.
  const s = { direct: [] as number[], spliced: [] as number[], brokered: [] as number[] };
  for (let i = 0; i < RUNS; i += 100) {
    s.direct.push(...(await timeit(100, direct, 0)));
    s.spliced.push(...(await timeit(100, spliced, 0)));
    s.brokered.push(...(await timeit(100, brokered, 0)));
  }
  const sort = (a: number[]) => a.sort((x, y) => x - y);
  printTable("warm HTTPS request through the egress proxy, loopback (ms)", [
    { name: "host direct", samples: sort(s.direct) },
    { name: "not intercepted (SNI splice)", samples: sort(s.spliced), ref: "host direct" },
    { name: "brokered (TLS interception + substitution)", samples: sort(s.brokered), ref: "not intercepted (SNI splice)", target: "≤ +2 ms p50" },
  ]);
  console.log(`added by interception, p50: ${(percentile(s.brokered, 50) - percentile(s.spliced, 50)).toFixed(2)} ms\n`);

  const signer = await signerFor(sandboxCa);
  const key = await newLeafKey();
  printTable("minting one leaf certificate (ms)", [{ name: "ECDSA P-256 leaf, signed by an ECDSA CA", samples: await timeit(200, (i) => mintLeaf(`n${i}.test`, key.pair, signer)) }]);
  await proxy.close();
  server.close();
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
