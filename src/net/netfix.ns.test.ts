// Networking on the ns engine, the parts added after the first cut (issue 10,
// netfix): the network across the lifecycle (stop/start, pause, fork, daemon
// restart), the per-user egress cap, DNS over TCP and events for dropped
// connections that are not HTTP(S). A real daemon, real runc sandboxes, real
// nft rules, against the test internet (src/testing/internet.ts) only.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { api, cleanup, cli, createUser, startDaemon, type Daemon } from "../testing/harness.js";
import { exec, IMAGES_DIR, RECOVERED, waitForOutput } from "../testing/sandbox-api.js";
import { ADDR, POOL, PRIVATE_RANGE, buildTestInternet, type TestInternet } from "../testing/internet.js";
import { netCounts, peek } from "../testing/net-counts.js";

let net: TestInternet;
let d: Daemon;
let key: string;
let carol = "";
const args = () => ["--engine", "ns", "--rate-limit", "0", "--default-egress", "public", "--dns-upstream", net.dnsUpstream, "--net-pool", POOL, "--private-cidr", PRIVATE_RANGE];
const start = (dataDir?: string) => startDaemon({ dataDir, args: args(), env: { BHATTI_IMAGES_DIR: IMAGES_DIR, NODE_EXTRA_CA_CERTS: net.caFile } });
export const eventsOf = (name: string) => peek<{ type: string; user_name: string; detail: string }>(d.dataDir, "SELECT type, user_name, detail FROM events WHERE subject = ? ORDER BY id", name);

