// The egress proxy: every TCP connection a networked sandbox makes to port 80
// or 443 is redirected here by nft. The name the sandbox asks for (the HTTP
// Host header of each request, or the TLS SNI of the ClientHello, read
// without terminating TLS) is checked against its policy, resolved by the
// daemon itself, and connected to: so another SNI or Host sent to an allowed
// name's address reaches nothing. This is the one place the daemon sees each
// outbound connection's host name (the credential broker hooks in here).
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { connect, createServer, isIPv4, type Server, type Socket } from "node:net";
import { parseClientHello } from "./sni.js";
import type { Egress, SandboxNet } from "./egress.js";
import { relayResponse, splice } from "./relay.js";
import { Interceptor } from "./intercept.js";
import { guardPlainRequest, nameCarriesPlaceholder } from "./broker-guard.js";

const HELLO_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;
const MAX_CONNS_PER_SANDBOX = 256;

export class EgressProxy {
  private http?: HttpServer;
  private tls?: Server;
  private readonly conns = new Map<string, number>();
  private readonly sockets = new Set<Socket>();

  private readonly intercept: Interceptor;

  private readonly upstream: { http: number; tls: number };

  /** Tests give other upstream ports than 80 and 443, and the CA intercepted requests' upstreams must have (instead of the default trust). */
  constructor(private readonly egress: Egress, opts: { ports?: { http: number; tls: number }; upstreamCa?: string } = {}) {
    this.upstream = opts.ports ?? { http: 80, tls: 443 };
    this.intercept = new Interceptor(egress, this.upstream.tls, opts.upstreamCa);
  }

