// GET /share/ws — the web terminal's WebSocket. No API key: the first message
// is {token, rows?, cols?}; a valid, unexpired, unused share token opens a new
// shell in its sandbox as its owner (then the socket speaks session-ws.ts's
// protocol). Anything else gets {type:"error"} and a close, and nothing of any sandbox.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData } from "ws";
import type { App } from "./app.js";
import type { SandboxService } from "../sandboxes/service.js";
import { UserError } from "../util/errors.js";
import { parseTarget } from "./target.js";
import { refuseUpgrade } from "./ws.js";
import { serveSession } from "./session-ws.js";
import type { ShareTokens } from "./share.js";

export const SHARE_WS_PATH = "/share/ws";
const FIRST_MESSAGE_MS = 10_000;

export function shareWebSocket(app: App, sandboxes: SandboxService, tokens: ShareTokens, log: (l: string) => void) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on("error", () => socket.destroy());
    try {
      const { path } = parseTarget(req.url);
      if (path !== SHARE_WS_PATH) throw new UserError(404, `no route for GET ${path}`, {}, "route_not_found");
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on("error", () => { setTimeout(() => ws.terminate(), 1000).unref(); });
        const refuse = () => {
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: "error", code: "share_token_invalid", message: "this share link is invalid, used, expired or revoked" }));
          ws.close(1008);
        };
        const timer = setTimeout(refuse, FIRST_MESSAGE_MS);
        ws.once("message", (data: RawData, isBinary: boolean) => {
          clearTimeout(timer);
          if (isBinary) return refuse();
          let m: Record<string, unknown>;
          try { m = JSON.parse((Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)).toString("utf8")); } catch { return refuse(); }
          if (!m || typeof m !== "object") return refuse();
          const grant = tokens.redeem(m.token);
          if (!grant) return refuse();
          // Tracked from here, so a revoke while the sandbox wakes closes this terminal too.
          const forget = tokens.track(grant.sandboxId, () => {
            if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: "error", code: "share_revoked", message: "the share was revoked" }));
            ws.close(1008);
          });
          ws.on("close", forget);
          // ready(), like exec and sessions: a paused or idle-stopped sandbox is woken for its viewer.
          sandboxes.ready(grant.user, grant.sandboxId).then((agent) => {
            if (ws.readyState !== ws.OPEN) return;
            const hello: Record<string, unknown> = {};
            if (m.rows !== undefined) hello.rows = m.rows;
            if (m.cols !== undefined) hello.cols = m.cols;
            serveSession(ws, agent, null, app.streams, hello);
          }, (e: Error) => {
            if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: "error", message: e.message }));
            ws.close(1011);
          });
        });
      });
    } catch (e) {
      refuseUpgrade(socket, e, log);
    }
  };
}
