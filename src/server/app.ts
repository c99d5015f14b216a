// Wires routes, auth and rate limits into a request listener.
import type { IncomingMessage, ServerResponse } from "node:http";
import { Router, sendError, sendJson, type Ctx } from "./http.js";
import { authenticate } from "./auth.js";
import { RateLimiter } from "./ratelimit.js";
import { Reply, HANDLED } from "./reply.js";
import { UserError } from "../util/errors.js";
import { OpenStreams } from "./streams.js";
import type { UserService, User } from "../users/service.js";
import type { ConnectionGate } from "./connections.js";
import { parseTarget } from "./target.js";
import { readJson } from "./http.js";
import { check } from "../api/check.js";

export interface AppOptions { users: UserService; limiter: RateLimiter; log: (line: string) => void; connections?: ConnectionGate }

export class App {
  readonly router = new Router();
  /** Exec streams and file transfers in progress (the daemon ends them when it stops). */
  readonly streams = new OpenStreams();
  private inflight = 0;

  constructor(private readonly opts: AppOptions) {}

  get busy(): number { return this.inflight; }

  /** Authenticates, counts the connection against the user's cap, and rate-limits a request (also used for WebSocket upgrades). */
  admit(req: IncomingMessage, query: URLSearchParams): User {
    const user = authenticate(req, query, this.opts.users);
    this.opts.connections?.claim(req.socket, user.id);
    const wait = this.opts.limiter.take(user.id);
    if (wait > 0) throw new UserError(429, "rate limit exceeded", { "Retry-After": String(wait) });
    return user;
  }

  listener = (req: IncomingMessage, res: ServerResponse): void => {
    this.inflight++;
    res.on("close", () => { this.inflight--; });
    this.handle(req, res).catch((err) => {
      if (!(err instanceof UserError)) this.opts.log(`internal error on ${req.method} ${safePath(req)}: ${describe(err)}`);
      if (req.socket && !req.socket.destroyed) sendError(res, err); // else the client went away: nobody to answer
    });
  };

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, query } = parseTarget(req.url);
    const { route, params } = this.router.match(req.method ?? "GET", path);
    const ctx: Ctx = { req, res, params, query, user: undefined as unknown as User, body: undefined };
    if (!route.public) ctx.user = this.admit(req, query);
    if (route.spec?.websocket) throw new UserError(426, `${route.spec.path} is a WebSocket route: send Upgrade: websocket`, { Upgrade: "websocket" }, "upgrade_required");
    const schema = route.spec?.body;
    if (schema !== undefined && schema !== "binary") ctx.body = check(schema, await readJson(req));
    const out = await route.handler(ctx);
    if (out === HANDLED) return;
    if (out instanceof Reply) sendJson(res, out.status, out.body, out.headers);
    else sendJson(res, 200, out);
  }
}

function safePath(req: IncomingMessage): string {
  return (req.url ?? "/").split("?")[0];
}

/** Error description for the daemon log: class and errno code only, never a message that could quote input. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return `${err.name}${code ? ` (${code})` : ""}${err.stack ? ` at ${err.stack.split("\n")[1]?.trim() ?? ""}` : ""}`;
  }
  return typeof err;
}
