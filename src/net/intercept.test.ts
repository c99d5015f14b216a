// The egress proxy's broker paths on loopback: the real EgressProxy and
// DnsServer, real TLS both ways (a sandbox CA and an "internet" CA made
// here), real HTTP(S) echo servers; only the Egress (who a source address
// is) and the Broker (bindings and values) are fakes of the daemon's. The
// end-to-end suite with real sandboxes is src/broker/broker.ns.test.ts.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { Agent, createServer as createHttpsServer, request as httpsRequest } from "node:https";
import { connect as tlsConnect, type SecureContext } from "node:tls";
import dnsPacket from "dns-packet";
import { EgressProxy } from "./proxy.js";
import { DnsServer } from "./dns.js";
import type { Egress, SandboxNet } from "./egress.js";
import { LeafCache } from "../broker/leaf.js";
import { testCa } from "../broker/test-ca.js";
import type { BrokeredSecret, SandboxBroker } from "../broker/types.js";

const PH = { API: "sk-PHaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", GH: "ghp_PHbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", BODY: "bd_PHcccccccccccccccccccccccc" };
const VAL: Record<string, Buffer | null> = {
  API: Buffer.from("sk-REALaaaaaaaaaaaaaaaaaaaaaaaaa01"),
  GH: Buffer.from("ghp_REALbbbbbbbbbbbbbbbbbbbbbbbbbbbb02"),
  BODY: Buffer.from("bd_REALcccccccccccccccccccc03"),
};
const secrets: BrokeredSecret[] = [
  { name: "API", placeholder: PH.API, hosts: ["api.test", "untrusted.test"], inBody: false },
  { name: "GH", placeholder: PH.GH, hosts: ["*.gh.test"], header: "authorization", inBody: false },
  { name: "BODY", placeholder: PH.BODY, hosts: ["api.test"], inBody: true },
];

let sandboxCa: { certPem: string; keyPem: string };
let internetCa: { certPem: string; keyPem: string };
const events: { type: string; detail: Record<string, unknown> }[] = [];
const seen: { host: string; url: string; headers: string[]; body: string; sni?: string }[] = [];
const sb: SandboxNet = { id: "sb1", name: "box", user: "alice", address: "127.0.0.1", gateway: "127.0.0.1", prefix: 30, ifname: "lo", policy: { egress: "public", allow_hosts: [], allow_cidrs: [] }, dyn: new Set() };
let storeBroken = false; // the store failing: every broker path must refuse, never fail open or crash
const broker: SandboxBroker = { sandboxId: "sb1", ca: async () => sandboxCa, secrets: () => { if (storeBroken) throw new Error("database is locked"); return secrets; }, value: async (n) => (VAL[n] ? Buffer.from(VAL[n]!) : null) };
const egress: Egress = {
  upstream: { host: "127.0.0.1", port: 9 }, // never asked: a query would time out, not answer NXDOMAIN at once
  broker: { forSandbox: (id) => (id === "sb1" ? broker : undefined) },
  sandboxFor: (ip) => (ip.replace(/^::ffff:/, "") === "127.0.0.1" ? sb : undefined),
  nameAllowed: () => true,
  addressAllowed: () => ({ ok: true, rule: "public" }),
  denied: (_sb, type, detail) => void events.push({ type, detail }),
  learn: async () => {},
  resolve: async () => ["127.0.0.1"],
  warn: () => {},
};

let proxy: EgressProxy;
let ports: { http: number; tls: number };
const servers: { close(): void }[] = [];

let streamed = 0; // bytes the /stream endpoint has handed to its socket so far
function echo(req: IncomingMessage, res: ServerResponse): void {
  if (req.url?.startsWith("/stream")) {
    // Writes as fast as the connection takes it (respecting backpressure), counting.
    let left = Number(new URL(req.url, "http://x").searchParams.get("n"));
    streamed = 0;
    res.writeHead(200, { "content-length": left });
    const chunk = Buffer.alloc(65536, 0x79);
    const pump = () => { while (left > 0) { const n = Math.min(left, chunk.length); left -= n; streamed += n; if (!res.write(chunk.subarray(0, n))) return void res.once("drain", pump); } res.end(); };
    return void pump();
  }
  const parts: Buffer[] = [];
  req.on("data", (d: Buffer) => parts.push(d));
  req.on("end", () => {
    const body = Buffer.concat(parts).toString("latin1");
    const sni = (req.socket as { servername?: string }).servername;
    seen.push({ host: req.headers.host ?? "", url: req.url ?? "", headers: req.rawHeaders, body, sni });
    const u = new URL(req.url ?? "/", "http://x");
    if (u.pathname === "/bytes") {
      const n = Number(u.searchParams.get("n"));
      res.writeHead(200, { "content-length": n });
      return void res.end(Buffer.alloc(n, 0x78));
    }
    const h = u.searchParams.get("h");
    const echoed = h ? String(req.headers[h] ?? "") : "";
    res.writeHead(200, { "content-type": "application/json", ...(h ? { "x-echo": echoed } : {}) });
    res.end(JSON.stringify({ url: req.url, headers: req.rawHeaders, body, echoed }));
  });
}

