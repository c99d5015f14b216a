// GET /sandboxes/:id/exec/ws — interactive exec over a WebSocket.
// Client -> server: first a JSON text frame {cmd, env?, cwd?, timeout_sec?, tty?, rows?, cols?}
// (checked by the same rules as POST exec: src/api/exec.ts);
// then binary frames (stdin) and JSON text frames {type: eof|resize|signal}.
// Server -> client: binary frames [1|2, ...bytes] for stdout|stderr, and JSON
// text frames ending with {type:"exit", exit_code} or {type:"error", message}.
// Flow: output is acknowledged to lohar only once its frame was written to the
// client's socket, so a client that stops reading stops the command; stdin is
// read from the client only as fast as lohar hands it to the command. A client
// that disconnects ends the command (SIGKILL to its process group). A stopping
// daemon sends {type:"error", code:"daemon_stopping"}, kills the command and
// closes with 1001.
import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import type { App } from "./app.js";
import type { SandboxService } from "../sandboxes/service.js";
import { UserError } from "../util/errors.js";
import { validateEnv } from "../sandboxes/validate.js";
import type { ExecSession } from "../engine/agent-client.js";
import { execFailure, type SandboxHandle } from "../sandboxes/operations.js";
import { parseTarget } from "./target.js";
import { firstProblem } from "../api/check.js";
import { WsExecRequest } from "../api/exec.js";
import type { ErrorCode } from "../api/codes.js";
import type { OpenStreams } from "./streams.js";
import type { Redactor, RedactStream } from "../secrets/redact.js";

const SIGNALS = new Set(["SIGINT", "SIGTERM", "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT", "SIGSTOP", "SIGTSTP"]);

export function execWebSocket(app: App, sandboxes: SandboxService, log: (l: string) => void) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });

  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // node:http removed its own listeners from an upgraded socket: without
    // this, a reset during the handshake or the reply below is a crash.
    socket.on("error", () => socket.destroy());
    void (async () => {
      try {
        const { path, query } = parseTarget(req.url);
        let params: Record<string, string>;
        try {
          const m = app.router.match("GET", path);
          if (!m.route.spec?.websocket) throw new UserError(404, `no route for GET ${path}`, {}, "route_not_found");
          params = m.params;
        } catch (e) {
          if (e instanceof UserError && e.status === 405) throw new UserError(404, `no route for GET ${path}`, {}, "route_not_found");
          throw e;
        }
        const user = app.admit(req, query);
        const sb = await sandboxes.openReady(user, params.id); // a paused (warm) or idle-stopped sandbox is woken first
        // Redaction: the sandbox's own setting, or ?redact=1 on the URL (the first message comes too late to decrypt before output flows).
        const redactQ = query.get("redact");
        // Resolved before the upgrade: the handlers are in place before the first message can arrive.
        const redactor = await sandboxes.redactor(user, params.id, redactQ === "1" || redactQ === "true");
        if (socket.destroyed) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          // A malformed frame (unmasked, RSV bits, bad opcode, bad UTF-8, huge
          // length...) is an 'error' on the WebSocket: ws has already sent a
          // close frame with the reason; the socket is cut shortly after, and
          // 'close' ends the command as for any client that goes away.
          ws.on("error", () => { setTimeout(() => ws.terminate(), 1000).unref(); });
          serveExec(ws, sb, app.streams, redactor);
        });
      } catch (e) {
        refuseUpgrade(socket, e, log);
      }
    })();
  };
}

