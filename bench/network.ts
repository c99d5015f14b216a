// bench/network: a sandbox's network against the host's, to the same test
// server (the test internet of src/testing/internet.ts; nothing leaves this
// machine), measured in the same run:
// - a small HTTPS GET, new connection each time: sandbox (through the
//   daemon's SNI proxy) vs host direct. Target p50 ≤ 1.5× host.
// - a 200 MB HTTPS download: throughput vs the host's. Target ≥ 50%.
// - create → first exec with networking (egress public) vs egress none.
//   Target: ≤ +15 ms p50 on ns.
// - a small HTTPS GET on a warm (keep-alive) connection: brokered (the proxy
//   terminates TLS, substitutes a brokered secret's placeholder, re-encrypts)
//   vs not intercepted (spliced) vs host direct. Target: ≤ +2 ms p50 added by
//   interception. (bench/broker measures the same on loopback, without a sandbox.)
// Run: bench/network [--runs N] [--only broker]   (or node dist/bench/network.js)
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { api, createUser, startDaemon, type Daemon } from "../src/testing/harness.js";
import { ADDR, POOL, PRIVATE_RANGE, buildTestInternet, type TestInternet } from "../src/testing/internet.js";
import { teardown } from "./teardown.js";
import { machine, percentile, printTable, timeit, type Row } from "./stats.js";
import { phaseRows } from "./sandbox-steps.js";

const IMAGES = process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images";
// --create-only: just the create → first exec comparison; --phases: the daemon logs each create's steps (BHATTI_TRACE_CREATE=1) and they are tabulated.
// --only broker: only the warm brokered/spliced/direct rows.
const { values } = parseArgs({ options: { runs: { type: "string" }, "create-only": { type: "boolean", default: false }, phases: { type: "boolean", default: false }, only: { type: "string" } } });
const ONLY = values.only;
const RUNS = Number(values.runs ?? 30);
const BULK = 200 * 1024 * 1024;

// One script for both sides: N sequential HTTPS GETs (a new connection each), or one bulk download.
// The name is resolved once (DNS is not what is measured); the connection still goes wherever the side's network sends it.
const CLIENT = String.raw`
const https = require("https"), dns = require("dns"), fs = require("fs");
const args = process.argv.slice(1); if (args[0] && args[0].endsWith(".js")) args.shift();
const [mode, n, ip0] = args;
const ca = fs.readFileSync(process.env.CA);
const go = (ip) => {
  const lookup = (h, o, cb) => (o && o.all ? cb(null, [{ address: ip, family: 4 }]) : cb(null, ip, 4));
  const get = (path) => new Promise((res, rej) => https.get({ hostname: "api.bhatti.test", path, lookup, ca, agent: false }, (r) => { let b = 0; r.on("data", (d) => { b += d.length; }); r.on("end", () => res(b)); }).on("error", rej));
  (async () => {
    const out = [];
    if (mode === "small") for (let i = 0; i < Number(n); i++) { const t = performance.now(); await get("/small"); out.push(performance.now() - t); }
    else { const t = performance.now(); const b = await get("/bytes?n=" + n); out.push(b / ((performance.now() - t) / 1000) / 1048576); }
    console.log(JSON.stringify(out));
  })().catch((e) => { console.error(String(e)); process.exit(1); });
};
ip0 ? go(ip0) : dns.lookup("api.bhatti.test", { family: 4 }, (e, ip) => (e ? (console.error(String(e)), process.exit(1)) : go(ip)));
`;

// Warm requests: one keep-alive connection, N sequential GETs. argv: name, address ("" = resolve), n, trust ("ca": the test CA; "default": the sandbox's own trust, which holds its broker CA); $KEY goes in Authorization.
const WARM = String.raw`
const https = require("https"), fs = require("fs");
const args = process.argv.slice(1); if (args[0] && args[0].endsWith(".js")) args.shift();
const [name, ip, n, trust] = args;
const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
const lookup = ip ? (h, o, cb) => (o && o.all ? cb(null, [{ address: ip, family: 4 }]) : cb(null, ip, 4)) : undefined;
const get = () => new Promise((res, rej) => https.get({ hostname: name, path: "/small", lookup, agent, ...(trust === "ca" ? { ca: fs.readFileSync(process.env.CA) } : {}), headers: { authorization: "Bearer " + (process.env.KEY || "none") } }, (r) => { r.resume(); r.on("end", () => (r.statusCode === 200 ? res() : rej(new Error("status " + r.statusCode)))); }).on("error", rej));
(async () => {
  for (let i = 0; i < 20; i++) await get();
  const out = [];
  for (let i = 0; i < Number(n); i++) { const t = performance.now(); await get(); out.push(performance.now() - t); }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(1); });
`;

