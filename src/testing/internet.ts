// The test internet: a network namespace with an HTTP server, an HTTPS server
// (certificate from a test CA made here), a plain TCP echo server and a DNS
// server for the zone bhatti.test, on small subnets of 198.51.100.0/24 (a
// documentation range): servers in .0/27, a "private" server in .32/27 (tests
// declare it private with --private-cidr), and .64/26 left for sandbox pools
// (POOL). The builder refuses to start if the host uses any of it. The
// daemon is pointed at its DNS server with --dns-upstream and trusts its CA
// through NODE_EXTRA_CA_CERTS. No packet leaves this machine: the namespace
// has no default route. Reused by the
// credential-broker tests (issue 11). Not part of the product.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./harness.js";
import { assertFree } from "../net/hostnets.js";
import { parseCidr } from "../net/cidr.js";
import { holdInternetLock } from "./internet-lock.js";

export const ZONE = "bhatti.test";
/** Servers' addresses: A and B serve HTTP(S) and echo; DNS answers on DNS; PRIVATE is in a range tests declare private. */
export const ADDR = { host: "198.51.100.1", A: "198.51.100.10", B: "198.51.100.11", DNS: "198.51.100.20", PRIVATE: "198.51.100.40", hostPrivate: "198.51.100.33" };
/** The servers' subnet, the private one, and the one left for sandboxes (serve --net-pool POOL). */
export const SERVERS = "198.51.100.0/27";
export const PRIVATE_RANGE = "198.51.100.32/27";
export const POOL = "198.51.100.64/26";

/** The test zone: every name the DNS server knows. */
export const NAMES: Record<string, string> = {
  [`api.${ZONE}`]: ADDR.A,
  [`shared.${ZONE}`]: ADDR.A, // another site on api's address
  [`other.${ZONE}`]: ADDR.B,
  [`wild.${ZONE}`]: ADDR.B,
  [`a.wild.${ZONE}`]: ADDR.B,
  [`rebind.${ZONE}`]: "127.0.0.1",
  [`lan.${ZONE}`]: "10.1.2.3",
  [`meta.${ZONE}`]: "169.254.169.254",
  [`hostaddr.${ZONE}`]: ADDR.host,
  [`priv.${ZONE}`]: ADDR.PRIVATE,
};

export interface TestInternet {
  netns: string;
  hostIf: string;
  dnsUpstream: string; // for serve --dns-upstream
  caFile: string; // for NODE_EXTRA_CA_CERTS
  caPem: string;
  close(): Promise<void>;
}