  async start(): Promise<{ http: number; tls: number }> {
    const http = createHttpServer({ headersTimeout: 30_000, requestTimeout: 0, keepAliveTimeout: 30_000 }, (req, res) => this.onRequest(req, res));
    http.on("upgrade", (req, sock, head) => this.onUpgrade(req, sock as Socket, head));
    http.on("connection", (s: Socket) => this.admit(s));
    http.on("clientError", (_e, s) => s.destroy());
    const tls = createServer({ pauseOnConnect: true }, (s) => { if (this.admit(s)) this.onTls(s); });
    this.http = http;
    this.tls = tls;
    const listen = (srv: Server | HttpServer) => new Promise<number>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(0, "0.0.0.0", () => {
        srv.off("error", reject);
        srv.on("error", () => { /* a failed accept: that connection is lost, the proxy keeps serving */ });
        resolve((srv.address() as { port: number }).port);
      });
    });
    return { http: await listen(http), tls: await listen(tls) };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.intercept.close();
    await Promise.all([this.http, this.tls].map((s) => new Promise<void>((r) => (s ? s.close(() => r()) : r()))));
  }

  /** Counts a sandbox's connections (bounded) and ends what no sandbox sent. */
  private admit(s: Socket): boolean {
    const from = s.remoteAddress ?? "";
    const sb = this.egress.sandboxFor(from);
    const n = this.conns.get(from) ?? 0;
    if (!sb || n >= MAX_CONNS_PER_SANDBOX) {
      s.destroy();
      return false;
    }
    this.conns.set(from, n + 1);
    this.sockets.add(s);
    s.on("error", () => {});
    s.once("close", () => {
      this.sockets.delete(s);
      const left = (this.conns.get(from) ?? 1) - 1;
      if (left <= 0) this.conns.delete(from);
      else this.conns.set(from, left);
    });
    return true;
  }

  /** Where a name may be reached from this sandbox: an address, or the denial (recorded). */
  private async route(sb: SandboxNet, host: string, port: number): Promise<string | null> {
    if (isIPv4(host)) {
      const v = this.egress.addressAllowed(sb, host, false);
      if (!v.ok) this.egress.denied(sb, "net.denied", { ip: host, port, rule: v.rule });
      return v.ok ? host : null;
    }
    if (!/^[a-z0-9.-]{1,253}$/.test(host) || !this.egress.nameAllowed(sb, host)) {
      this.egress.denied(sb, "net.denied", { name: host.slice(0, 253), port, rule: sb.policy.egress === "none" ? "egress_none" : "not_allowed" });
      return null;
    }
    const ips = await this.egress.resolve(host).catch(() => [] as string[]);
    if (!ips.length) return null;
    for (const ip of ips) {
      const v = this.egress.addressAllowed(sb, ip, true);
      if (!v.ok) {
        this.egress.denied(sb, "net.denied", { name: host, ip, port, rule: v.rule });
        return null;
      }
    }
    return ips[0];
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const sb = this.egress.sandboxFor(req.socket.remoteAddress ?? "");
    const host = hostOf(req.headers.host);
    const refuse = (status: number, msg: string) => {
      if (res.writableEnded) return; // already answered (a refusal, then the upstream's abort)
      if (res.headersSent) return void res.destroy();
      res.writeHead(status, { "content-type": "text/plain", connection: "close" }).end(`bhatti egress: ${msg}\n`);
    };
    if (!sb) return void req.socket.destroy();
    if (!host) return refuse(400, "no valid Host header");
    // Brokered secrets: never to a bound host in cleartext, no placeholder anywhere (headers, URL, body).
    const guard = guardPlainRequest(this.egress, sb, host, req);
    if (guard.refused) return refuse(403, "a brokered secret may not be sent over plain HTTP");
    this.route(sb, host, 80).then((ip) => {
      if (!ip) return refuse(403, `${host} is not allowed by this sandbox's network policy`);
      const up = httpRequest({ host: ip, port: this.upstream.http, method: req.method, path: req.url, headers: req.rawHeaders, agent: false, timeout: CONNECT_TIMEOUT_MS, setHost: false });
      up.on("error", () => refuse(502, `${host} could not be reached`));
      relayResponse(up, res);
      if (!guard.body) return void req.pipe(up);
      guard.body.on("error", () => { refuse(403, "a brokered secret may not be sent over plain HTTP"); up.destroy(); });
      req.pipe(guard.body).pipe(up);
    }, () => refuse(502, "internal error"));
  }

  private onUpgrade(req: IncomingMessage, sock: Socket, head: Buffer): void {
    const sb = this.egress.sandboxFor(sock.remoteAddress ?? "");
    const host = hostOf(req.headers.host);
    if (!sb || !host) return void sock.destroy();
    if (guardPlainRequest(this.egress, sb, host, req).refused) return void sock.end("HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    this.route(sb, host, 80).then((ip) => {
      if (!ip) return void sock.end("HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      const up = connect({ host: ip, port: this.upstream.http });
      up.write(lines.join("\r\n") + "\r\n\r\n");
      if (head.length) up.write(head);
      spliceUpstream(sock, up);
    }, () => sock.destroy());
  }

  private onTls(s: Socket): void {
    const sb = this.egress.sandboxFor(s.remoteAddress ?? "")!;
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => s.destroy(), HELLO_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const r = parseClientHello(buf);
      if (r.state === "need-more") return;
      s.off("data", onData);
      s.pause();
      clearTimeout(timer);
      if (r.state === "invalid" && r.name && nameCarriesPlaceholder(this.egress, sb, r.name, "sni")) return void s.destroy();
      if (r.state === "invalid" || !r.sni) {
        this.egress.denied(sb, "net.denied", { port: 443, rule: r.state === "invalid" ? "not_tls" : "no_sni" });
        return void s.destroy();
      }
      const name = r.sni;
      if (nameCarriesPlaceholder(this.egress, sb, name, "sni")) return void s.destroy();
      this.route(sb, name, 443).then((ip) => {
        if (!ip || s.destroyed) return void s.destroy();
        // A host one of the sandbox's brokered secrets is bound to: terminated and substituted (intercept.ts).
        const b = this.intercept.match(sb, name);
        if (b === "error") return void s.destroy();
        if (b) return void this.intercept.take(sb, s, buf, name, ip, b).catch(() => s.destroy());
        const up = connect({ host: ip, port: this.upstream.tls });
        up.write(buf);
        spliceUpstream(s, up);
      }, () => s.destroy());
    };
    s.on("data", onData);
    s.resume();
  }
}

/** Splices the sandbox's socket `a` to the upstream `b`, giving up when `b` does not connect in time. */
function spliceUpstream(a: Socket, b: Socket): void {
  b.setTimeout(CONNECT_TIMEOUT_MS, () => { if (b.connecting) b.destroy(); });
  b.once("connect", () => b.setTimeout(0));
  splice(a, b);
  a.resume();
}

function hostOf(h: string | undefined): string | null {
  if (!h) return null;
  const m = /^([A-Za-z0-9.-]{1,253})(?::(\d{1,5}))?$/.exec(h.trim());
  return m ? m[1].toLowerCase().replace(/\.$/, "") : null;
}