async function main(): Promise<void> {
  let net: TestInternet | undefined;
  let d: Daemon | undefined;
  let key = "";
  try {
    net = await buildTestInternet();
    d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0", "--default-egress", "public", "--dns-upstream", net.dnsUpstream, "--net-pool", POOL, "--private-cidr", PRIVATE_RANGE], env: { BHATTI_IMAGES_DIR: IMAGES, NODE_EXTRA_CA_CERTS: net.caFile, ...(values.phases ? { BHATTI_TRACE_CREATE: "1" } : {}) } });
    key = createUser(d.dataDir, "bench", ["--max-sandboxes", "20", "--max-cpus", "20", "--max-memory", "20000"]);
    const dd = d;
    const ca = Buffer.from(net.caPem).toString("base64");
    const r = await api(dd, "POST", "/sandboxes", { key, body: { name: "net", env: { CA: "/home/lohar/ca.pem" }, files: [{ path: "/home/lohar/ca.pem", content: ca }, { path: "/home/lohar/client.js", content: Buffer.from(CLIENT).toString("base64") }] } });
    if (r.status !== 201) throw new Error(r.text);
    const inSandbox = async (args: string[]): Promise<number[]> => {
      const x = await api(dd, "POST", "/sandboxes/net/exec", { key, body: { cmd: ["/opt/bhatti/node", "/home/lohar/client.js", ...args], timeout_sec: 600 } });
      if (x.json?.exit_code !== 0) throw new Error(`in sandbox: ${x.text}`);
      return JSON.parse(x.json.stdout);
    };
    const onHost = (args: string[]): number[] => {
      const x = spawnSync(process.execPath, ["-e", CLIENT, ...args], { env: { ...process.env, CA: net!.caFile }, encoding: "utf8", maxBuffer: 1 << 20 });
      if (x.status !== 0) throw new Error(`on host: ${x.stderr}`);
      return JSON.parse(x.stdout);
    };
    console.log(`bench/network on ${machine()}, ${new Date().toISOString()}\n`);
    if (!values["create-only"]) {
    if (ONLY !== "broker") {
    await inSandbox(["small", "5"]); onHost(["small", "5", ADDR.A]); // warm-up
    const small: Row[] = [
      { name: "HTTPS GET, host direct", samples: onHost(["small", String(RUNS), ADDR.A]).sort((a, b) => a - b) },
      { name: "HTTPS GET, sandbox (SNI proxy)", samples: (await inSandbox(["small", String(RUNS)])).sort((a, b) => a - b), ref: "HTTPS GET, host direct", target: "≤ 1.5×" },
    ];
    printTable("small HTTPS GET, a new connection each (ms)", small);
    }

    // Brokered: a secret bound to api.bhatti.test, its placeholder in the sandbox's env.
    const sk = await api(dd, "POST", "/secrets", { key, body: { name: "BENCH_KEY", value: "sk-" + "b".repeat(40), hosts: ["api.bhatti.test"] } });
    if (sk.status !== 201) throw new Error(sk.text);
    const w = await api(dd, "POST", "/sandboxes", { key, body: { name: "warm", secrets: ["BENCH_KEY"], env: { CA: "/home/lohar/ca.pem" }, files: [{ path: "/home/lohar/ca.pem", content: ca }, { path: "/home/lohar/warm.js", content: Buffer.from(WARM).toString("base64") }] } });
    if (w.status !== 201) throw new Error(w.text);
    const warm = async (args: string[]): Promise<number[]> => {
      const x = await api(dd, "POST", "/sandboxes/warm/exec", { key, body: { cmd: ["/bin/sh", "-c", 'KEY="$BENCH_KEY" exec /opt/bhatti/node /home/lohar/warm.js "$@"', "warm", ...args], timeout_sec: 600 } });
      if (x.json?.exit_code !== 0) throw new Error(`in sandbox: ${x.text}`);
      return JSON.parse(x.json.stdout);
    };
    const warmHost = (args: string[]): number[] => {
      const x = spawnSync(process.execPath, ["-e", WARM, ...args], { env: { ...process.env, CA: net!.caFile, KEY: "none" }, encoding: "utf8", maxBuffer: 1 << 22 });
      if (x.status !== 0) throw new Error(`on host: ${x.stderr}`);
      return JSON.parse(x.stdout);
    };
    const wn = String(Math.max(200, RUNS * 10));
    const rows = { direct: [] as number[], spliced: [] as number[], brokered: [] as number[] };
    for (let b = 0; b < 3; b++) { // interleaved, so load drifts hit all three alike
      rows.direct.push(...warmHost(["api.bhatti.test", ADDR.A, wn, "ca"]));
      rows.spliced.push(...(await warm(["other.bhatti.test", "", wn, "ca"])));
      rows.brokered.push(...(await warm(["api.bhatti.test", "", wn, "default"])));
    }
    const byTime = (a: number[]) => a.sort((x, y) => x - y);
    printTable("small HTTPS GET, warm keep-alive connection (ms)", [
      { name: "host direct", samples: byTime(rows.direct) },
      { name: "sandbox, not intercepted (SNI splice)", samples: byTime(rows.spliced), ref: "host direct" },
      { name: "sandbox, brokered (TLS interception + substitution)", samples: byTime(rows.brokered), ref: "sandbox, not intercepted (SNI splice)", target: "≤ +2 ms p50" },
    ]);
    console.log(`added by interception, p50: ${(percentile(rows.brokered, 50) - percentile(rows.spliced, 50)).toFixed(2)} ms\n`);

    if (ONLY === "broker") return;
    const host: number[] = [];
    const sb: number[] = [];
    for (let i = 0; i < 3; i++) { host.push(...onHost(["bulk", String(BULK), ADDR.A])); sb.push(...(await inSandbox(["bulk", String(BULK)]))); }
    const med = (a: number[]) => percentile([...a].sort((x, y) => x - y), 50);
    console.log(`### 200 MiB HTTPS download (MiB/s, median of 3)\n\n| side | MiB/s | share of host | target |\n|---|---:|---:|---|\n| host direct | ${med(host).toFixed(0)} | (reference) | |\n| sandbox (SNI proxy) | ${med(sb).toFixed(0)} | ${((med(sb) / med(host)) * 100).toFixed(0)}% | ≥ 50% |\n`);
    }

    const createExec = (egress: string) => async (i: number) => {
      const name = `c${egress}${i < 0 ? `w${-i}` : i}`;
      const c = await api(dd, "POST", "/sandboxes", { key, body: { name, network: { egress } } });
      if (c.status !== 201) throw new Error(c.text);
      const x = await api(dd, "POST", `/sandboxes/${name}/exec`, { key, body: { cmd: ["true"] } });
      if (x.json?.exit_code !== 0) throw new Error(x.text);
    };
    const destroyAll = async () => {
      for (const s of (await api(dd, "GET", "/sandboxes", { key })).json) if (s.name !== "net" && s.name !== "warm") await api(dd, "DELETE", `/sandboxes/${s.id}`, { key });
    };
    // Interleaved in small batches so load drifts hit both alike.
    const none: number[] = [];
    const pub: number[] = [];
    const n = Math.max(10, Math.round(RUNS / 2));
    for (let b = 0; b < n; b += 5) {
      none.push(...(await timeit(5, (i) => createExec("none")(b + i), 0)));
      await destroyAll();
      pub.push(...(await timeit(5, (i) => createExec("public")(b + i), 0)));
      await destroyAll();
    }
    printTable("create → first exec, engine ns (ms)", [
      { name: "egress none", samples: none.sort((a, b) => a - b) },
      { name: "egress public (veth, lease, nft, DNS listener)", samples: pub.sort((a, b) => a - b), ref: "egress none", target: "≤ +15 ms p50" },
    ]);
    console.log(`added by networking, p50: ${(percentile(pub, 50) - percentile(none, 50)).toFixed(1)} ms`);
    if (values.phases) {
      // The first create of each kind is a warm-up: its phases are left out. The rest, by egress.
      const lines = dd.output().split("\n").filter((l) => / created on ns in /.test(l));
      const byKind = { none: lines.filter((l) => /\(cnone\d+\)/.test(l)).join("\n"), public: lines.filter((l) => /\(cpublic\d+\)/.test(l)).join("\n") };
      for (const [k, text] of Object.entries(byKind)) printTable(`create phases, egress ${k} (daemon log; steps overlap)`, phaseRows(text, 1));
    }
  } finally {
    await teardown(d, key, net);
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
