// GET/PUT /sandboxes/:id/archive?path=P — tar streams for `bhatti cp`.
// GET: a tar of P (a file, or a directory tree; symlinks stored as links),
//   its entries named from P's last component. Content-Type application/x-tar.
// PUT: the body is a tar stream extracted under the directory P (created with
//   its parents) as the sandbox user, uid 1000; `rename=NAME` replaces the
//   first component of every entry (copy to a new name). Entries that are
//   absolute, contain `..`, go through a symlink, or are not a file, directory
//   or symlink are refused with 400 (what was extracted before stays).
//   A body over MAX_ARCHIVE_BYTES is refused (413) — before anything reaches
//   the sandbox when Content-Length says so.
// Both flow under lohar's per-stream credit, like the files routes.
import { contract } from "../../api/routes-more.js";
import { pipeline } from "node:stream/promises";
import type { Router, Ctx } from "../http.js";
import { bodyChunks, bodyTooLarge, declaresTooMuch } from "../http.js";
import { HANDLED } from "../reply.js";
import { UserError, badRequest } from "../../util/errors.js";
import type { SandboxService } from "../../sandboxes/service.js";
import { checkFilePath } from "../file-path.js";
import { AgentError } from "../../engine/agent-client.js";
import type { OpenStreams } from "../streams.js";
import { MAX_ARCHIVE_BYTES } from "../../limits.js";

const ERRNO_STATUS: Record<string, number> = { ENOENT: 404, EACCES: 403, EPERM: 403, EROFS: 403, EEXIST: 409, ENOTDIR: 400, ELOOP: 400, ENAMETOOLONG: 400, ENOSPC: 507, EDQUOT: 507 };

/** lohar's archive errors ("archive: …") are the caller's: 400, or the status of the errno they end with. */
async function archiveCall<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof UserError) throw e;
    const msg = (e as Error).message;
    if (e instanceof AgentError && msg.startsWith("archive: ")) {
      const code = /\b(E[A-Z0-9]+)\b/.exec(msg)?.[1];
      throw new UserError(code && ERRNO_STATUS[code] ? ERRNO_STATUS[code] : 400, msg);
    }
    throw new UserError(502, `sandbox agent: ${msg}`);
  }
}

function renameParam(ctx: Ctx): string | undefined {
  const r = ctx.query.get("rename");
  if (r === null) return undefined;
  if (r === "" || r === "." || r === ".." || r.includes("/") || r.includes("\0") || Buffer.byteLength(r) > 255) throw badRequest("rename must be one path component (no /, not . or ..)");
  return r;
}

export function archiveRoutes(router: Router, sandboxes: SandboxService, streams: OpenStreams): void {
  router.route(contract("GET", "/sandboxes/:id/archive"), async (ctx) => {
    const agent = await sandboxes.ready(ctx.user, ctx.params.id);
    const path = checkFilePath(ctx.query.get("path"));
    const tar = await archiveCall(() => agent.openArchive(path));
    const res = ctx.res;
    res.writeHead(200, { "Content-Type": "application/x-tar" });
    const unregister = streams.add({ stop: () => {}, kill: () => { res.destroy(); tar.destroy(); } });
    try {
      await pipeline(tar, res); // the client's pace
    } catch {
      res.destroy(); // cut short: the client sees a truncated tar (no end-of-archive blocks)
    } finally {
      unregister();
    }
    return HANDLED;
  });

  router.route(contract("PUT", "/sandboxes/:id/archive"), async (ctx) => {
    const agent = await sandboxes.ready(ctx.user, ctx.params.id);
    const path = checkFilePath(ctx.query.get("path"));
    const rename = renameParam(ctx);
    const req = ctx.req;
    if (declaresTooMuch(req, MAX_ARCHIVE_BYTES)) throw bodyTooLarge(MAX_ARCHIVE_BYTES);
    let size = 0;
    const counted = async function* () { for await (const c of bodyChunks(req, MAX_ARCHIVE_BYTES)) { size += c.length; yield c; } };
    const unregister = streams.add({ stop: () => {}, kill: () => req.destroy() });
    try {
      await archiveCall(() => agent.writeArchive(path, counted(), rename));
    } catch (e) {
      if (!req.complete) ctx.res.setHeader("Connection", "close"); // refused mid-body: don't read the rest
      throw e;
    } finally {
      unregister();
    }
    return { path, size };
  });
}