async function create(name: string, network?: Record<string, unknown>, k = key) {
  const r = await api(d, "POST", "/sandboxes", { key: k, body: { name, memory_mb: 256, ...(network ? { network } : {}) } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}
async function sh(sb: string, script: string, k = key): Promise<{ out: string; code: number }> {
  const r = await exec(d, k, sb, ["/bin/sh", "-c", script], { timeout_sec: 30 });
  return { out: `${r.stdout ?? ""}${r.stderr ?? ""}`, code: r.exit_code };
}
const httpGet = (sb: string, url: string, k = key) => sh(sb, `timeout 10 wget -qO- ${url} 2>&1`, k);
const addressOf = async (sb: string) => (await sh(sb, "ip -4 -o addr show eth0 2>/dev/null | sed 's/.* inet \\([0-9.]*\\).*/\\1/'")).out.trim();
const post = (path: string, k = key) => api(d, "POST", path, { key: k, body: {} });

before(async () => {
  net = await buildTestInternet();
  d = await start();
  key = createUser(d.dataDir, "alice", ["--max-sandboxes", "10", "--max-cpus", "10", "--max-memory", "8192"]);
});

after(async () => {
  try {
    // Unconditional: whatever failed, no sandbox, veth, rule or namespace is left.
    for (const k of [key, carol].filter(Boolean)) {
      for (const s of (await api(d, "GET", "/sandboxes", { key: k })).json ?? []) await api(d, "DELETE", `/sandboxes/${s.id}`, { key: k });
    }
  } finally {
    await d?.stop();
    await net?.close();
    if (d) cleanup(d.dataDir);
  }
});

test("stop gives the network back (lease, veth, DNS listener, nft elements); start sets it up again under the stored policy", async () => {
  await create("lc");
  const up = netCounts(d.dataDir, d.proc.pid!); // before any DNS answer adds addresses it learnt
  const h0 = await httpGet("lc", "http://api.bhatti.test/one");
  assert.equal(h0.code, 0, h0.out);
  assert.equal(up.rows, 1);
  assert.deepEqual([up.leases, up.veths], [1, 1]);
  assert.ok(up.elements >= 3 && up.dns >= 1, JSON.stringify(up));

  assert.equal((await post("/sandboxes/lc/stop")).status, 200);
  assert.deepEqual(netCounts(d.dataDir, d.proc.pid!), { leases: 0, veths: 0, elements: 0, rows: 0, dns: 0 });

  const started = await post("/sandboxes/lc/start");
  assert.equal(started.status, 200, started.text);
  assert.deepEqual(started.json.network, { egress: "public", allow_hosts: [], allow_cidrs: [] });
  assert.deepEqual(netCounts(d.dataDir, d.proc.pid!), up, "the same amount of everything again (the address may differ)");
  const h1 = await httpGet("lc", "http://api.bhatti.test/two");
  assert.equal(h1.code, 0, h1.out);
  assert.equal(JSON.parse(h1.out).path, "/two");
  assert.match((await sh("lc", "echo | timeout 5 nc api.bhatti.test 7000")).out, /echo from/);
});

test("a policy stored while stopped applies at start; pause and resume keep the network", async () => {
  assert.equal((await post("/sandboxes/lc/stop")).status, 200);
  const p = await api(d, "PATCH", "/sandboxes/lc", { key, body: { network: { egress: "deny", allow_hosts: ["other.bhatti.test"] } } });
  assert.equal(p.status, 200, p.text);
  assert.equal(netCounts(d.dataDir, d.proc.pid!).rows, 0, "a stored policy sets nothing up");
  assert.equal((await post("/sandboxes/lc/start")).status, 200);
  assert.notEqual((await httpGet("lc", "http://api.bhatti.test/")).code, 0, "api is no longer allowed");
  assert.equal((await httpGet("lc", "http://other.bhatti.test/")).code, 0);

  const before = netCounts(d.dataDir, d.proc.pid!);
  const addr = await addressOf("lc");
  assert.equal((await post("/sandboxes/lc/pause")).status, 200);
  assert.deepEqual(netCounts(d.dataDir, d.proc.pid!), before, "a paused sandbox keeps its network");
  assert.equal((await post("/sandboxes/lc/resume")).status, 200);
  assert.equal(await addressOf("lc"), addr);
  assert.equal((await httpGet("lc", "http://other.bhatti.test/")).code, 0);
});

test("a fork and a fork from a snapshot get their own network under the source's policy", async () => {
  const snap = await api(d, "POST", "/sandboxes/lc/snapshots", { key, body: { name: "lc-snap" } });
  assert.equal(snap.status, 201, snap.text);
  const f1 = await api(d, "POST", "/sandboxes", { key, body: { name: "fk1", from: "lc-snap" } });
  assert.equal(f1.status, 201, f1.text);
  assert.deepEqual(f1.json.network, { egress: "deny", allow_hosts: ["other.bhatti.test"], allow_cidrs: [] });
  const f2 = await api(d, "POST", "/sandboxes", { key, body: { name: "fk2", from: "lc" } });
  assert.equal(f2.status, 201, f2.text);
  const addrs = new Set([await addressOf("lc"), await addressOf("fk1"), await addressOf("fk2")]);
  assert.equal(addrs.size, 3, `three addresses: ${[...addrs]}`);
  for (const sb of ["fk1", "fk2"]) {
    assert.equal((await httpGet(sb, "http://other.bhatti.test/")).code, 0, sb);
    assert.notEqual((await httpGet(sb, "http://api.bhatti.test/")).code, 0, sb);
  }
  assert.equal(netCounts(d.dataDir, d.proc.pid!).rows, 3);
  for (const n of ["fk1", "fk2"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key })).status, 204);
  assert.equal((await api(d, "DELETE", "/snapshots/lc-snap", { key })).status, 204);
  assert.equal(netCounts(d.dataDir, d.proc.pid!).rows, 1);
});

test("a daemon restart leaves nothing for stopped sandboxes, keeps a paused one's network, and both work after", async () => {
  await create("pz");
  assert.equal((await post("/sandboxes/lc/stop")).status, 200);
  assert.equal((await post("/sandboxes/pz/pause")).status, 200);
  const held = netCounts(d.dataDir, d.proc.pid!);
  assert.equal(held.rows, 1, "only the paused one holds a network");
  await d.stop();
  d = await start(d.dataDir);
  await waitForOutput(d, RECOVERED);
  assert.deepEqual(netCounts(d.dataDir, d.proc.pid!), held, "after the restart: the paused one's network only");
  assert.equal((await post("/sandboxes/pz/resume")).status, 200);
  assert.equal((await httpGet("pz", "http://api.bhatti.test/")).code, 0);
  assert.equal((await post("/sandboxes/lc/start")).status, 200);
  assert.equal((await httpGet("lc", "http://other.bhatti.test/")).code, 0);
  // A crash (SIGKILL) with a sandbox stopped: the next start sweeps nothing of it back in.
  assert.equal((await post("/sandboxes/lc/stop")).status, 200);
  await d.stop("SIGKILL");
  d = await start(d.dataDir);
  await waitForOutput(d, RECOVERED);
  assert.equal(netCounts(d.dataDir, d.proc.pid!).rows, 1);
  assert.equal(netCounts(d.dataDir, d.proc.pid!).veths, 1);
  for (const n of ["lc", "pz"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key })).status, 204);
  assert.deepEqual(netCounts(d.dataDir, d.proc.pid!), { leases: 0, veths: 0, elements: 0, rows: 0, dns: 0 });
});

