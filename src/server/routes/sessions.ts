// Sessions over HTTP (issue 12): list, start a background command, kill,
// logs (the scrollback, or with follow=true the scrollback then live output).
// A sandbox of another user is a 404 (SandboxService.agent); a session id
// lohar does not know is a 404 too, with the same words for every id.
import { contract } from "../../api/routes-more.js";
import type { Router } from "../http.js";
import { readJson } from "../http.js";
import { Reply, HANDLED } from "../reply.js";
import { UserError, badRequest } from "../../util/errors.js";
import type { SandboxService } from "../../sandboxes/service.js";
import type { OpenStreams } from "../streams.js";
import { attachSession, isNoSession, killSession, listSessions, startDetached, validSessionId } from "../../engine/sessions.js";
import { AgentError } from "../../engine/agent-client.js";
import { sessionSpec } from "../session-spec.js";

const SIGNAL_RE = /^SIG[A-Z0-9]{2,8}$/;

const noSession = () => new UserError(404, "no such session");

function sessionId(raw: string): string {
  if (!validSessionId(raw)) throw noSession();
  return raw;
}

async function agentCall<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof UserError) throw e;
    if (isNoSession(e)) throw noSession();
    if (e instanceof AgentError && e.agentCode === "too_many_sessions") throw new UserError(409, e.message);
    if (e instanceof AgentError && /must be|unknown signal|cwd|ENOENT|EACCES|ENOTDIR|tty not supported/.test(e.message)) throw new UserError(400, e.message);
    throw new UserError(502, `sandbox agent: ${(e as Error).message}`);
  }
}

export function sessionRoutes(router: Router, sandboxes: SandboxService, streams: OpenStreams): void {
  router.route(contract("GET", "/sandboxes/:id/sessions"), async ({ user, params }) => {
    const agent = await sandboxes.ready(user, params.id);
    return agentCall(() => listSessions(agent));
  });

  // A background command (`bhatti exec --detach`): pipes unless tty is true; env is ignored as for POST exec.
  router.route(contract("POST", "/sandboxes/:id/sessions"), async ({ req, user, params }) => {
    const agent = await sandboxes.ready(user, params.id);
    const body = await readJson(req);
    if (body.cmd === undefined) throw badRequest("cmd must be a non-empty array of strings without NUL");
    const spec = sessionSpec(body, false, false);
    return new Reply(201, await agentCall(() => startDetached(agent, spec)));
  });

  router.route(contract("GET", "/sandboxes/:id/sessions/:sid"), async ({ user, params }) => {
    const agent = await sandboxes.ready(user, params.id);
    const id = sessionId(params.sid);
    const s = (await agentCall(() => listSessions(agent))).find((x) => x.id === id);
    if (!s) throw noSession();
    return s;
  });

  // Kill: the signal (default SIGKILL) goes to the session's process group.
  router.route(contract("DELETE", "/sandboxes/:id/sessions/:sid"), async ({ user, params, query }) => {
    const agent = await sandboxes.ready(user, params.id);
    const id = sessionId(params.sid);
    const signal = query.get("signal") ?? "SIGKILL";
    if (!SIGNAL_RE.test(signal)) throw badRequest("signal must be a signal name such as SIGTERM");
    return agentCall(() => killSession(agent, id, signal));
  });

  // Output as bytes, acknowledged to lohar as the response flushes it: a slow reader slows the session.
  router.route(contract("GET", "/sandboxes/:id/sessions/:sid/logs"), async (ctx) => {
    const agent = await sandboxes.ready(ctx.user, ctx.params.id);
    const id = sessionId(ctx.params.sid);
    const follow = ctx.query.get("follow");
    if (follow !== null && follow !== "true" && follow !== "false") throw badRequest("follow must be true or false");
    const v = attachSession(agent, id, { replay: true, follow: follow === "true" }, { manualAck: true });
    const res = ctx.res;
    // Every listener is in place before the first frame can arrive: "session", output and the end may come in one read.
    let ended: () => void = () => {};
    const finished = new Promise<void>((r) => (ended = r));
    const started = new Promise<void>((resolve, reject) => {
      v.once("session", () => {
        res.writeHead(200, { "Content-Type": "application/octet-stream", "X-Session-Id": id });
        resolve();
      });
      v.on("error", (e: Error) => {
        reject(e);
        if (res.headersSent) res.destroy();
        ended();
      });
    });
    v.on("stdout", (b: Buffer) => {
      if (res.writableEnded || res.destroyed) return;
      res.write(b, (e) => { if (!e) v.consumed(b.length); });
    });
    const done = () => { if (!res.writableEnded) res.end(); ended(); };
    v.once("exit", done);
    v.once("detached", done);
    res.on("close", () => { if (!res.writableEnded) v.detach(); ended(); });
    await agentCall(() => started);
    const unregister = streams.add({ stop: () => { v.detach(); res.end(); }, kill: () => res.destroy() });
    await finished;
    unregister();
    return HANDLED;
  });
}