before(async () => {
  sandboxCa = await testCa("ec", "sandbox CA");
  internetCa = await testCa("ec", "internet CA");
  const rogueCa = await testCa("ec", "rogue CA");
  const leaves = new LeafCache();
  const site = (ca: { certPem: string; keyPem: string }, id: string): SandboxBroker => ({ sandboxId: id, ca: async () => ca, secrets: () => [], value: async () => null });
  const ctxs = new Map<string, Promise<SecureContext>>();
  const ctxFor = (name: string) => {
    if (!ctxs.has(name)) ctxs.set(name, leaves.context(name === "untrusted.test" ? site(rogueCa, "rogue") : site(internetCa, "internet"), name));
    return ctxs.get(name)!;
  };
  const https = createHttpsServer({ SNICallback: (name, cb) => void ctxFor(name).then((c) => cb(null, c), (e) => cb(e)) }, echo);
  const http = createHttpServer(echo);
  const listen = (s: import("node:net").Server) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as { port: number }).port)));
  const up = { tls: await listen(https), http: await listen(http) };
  servers.push(https, http);
  proxy = new EgressProxy(egress, { ports: up, upstreamCa: internetCa.certPem });
  ports = await proxy.start();
});

after(async () => {
  await proxy.close();
  for (const s of servers) s.close();
});

interface Got { status: number; headers: Record<string, string | string[] | undefined>; body: string }
/** An HTTPS request through the proxy's TLS port, as a sandbox makes it (SNI `name`, trusting `ca`). */
function viaTls(name: string, opts: { path?: string; method?: string; headers?: Record<string, string>; body?: Buffer | string; ca?: string; agent?: Agent } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const r = httpsRequest({ host: "127.0.0.1", port: ports.tls, servername: name, ca: opts.ca ?? sandboxCa.certPem, path: opts.path ?? "/", method: opts.method ?? "GET", headers: { host: name, ...opts.headers }, agent: opts.agent ?? false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts).toString("latin1") }));
      res.on("error", reject);
    });
    r.on("error", reject);
    r.end(opts.body);
  });
}
function viaHttp(name: string, opts: { path?: string; method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: "127.0.0.1", port: ports.http, path: opts.path ?? "/", method: opts.method ?? "GET", headers: { host: name, ...opts.headers }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts).toString("latin1") }));
    });
    r.on("error", reject);
    r.end(opts.body);
  });
}
const last = () => seen[seen.length - 1];
const lastEvent = () => events[events.length - 1];
const noValue = (s: string) => { for (const v of Object.values(VAL)) if (v) assert.ok(!s.includes(v.toString("latin1")), "a value reached the sandbox"); };

test("a bound host receives the value in a header; the sandbox sees only the placeholder, also in the echoed response", async () => {
  const r = await viaTls("api.test", { path: "/?h=authorization", headers: { authorization: `Bearer ${PH.API}` } });
  assert.equal(r.status, 200, r.body);
  assert.ok(last().headers.includes(`Bearer ${VAL.API}`));
  assert.equal(last().sni, "api.test");
  assert.equal(r.headers["x-echo"], `Bearer ${PH.API}`);
  assert.ok(r.body.includes(`Bearer ${PH.API}`));
  noValue(r.body + JSON.stringify(r.headers));
  // The upstream was asked for an identity encoding (a compressed echo would hide the value).
  assert.equal(last().headers[last().headers.findIndex((h) => h.toLowerCase() === "accept-encoding") + 1], "identity");
});

test("URL and in-body substitution; the content-length holds", async () => {
  const body = JSON.stringify({ key: PH.BODY, pad: "x".repeat(70_000) });
  const r = await viaTls("api.test", { method: "POST", path: `/v1?key=${PH.API}`, body, headers: { "content-type": "application/json" } });
  assert.equal(r.status, 200, r.body);
  assert.equal(last().url, `/v1?key=${VAL.API}`);
  assert.equal(last().body, body.replace(PH.BODY, VAL.BODY!.toString()));
  noValue(r.body);
  assert.ok(r.body.includes(PH.BODY));
});