test("the idle policy's cold stop gives the network back too; the request that wakes it finds its network again", async () => {
  const idle = await startDaemon({ args: [...args(), "--idle-warm-seconds", "1", "--idle-cold-minutes", "0.05"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  try {
    const k = createUser(idle.dataDir, "ivy");
    assert.equal((await api(idle, "POST", "/sandboxes", { key: k, body: { name: "sleepy", memory_mb: 256 } })).status, 201);
    assert.equal(netCounts(idle.dataDir, idle.proc.pid!).rows, 1);
    let st = "";
    for (let i = 0; i < 100 && st !== "stopped"; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const v = (await api(idle, "GET", "/sandboxes/sleepy", { key: k })).json;
      st = v.idle === "cold" ? v.status : "";
    }
    assert.equal(st, "stopped", "idle-stopped");
    assert.deepEqual(netCounts(idle.dataDir, idle.proc.pid!), { leases: 0, veths: 0, elements: 0, rows: 0, dns: 0 });
    const r = await exec(idle, k, "sleepy", ["/bin/sh", "-c", "timeout 10 wget -qO- http://api.bhatti.test/awake"], { timeout_sec: 30 });
    assert.equal(r.exit_code, 0, r.stdout + r.stderr);
    assert.equal(JSON.parse(r.stdout).path, "/awake");
    assert.equal((await api(idle, "DELETE", "/sandboxes/sleepy", { key: k })).status, 204);
  } finally {
    await idle.stop();
    cleanup(idle.dataDir);
  }
});

test("the egress cap: shown to its user, lowers the default, refuses more (403 naming it) and changes nothing", async () => {
  carol = createUser(d.dataDir, "carol", ["--max-egress", "deny"]);
  const users = JSON.parse(cli(["user", "list", "--data-dir", d.dataDir, "--json"]).stdout) as { name: string; max_egress: string }[];
  assert.equal(users.find((u) => u.name === "carol")?.max_egress, "deny");
  assert.equal(users.find((u) => u.name === "alice")?.max_egress, "public");
  assert.match(cli(["user", "list", "--data-dir", d.dataDir]).stdout, /MAX_EGRESS[\s\S]*carol.*\bdeny\b/);
  assert.equal((await api(d, "GET", "/me", { key: carol })).json.quotas.max_egress, "deny");
  assert.match(cli(["whoami", "--url", d.url, "--token", carol]).stdout, /egress\s+at most deny/);

  // Nothing asked: the daemon's default (public) lowered to the cap.
  const a = await create("capped", undefined, carol);
  assert.deepEqual(a.network, { egress: "deny", allow_hosts: [], allow_cidrs: [] });
  // More than the cap: 403 with the code, nothing made.
  for (const network of [{ egress: "public" }, { egress: "deny", allow_cidrs: ["8.0.0.0/8"] }]) {
    const r = await api(d, "POST", "/sandboxes", { key: carol, body: { name: "over", network } });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.json.code, "egress_cap_exceeded");
    assert.match(r.json.error, /egress cap \(deny\)/);
  }
  assert.deepEqual(((await api(d, "GET", "/sandboxes", { key: carol })).json as { name: string }[]).map((s) => s.name), ["capped"]);
  // ...and a private range is fine under a deny cap; a PATCH over the cap changes nothing.
  const pr = await api(d, "PATCH", "/sandboxes/capped", { key: carol, body: { network: { allow_cidrs: [PRIVATE_RANGE], allow_hosts: ["api.bhatti.test"] } } });
  assert.equal(pr.status, 200, pr.text);
  const up = await api(d, "PATCH", "/sandboxes/capped", { key: carol, body: { network: { egress: "public" } } });
  assert.equal(up.status, 403);
  assert.equal(up.json.code, "egress_cap_exceeded");
  assert.deepEqual((await api(d, "GET", "/sandboxes/capped", { key: carol })).json.network, { egress: "deny", allow_hosts: ["api.bhatti.test"], allow_cidrs: [PRIVATE_RANGE] });
  assert.notEqual((await httpGet("capped", "http://other.bhatti.test/", carol)).code, 0, "the kernel and proxy still enforce deny");
  // Templates: one over the cap is refused; one made before the cap was lowered is checked at use.
  const t = await api(d, "POST", "/templates", { key: carol, body: { name: "open", network: { egress: "public" } } });
  assert.equal(t.status, 403);
  assert.equal(t.json.code, "egress_cap_exceeded");
  assert.equal((await api(d, "POST", "/templates", { key: carol, body: { name: "closed", network: { egress: "deny" } } })).status, 201);
  const lower = cli(["user", "update", "carol", "--max-egress", "none", "--data-dir", d.dataDir, "--json"]);
  assert.equal(lower.code, 0, lower.stderr);
  assert.equal(JSON.parse(lower.stdout).max_egress, "none");
  const ft = await api(d, "POST", "/sandboxes", { key: carol, body: { name: "fromtpl", template: "closed" } });
  assert.equal(ft.status, 403, ft.text);
  assert.equal(ft.json.code, "egress_cap_exceeded");
  assert.match(ft.json.error, /template "closed"/);
  // A fork of a deny sandbox is over a none cap too.
  const fk = await api(d, "POST", "/sandboxes", { key: carol, body: { name: "fork", from: "capped" } });
  assert.equal(fk.status, 403, fk.text);
  assert.equal(fk.json.code, "egress_cap_exceeded");
  const none = await create("offline", undefined, carol);
  assert.equal(none.network.egress, "none");
  assert.deepEqual(((await api(d, "GET", "/sandboxes", { key: carol })).json as { name: string }[]).map((s) => s.name).sort(), ["capped", "offline"]);
  // Bad input: a usage error naming the rule; the user is unchanged.
  const bad = cli(["user", "update", "carol", "--max-egress", "sometimes", "--data-dir", d.dataDir]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--max-egress must be one of public, deny, none/);
  assert.equal((await api(d, "GET", "/me", { key: carol })).json.quotas.max_egress, "none");
  for (const n of ["capped", "offline"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key: carol })).status, 204);
});

