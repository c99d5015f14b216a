// /sandboxes, /templates, buffered and NDJSON exec, and files.
//
// Streams keep to the daemon's bounds: exec output and file contents travel
// under lohar's per-stream credit (src/protocol/agent.ts), granted back only
// as the client really takes the bytes, so a client that stops reading stops
// the command (or the file read) instead of growing the daemon's memory.
// A client that disconnects from an exec ends the command (SIGKILL to its
// process group). When the daemon stops, open exec streams get a final
// `daemon_stopping` message and their commands are killed.
import { pipeline } from "node:stream/promises";
import type { Router, Ctx } from "../http.js";
import { bodyChunks, bodyTooLarge, declaresTooMuch, sendJson } from "../http.js";
import { Reply, HANDLED } from "../reply.js";
import { UserError, badRequest } from "../../util/errors.js";
import type { SandboxService } from "../../sandboxes/service.js";
import type { TemplateService } from "../../sandboxes/templates.js";
import type { ExecExit } from "../../protocol/agent.js";
import { checkFilePath } from "../file-path.js";
import { MAX_FILE_BYTES } from "../../limits.js";
import { execFailure } from "../../sandboxes/operations.js";
import type { OpenStreams } from "../streams.js";
import { CappedOutput, DEFAULT_OUTPUT_CAP, sendExecJson } from "../exec-output.js";
import { ROUTES } from "../../api/routes.js";
import type { ExecRequest } from "../../api/exec.js";

const MAX_FILE = MAX_FILE_BYTES;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const STOPPING = { type: "error", code: "daemon_stopping", message: "the daemon is stopping; the command was killed" };

/** Output as text when it is valid UTF-8, else as base64 under `<key>_base64`. */
function output(key: string, data: Buffer): Record<string, string> {
  try { return { [key]: utf8.decode(data) }; } catch { return { [`${key}_base64`]: data.toString("base64") }; }
}

/** The exec request, already checked against ExecRequest (src/api/exec.ts); an `env` field is accepted and deliberately ignored. */
function execSpec(body: ExecRequest) {
  const { cmd, cwd, timeout_sec, stdin, max_output_bytes, redact } = body;
  return {
    cmd, cwd, timeoutMs: timeout_sec === undefined ? undefined : Math.round(timeout_sec * 1000),
    stdin, maxOutput: max_output_bytes ?? DEFAULT_OUTPUT_CAP,
    redact: redact === true,
  };
}

function exitBody(exit: ExecExit, timeoutMs?: number): Record<string, unknown> {
  return {
    exit_code: exit.exit_code,
    ...(exit.signal ? { signal: exit.signal } : {}),
    ...(exit.timed_out ? { timed_out: true, message: `command timed out after ${(timeoutMs ?? 0) / 1000} s; its process group was killed` } : {}),
  };
}

function filePath(ctx: Ctx): string {
  return checkFilePath(ctx.query.get("path"));
}

const DRAIN_MS = 10_000;

/** Reads `body` to its end, dropping the chunks: true if it ended within `ms` (and within its size limit). */
async function drained(body: AsyncGenerator<Buffer>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => { timer = setTimeout(() => r(false), ms); });
  const read = (async () => {
    try {
      while (!(await body.next()).done) { /* dropped */ }
      return true;
    } catch {
      return false; // over the limit, or the client left
    }
  })();
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
  }
}