/** Answers a refused WebSocket upgrade with an HTTP error ({error, code} of a UserError) and closes. */
export function refuseUpgrade(socket: Duplex, e: unknown, log: (l: string) => void): void {
  const status = e instanceof UserError ? e.status : 500;
  const body = JSON.stringify(e instanceof UserError ? { error: e.message, code: e.code } : { error: "internal error", code: "internal_error" });
  if (!(e instanceof UserError)) log(`ws upgrade error: ${(e as Error).name}`);
  const headers = Object.entries(e instanceof UserError ? e.headers : {})
    .filter(([k]) => !/^(connection|content-(type|length))$/i.test(k)).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}Connection: close\r\n\r\n${body}`, () => socket.destroy());
}

function serveExec(ws: WebSocket, sb: SandboxHandle, streams: OpenStreams, redactor: Redactor | null): void {
  const red = { 1: redactor?.stream(), 2: redactor?.stream() } as Record<number, RedactStream | undefined>;
  let session: ExecSession | null = null;
  let finished = false;
  let inputPaused = false;
  const fail = (message: string, code: ErrorCode = "invalid_request") => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: "error", message, code }));
    ws.close(1008);
  };
  const unregister = streams.add({
    stop: () => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: "error", code: "daemon_stopping", message: "the daemon is stopping; the command was killed" }));
      finished = true;
      session?.cancel();
      ws.close(1001, "daemon stopping");
    },
    kill: () => ws.terminate(),
  });
  // Output: acknowledged once the frame left for the client's socket.
  const send = (tag: number, out: Buffer, ack: number) => {
    if (ws.readyState !== ws.OPEN) return;
    if (out.length === 0) { if (ack) session?.consumed(ack); return; } // held back by redaction: bounded, acknowledged at once
    ws.send(Buffer.concat([Buffer.from([tag]), out]), (err) => { if (!err && ack) session?.consumed(ack); });
  };
  const forward = (tag: number) => (b: Buffer) => send(tag, red[tag] ? red[tag].push(b) : b, b.length);
  const flush = () => { for (const tag of [1, 2]) if (red[tag]) send(tag, red[tag].end(), 0); };
  ws.on("message", (data: RawData, isBinary: boolean) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    if (!session) {
      if (isBinary) return fail("the first message must be a JSON command spec");
      let spec: Record<string, unknown>;
      try { spec = JSON.parse(buf.toString("utf8")); } catch { return fail("the first message must be valid JSON"); }
      if (typeof spec !== "object" || spec === null || Array.isArray(spec)) return fail("the first message must be a JSON object");
      // The same rules as POST exec (src/api/exec.ts), plus env's byte limit.
      const problem = firstProblem(WsExecRequest, spec);
      if (problem) return fail(problem);
      const req = spec as WsExecRequest;
      let env: Record<string, string>;
      try { env = validateEnv(req.env); } catch (e) { return fail((e as Error).message); }
      const s = sb.exec({
        cmd: req.cmd, env, cwd: req.cwd, stdin: true, tty: req.tty === true, rows: req.rows, cols: req.cols,
        ...(req.timeout_sec !== undefined ? { timeout_ms: Math.round(req.timeout_sec * 1000) } : {}),
      }, { manualAck: true });
      session = s;
      s.on("stdout", forward(1));
      s.on("stderr", forward(2));
      s.on("drain", () => {
        if (inputPaused) { inputPaused = false; ws.resume(); }
      });
      s.done.then(
        (exit) => {
          if (finished) return;
          finished = true;
          flush();
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: "exit", exit_code: exit.exit_code, ...(exit.signal ? { signal: exit.signal } : {}), ...(exit.timed_out ? { timed_out: true } : {}) }));
          ws.close(1000);
        },
        (e: Error) => { if (!finished) { finished = true; const err = execFailure(e); fail(err.message, err.code); } },
      );
      return;
    }
    if (isBinary) {
      // lohar has not taken the earlier input: stop reading the client until it has.
      if (!session.write(buf) && !inputPaused) { inputPaused = true; ws.pause(); }
      return;
    }
    let msg: Record<string, unknown>;
    try { msg = JSON.parse(buf.toString("utf8")); } catch { return; }
    if (typeof msg !== "object" || msg === null) return; // e.g. `null`: not a control message
    if (msg.type === "eof") session.end();
    else if (msg.type === "resize" && typeof msg.rows === "number" && typeof msg.cols === "number") session.resize(msg.rows, msg.cols);
    else if (msg.type === "signal" && typeof msg.signal === "string" && SIGNALS.has(msg.signal)) session.signal(msg.signal);
  });
  ws.on("error", () => {}); // a malformed frame from the client: ws closes the socket, 'close' follows
  ws.on("close", () => {
    unregister();
    // A client that goes away takes its command with it.
    if (session && !finished) session.cancel();
  });
}