test("a secret bound to one header: substituted there, refused in another header or the URL", async () => {
  const ok = await viaTls("x.gh.test", { headers: { authorization: `token ${PH.GH}` } });
  assert.equal(ok.status, 200);
  assert.ok(last().headers.includes(`token ${VAL.GH}`));
  for (const [opts, where] of [[{ headers: { "x-token": PH.GH } }, "header"], [{ path: `/?t=${PH.GH}` }, "url"]] as const) {
    const n = seen.length;
    const r = await viaTls("x.gh.test", opts);
    assert.equal(r.status, 403);
    assert.equal(seen.length, n, "nothing reached the upstream");
    assert.deepEqual(lastEvent(), { type: "broker.exfil", detail: { secret: "GH", dest: "x.gh.test", where } });
  }
});

test("another secret's placeholder to an intercepted host is refused (header, URL, body, base64) and recorded", async () => {
  const cases: [Parameters<typeof viaTls>[1], string][] = [
    [{ headers: { "x-k": PH.GH } }, "header"],
    [{ headers: { authorization: "Basic " + Buffer.from(`u:${PH.GH}`).toString("base64") } }, "header"],
    [{ path: `/?k=${PH.GH}` }, "url"],
    [{ method: "POST", body: `{"k":"${PH.GH}"}` }, "body"],
    [{ method: "POST", body: `{"k":"${PH.API}"}` }, "body"], // bound here, but not in-body
  ];
  for (const [opts, where] of cases) {
    const n = seen.length;
    const r = await viaTls("api.test", opts);
    assert.equal(r.status, 403, where);
    if (where !== "body") assert.equal(seen.length, n);
    assert.equal(lastEvent().type, "broker.exfil");
    assert.equal(lastEvent().detail.where, where);
    noValue(JSON.stringify(events));
  }
});

test("rotation applies to the next request on the same connection; deletion stops substitution at once", async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await viaTls("api.test", { headers: { authorization: PH.API }, agent });
    assert.ok(last().headers.includes(VAL.API!.toString()));
    const old = VAL.API;
    VAL.API = Buffer.from("sk-ROTATEDaaaaaaaaaaaaaaaaaaaaaa04");
    await viaTls("api.test", { headers: { authorization: PH.API }, agent });
    assert.ok(last().headers.includes(VAL.API.toString()));
    VAL.API = null;
    const n = seen.length;
    const r = await viaTls("api.test", { headers: { authorization: PH.API }, agent });
    assert.equal(r.status, 403);
    assert.equal(seen.length, n);
    VAL.API = old;
  } finally { agent.destroy(); }
});

test("the upstream's certificate is verified: one from an untrusted CA gives a 502 and no request", async () => {
  const n = seen.length;
  const r = await viaTls("untrusted.test", { headers: { authorization: PH.API } });
  assert.equal(r.status, 502);
  assert.match(r.body, /certificate is not trusted/);
  assert.equal(seen.length, n);
});

test("hosts no brokered secret is bound to are spliced, not intercepted (the sandbox sees the real certificate)", async () => {
  await assert.rejects(viaTls("plain.test", { ca: sandboxCa.certPem }), /self.signed|unable to verify|SELF_SIGNED|UNABLE/i);
  const r = await viaTls("plain.test", { ca: internetCa.certPem, headers: { "accept-encoding": "gzip" } });
  assert.equal(r.status, 200);
  assert.equal(last().headers[last().headers.findIndex((h) => h.toLowerCase() === "accept-encoding") + 1], "gzip");
});

test("a placeholder in an SNI closes the connection and is recorded", async () => {
  const err = await new Promise<string>((resolve) => {
    const s = tlsConnect({ host: "127.0.0.1", port: ports.tls, servername: `${PH.API.toLowerCase()}.evil.test`, ca: sandboxCa.certPem }, () => resolve("connected"));
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
  });
  assert.notEqual(err, "connected");
  assert.deepEqual(lastEvent().detail, { secret: "API", dest: `${PH.API.toLowerCase()}.evil.test`, where: "sni" });
  // A placeholder with characters a host name may not have (ghp_...): still found, though the name is invalid.
  await new Promise<void>((resolve) => {
    const s = tlsConnect({ host: "127.0.0.1", port: ports.tls, servername: `${PH.GH}.evil.test`, ca: sandboxCa.certPem }, () => resolve());
    s.on("error", () => resolve());
  });
  assert.deepEqual(lastEvent().detail, { secret: "GH", dest: `${PH.GH}.evil.test`, where: "sni" });
});

