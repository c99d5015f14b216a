// A sandbox's ports, for its owner (another user's sandbox is a 404, as everywhere):
// - GET /sandboxes/:id/ports: the TCP ports listening in it.
// - /sandboxes/:id/proxy/:port/<path>: an HTTP reverse proxy to that port
//   (any method, WebSocket upgrades included), for previews.
// - GET /sandboxes/:id/forward/:port with `Upgrade: bhatti-tcp`: a raw TCP
//   tunnel to that port (`bhatti forward`).
// The daemon reaches the port over the sandbox's veth. The client's API key
// is never passed on to the sandbox.
import { contract } from "../../api/routes-more.js";
import { request as httpRequest, STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import type { Router } from "../http.js";
import { sendError } from "../http.js";
import type { App } from "../app.js";
import type { SandboxService } from "../../sandboxes/service.js";
import { UserError } from "../../util/errors.js";
import { parseTarget } from "../target.js";
import { relayResponse, splice } from "../../net/relay.js";

const PROXY_RE = /^\/sandboxes\/([^/]+)\/proxy\/(\d{1,5})(\/.*)?$/;
const FORWARD_RE = /^\/sandboxes\/([^/]+)\/forward\/(\d{1,5})\/?$/;
const CONNECT_TIMEOUT_MS = 10_000;
const HOP = new Set(["authorization", "connection", "keep-alive", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"]);

export function portsRoutes(router: Router, sandboxes: SandboxService): void {
  router.route(contract("GET", "/sandboxes/:id/ports"), ({ user, params }) => sandboxes.ports(user, params.id));
}

function portOf(s: string): number {
  const n = Number(s);
  if (!(n >= 1 && n <= 65535)) throw new UserError(400, "port must be between 1 and 65535");
  return n;
}

function decode(s: string): string {
  try { return decodeURIComponent(s); } catch { throw new UserError(400, "malformed percent-encoding in the path"); }
}

/** Request headers passed on: without the client's credentials and hop-by-hop headers. */
function forwardHeaders(req: IncomingMessage, keepUpgrade: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i].toLowerCase();
    if (HOP.has(k) && !(keepUpgrade && (k === "upgrade" || k === "connection"))) continue;
    out.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  return out;
}

function refuse(socket: Duplex, e: unknown): void {
  const status = e instanceof UserError ? e.status : 502;
  const body = JSON.stringify({ error: e instanceof UserError ? e.message : "the sandbox's port could not be reached", ...(status === 502 ? { code: "port_not_listening" } : {}) });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`, () => socket.destroy());
}

/** Handles proxy requests (true) or leaves the request to the router (false). */
export function proxyRequests(app: App, sandboxes: SandboxService) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    let target;
    try { target = parseTarget(req.url); } catch { return false; }
    const m = PROXY_RE.exec(target.path);
    if (!m) return false;
    try {
      const user = app.admit(req, target.query);
      const peer = sandboxes.peer(user, decode(m[1]));
      const port = portOf(m[2]);
      const q = (req.url ?? "").indexOf("?");
      const path = (m[3] ?? "/") + (q >= 0 ? (req.url ?? "").slice(q) : "");
      const up = httpRequest({ host: peer.address, port, method: req.method, path, headers: ["Host", `${peer.address}:${port}`, ...forwardHeaders(req, false)], agent: false, timeout: CONNECT_TIMEOUT_MS, setHost: false });
      up.on("error", () => { if (!res.headersSent) sendError(res, new UserError(502, `nothing answers on port ${port} in sandbox ${JSON.stringify(peer.name)}`)); else res.destroy(); });
      relayResponse(up, res);
      req.pipe(up);
    } catch (e) {
      sendError(res, e);
    }
    return true;
  };
}

/** Handles proxy WebSocket upgrades and forward tunnels (true), or leaves the upgrade to the next handler (false). */
export function portUpgrades(app: App, sandboxes: SandboxService) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    let target;
    try { target = parseTarget(req.url); } catch { return false; }
    const proxy = PROXY_RE.exec(target.path);
    const forward = FORWARD_RE.exec(target.path);
    if (!proxy && !forward) return false;
    socket.on("error", () => socket.destroy());
    try {
      const user = app.admit(req, target.query);
      const m = (proxy ?? forward)!;
      const peer = sandboxes.peer(user, decode(m[1]));
      const port = portOf(m[2]);
      if (forward && (req.headers.upgrade ?? "").toLowerCase() !== "bhatti-tcp") throw new UserError(400, "forward needs Upgrade: bhatti-tcp");
      const up = connect({ host: peer.address, port });
      up.setTimeout(CONNECT_TIMEOUT_MS, () => up.destroy(new Error("timeout")));
      up.once("error", (e) => { if (up.connecting || !up.bytesRead) refuse(socket, e); else socket.destroy(); });
      up.once("connect", () => {
        up.setTimeout(0);
        if (forward) {
          socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: bhatti-tcp\r\nConnection: Upgrade\r\n\r\n");
        } else {
          const q = (req.url ?? "").indexOf("?");
          const lines = [`${req.method} ${(proxy![3] ?? "/") + (q >= 0 ? (req.url ?? "").slice(q) : "")} HTTP/1.1`, `Host: ${peer.address}:${port}`];
          const h = forwardHeaders(req, true);
          for (let i = 0; i < h.length; i += 2) lines.push(`${h[i]}: ${h[i + 1]}`);
          up.write(lines.join("\r\n") + "\r\n\r\n");
        }
        if (head.length) up.write(head);
        splice(socket, up);
      });
    } catch (e) {
      refuse(socket, e);
    }
    return true;
  };
}
