// /sandboxes, /templates, buffered and NDJSON exec, and files.
import type { Router, Ctx } from "../http.js";
import { readBody, readJson } from "../http.js";
import { Reply, HANDLED } from "../reply.js";
import { UserError, badRequest } from "../../util/errors.js";
import type { SandboxService } from "../../sandboxes/service.js";
import type { TemplateService } from "../../sandboxes/templates.js";
import type { ExecExit } from "../../protocol/agent.js";
import { checkFilePath } from "../file-path.js";

const MAX_FILE = 64 << 20;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Output as text when it is valid UTF-8, else as base64 under `<key>_base64`. */
function output(key: string, data: Buffer): Record<string, string> {
  try { return { [key]: utf8.decode(data) }; } catch { return { [`${key}_base64`]: data.toString("base64") }; }
}

function execSpec(body: Record<string, unknown>) {
  const { cmd, cwd, timeout_sec, stdin } = body; // an `env` field is accepted and deliberately ignored
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === "string" && !a.includes("\u0000"))) {
    throw badRequest("cmd must be a non-empty array of strings without NUL");
  }
  if (cwd !== undefined && (typeof cwd !== "string" || !cwd.startsWith("/"))) throw badRequest("cwd must be an absolute path");
  if (timeout_sec !== undefined && (typeof timeout_sec !== "number" || !(timeout_sec > 0) || timeout_sec > 86400)) {
    throw badRequest("timeout_sec must be a number of seconds between 0 and 86400");
  }
  if (stdin !== undefined && typeof stdin !== "string") throw badRequest("stdin must be a string");
  return { cmd: cmd as string[], cwd: cwd as string | undefined, timeoutMs: timeout_sec === undefined ? undefined : Math.round((timeout_sec as number) * 1000), stdin: stdin as string | undefined };
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
    const code = /: (E[A-Z0-9]+)(?: \([^()]*\))?$/.exec(msg)?.[1];
    if (code && ERRNO_STATUS[code]) throw new UserError(ERRNO_STATUS[code], msg);
    if (!code && /must be absolute|must be an integer/.test(msg)) throw new UserError(400, msg);
    throw new UserError(502, `sandbox agent: ${msg}`);
  }
}

export function sandboxRoutes(router: Router, sandboxes: SandboxService, templates: TemplateService): void {
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
    const agent = sandboxes.agent(ctx.user, ctx.params.id);
    const spec = execSpec(await readJson(ctx.req));
    const session = agent.exec({ cmd: spec.cmd, cwd: spec.cwd, timeout_ms: spec.timeoutMs, stdin: spec.stdin !== undefined });
    if (spec.stdin !== undefined) { session.write(Buffer.from(spec.stdin)); session.end(); }
    const ndjson = (ctx.req.headers.accept ?? "").includes("application/x-ndjson");
    if (!ndjson) {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      session.on("stdout", (b: Buffer) => out.push(b));
      session.on("stderr", (b: Buffer) => err.push(b));
      const exit = await session.done.catch((e: Error) => { throw new UserError(400, e.message); });
      return { ...exitBody(exit, spec.timeoutMs), ...output("stdout", Buffer.concat(out)), ...output("stderr", Buffer.concat(err)) };
    }
    const res = ctx.res;
    res.writeHead(200, { "Content-Type": "application/x-ndjson" });
    const line = (o: unknown) => res.write(JSON.stringify(o) + "\n");
    session.on("stdout", (b: Buffer) => line({ type: "stdout", ...output("data", b) }));
    session.on("stderr", (b: Buffer) => line({ type: "stderr", ...output("data", b) }));
    res.on("close", () => { if (!res.writableEnded) session.signal("SIGKILL"); });
    try {
      line({ type: "exit", ...exitBody(await session.done, spec.timeoutMs) });
    } catch (e) {
      line({ type: "error", message: (e as Error).message });
    }
    res.end();
    return HANDLED;
  });

  router.add("GET", "/sandboxes/:id/files", async (ctx) => {
    const agent = sandboxes.agent(ctx.user, ctx.params.id);
    const path = filePath(ctx);
    if (ctx.query.get("ls") === "true") return agentCall(() => agent.list(path));
    const data = await agentCall(() => agent.readFile(path));
    ctx.res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": data.length });
    ctx.res.end(data);
    return HANDLED;
  });
  router.add("HEAD", "/sandboxes/:id/files", async (ctx) => {
    const agent = sandboxes.agent(ctx.user, ctx.params.id);
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
    const agent = sandboxes.agent(ctx.user, ctx.params.id);
    const path = filePath(ctx);
    const modeQ = ctx.query.get("mode");
    if (modeQ !== null && !/^[0-7]{3,4}$/.test(modeQ)) throw badRequest("mode must be octal, e.g. 0644");
    const data = await readBody(ctx.req, MAX_FILE);
    await agentCall(() => agent.writeFile(path, data, modeQ === null ? undefined : parseInt(modeQ, 8)));
    return { path, size: data.length };
  });

  router.add("POST", "/templates", async ({ req, user }) => new Reply(201, templates.create(user, await readJson(req))));
  router.add("GET", "/templates", ({ user }) => templates.list(user));
  router.add("GET", "/templates/:id", ({ user, params }) => templates.get(user, params.id));
  router.add("DELETE", "/templates/:id", ({ user, params }) => {
    templates.delete(user, params.id);
    return new Reply(204);
  });
}