/** Runs a Node script inside the sandbox (the image's own Node), arguments after it. */
const nodeIn = (sb: string, script: string, ...a: string[]) => sh(sb, `/opt/bhatti/node -e '${script}' ${a.join(" ")}`);

// A DNS-over-TCP client run inside the sandbox: sends the given queries (base64) back to back on one
// connection to the resolver in /etc/resolv.conf, prints each answer (base64) on a line.
const TCP_CLIENT = `const ns=require("fs").readFileSync("/etc/resolv.conf","utf8").match(/nameserver (\\S+)/)[1];
const qs=process.argv.slice(1).map(b=>Buffer.from(b,"base64"));let buf=Buffer.alloc(0),got=0;
const s=require("net").connect(53,ns,()=>{for(const q of qs){const h=Buffer.alloc(2);h.writeUInt16BE(q.length);s.write(Buffer.concat([h,q]))}});
s.on("data",b=>{buf=Buffer.concat([buf,b]);while(buf.length>=2&&buf.length>=2+buf.readUInt16BE(0)){const n=buf.readUInt16BE(0);console.log(buf.subarray(2,2+n).toString("base64"));buf=buf.subarray(2+n);if(++got===qs.length)s.end()}});
s.on("close",()=>process.exit(0));s.on("error",e=>{console.log("ERR",e.code);process.exit(1)});setTimeout(()=>{console.log("TIMEOUT");process.exit(1)},10000);`;