test("plain HTTP: refused to a bound host, and with a placeholder anywhere (header, URL, body) to any host", async () => {
  const n = seen.length;
  let r = await viaHttp("api.test");
  assert.equal(r.status, 403);
  assert.deepEqual(lastEvent().detail, { secret: "API", dest: "api.test", where: "plaintext" });
  r = await viaHttp("other.test", { headers: { authorization: PH.API } });
  assert.equal(r.status, 403);
  assert.equal(lastEvent().detail.where, "header");
  r = await viaHttp("other.test", { path: `/x/${PH.BODY}` });
  assert.equal(r.status, 403);
  assert.equal(lastEvent().detail.where, "url");
  assert.equal(seen.length, n);
  r = await viaHttp("other.test", { method: "POST", body: "a".repeat(200_000) + PH.GH, headers: { expect: "100-continue" } });
  assert.equal(r.status, 403);
  assert.deepEqual(lastEvent().detail, { secret: "GH", dest: "other.test", where: "body" });
  assert.ok(!(last()?.body ?? "").includes(PH.GH), "the placeholder never went out");
  r = await viaHttp("other.test", { method: "POST", body: "hello" });
  assert.equal(r.status, 200);
  assert.equal(last().body, "hello");
});

test("a placeholder in a DNS query name gets NXDOMAIN without an upstream query, and is recorded", async () => {
  const dns = new DnsServer(egress);
  const q = (name: string) => dnsPacket.encode({ type: "query", id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name }] });
  const t = Date.now();
  const a = dnsPacket.decode((await dns.handle(q(`${PH.GH.slice(0, 20)}.${PH.GH.slice(20).toUpperCase()}.evil.test`), "127.0.0.1"))!) as { rcode?: string };
  assert.equal(a.rcode, "NXDOMAIN");
  assert.ok(Date.now() - t < 1000, "answered without asking upstream");
  assert.equal(lastEvent().type, "broker.exfil");
  assert.equal(lastEvent().detail.where, "dns");
  assert.equal(lastEvent().detail.secret, "GH");
});

test("big bodies stream through interception both ways, intact", async () => {
  const big = Buffer.alloc(3 * 1024 * 1024, 0x61);
  const r = await viaTls("api.test", { method: "PUT", body: big, headers: { authorization: PH.API } });
  assert.equal(r.status, 200);
  assert.equal(last().body.length, big.length);
  const d = await viaTls("api.test", { path: `/bytes?n=${5 * 1024 * 1024}`, headers: { authorization: PH.API } });
  assert.equal(d.body.length, 5 * 1024 * 1024);
});

test("a slow reader in the sandbox slows the upstream (backpressure through the interception)", async () => {
  const total = 64 * 1024 * 1024;
  const got = await new Promise<{ paused: number; len: number }>((resolve, reject) => {
    const r = httpsRequest({ host: "127.0.0.1", port: ports.tls, servername: "api.test", ca: sandboxCa.certPem, path: `/stream?n=${total}`, headers: { host: "api.test", authorization: PH.API }, agent: false }, (res) => {
      res.pause();
      setTimeout(() => {
        const paused = streamed;
        let len = 0;
        res.on("data", (d: Buffer) => { len += d.length; });
        res.on("end", () => resolve({ paused, len }));
        res.resume();
      }, 1500);
    });
    r.on("error", reject);
    r.end();
  });
  assert.ok(got.paused > 0 && got.paused < 16 * 1024 * 1024, `the upstream wrote ${got.paused} bytes to a reader that read none`);
  assert.equal(got.len, total);
});

test("a request head over the bound is refused, not buffered", async () => {
  const r = await viaTls("api.test", { headers: { "x-big": "a".repeat(40 * 1024), authorization: PH.API } }).catch((e: Error) => ({ status: 0, body: e.message, headers: {} }));
  assert.ok(r.status === 431 || r.status === 0, `status ${r.status}`);
});

test("a store that fails refuses (plain HTTP 403, TLS closed, DNS NXDOMAIN) and the proxy keeps serving", async () => {
  storeBroken = true;
  try {
    assert.equal((await viaHttp("other.test")).status, 403);
    await assert.rejects(viaTls("api.test", { headers: { authorization: PH.API } }));
    await assert.rejects(viaTls("plain.test", { ca: internetCa.certPem }));
    const dns = new DnsServer(egress);
    const a = dnsPacket.decode((await dns.handle(dnsPacket.encode({ type: "query", id: 1, questions: [{ type: "A", name: "x.test" }] }), "127.0.0.1"))!) as { rcode?: string };
    assert.equal(a.rcode, "NXDOMAIN");
  } finally { storeBroken = false; }
  assert.equal((await viaTls("api.test", { headers: { authorization: PH.API } })).status, 200);
});
