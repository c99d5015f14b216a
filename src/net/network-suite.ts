// Sandbox networking against a test internet this suite builds
// (src/testing/internet.ts), on either engine: a real daemon, real sandboxes
// (runc with a veth, or QEMU with a tap), real nft rules, real DNS and
// HTTP(S) servers in a network namespace. Nothing leaves this machine:
// servers and sandboxes get small subnets of 198.51.100.0/24 that the builder
// checks the host does not use, and the namespace has no route out.
// network.ns.test.ts and network.vm.test.ts run it; cases that do not depend
// on the engine (the pool check at start, templates) run on ns only, where a
// sandbox boots in a tenth of a second instead of seconds under TCG.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { connect } from "node:net";
import Database from "better-sqlite3";
import { api, BIN, cleanup, cli, createUser, startDaemon, tempDir, type Daemon } from "../testing/harness.js";
import { exec, IMAGES_DIR, RECOVERED, waitForOutput } from "../testing/sandbox-api.js";
import { ADDR, POOL, PRIVATE_RANGE, buildTestInternet, type TestInternet } from "../testing/internet.js";
import { LEASES_DIR } from "./leases.js";

export function networkSuite(engine: "ns" | "vm"): void {
/** Engine-independent cases run once, on ns (see above). */
const nsOnly = { skip: engine === "vm" ? "engine-independent: covered by network.ns.test.ts" : false };
/** vm-only: stop/start of an ns sandbox's network (released at stop, set up again at start) is tested with that work, not here. */
const vmOnly = { skip: engine === "ns" ? "vm lifecycle (memory snapshot with a NIC)" : false };
let net: TestInternet;
let d: Daemon;
let key: string;
let bob: string;
const args = () => ["--engine", engine, "--rate-limit", "0", "--default-egress", "public", "--dns-upstream", net.dnsUpstream, "--net-pool", POOL, "--private-cidr", PRIVATE_RANGE];
const start = (dataDir?: string) => startDaemon({ dataDir, args: args(), env: { BHATTI_IMAGES_DIR: IMAGES_DIR, NODE_EXTRA_CA_CERTS: net.caFile } });

function peek<T>(dataDir: string, sql: string, ...a: unknown[]): T[] {
  const db = new Database(join(dataDir, "state.db"), { readonly: true });
  try { return db.prepare(sql).all(...a) as T[]; } finally { db.close(); }
}
const instanceOf = (dataDir: string) => peek<{ value: string }>(dataDir, "SELECT value FROM meta WHERE key = 'instance_id'")[0].value;
/** Events of a sandbox (read from the DB: GET /events is another helper's; the merger switches this to the API). */
const eventsOf = (name: string) => peek<{ type: string; user_name: string; detail: string }>(d.dataDir, "SELECT type, user_name, detail FROM events WHERE subject = ? ORDER BY id", name);

async function create(name: string, network?: Record<string, unknown>, k = key, extra: Record<string, unknown> = {}) {
  const r = await api(d, "POST", "/sandboxes", { key: k, body: { name, memory_mb: 256, ...extra, ...(network ? { network } : {}), env: { NODE_EXTRA_CA_CERTS: "/home/lohar/ca.pem" }, files: [{ path: "/home/lohar/ca.pem", content: Buffer.from(net.caPem).toString("base64") }] } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}
async function sh(sb: string, script: string, k = key): Promise<{ out: string; code: number }> {
  const r = await exec(d, k, sb, ["/bin/sh", "-c", script], { timeout_sec: 30 });
  return { out: `${r.stdout ?? ""}${r.stderr ?? ""}`, code: r.exit_code };
}
// A queries only: busybox nslookup sends A and AAAA with one id taken from the clock, and a TCG guest's clock
// (refined-jiffies) often gives both the same id; it then takes the AAAA's empty answer for A's (busybox's matching, not the network).
const resolves = async (sb: string, name: string) => (await sh(sb, `nslookup -type=a ${name} 2>&1`)).out;
const httpGet = (sb: string, url: string, hdr = "") => sh(sb, `timeout 10 wget -qO- ${hdr ? `--header '${hdr}'` : ""} ${url} 2>&1`);
const httpsGet = (sb: string, url: string) => sh(sb, `/opt/bhatti/node -e 'fetch(process.argv[1]).then(r=>r.text()).then(t=>console.log(t),e=>{console.log("ERR",(e.cause&&e.cause.code)||e.message);process.exit(1)})' ${url}`);
/** A TLS handshake to ip with an SNI of our choosing (trusting the test CA). */
const tlsTo = (sb: string, ip: string, sni: string) => sh(sb, `/opt/bhatti/node -e 'const t=require("tls").connect({host:"${ip}",port:443,servername:"${sni}"},()=>{console.log("CONNECTED");t.end()});t.on("error",e=>{console.log("ERR",e.code);process.exit(1)})'`);
const tcp = (sb: string, host: string, port: number) => sh(sb, `echo | timeout 5 nc ${host} ${port} 2>&1`);
/** Shell that waits (up to 20 s: Node starts slowly in a TCG guest) until something listens on port. */
const waitListen = (port: number) => `for i in $(seq 100); do grep -q ':${port.toString(16).toUpperCase().padStart(4, "0")} ' /proc/net/tcp /proc/net/tcp6 2>/dev/null && break; sleep 0.2; done`;

/** Host interface names this suite's sandboxes ever had (a leaked veth or tap keeps its name after its lease is gone). */
const seen = new Set<string>();
/** This instance's networking on the host: veths (ns) or taps (vm), lease files, nft elements, DB rows. */
function leftovers(dataDir: string) {
  const inst = instanceOf(dataDir);
  const leases = readdirSafe(LEASES_DIR).filter((g) => { try { return readFileSync(join(LEASES_DIR, g), "utf8").startsWith(`${inst}:`); } catch { return false; } });
  const ifname = (g: string) => "bh" + g.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join("");
  for (const g of leases) seen.add(ifname(g));
  for (const r of peek<{ ifname: string }>(dataDir, "SELECT ifname FROM net_leases")) seen.add(r.ifname);
  const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
  // A name another test's daemon leased meanwhile (the test pool is shared on this host) is theirs, not a leftover of ours.
  const gatewayOf = (n: string) => n.slice(2).match(/../g)!.map((h) => parseInt(h, 16)).join(".");
  const theirs = (n: string) => { try { return !readFileSync(join(LEASES_DIR, gatewayOf(n)), "utf8").startsWith(`${inst}:`); } catch { return false; } };
  const veths = [...seen].filter((n) => (links.includes(`${n}:`) || links.includes(`${n}@`)) && !theirs(n));
  const table = spawnSync("nft", ["list", "table", "inet", `bhatti_${inst}`], { encoding: "utf8" });
  const elements = table.status === 0 ? (table.stdout.match(/(?<![-\d.])198\.51\.100\.\d+(?![\d/-])/g) ?? []).filter((a) => Number(a.split(".")[3]) >= 64).length : 0;
  const rows = peek<{ n: number }>(dataDir, "SELECT COUNT(*) AS n FROM net_leases")[0].n;
  return { leases: leases.length, veths: veths.length, elements, rows, table: table.status === 0 };
}
function readdirSafe(p: string): string[] { try { return readdirSync(p); } catch { return []; } }

before(async () => {
  net = await buildTestInternet();
  d = await start();
  key = createUser(d.dataDir, "alice", ["--max-sandboxes", "10", "--max-cpus", "10", "--max-memory", "8192"]);
  bob = createUser(d.dataDir, "bob");
});

after(async () => {
  // Unconditional: whatever failed, no sandbox, veth, rule or namespace is left.
  try {
    for (const k of [key, bob].filter(Boolean)) {
      const list = (await api(d, "GET", "/sandboxes", { key: k })).json ?? [];
      for (const s of list) {
        const r = await api(d, "DELETE", `/sandboxes/${s.id}`, { key: k });
        if (r.status !== 204) process.stderr.write(`cleanup: DELETE ${s.name}: ${r.status} ${r.text}\n${d.output().split("\n").slice(-30).join("\n")}\n`);
      }
    }
  } finally {
    await d?.stop();
    await net?.close();
    if (d) cleanup(d.dataDir);
  }
});

test("a pool over the host's own network is refused at start, naming the clash; the test internet avoids it too", nsOnly, async () => {
  const addrs = JSON.parse(spawnSync("ip", ["-j", "-4", "addr", "show"], { encoding: "utf8" }).stdout) as { ifname: string; addr_info: { local: string }[] }[];
  const own = addrs.find((a) => a.ifname !== "lo" && !/^bh/.test(a.ifname) && a.addr_info.length)?.addr_info[0].local;
  assert.ok(own, "the host has an address");
  const o = own!.split(".").map(Number);
  const pool = `${o[0]}.${o[1]}.${o[2]}.${o[3] & 0xfc}/30`;
  const dir = tempDir();
  try {
    await assert.rejects(startDaemon({ dataDir: dir, args: ["--engine", "ns", "--default-egress", "public", "--dns-upstream", net.dnsUpstream, "--net-pool", pool], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } }),
      (e: Error) => /overlaps what this host already uses/.test(e.message) && e.message.includes(own!));
  } finally {
    cleanup(dir);
  }
});

test("public: names resolve through the daemon; HTTP, HTTPS (curl-like wget, Node) and other TCP ports work", async () => {
  const sb = await create("pub");
  assert.deepEqual(sb.network, { egress: "public", allow_hosts: [], allow_cidrs: [] });
  assert.match(await resolves("pub", "api.bhatti.test"), new RegExp(ADDR.A.replace(/\./g, "\\.")));
  const h = await httpGet("pub", "http://api.bhatti.test/hi");
  assert.equal(h.code, 0, h.out);
  assert.equal(JSON.parse(h.out).host, "api.bhatti.test");
  const s = await httpsGet("pub", "https://other.bhatti.test/x");
  assert.equal(s.code, 0, s.out);
  assert.deepEqual([JSON.parse(s.out).sni, JSON.parse(s.out).local], ["other.bhatti.test", ADDR.B]);
  assert.match((await tcp("pub", "api.bhatti.test", 7000)).out, new RegExp(`echo from ${ADDR.A}`));
  // resolv.conf is the daemon's, bind-mounted read-only (not written into the image)
  const rc = await sh("pub", "cat /etc/resolv.conf; echo x > /etc/resolv.conf; echo rc=$?");
  assert.match(rc.out, /^nameserver 198\.51\.100\.\d+$/m);
  assert.doesNotMatch(rc.out, /rc=0/);
  // commands cannot change the sandbox's address (no CAP_NET_ADMIN); the host drops other sources anyway (spoof.test.ts)
  const ipa = await sh("pub", "ip addr add 198.51.100.126/30 dev eth0; echo rc=$?; ip addr flush dev eth0; echo rc=$?; ip -4 addr show dev eth0");
  assert.match(ipa.out, /rc=[1-9]\d*\n[^]*rc=[1-9]/, ipa.out);
  assert.doesNotMatch(ipa.out, /198\.51\.100\.126/);
  assert.match(ipa.out, /inet 198\.51\.100\.\d+\/30/);
});

test("debian: curl and python3 reach the test servers by name, over HTTPS through the proxy", async () => {
  await create("deb", undefined, key, { image: "debian" });
  const c = await sh("deb", "curl -sS --max-time 10 --cacert /home/lohar/ca.pem https://api.bhatti.test/curl");
  assert.equal(c.code, 0, c.out);
  assert.deepEqual([JSON.parse(c.out).sni, JSON.parse(c.out).path], ["api.bhatti.test", "/curl"]);
  const py = await sh("deb", `python3 -c 'import ssl,sys,urllib.request as u; c=ssl.create_default_context(cafile="/home/lohar/ca.pem"); print(u.urlopen(sys.argv[1], context=c, timeout=10).read().decode())' https://other.bhatti.test/py`);
  assert.equal(py.code, 0, py.out);
  assert.equal(JSON.parse(py.out).local, ADDR.B);
  assert.equal((await api(d, "DELETE", "/sandboxes/deb", { key })).status, 204);
});

test("deny + allow-host: the allowed name works, others are NXDOMAIN, by-IP and another SNI/Host on an allowed IP fail, wildcards match subdomains only", async () => {
  await create("den", { egress: "deny", allow_hosts: ["api.bhatti.test", "*.wild.bhatti.test"] });
  assert.equal((await httpGet("den", "http://api.bhatti.test/")).code, 0);
  const s = await httpsGet("den", "https://api.bhatti.test/");
  assert.equal(s.code, 0, s.out);
  assert.match(await resolves("den", "other.bhatti.test"), /NXDOMAIN|can't find|server can't/i);
  assert.doesNotMatch(await resolves("den", "other.bhatti.test"), new RegExp(ADDR.B));
  // by IP: HTTP is refused by the proxy (403), other ports by nft
  const byIp = await httpGet("den", `http://${ADDR.B}/`);
  assert.notEqual(byIp.code, 0);
  assert.match(byIp.out, /403/);
  assert.notEqual((await tcp("den", ADDR.B, 7000)).out.includes("echo from"), true);
  // an allowed name's address with another site's name
  const host = await httpGet("den", `http://${ADDR.A}/`, "Host: shared.bhatti.test");
  assert.match(host.out, /403/);
  const sni = await tlsTo("den", ADDR.A, "shared.bhatti.test");
  assert.notEqual(sni.code, 0, sni.out);
  assert.equal((await tlsTo("den", ADDR.A, "api.bhatti.test")).out.trim(), "CONNECTED");
  // wildcard: a.wild yes, wild itself no
  assert.match(await resolves("den", "a.wild.bhatti.test"), new RegExp(ADDR.B));
  assert.doesNotMatch(await resolves("den", "wild.bhatti.test"), new RegExp(ADDR.B));
  // a port other than 80/443 of an allowed (resolved) name works
  assert.match((await tcp("den", "api.bhatti.test", 7000)).out, /echo from/);
  // denials are events: sandbox, destination, rule; never payloads
  const ev = eventsOf("den");
  const dnsDenied = ev.filter((e) => e.type === "dns.denied").map((e) => JSON.parse(e.detail));
  assert.ok(dnsDenied.some((e) => e.name === "other.bhatti.test" && e.rule === "not_allowed"), JSON.stringify(ev));
  const netDenied = ev.filter((e) => e.type === "net.denied").map((e) => JSON.parse(e.detail));
  assert.ok(netDenied.some((e) => e.ip === ADDR.B), JSON.stringify(netDenied));
  assert.ok(netDenied.some((e) => e.name === "shared.bhatti.test"), JSON.stringify(netDenied));
  assert.ok(ev.every((e) => e.user_name === "alice"));
});

test("always denied: rebinding answers, the host's addresses and the daemon's port, metadata, another sandbox, a private range unless allowed", async () => {
  await create("pub2");
  for (const n of ["rebind", "lan", "meta", "hostaddr", "priv"]) {
    const out = await resolves("pub2", `${n}.bhatti.test`);
    assert.doesNotMatch(out, /Address: (127\.|10\.1\.2\.3|169\.254|198\.51\.100\.(1|40)$)/m, `${n}: ${out}`);
  }
  assert.ok(eventsOf("pub2").some((e) => e.type === "dns.rebinding"));
  const port = new URL(d.url).port;
  const gw = (await sh("pub2", "ip route | sed -n 's/default via \\([0-9.]*\\).*/\\1/p'")).out.trim();
  for (const target of [`${gw} ${port}`, `${ADDR.host} ${port}`, `127.0.0.1 ${port}`, "169.254.169.254 80", `${ADDR.PRIVATE} 7000`]) {
    const r = await tcp("pub2", target.split(" ")[0], Number(target.split(" ")[1]));
    assert.doesNotMatch(r.out, /echo from|HTTP/, target);
  }
  assert.match((await httpGet("pub2", "http://169.254.169.254/latest/meta-data/")).out, /403/);
  // another sandbox (same user): not reachable
  const other = await create("target");
  void other;
  await sh("target", `(/opt/bhatti/node -e 'require("net").createServer(s=>s.end("from target\\n")).listen(8000)' &) ; ${waitListen(8000)}`);
  const tIp = peek<{ address: string }>(d.dataDir, "SELECT address FROM net_leases WHERE sandbox_id = (SELECT id FROM sandboxes WHERE name = 'target')")[0].address;
  assert.doesNotMatch((await tcp("pub2", tIp, 8000)).out, /from target/);
  // --allow-cidr opens a private range (and a same-user sandbox named by it)
  await create("cidr", { egress: "deny", allow_cidrs: [PRIVATE_RANGE, `${tIp}/32`] });
  assert.match((await tcp("cidr", ADDR.PRIVATE, 7000)).out, new RegExp(`echo from ${ADDR.PRIVATE}`));
  assert.equal(JSON.parse((await httpGet("cidr", `http://${ADDR.PRIVATE}/`)).out).local, ADDR.PRIVATE);
  assert.match((await tcp("cidr", tIp, 8000)).out, /from target/);
  // ...but nothing opens loopback or link-local
  const bad = await api(d, "POST", "/sandboxes", { key, body: { name: "bad", network: { egress: "deny", allow_cidrs: ["169.254.0.0/16"] } } });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error, /no policy can open/);
});

test("a live policy change applies to new connections within a second; none has loopback only", async () => {
  await create("live", { egress: "deny", allow_hosts: ["api.bhatti.test"] });
  assert.notEqual((await httpGet("live", "http://other.bhatti.test/")).code, 0);
  const r = cli(["net", "set", "live", "--egress", "deny", "--allow-host", "api.bhatti.test", "--allow-host", "other.bhatti.test", "--url", d.url, "--token", key]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /allow-host other\.bhatti\.test/);
  const t = Date.now();
  let ok = false;
  while (!ok && Date.now() - t < 1000) ok = (await httpGet("live", "http://other.bhatti.test/")).code === 0;
  assert.ok(ok, "allowed within a second");
  const back = await api(d, "PATCH", "/sandboxes/live", { key, body: { network: { allow_hosts: ["api.bhatti.test"] } } });
  assert.equal(back.status, 200, back.text);
  assert.notEqual((await httpGet("live", "http://other.bhatti.test/")).code, 0);
  assert.notEqual((await tcp("live", ADDR.B, 7000)).out.includes("echo from"), true);
  assert.ok(eventsOf("live").some((e) => e.type === "net.policy_changed"));
  // another user's sandbox: 404, as if missing
  assert.equal((await api(d, "PATCH", "/sandboxes/live", { key: bob, body: { network: { egress: "public" } } })).status, 404);
  // hostile input: a clear error, nothing changed
  const bad = await api(d, "PATCH", "/sandboxes/live", { key, body: { network: { allow_hosts: ["not a host;rm"] } } });
  assert.equal(bad.status, 400);
  assert.deepEqual((await api(d, "GET", "/sandboxes/live", { key })).json.network.allow_hosts, ["api.bhatti.test"]);

  await create("off", { egress: "none" });
  const ifs = await sh("off", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; ls /etc/resolv.conf 2>&1");
  assert.match(ifs.out, /^lo$/m);
  assert.doesNotMatch(ifs.out, /eth0/);
});

test("templates carry a policy; a create's own network fields go on top", nsOnly, async () => {
  const t = cli(["template", "create", "--name", "locked", "--egress", "deny", "--allow-host", "api.bhatti.test", "--url", d.url, "--token", key, "--json"]);
  assert.equal(t.code, 0, t.stderr);
  assert.deepEqual(JSON.parse(t.stdout).network, { egress: "deny", allow_hosts: ["api.bhatti.test"], allow_cidrs: [] });
  const a = await api(d, "POST", "/sandboxes", { key, body: { name: "fromtpl", template: "locked" } });
  assert.equal(a.status, 201, a.text);
  assert.deepEqual(a.json.network, { egress: "deny", allow_hosts: ["api.bhatti.test"], allow_cidrs: [] });
  assert.match(await resolves("fromtpl", "other.bhatti.test"), /NXDOMAIN|can't find/i);
  assert.equal((await api(d, "DELETE", "/sandboxes/fromtpl", { key })).status, 204);
  const b = await api(d, "POST", "/sandboxes", { key, body: { name: "fromtpl2", template: "locked", network: { egress: "none" }, memory_mb: 256 } });
  assert.equal(b.status, 400, "none with the template's allow-list is refused, naming the rule");
  const c = await api(d, "POST", "/sandboxes", { key, body: { name: "fromtpl3", template: "locked", network: { egress: "none", allow_hosts: [] } } });
  assert.equal(c.status, 201, c.text);
  assert.equal(c.json.network.egress, "none");
  assert.equal((await api(d, "DELETE", "/sandboxes/fromtpl3", { key })).status, 204);
  assert.equal((await api(d, "POST", "/templates", { key, body: { name: "bad", network: { egress: "sometimes" } } })).status, 400);
});

test("ports, the preview proxy (HTTP and WebSocket upgrades) and forward reach a sandbox's port, for its owner only", async () => {
  const srv = `require("http").createServer((q,r)=>r.end(JSON.stringify({path:q.url,auth:q.headers.authorization||null}))).on("upgrade",(q,s)=>{s.write("HTTP/1.1 101 Switching Protocols\\r\\nupgrade: echo\\r\\nconnection: upgrade\\r\\n\\r\\n");s.pipe(s)}).listen(8080)`;
  await sh("pub", `(/opt/bhatti/node -e '${srv}' >/dev/null 2>&1 &); ${waitListen(8080)}`);
  const ports = await api(d, "GET", "/sandboxes/pub/ports", { key });
  assert.equal(ports.status, 200, ports.text + d.output().split("\n").filter((l) => /internal error/.test(l)).join("\n"));
  assert.ok(ports.json.some((p: { port: number }) => p.port === 8080), ports.text);
  const pc = cli(["ports", "pub", "--url", d.url, "--token", key]);
  assert.match(pc.stdout, /^8080\s/m, pc.stderr);
  const r = await api(d, "GET", "/sandboxes/pub/proxy/8080/hello?x=1", { key });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { path: "/hello?x=1", auth: null }, "the API key never reaches the sandbox");
  assert.equal((await api(d, "POST", "/sandboxes/pub/proxy/8080/p", { key, body: { a: 1 } })).status, 200);
  assert.equal((await api(d, "GET", "/sandboxes/pub/proxy/8080/", { key: bob })).status, 404);
  assert.equal((await api(d, "GET", "/sandboxes/pub/proxy/8080/")).status, 401);
  const closed = await api(d, "GET", "/sandboxes/pub/proxy/8081/", { key });
  assert.equal(closed.status, 502);
  await create("off2", { egress: "none" });
  assert.equal((await api(d, "GET", "/sandboxes/off2/proxy/8080/", { key })).status, 409);
  assert.equal((await api(d, "DELETE", "/sandboxes/off2", { key })).status, 204);
  // a WebSocket-style upgrade through the proxy
  const u = new URL(d.url);
  const echoed = await new Promise<string>((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => s.write(`GET /sandboxes/pub/proxy/8080/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`));
    let got = "";
    s.on("data", (b) => { got += b; if (got.includes("\r\n\r\n") && !got.includes("ping")) s.write("ping"); if (got.endsWith("ping")) { s.destroy(); resolve(got); } });
    s.on("error", reject);
    setTimeout(() => { s.destroy(); reject(new Error(`no echo: ${got}`)); }, 10_000);
  });
  assert.match(echoed, /^HTTP\/1\.1 101/);
  // bhatti forward: a local port on this machine
  const fwd = spawn(BIN, ["forward", "pub", "8080", "0", "--url", d.url, "--token", key], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    const localPort = await new Promise<number>((resolve, reject) => {
      let out = "";
      fwd.stdout.on("data", (b) => { out += b; const m = /127\.0\.0\.1:(\d+)/.exec(out); if (m) resolve(Number(m[1])); });
      fwd.once("exit", (c) => reject(new Error(`forward exited ${c}`)));
    });
    const body = await (await fetch(`http://127.0.0.1:${localPort}/via-forward`)).json();
    assert.deepEqual(body, { path: "/via-forward", auth: null });
  } finally {
    fwd.kill("SIGTERM");
  }
  const other = cli(["forward", "pub", "8080", "0", "--url", d.url, "--token", bob]);
  assert.notEqual(other.code, 0);
  assert.match(other.stderr, /not found/);
});

test("vm: a networked sandbox pauses, resumes, stops into a memory snapshot and starts again with its address; a restart while it is stopped keeps its tap", vmOnly, async () => {
  await create("cycle");
  const addrOf = () => peek<{ address: string; ifname: string }>(d.dataDir, "SELECT address, ifname FROM net_leases WHERE sandbox_id = (SELECT id FROM sandboxes WHERE name = 'cycle')")[0];
  const lease = addrOf();
  const hasLink = (n: string) => spawnSync("ip", ["link", "show", n], { encoding: "utf8" }).status === 0;
  const post = async (op: string) => { const r = await api(d, "POST", `/sandboxes/cycle/${op}`, { key }); assert.equal(r.status, 200, `${op}: ${r.text}`); };
  await post("pause");
  await post("resume");
  assert.equal((await httpGet("cycle", "http://api.bhatti.test/resumed")).code, 0);
  await post("stop");
  assert.ok(hasLink(lease.ifname), "the tap outlives the stopped QEMU");
  await d.stop();
  d = await start(d.dataDir);
  await waitForOutput(d, RECOVERED);
  assert.deepEqual(addrOf(), lease, "the lease is kept while stopped, across a restart");
  assert.ok(hasLink(lease.ifname));
  await post("start");
  const h = await httpGet("cycle", "http://api.bhatti.test/started");
  assert.equal(h.code, 0, h.out);
  assert.match((await sh("cycle", "ip -4 addr show dev eth0")).out, new RegExp(`inet ${lease.address.replace(/\./g, "\\.")}/`));
  assert.match(await resolves("cycle", "other.bhatti.test"), new RegExp(ADDR.B));
  assert.equal((await api(d, "DELETE", "/sandboxes/cycle", { key })).status, 204);
  assert.ok(!hasLink(lease.ifname), "destroy removes the tap");
});

test("destroy, restart and crash leave no veth, lease, rule or row behind; a restart keeps live sandboxes' networking", async () => {
  const before = leftovers(d.dataDir);
  assert.ok(before.veths >= 1 && before.leases === before.veths && before.rows === before.veths, JSON.stringify(before));
  for (const n of ["pub2", "cidr", "target", "off"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key })).status, 204);
  const mid = leftovers(d.dataDir);
  assert.equal(mid.veths, before.veths - 3);
  assert.equal(mid.rows, mid.veths);
  // a clean restart: the sandboxes run on, their network comes back with the new daemon's listeners
  await d.stop();
  d = await start(d.dataDir);
  await waitForOutput(d, RECOVERED);
  const h = await httpGet("pub", "http://api.bhatti.test/again");
  assert.equal(h.code, 0, h.out);
  assert.match(await resolves("den", "other.bhatti.test"), /NXDOMAIN|can't find/i);
  // a crash, and a sandbox that dies while no daemon runs
  const pid = JSON.parse(peek<{ s: string }>(d.dataDir, "SELECT engine_state AS s FROM sandboxes WHERE name = 'live'")[0].s).pid as number;
  await d.stop("SIGKILL");
  process.kill(pid, "SIGKILL");
  d = await start(d.dataDir);
  await waitForOutput(d, RECOVERED);
  assert.equal((await httpGet("pub", "http://api.bhatti.test/")).code, 0);
  const now = leftovers(d.dataDir);
  assert.equal(now.veths, 2, JSON.stringify(now)); // pub and den
  assert.equal(now.leases, 2);
  assert.equal(now.rows, 2);
  for (const n of ["pub", "den", "live"]) await api(d, "DELETE", `/sandboxes/${n}`, { key });
  assert.deepEqual({ ...leftovers(d.dataDir), table: true }, { leases: 0, veths: 0, elements: 0, rows: 0, table: true },
    spawnSync("nft", ["list", "table", "inet", `bhatti_${instanceOf(d.dataDir)}`], { encoding: "utf8" }).stdout);
  const dir = d.dataDir;
  await d.stop();
  assert.equal(leftovers(dir).table, false, "the table goes with the last sandbox when the daemon stops");
  d = await start(dir);
});
}
