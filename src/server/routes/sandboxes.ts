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
import { bodyChunks, bodyTooLarge, declaresTooMuch, readJson, sendJson } from "../http.js";
import { Reply, HANDLED } from "../reply.js";
import { UserError, badRequest } from "../../util/errors.js";
import type { SandboxService } from "../../sandboxes/service.js";
import type { TemplateService } from "../../sandboxes/templates.js";
import type { ExecExit } from "../../protocol/agent.js";
import { checkFilePath } from "../file-path.js";
import { AgentError } from "../../engine/agent-client.js";
import type { OpenStreams } from "../streams.js";
import { CappedOutput, DEFAULT_OUTPUT_CAP, MAX_OUTPUT_CAP, sendExecJson } from "../exec-output.js";

const MAX_FILE = 64 << 20;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const STOPPING = { type: "error", code: "daemon_stopping", message: "the daemon is stopping; the command was killed" };

/** Output as text when it is valid UTF-8, else as base64 under `<key>_base64`. */
function output(key: string, data: Buffer): Record<string, string> {
  try { return { [key]: utf8.decode(data) }; } catch { return { [`${key}_base64`]: data.toString("base64") }; }
}

function execSpec(body: Record<string, unknown>) {
  const { cmd, cwd, timeout_sec, stdin, max_output_bytes } = body; // an `env` field is accepted and deliberately ignored
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === "string" && !a.includes("\u0000"))) {
    throw badRequest("cmd must be a non-empty array of strings without NUL");
  }
  if (cwd !== undefined && (typeof cwd !== "string" || !cwd.startsWith("/"))) throw badRequest("cwd must be an absolute path");
  if (timeout_sec !== undefined && (typeof timeout_sec !== "number" || !(timeout_sec > 0) || timeout_sec > 86400)) {
    throw badRequest("timeout_sec must be a number of seconds between 0 and 86400");
  }
  if (stdin !== undefined && typeof stdin !== "string") throw badRequest("stdin must be a string");
  if (max_output_bytes !== undefined && (!Number.isSafeInteger(max_output_bytes) || (max_output_bytes as number) < 0 || (max_output_bytes as number) > MAX_OUTPUT_CAP)) {
    throw badRequest(`max_output_bytes must be an integer between 0 and ${MAX_OUTPUT_CAP}`);
  }
  return {
    cmd: cmd as string[], cwd: cwd as string | undefined, timeoutMs: timeout_sec === undefined ? undefined : Math.round((timeout_sec as number) * 1000),
    stdin: stdin as string | undefined, maxOutput: (max_output_bytes as number | undefined) ?? DEFAULT_OUTPUT_CAP,
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

// lohar's file errors end in ": CODE (reason)" after the path; the status comes
// from that code only, since the path before it is the user's and may say anything.
const ERRNO_STATUS: Record<string, number> = {
  ENOENT: 404, EACCES: 403, EPERM: 403, EROFS: 403, EEXIST: 409, ENOTEMPTY: 409,
  EISDIR: 400, ENOTDIR: 400, ELOOP: 400, ENAMETOOLONG: 400, EINVAL: 400,
};

/** Agent errors (not found, permission denied...) are the user's, and never carry values. */
async function agentCall<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof UserError) throw e;
    const msg = (e as Error).message;
    const agentCode = e instanceof AgentError ? e.agentCode : undefined;
    if (agentCode === "forbidden_path") throw new UserError(403, msg);
    if (agentCode === "not_regular_file") throw new UserError(400, msg);
    const code = /: (E[A-Z0-9]+)(?: \([^()]*\))?$/.exec(msg)?.[1];
    if (code && ERRNO_STATUS[code]) throw new UserError(ERRNO_STATUS[code], msg);
    if (!code && /must be absolute|must be an integer/.test(msg)) throw new UserError(400, msg);
    throw new UserError(502, `sandbox agent: ${msg}`);
  }
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
  router.add("POST", "/sandboxes", async ({ req, user }) => {
    const { sandbox, warnings } = await sandboxes.create(user, await readJson(req));
    return new Reply(201, { ...sandbox, warnings });
  });
  router.add("GET", "/sandboxes", ({ user }) => sandboxes.list(user));
  router.add("GET", "/sandboxes/:id", ({ user, params }) => sandboxes.get(user, params.id));
  router.add("DELETE", "/sandboxes/:id", async ({ user, params }) => {
    await sandboxes.destroy(user, params.id);
    return new Reply(204);
  });

  router.add("POST", "/sandboxes/:id/exec", async (ctx) => {
    const agent = await sandboxes.ready(ctx.user, ctx.params.id);
    const spec = execSpec(await readJson(ctx.req));
    const ndjson = (ctx.req.headers.accept ?? "").includes("application/x-ndjson");
    const session = agent.exec({ cmd: spec.cmd, cwd: spec.cwd, timeout_ms: spec.timeoutMs, stdin: spec.stdin !== undefined }, { manualAck: ndjson });
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
      session.on("stdout", (b: Buffer) => out.add(b));
      session.on("stderr", (b: Buffer) => err.add(b));
      const exit = await Promise.race([session.done.catch((e: Error) => { throw new UserError(400, e.message); }), stopped]);
      if (exit === "stopped") {
        session.cancel();
        sendJson(res, 503, { error: STOPPING.message, code: STOPPING.code });
        return HANDLED;
      }
      await sendExecJson(res, exitBody(exit, spec.timeoutMs), [["stdout", out], ["stderr", err]]);
      return HANDLED;
    }

    // NDJSON: output is acknowledged to lohar only once the response flushed it to the client.
    res.writeHead(200, { "Content-Type": "application/x-ndjson" });
    const line = (o: unknown, ack = 0) => {
      if (res.writableEnded || res.destroyed) return;
      res.write(JSON.stringify(o) + "\n", ack ? (e) => { if (!e) session.consumed(ack); } : undefined);
    };
    session.on("stdout", (b: Buffer) => line({ type: "stdout", ...output("data", b) }, b.length));
    session.on("stderr", (b: Buffer) => line({ type: "stderr", ...output("data", b) }, b.length));
    const end = await Promise.race([session.done.then((x) => ({ exit: x }), (e: Error) => ({ error: e.message })), stopped]);
    if (end === "stopped") {
      session.cancel();
      line(STOPPING);
    } else if ("exit" in end) line({ type: "exit", ...exitBody(end.exit, spec.timeoutMs) });
    else line({ type: "error", message: end.error });
    if (!res.writableEnded) res.end();
    return HANDLED;
  });

  router.add("GET", "/sandboxes/:id/files", async (ctx) => {
    const agent = await sandboxes.ready(ctx.user, ctx.params.id);
    const path = filePath(ctx);
    if (ctx.query.get("ls") === "true") return agentCall(() => agent.list(path));
    const file = await agentCall(() => agent.openFile(path));
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
  router.add("HEAD", "/sandboxes/:id/files", async (ctx) => {
    const agent = await sandboxes.ready(ctx.user, ctx.params.id);
    const path = filePath(ctx);
    const st = await agentCall(() => agent.stat(path));
    ctx.res.writeHead(200, {
      "Content-Length": st.type === "file" ? st.size : 0, "X-File-Type": st.type, "X-File-Mode": st.mode.toString(8),
      "X-File-Uid": String(st.uid), "X-File-Gid": String(st.gid), "Last-Modified": new Date(st.mtime).toUTCString(),
    });
    ctx.res.end();
    return HANDLED;
  });
  router.add("PUT", "/sandboxes/:id/files", async (ctx) => {
    const agent = await sandboxes.ready(ctx.user, ctx.params.id);
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
      await agentCall(() => agent.writeFile(path, body, modeQ === null ? undefined : parseInt(modeQ, 8)));
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

  router.add("POST", "/templates", async ({ req, user }) => new Reply(201, templates.create(user, await readJson(req))));
  router.add("GET", "/templates", ({ user }) => templates.list(user));
  router.add("GET", "/templates/:id", ({ user, params }) => templates.get(user, params.id));
  router.add("DELETE", "/templates/:id", ({ user, params }) => {
    templates.delete(user, params.id);
    return new Reply(204);
  });
}