test("DNS over TCP on the gateway: the same policy and answers as UDP, and bounded", async () => {
  const dnsPacket = (await import("dns-packet")).default;
  await create("tcpdns", { egress: "deny", allow_hosts: ["api.bhatti.test"] });
  const q = (name: string, id: number) => dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name }] }).toString("base64");
  const r = await nodeIn("tcpdns", TCP_CLIENT, q("api.bhatti.test", 1), q("other.bhatti.test", 2));
  assert.equal(r.code, 0, r.out);
  const answers = r.out.trim().split("\n").map((l) => dnsPacket.decode(Buffer.from(l, "base64")) as { id?: number; rcode?: string; answers?: { data: unknown }[] });
  const byId = new Map(answers.map((a) => [a.id, a]));
  assert.deepEqual(byId.get(1)!.answers!.map((a) => a.data), [ADDR.A], `an allowed name is resolved: ${JSON.stringify(answers)} ${JSON.stringify(eventsOf("tcpdns"))}`);
  assert.equal(byId.get(2)!.rcode, "NXDOMAIN", "a name the policy does not allow: NXDOMAIN, as over UDP");
  assert.ok(eventsOf("tcpdns").some((e) => e.type === "dns.denied" && JSON.parse(e.detail).name === "other.bhatti.test"));
  // The answer let the address through, as a UDP answer does: a port other than 80/443 of it works.
  assert.match((await sh("tcpdns", "echo | timeout 5 nc api.bhatti.test 7000")).out, /echo from/);

  // Bounds: a length over the limit closes the connection; at most 16 connections per sandbox; idle ones are closed.
  const bounds = await nodeIn("tcpdns", `const ns=require("fs").readFileSync("/etc/resolv.conf","utf8").match(/nameserver (\\S+)/)[1];const net=require("net");const t0=Date.now();const res={};
const big=net.connect(53,ns,()=>big.write(Buffer.from([0xff,0xff,1,2,3])));big.on("error",()=>{});big.on("close",()=>{res.big=Date.now()-t0});
const cs=[];for(let i=0;i<17;i++){const c=net.connect(53,ns);c.on("error",()=>{});c.on("close",()=>{(res.closed=res.closed||[]).push(Date.now()-t0);if(res.closed.length===17){console.log(JSON.stringify(res));process.exit(0)}});cs.push(c)}
setTimeout(()=>{console.log(JSON.stringify(res));process.exit(1)},20000);`);
  assert.equal(bounds.code, 0, bounds.out);
  const b = JSON.parse(bounds.out) as { big: number; closed: number[] };
  assert.ok(b.big < 3000, `an oversized message is cut at once (${b.big} ms)`);
  const early = b.closed.filter((t) => t < 5000).length;
  assert.ok(early >= 1, `the 17th connection is refused at once: ${b.closed}`);
  assert.ok(b.closed.filter((t) => t >= 8000).length >= 15, `idle connections are closed after the idle timeout: ${b.closed}`);
  assert.equal((await api(d, "DELETE", "/sandboxes/tcpdns", { key })).status, 204);
});

