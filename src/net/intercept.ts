// TLS interception for brokered secrets (issue 11). The egress proxy hands
// over a sandbox's TLS connection whose SNI is a host one of its brokered
// secrets is bound to: it is terminated here with a leaf for that name from
// the sandbox's own CA (HTTP/1.1 only), each request is parsed by Node's HTTP
// server, its placeholders substituted (src/broker/substitute.ts), and sent on
// over HTTPS to the address the proxy resolved, verifying the upstream's
// certificate for the SNI the sandbox asked for, over a small keep-alive pool
// per sandbox and name. Responses come back with bound values turned into
// placeholders. A refused placeholder is a 403 and a `broker.exfil` event.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Agent, request } from "node:https";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { LeafCache } from "../broker/leaf.js";
import { anyBound, BODY_LIMIT, Refused, RequestRules } from "../broker/substitute.js";
import { patternTransform } from "../broker/transform.js";
import type { SandboxBroker } from "../broker/types.js";
import type { Egress, SandboxNet } from "./egress.js";
import { brokeringOf, recordExfil } from "./broker-guard.js";

const HANDSHAKE_TIMEOUT_MS = 10_000;
const MAX_AGENTS = 256; // sandbox × name × address pools held (oldest closed first)
const SOCKETS_PER_AGENT = 32;
const FREE_PER_AGENT = 4;
const HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade", "accept-encoding", "http2-settings"]);

interface Conn { sb: SandboxNet; name: string; ip: string; b: SandboxBroker }

export class Interceptor {
  private readonly leaves = new LeafCache();
  private readonly agents = new Map<string, Agent>();
  private readonly conns = new WeakMap<object, Conn>();
  private readonly http: Server;

  constructor(private readonly egress: Egress, private readonly upstreamPort = 443, private readonly upstreamCa?: string) {
    this.http = createServer({ headersTimeout: 30_000, requestTimeout: 0, keepAliveTimeout: 30_000, maxHeaderSize: 32 * 1024 }, (req, res) => this.onRequest(req, res));
    this.http.on("clientError", (_e, s) => s.destroy());
    // Upgrades (WebSocket) to a brokered host are not relayed: refused plainly.
    this.http.on("upgrade", (_req, s: Socket) => { s.on("error", () => {}); s.end("HTTP/1.1 501 Not Implemented\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"); });
  }

  /** The sandbox's broker if a secret of it is bound to `name` (the connection is then intercepted); "error" if the store could not say (refuse). */
  match(sb: SandboxNet, name: string): SandboxBroker | undefined | "error" {
    const br = brokeringOf(this.egress, sb);
    if (br === "error") return br;
    return br && anyBound(br.secrets, name) ? br.b : undefined;
  }

  /** Takes over a sandbox's TLS connection whose ClientHello (`hello`) was read already. */
  async take(sb: SandboxNet, sock: Socket, hello: Buffer, name: string, ip: string, b: SandboxBroker): Promise<void> {
    let secureContext;
    try {
      secureContext = await this.leaves.context(b, name);
    } catch (e) {
      this.egress.warn(`broker: sandbox ${sb.id}: no certificate for ${name}: ${(e as Error).message}`);
      return void sock.destroy();
    }
    if (sock.destroyed) return;
    sock.setNoDelay(true); // each response goes out at once (no Nagle wait on small writes)
    sock.unshift(hello);
    const t = new TLSSocket(sock, { isServer: true, secureContext, ALPNProtocols: ["http/1.1"] });
    t.on("error", () => t.destroy());
    t.once("close", () => sock.destroy());
    const timer = setTimeout(() => t.destroy(), HANDSHAKE_TIMEOUT_MS);
    t.once("secure", () => clearTimeout(timer));
    t.once("close", () => clearTimeout(timer));
    this.conns.set(t, { sb, name, ip, b });
    this.http.emit("connection", t);
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }

