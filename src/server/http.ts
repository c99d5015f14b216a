// A small JSON router over node:http: path params, 404/405, body limits, and
// errors that never leak internals. Route modules register handlers on it.
import type { IncomingMessage, ServerResponse } from "node:http";
import { UserError } from "../util/errors.js";
import type { User } from "../users/service.js";
import { RawJson } from "./reply.js";
import type { RouteSpec } from "../api/route.js";

export const MAX_BODY = 1 << 20; // 1 MiB

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  user: User; // set by auth for every route except public ones
  /** The JSON body, already checked against the route's schema (routes whose spec has a `body` schema). */
  body: unknown;
}

export type Handler = (ctx: Ctx) => Promise<unknown> | unknown;

export interface Route { method: string; pattern: string; re: RegExp; keys: string[]; handler: Handler; public: boolean; spec?: RouteSpec }

export class Router {
  private routes: Route[] = [];

  /** A route of the contract (src/api/routes.ts): its body schema is checked before the handler runs. */
  route(spec: RouteSpec, handler: Handler): void {
    this.add(spec.method, spec.path, handler, { public: spec.public, spec });
  }

  /** A route without a contract entry (GET /openapi.json lists it as undocumented, and its completeness test fails). */
  add(method: string, pattern: string, handler: Handler, opts: { public?: boolean; spec?: RouteSpec } = {}): void {
    const keys: string[] = [];
    const re = new RegExp("^" + pattern.replace(/:([a-z_]+)/g, (_, k: string) => { keys.push(k); return "([^/]+)"; }) + "/?$");
    this.routes.push({ method, pattern, re, keys, handler, public: !!opts.public, ...(opts.spec ? { spec: opts.spec } : {}) });
  }

  /** Every route, in registration order: what GET /openapi.json is generated from. */
  table(): readonly Route[] {
    return this.routes;
  }

  /** The route for a request, or a UserError (404 unknown path, 405 wrong method). */
  match(method: string, path: string): { route: Route; params: Record<string, string> } {
    let pathKnown = false;
    const allowed: string[] = [];
    for (const r of this.routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      pathKnown = true;
      allowed.push(r.method);
      if (r.method !== method && !(method === "HEAD" && r.method === "GET" && !this.hasExplicitHead(path))) continue;
      const params: Record<string, string> = {};
      r.keys.forEach((k, i) => {
        try { params[k] = decodeURIComponent(m[i + 1]); } catch { throw new UserError(400, "malformed percent-encoding in the path"); }
      });
      return { route: r, params };
    }
    if (pathKnown) throw new UserError(405, `method ${method} not allowed on ${path}`, { Allow: [...new Set(allowed)].join(", ") });
    throw new UserError(404, `no route for ${method} ${path}`, {}, "route_not_found");
  }

  private hasExplicitHead(path: string): boolean {
    return this.routes.some((r) => r.method === "HEAD" && r.re.test(path));
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) { res.end(); return; }
  const data = body === undefined ? "" : body instanceof RawJson ? body.text : JSON.stringify(body);
  res.writeHead(status, { ...(data ? { "Content-Type": "application/json" } : {}), "Content-Length": Buffer.byteLength(data), ...headers });
  res.end(data);
}

export function sendError(res: ServerResponse, err: unknown): void {
  if (err instanceof UserError) {
    sendJson(res, err.status, { error: err.message, code: err.code }, err.headers);
  } else {
    // Never a stack trace or an internal message (which could quote input) in a response.
    sendJson(res, 500, { error: "internal error", code: "internal_error" });
  }
}

/** 413 for a body over `limit`; the connection closes after the answer, since the rest of the body is not read. */
export function bodyTooLarge(limit: number): UserError {
  return new UserError(413, `request body exceeds ${limit} bytes`, { Connection: "close" });
}

/** Whether the request's declared Content-Length is already over `limit`. */
export function declaresTooMuch(req: IncomingMessage, limit: number): boolean {
  return Number(req.headers["content-length"] ?? "0") > limit;
}

/** The request body as chunks, as they come, at most `limit` bytes (413 beyond). Never closes the request: the caller decides. */
export async function* bodyChunks(req: IncomingMessage, limit: number): AsyncGenerator<Buffer> {
  if (declaresTooMuch(req, limit)) throw bodyTooLarge(limit);
  let size = 0;
  const it = req[Symbol.asyncIterator]();
  for (;;) {
    const next = await it.next();
    if (next.done) return;
    const chunk = next.value as Buffer;
    size += chunk.length;
    if (size > limit) throw bodyTooLarge(limit);
    yield chunk;
  }
}

/**
 * Reads the raw body, enforcing MAX_BODY (413) without buffering more than that.
 * Over the limit, the rest is not read: the 413 closes the connection.
 */
export function readBody(req: IncomingMessage, limit = MAX_BODY): Promise<Buffer> {
  const tooBig = () => bodyTooLarge(limit);
  if (declaresTooMuch(req, limit)) return Promise.reject(tooBig());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (err: Error | null) => {
      req.off("data", onData).off("end", onEnd).off("error", onClose).off("close", onClose);
      if (err) { chunks.length = 0; reject(err); } else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) settle(tooBig());
      else chunks.push(chunk);
    };
    const onEnd = () => settle(null);
    const onClose = () => settle(new UserError(400, "request body was cut short")); // the client went away
    req.on("data", onData).once("end", onEnd).once("error", onClose).once("close", onClose);
  });
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses a JSON object body. Parse errors are reported generically: V8's messages quote the input. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req);
  let text: string;
  try { text = utf8.decode(raw); } catch { throw new UserError(400, "request body is not valid UTF-8"); }
  if (text.trim() === "") throw new UserError(400, "request body must be a JSON object");
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { throw new UserError(400, "request body is not valid JSON"); }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UserError(400, "request body must be a JSON object");
  return parsed as Record<string, unknown>;
}