export function sandboxRoutes(router: Router, sandboxes: SandboxService, templates: TemplateService, streams: OpenStreams): void {
  router.route(ROUTES.createSandbox, async ({ body, user }) => {
    const { sandbox, warnings } = await sandboxes.create(user, body as Record<string, unknown>);
    return new Reply(201, { ...sandbox, warnings });
  });
  router.route(ROUTES.listSandboxes, ({ user }) => sandboxes.list(user));
  router.route(ROUTES.getSandbox, ({ user, params }) => sandboxes.get(user, params.id));
  router.route(ROUTES.deleteSandbox, async ({ user, params }) => {
    await sandboxes.destroy(user, params.id);
    return new Reply(204);
  });

  router.route(ROUTES.exec, async (ctx) => {
    const sb = await sandboxes.openReady(ctx.user, ctx.params.id);
    const spec = execSpec(ctx.body as ExecRequest);
    const redactor = await sandboxes.redactor(ctx.user, ctx.params.id, spec.redact);
    const outRed = redactor?.stream();
    const errRed = redactor?.stream();
    const ndjson = (ctx.req.headers.accept ?? "").includes("application/x-ndjson");
    const session = sb.exec({ cmd: spec.cmd, cwd: spec.cwd, timeout_ms: spec.timeoutMs, stdin: spec.stdin !== undefined }, { manualAck: ndjson });
    if (spec.stdin !== undefined) { session.write(Buffer.from(spec.stdin)); session.end(); }
    const res = ctx.res;
    // A client that goes away takes its command with it.
    res.on("close", () => { if (!res.writableEnded) session.cancel(); });
    let stop!: () => void;
    const stopped = new Promise<"stopped">((r) => (stop = () => r("stopped")));
    const unregister = streams.add({ stop, kill: () => res.destroy() });
    res.on("close", unregister);

    if (!ndjson) {
      // Output beyond the cap is dropped while the command runs on to its exit (or timeout).
      const out = new CappedOutput(spec.maxOutput);
      const err = new CappedOutput(spec.maxOutput);
      session.on("stdout", (b: Buffer) => out.add(outRed ? outRed.push(b) : b));
      session.on("stderr", (b: Buffer) => err.add(errRed ? errRed.push(b) : b));
      const exit = await Promise.race([session.done.catch((e: Error) => { throw execFailure(e); }), stopped]);
      if (exit === "stopped") {
        session.cancel();
        sendJson(res, 503, { error: STOPPING.message, code: STOPPING.code });
        return HANDLED;
      }
      if (outRed) out.add(outRed.end());
      if (errRed) err.add(errRed.end());
      await sendExecJson(res, exitBody(exit, spec.timeoutMs), [["stdout", out], ["stderr", err]]);
      return HANDLED;
    }

    // NDJSON: output is acknowledged to lohar only once the response flushed it to the client.
    res.writeHead(200, { "Content-Type": "application/x-ndjson" });
    const line = (o: unknown, ack = 0) => {
      if (res.writableEnded || res.destroyed) return;
      res.write(JSON.stringify(o) + "\n", ack ? (e) => { if (!e) session.consumed(ack); } : undefined);
    };
    // Redacted output may be held back (a possible match across chunks): its bytes are acknowledged at once (bounded by the longest pattern).
    const emit = (type: "stdout" | "stderr", b: Buffer, ack: number) => {
      if (b.length) line({ type, ...output("data", b) }, ack);
      else if (ack) session.consumed(ack);
    };
    session.on("stdout", (b: Buffer) => emit("stdout", outRed ? outRed.push(b) : b, b.length));
    session.on("stderr", (b: Buffer) => emit("stderr", errRed ? errRed.push(b) : b, b.length));
    const end = await Promise.race([session.done.then((x) => ({ exit: x }), (e: Error) => ({ error: execFailure(e) })), stopped]);
    if (outRed) emit("stdout", outRed.end(), 0);
    if (errRed) emit("stderr", errRed.end(), 0);
    if (end === "stopped") {
      session.cancel();
      line(STOPPING);
    } else if ("exit" in end) line({ type: "exit", ...exitBody(end.exit, spec.timeoutMs) });
    else line({ type: "error", message: end.error.message, code: end.error.code });
    if (!res.writableEnded) res.end();
    return HANDLED;
  });

  // Served by the upgrade handler (../ws.ts); listed here so the router (and the OpenAPI document) knows it. A plain GET is a 426.
  router.route(ROUTES.execWebSocket, () => { throw new UserError(426, "send Upgrade: websocket", {}, "upgrade_required"); });

  router.route(ROUTES.readFile, async (ctx) => {
    const sb = await sandboxes.openReady(ctx.user, ctx.params.id);
    const path = filePath(ctx);
    if (ctx.query.get("ls") === "true") return sb.list(path);
    const file = await sb.openFile(path);
    const res = ctx.res;
    res.writeHead(200, { "Content-Type": "application/octet-stream", ...(file.stat ? { "Content-Length": file.stat.size } : {}) });
    // A stopping daemon lets a download finish within the grace period, then cuts it.
    const unregister = streams.add({ stop: () => {}, kill: () => { res.destroy(); file.destroy(); } });
    try {
      await pipeline(file, res); // the client's pace; a client that leaves cancels the read
    } catch {
      // cut short (client gone, file changed, agent error): the client sees a short body
      res.destroy();
    } finally {
      unregister();
    }
    return HANDLED;
  });
  router.route(ROUTES.statFile, async (ctx) => {
    const sb = await sandboxes.openReady(ctx.user, ctx.params.id);
    const path = filePath(ctx);
    const st = await sb.stat(path);
    ctx.res.writeHead(200, {
      "Content-Length": st.type === "file" ? st.size : 0, "X-File-Type": st.type, "X-File-Mode": st.mode.toString(8),
      "X-File-Uid": String(st.uid), "X-File-Gid": String(st.gid), "Last-Modified": new Date(st.mtime).toUTCString(),
    });
    ctx.res.end();
    return HANDLED;
  });
  router.route(ROUTES.writeFile, async (ctx) => {
    const sb = await sandboxes.openReady(ctx.user, ctx.params.id);
    const path = filePath(ctx);
    const modeQ = ctx.query.get("mode");
    if (modeQ !== null && !/^[0-7]{3,4}$/.test(modeQ)) throw badRequest("mode must be octal, e.g. 0644");
    const req = ctx.req;
    if (declaresTooMuch(req, MAX_FILE)) throw bodyTooLarge(MAX_FILE); // before anything reaches the sandbox
    let size = 0;
    const counted = async function* () { for await (const c of bodyChunks(req, MAX_FILE)) { size += c.length; yield c; } };
    // The body streams to lohar at the pace lohar writes it to disk; a client that leaves cancels the upload.
    const unregister = streams.add({ stop: () => {}, kill: () => req.destroy() });
    const body = counted();
    try {
      await sb.writeFile(path, body, modeQ === null ? undefined : parseInt(modeQ, 8));
    } catch (e) {
      // Refused before the body was all read (lohar said no at once): read and
      // drop the rest (still bounded by the size limit) so that the client,
      // which is still sending, gets the answer instead of a reset. A client
      // that does not finish in time gets the answer and a closed connection.
      if (!req.complete && !(await drained(body, DRAIN_MS))) ctx.res.setHeader("Connection", "close");
      throw e;
    } finally {
      unregister();
    }
    return { path, size };
  });

  router.route(ROUTES.createTemplate, ({ body, user }) => new Reply(201, templates.create(user, body as Record<string, unknown>)));
  router.route(ROUTES.listTemplates, ({ user }) => templates.list(user));
  router.route(ROUTES.getTemplate, ({ user, params }) => templates.get(user, params.id));
  router.route(ROUTES.deleteTemplate, ({ user, params }) => {
    templates.delete(user, params.id);
    return new Reply(204);
  });
}
