// GET /sandboxes/:id/exec/ws — interactive exec over a WebSocket.
// Client -> server: first a JSON text frame {cmd, env?, cwd?, tty?, rows?, cols?};
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
import { parseTarget } from "./target.js";
import type { OpenStreams } from "./streams.js";

const PATH_RE = /^\/sandboxes\/([^/]+)\/exec\/ws\/?$/;
const SIGNALS = new Set(["SIGINT", "SIGTERM", "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT", "SIGSTOP", "SIGTSTP"]);

export function execWebSocket(app: App, sandboxes: SandboxService, log: (l: string) => void) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });

  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // node:http removed its own listeners from an upgraded socket: without
    // this, a reset during the handshake or the reply below is a crash.
    socket.on("error", () => socket.destroy());
    // async: a paused (warm) or idle-stopped sandbox is woken before the upgrade (SandboxService.ready).
    void (async () => { try {
      const { path, query } = parseTarget(req.url);
      const m = PATH_RE.exec(path);
      if (!m) throw new UserError(404, `no route for GET ${path}`);
      const user = app.admit(req, query);
      let ref: string;
      try { ref = decodeURIComponent(m[1]); } catch { throw new UserError(400, "malformed percent-encoding in the path"); }
      const agent = await sandboxes.ready(user, ref);
      wss.handleUpgrade(req, socket, head, (ws) => {
        // A malformed frame (unmasked, RSV bits, bad opcode, bad UTF-8, huge
        // length...) is an 'error' on the WebSocket: ws has already sent a
        // close frame with the reason; the socket is cut shortly after, and
        // 'close' ends the command as for any client that goes away.
        ws.on("error", () => { setTimeout(() => ws.terminate(), 1000).unref(); });
        serveExec(ws, agent, app.streams);
      });
    } catch (e) {
      const status = e instanceof UserError ? e.status : 500;
      const body = JSON.stringify({ error: e instanceof UserError ? e.message : "internal error" });
      if (!(e instanceof UserError)) log(`ws upgrade error: ${(e as Error).name}`);
      const headers = Object.entries(e instanceof UserError ? e.headers : {})
        .filter(([k]) => !/^(connection|content-(type|length))$/i.test(k)).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}Connection: close\r\n\r\n${body}`, () => socket.destroy());
    } })();
  };
}

function serveExec(ws: WebSocket, agent: ReturnType<SandboxService["agent"]>, streams: OpenStreams): void {
  let session: ExecSession | null = null;
  let finished = false;
  let inputPaused = false;
  const fail = (message: string) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: "error", message }));
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
  const forward = (tag: number) => (b: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(Buffer.concat([Buffer.from([tag]), b]), (err) => { if (!err) session?.consumed(b.length); });
  };
  ws.on("message", (data: RawData, isBinary: boolean) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    if (!session) {
      if (isBinary) return fail("the first message must be a JSON command spec");
      let spec: Record<string, unknown>;
      try { spec = JSON.parse(buf.toString("utf8")); } catch { return fail("the first message must be valid JSON"); }
      if (typeof spec !== "object" || spec === null) return fail("the first message must be a JSON object");
      const { cmd, cwd, tty, rows, cols } = spec;
      if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === "string")) return fail("cmd must be a non-empty array of strings");
      let env: Record<string, string>;
      try { env = validateEnv(spec.env); } catch (e) { return fail((e as Error).message); }
      if (cwd !== undefined && typeof cwd !== "string") return fail("cwd must be a string");
      const s = agent.exec({
        cmd: cmd as string[], env, cwd: cwd as string | undefined, stdin: true, tty: tty === true,
        rows: typeof rows === "number" ? rows : undefined, cols: typeof cols === "number" ? cols : undefined,
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
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: "exit", exit_code: exit.exit_code, ...(exit.signal ? { signal: exit.signal } : {}) }));
          ws.close(1000);
        },
        (e: Error) => { if (!finished) { finished = true; fail(e.message); } },
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