  private agentFor(c: Conn): Agent {
    const k = `${c.sb.id}\0${c.name}\0${c.ip}`;
    let a = this.agents.get(k);
    if (a) {
      this.agents.delete(k);
      this.agents.set(k, a); // recently used last
      return a;
    }
    a = new Agent({ keepAlive: true, maxSockets: SOCKETS_PER_AGENT, maxFreeSockets: FREE_PER_AGENT, timeout: 30_000, scheduling: "lifo" });
    this.agents.set(k, a);
    while (this.agents.size > MAX_AGENTS) {
      const [oldK, old] = this.agents.entries().next().value!;
      this.agents.delete(oldK);
      old.destroy();
    }
    return a;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const c = this.conns.get(req.socket);
    if (!c) return void req.socket.destroy();
    const refuse = (status: number, msg: string) => {
      if (res.writableEnded) return; // already answered (a refusal, then the upstream's abort)
      if (res.headersSent) return void res.destroy();
      res.writeHead(status, { "content-type": "text/plain", connection: "close" }).end(`bhatti egress: ${msg}\n`);
    };
    const refused = (e: Refused) => {
      recordExfil(this.egress, c.sb, e.secret, c.name, e.where);
      refuse(403, e.message);
    };
    this.forward(c, req, res, refuse, refused).catch((e: Error) => {
      if (e instanceof Refused) return refused(e);
      this.egress.warn(`broker: sandbox ${c.sb.id}: request to ${c.name} failed: ${e.name}`);
      refuse(502, "internal error");
    });
  }

  private async forward(c: Conn, req: IncomingMessage, res: ServerResponse, refuse: (s: number, m: string) => void, refused: (e: Refused) => void): Promise<void> {
    const secrets = c.b.secrets();
    const values = new Map<string, Buffer | null>();
    // The current values, asked for on every request: a rotation applies to the next one, a deletion at once.
    for (const s of secrets) if (anyBound([s], c.name)) values.set(s.name, await c.b.value(s.name));
    // Our copies of the values are wiped once this exchange is over (the store hands out a fresh copy each time).
    res.once("close", () => { for (const v of values.values()) v?.fill(0); });
    const rules = new RequestRules(secrets, c.name, values);
    const raw = rules.headers(req.rawHeaders);
    const path = rules.url(req.url ?? "/");
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i].toLowerCase();
      if (HOP.has(n) || (n === "content-length" && rules.bodyLengthChanges)) continue;
      headers.push(raw[i], raw[i + 1]);
    }
    // A compressed response would hide an echoed value from the rewriting below.
    headers.push("accept-encoding", "identity");
    if (rules.bodyLengthChanges && req.headers["content-length"] !== undefined) headers.push("transfer-encoding", "chunked");
    const up = request({ host: c.ip, port: this.upstreamPort, servername: c.name, ...(this.upstreamCa ? { ca: this.upstreamCa } : {}), method: req.method, path, headers, agent: this.agentFor(c), setHost: false, timeout: 30_000 });
    up.on("timeout", () => up.destroy(new Error("timeout")));
    up.on("error", (e: NodeJS.ErrnoException) => refuse(502, `${c.name} could not be reached${/CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|ALTNAME/.test(e.code ?? "") ? ` (its certificate is not trusted: ${e.code})` : ""}`));
    res.on("close", () => { if (!res.writableFinished) up.destroy(); });
    req.on("error", () => up.destroy());
    const back = rules.response();
    up.on("response", (ur) => {
      ur.on("error", () => res.destroy());
      const h: string[] = [];
      const lengthChanges = back?.patterns.some((p) => p.bytes.length !== p.replacement.length) ?? false;
      for (let i = 0; i < ur.rawHeaders.length; i += 2) {
        const n = ur.rawHeaders[i].toLowerCase();
        if (n === "connection" || n === "keep-alive" || (lengthChanges && n === "content-length")) continue;
        h.push(ur.rawHeaders[i], rules.responseHeader(ur.rawHeaders[i + 1]));
      }
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, h);
      if (!back) return void ur.pipe(res);
      const t = patternTransform(back);
      t.on("error", () => res.destroy());
      ur.pipe(t).pipe(res);
    });
    const set = rules.body();
    if (!set) return void req.pipe(up);
    const t = patternTransform(set, (p, at) => {
      const [kind, secret] = [p.tag!.slice(0, p.tag!.indexOf(":")), p.tag!.slice(p.tag!.indexOf(":") + 1)];
      // Past the first BODY_LIMIT bytes nothing is substituted: a placeholder there is refused like any other.
      return kind === "deny" || at + p.bytes.length > BODY_LIMIT ? new Refused(secret, "body") : null;
    });
    t.on("error", (e) => {
      if (e instanceof Refused) refused(e); // answered first: the upstream's abort below must not turn it into a 502
      else res.destroy();
      up.destroy();
    });
    req.pipe(t).pipe(up);
  }
}
