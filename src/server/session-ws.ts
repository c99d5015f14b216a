// GET /sandboxes/:id/ws — an interactive session over a WebSocket (issue 12).
// A new session (a login shell on a pty unless `cmd` says otherwise), or with
// ?session=ID the existing one, its scrollback replayed first.
//
// Client -> server: first a JSON text frame {rows?, cols?, cmd?, env?, cwd?,
// tty?, keep?, idle_timeout_sec?} (for a reattach only rows/cols count); then
// binary frames (keystrokes) and JSON text frames {type: resize|detach|signal|ping}.
// Server -> client: {type:"session", session} first; binary frames of output
// (the pty's bytes, untagged); JSON {type:"pong"}; the last message is
// {type:"exit", exit_code, signal?}, {type:"detached", session_id} or
// {type:"error", message, code?}. The server pings every PING_MS and drops a
// client that missed two pongs. A client that goes away without detaching
// detaches: the session runs on (its idle timeout starts). Output is
// acknowledged to lohar only once its frame was written to the client's
// socket, so a client that stops reading stalls the session, not the daemon.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import type { App } from "./app.js";
import type { SandboxService } from "../sandboxes/service.js";
import type { AgentClient } from "../engine/agent-client.js";
import { UserError } from "../util/errors.js";
import { parseTarget } from "./target.js";
import { refuseUpgrade } from "./ws.js";
import type { OpenStreams } from "./streams.js";
import { attachSession, isNoSession, startSession, validSessionId, type SessionViewer } from "../engine/sessions.js";
import { sessionSpec, sizeOf } from "./session-spec.js";

export const SESSION_WS_RE = /^\/sandboxes\/([^/]+)\/ws\/?$/;
const PING_MS = 20_000;
const SIGNALS = new Set(["SIGINT", "SIGTERM", "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT", "SIGSTOP", "SIGTSTP"]);

export function sessionWebSocket(app: App, sandboxes: SandboxService, log: (l: string) => void) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on("error", () => socket.destroy());
    void (async () => { try {
      const { path, query } = parseTarget(req.url);
      const m = SESSION_WS_RE.exec(path);
      if (!m) throw new UserError(404, `no route for GET ${path}`, {}, "route_not_found");
      const user = app.admit(req, query);
      let ref: string;
      try { ref = decodeURIComponent(m[1]); } catch { throw new UserError(400, "malformed percent-encoding in the path"); }
      const agent = await sandboxes.ready(user, ref); // a paused (warm) or idle-stopped sandbox is woken first
      if (socket.destroyed) return;
      const sid = query.get("session");
      if (sid !== null && !validSessionId(sid)) throw new UserError(404, "no such session");
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on("error", () => { setTimeout(() => ws.terminate(), 1000).unref(); });
        serveSession(ws, agent, sid, app.streams);
      });
    } catch (e) {
      refuseUpgrade(socket, e, log);
    } })();
  };
}

/** Serves one session WebSocket (also used by the web terminal once its token was exchanged). */
export function serveSession(ws: WebSocket, agent: AgentClient, sid: string | null, streams: OpenStreams, first?: Record<string, unknown>): void {
  let viewer: SessionViewer | null = null;
  let finished = false;
  let inputPaused = false;
  let missed = 0;
  const send = (o: unknown) => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(o)); };
  const end = (o: unknown, code = 1000) => {
    if (finished) return;
    finished = true;
    send(o);
    ws.close(code);
  };
  const fail = (message: string, code?: string) => end({ type: "error", message, ...(code ? { code } : {}) }, 1008);
  const ping = setInterval(() => {
    if (++missed > 2) return ws.terminate();
    ws.ping();
  }, PING_MS);
  ping.unref();
  ws.on("pong", () => { missed = 0; });
  const unregister = streams.add({
    stop: () => {
      const id = viewer?.info?.id;
      end({ type: "error", code: "daemon_stopping", message: `the daemon is stopping; the session runs on${id ? ` (session ${id})` : ""}` }, 1001);
      viewer?.detach();
    },
    kill: () => ws.terminate(),
  });

  const begin = (spec: Record<string, unknown>) => {
    let v: SessionViewer;
    try {
      if (sid) {
        const size = sizeOf(spec);
        v = attachSession(agent, sid, {}, { manualAck: true });
        if (size.rows && size.cols) v.once("session", () => v.resize(size.rows!, size.cols!));
      } else {
        v = startSession(agent, sessionSpec(spec, true, true), { manualAck: true });
      }
    } catch (e) {
      return fail((e as Error).message, "bad_request");
    }
    viewer = v;
    v.on("session", (info) => send({ type: "session", session: info }));
    v.on("stdout", (b: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(b, (err) => { if (!err) v.consumed(b.length); });
    });
    v.on("drain", () => { if (inputPaused) { inputPaused = false; ws.resume(); } });
    v.on("detached", () => end({ type: "detached", session_id: v.info?.id }));
    v.on("exit", (exit: { exit_code: number; signal?: string }) => end({ type: "exit", exit_code: exit.exit_code, ...(exit.signal ? { signal: exit.signal } : {}) }));
    v.on("error", (e: Error) => {
      if (isNoSession(e)) fail("no such session", "session_not_found");
      else fail(e.message);
    });
  };

  ws.on("message", (data: RawData, isBinary: boolean) => {
    if (finished) return;
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    if (!viewer) {
      if (isBinary) return fail("the first message must be a JSON session spec", "bad_request");
      let spec: unknown;
      try { spec = JSON.parse(buf.toString("utf8")); } catch { return fail("the first message must be valid JSON", "bad_request"); }
      if (typeof spec !== "object" || spec === null || Array.isArray(spec)) return fail("the first message must be a JSON object", "bad_request");
      return begin(spec as Record<string, unknown>);
    }
    if (isBinary) {
      if (!viewer.write(buf) && !inputPaused) { inputPaused = true; ws.pause(); }
      return;
    }
    let msg: Record<string, unknown>;
    try { msg = JSON.parse(buf.toString("utf8")); } catch { return; }
    if (typeof msg !== "object" || msg === null) return;
    if (msg.type === "resize" && Number.isSafeInteger(msg.rows) && Number.isSafeInteger(msg.cols)) viewer.resize(msg.rows as number, msg.cols as number);
    else if (msg.type === "detach") viewer.detach();
    else if (msg.type === "signal" && typeof msg.signal === "string" && SIGNALS.has(msg.signal)) viewer.signal(msg.signal);
    else if (msg.type === "ping") send({ type: "pong" });
  });
  ws.on("error", () => {});
  ws.on("close", () => {
    clearInterval(ping);
    unregister();
    // A client that goes away detaches; the session runs on.
    if (viewer && !finished) viewer.detach();
    finished = true;
  });
  if (first) ws.emit("message", Buffer.from(JSON.stringify(first)), false);
}