function sh(cmd: string, args: string[], input?: string): void {
  const r = spawnSync(cmd, args, { input, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
}

const SERVER = String.raw`
import { createRequire } from "node:module";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const dnsPacket = createRequire(cfg.repo + "/package.json")("dns-packet");
const handler = (scheme) => (req, res) => {
  const u = new URL(req.url, "http://x");
  if (u.pathname === "/bytes") {
    let left = Number(u.searchParams.get("n") || 0);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": left });
    const chunk = Buffer.alloc(65536, 120);
    const pump = () => { while (left > 0) { const n = Math.min(left, chunk.length); left -= n; if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once("drain", pump); } res.end(); };
    return pump();
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ scheme, host: req.headers.host || null, sni: req.socket.servername || null, local: req.socket.localAddress.replace(/^::ffff:/, ""), path: req.url }) + "\n");
};
const listen = (s, port) => new Promise((r) => s.listen(port, "0.0.0.0", r));
const plain = http.createServer(handler("http"));
plain.on("upgrade", (req, sock) => { sock.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n"); sock.pipe(sock); });
const tls = https.createServer({ key: readFileSync(cfg.key), cert: readFileSync(cfg.cert) }, handler("https"));
const echo = net.createServer((s) => { s.on("error", () => {}); s.end("echo from " + s.localAddress + "\n"); });
const dns = dgram.createSocket("udp4");
dns.on("message", (msg, r) => {
  let q; try { q = dnsPacket.decode(msg); } catch { return; }
  const qq = q.questions && q.questions[0]; if (!qq) return;
  const name = qq.name.toLowerCase(); const ip = cfg.names[name];
  const answers = ip && qq.type === "A" ? [{ type: "A", name: qq.name, ttl: 60, data: ip }] : [];
  const rcode = ip || name.endsWith(".bhatti.test") === false ? 0 : 3;
  dns.send(dnsPacket.encode({ type: "response", id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | (ip ? 0 : 3), questions: q.questions, answers }), r.port, r.address);
});
await Promise.all([listen(plain, 80), listen(tls, 443), listen(echo, 7000), new Promise((r) => dns.bind(53, cfg.dns, r))]);
process.stdout.write("ready\n");
`;

/** Removes test internets a killed test process left (their fixed addresses would clash with a new one). */
function removeStale(): void {
  const ns = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.match(/^bhti-[0-9a-f]{6}/gm) ?? [];
  for (const n of ns) spawnSync("ip", ["netns", "del", n]);
  const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout.match(/^\d+: bhti[0-9a-f]{6}(?=[@:])/gm) ?? [];
  for (const l of links) spawnSync("ip", ["link", "del", l.replace(/^\d+: /, "")]);
}

/** Builds the test internet. One at a time on a host (its addresses are fixed): a new one replaces what a killed test left. */
export async function buildTestInternet(): Promise<TestInternet> {
  const unlock = await holdInternetLock(); // until close(): another test file's internet is never removed under it
  try {
    removeStale();
    // Never over anything the host uses (its uplink, gateway, nameservers, /etc/hosts): that would cut it off.
    for (const r of [SERVERS, PRIVATE_RANGE, POOL]) await assertFree(parseCidr(r)!, /^(bhti[0-9a-f]{6}|bh[0-9a-f]{8}p?)$/, "the test internet's range");
  } catch (e) {
    unlock();
    throw e;
  }
  const tag = randomBytes(3).toString("hex");
  const netns = `bhti-${tag}`;
  const hostIf = `bhti${tag}`;
  const dir = mkdtempSync(join(tmpdir(), "bhatti-internet-"));
  let server: ChildProcess | undefined;
  const close = async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      server.ref(); // hold the event loop until it is really gone
      const gone = new Promise((r) => server!.once("exit", r));
      server.kill("SIGKILL");
      await gone;
    }
    spawnSync("ip", ["link", "del", hostIf]);
    spawnSync("ip", ["netns", "del", netns]);
    rmSync(dir, { recursive: true, force: true });
    unlock();
  };
  try {
    // A test CA and a server certificate for the zone.
    const ca = join(dir, "ca.pem");
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    sh("openssl", ["req", "-x509", ...ec, "-keyout", join(dir, "ca.key"), "-out", ca, "-days", "2", "-subj", "/CN=bhatti test CA"]);
    sh("openssl", ["req", ...ec, "-keyout", join(dir, "srv.key"), "-out", join(dir, "srv.csr"), "-subj", `/CN=${ZONE}`]);
    writeFileSync(join(dir, "ext"), `subjectAltName=DNS:*.${ZONE},DNS:${ZONE},DNS:*.wild.${ZONE}\n`);
    sh("openssl", ["x509", "-req", "-in", join(dir, "srv.csr"), "-CA", ca, "-CAkey", join(dir, "ca.key"), "-CAcreateserial", "-out", join(dir, "srv.pem"), "-days", "2", "-extfile", join(dir, "ext")]);
    sh("ip", ["-batch", "-"], [
      `netns add ${netns}`,
      `link add ${hostIf} type veth peer name eth0 netns ${netns}`,
      `addr add ${ADDR.host}/27 dev ${hostIf}`,
      `addr add ${ADDR.hostPrivate}/27 dev ${hostIf}`,
      `link set ${hostIf} up`,
    ].join("\n") + "\n");
    // Forwarded sandbox traffic's replies come in here: forwarding on this one interface (removed with it).
    writeFileSync(`/proc/sys/net/ipv4/conf/${hostIf}/forwarding`, "1");
    sh("ip", ["-n", netns, "-batch", "-"], [
      "link set lo up",
      ...[ADDR.A, ADDR.B, ADDR.DNS].map((a) => `addr add ${a}/27 dev eth0`),
      `addr add ${ADDR.PRIVATE}/27 dev eth0`,
      "link set eth0 up",
    ].join("\n") + "\n");
    writeFileSync(join(dir, "server.mjs"), SERVER);
    writeFileSync(join(dir, "cfg.json"), JSON.stringify({ repo: REPO, key: join(dir, "srv.key"), cert: join(dir, "srv.pem"), dns: ADDR.DNS, names: NAMES }));
    server = spawn("setpriv", ["--pdeathsig", "KILL", "--", "ip", "netns", "exec", netns, process.execPath, join(dir, "server.mjs"), join(dir, "cfg.json")], { stdio: ["ignore", "pipe", "pipe"] });
    server.unref();
    (server.stdout as unknown as { unref(): void }).unref();
    (server.stderr as unknown as { unref(): void }).unref();
    let out = "";
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`test internet did not start: ${out}`)), 15_000);
      server!.stdout!.on("data", (d) => { out += d; if (out.includes("ready")) { clearTimeout(t); resolve(); } });
      server!.stderr!.on("data", (d) => { out += d; });
      server!.once("exit", (c) => { clearTimeout(t); reject(new Error(`test internet exited (${c}): ${out}`)); });
    });
    return { netns, hostIf, dnsUpstream: `${ADDR.DNS}:53`, caFile: ca, caPem: readFileSync(ca, "utf8"), close };
  } catch (e) {
    await close();
    throw e;
  }
}