test("connections nft drops (not 80/443) are net.denied events: destination, protocol, rule, rate-limited, never payload; per daemon instance", async () => {
  await create("drops", { egress: "deny", allow_hosts: ["api.bhatti.test"] });
  const gw = (await sh("drops", "ip route | sed -n 's/default via \\([0-9.]*\\).*/\\1/p'")).out.trim();
  const MARK = "payload-marker-7c1e";
  // TCP to a name the policy does not allow (by address), to a private range, to link-local, to the host; UDP anywhere.
  const tries = [`${ADDR.B} 7000`, `${ADDR.PRIVATE} 7000`, "169.254.169.254 8080", `${gw} 8080`];
  for (const t of tries) await sh("drops", `echo | timeout 3 nc ${t} 2>&1`);
  await nodeIn("drops", `const s=require("dgram").createSocket("udp4");s.send("${MARK}",9999,"${ADDR.A}",()=>s.close())`);
  const want = [
    { ip: ADDR.B, port: 7000, protocol: "tcp", rule: "not_allowed" },
    { ip: ADDR.PRIVATE, port: 7000, protocol: "tcp", rule: "private_range" },
    { ip: "169.254.169.254", port: 8080, protocol: "tcp", rule: "always_denied" },
    { ip: gw, port: 8080, protocol: "tcp", rule: "host_address" },
    { ip: ADDR.A, port: 9999, protocol: "udp", rule: "udp_denied" },
  ];
  const denied = async (n: number) => {
    for (let i = 0; i < 50; i++) {
      const ev = eventsOf("drops").filter((e) => e.type === "net.denied").map((e) => JSON.parse(e.detail) as Record<string, unknown>);
      if (ev.length >= n) return ev;
      await new Promise((r) => setTimeout(r, 100));
    }
    return eventsOf("drops").filter((e) => e.type === "net.denied").map((e) => JSON.parse(e.detail) as Record<string, unknown>);
  };
  const ev = await denied(want.length);
  for (const w of want) assert.ok(ev.some((e) => Object.entries(w).every(([k, v]) => e[k] === v)), `${JSON.stringify(w)} in ${JSON.stringify(ev)}`);
  assert.ok(ev.every((e) => Object.keys(e).every((k) => ["id", "ip", "port", "protocol", "rule"].includes(k))), JSON.stringify(ev));
  assert.ok(!JSON.stringify(eventsOf("drops")).includes(MARK) && !d.output().includes(MARK), "no payload anywhere");
  // The DNS server (UDP and TCP 53 on the gateway) and allowed traffic are not denials.
  assert.ok(!ev.some((e) => e.port === 53 || e.ip === ADDR.A && e.protocol === "tcp"));

  // A flood (600 UDP packets to as many ports in about a second): bounded in the kernel, then by the event budget.
  await nodeIn("drops", `const s=require("dgram").createSocket("udp4");let i=0;const t=setInterval(()=>{for(let k=0;k<60;k++)s.send("x",20000+(i++),"${ADDR.A}");if(i>=600){clearInterval(t);setTimeout(()=>s.close(),200)}},100)`);
  await new Promise((r) => setTimeout(r, 1500));
  const flood = (await denied(0)).filter((e) => e.protocol === "udp" && Number(e.port) >= 20000);
  assert.ok(flood.length >= 5 && flood.length <= 25, `the kernel passes at most 10 + 5/s per sandbox: ${flood.length}`);

  // Survives a restart: the new daemon binds its group again and its table logs to it.
  await d.stop();
  d = await start(d.dataDir);
  await waitForOutput(d, RECOVERED);
  await sh("drops", `echo | timeout 3 nc ${ADDR.B} 7001 2>&1`);
  await new Promise((r) => setTimeout(r, 500));
  assert.ok((await denied(0)).some((e) => e.port === 7001 && e.rule === "not_allowed"), "recorded after a restart");
  // The reader killed under the daemon: started again, events go on.
  const reader = spawnSync("ps", ["--ppid", String(d.proc.pid), "-o", "pid=,args="], { encoding: "utf8" }).stdout.split("\n").find((l) => l.includes("python3 -I -S -c"));
  assert.ok(reader, "the NFLOG reader is the daemon's child");
  process.kill(Number(reader!.trim().split(/\s+/)[0]), "SIGKILL");
  await new Promise((r) => setTimeout(r, 3000));
  await sh("drops", `echo | timeout 3 nc ${ADDR.B} 7003 2>&1`);
  await new Promise((r) => setTimeout(r, 500));
  assert.ok((await denied(0)).some((e) => e.port === 7003), "recorded after the reader was restarted");

  // A second daemon instance on the host: its own NFLOG group; each records only its own sandboxes' drops.
  const other = await start();
  try {
    const k2 = createUser(other.dataDir, "erin");
    const r = await api(other, "POST", "/sandboxes", { key: k2, body: { name: "drops2", memory_mb: 256, network: { egress: "deny" } } });
    assert.equal(r.status, 201, r.text);
    const groups = [d, other].map((x) => /logged to NFLOG group (\d+)/.exec(x.output())?.[1]);
    assert.ok(groups[0] && groups[1] && groups[0] !== groups[1], JSON.stringify(groups));
    await exec(other, k2, "drops2", ["/bin/sh", "-c", `echo | timeout 3 nc ${ADDR.B} 7002`]);
    await new Promise((r) => setTimeout(r, 800));
    const theirs = peek<{ detail: string }>(other.dataDir, "SELECT detail FROM events WHERE type = 'net.denied' AND subject = 'drops2'").map((e) => JSON.parse(e.detail));
    assert.ok(theirs.some((e) => e.port === 7002), JSON.stringify(theirs));
    assert.ok(!(await denied(0)).some((e) => e.port === 7002), "not recorded by the first daemon");
    assert.equal((await api(other, "DELETE", "/sandboxes/drops2", { key: k2 })).status, 204);
  } finally {
    await other.stop();
    cleanup(other.dataDir);
  }
  assert.equal((await api(d, "DELETE", "/sandboxes/drops", { key })).status, 204);
});
