// What a route is in the contract: method, path, bodies and whether a client
// may retry it. The server builds its router from these (src/server/http.ts
// Router.route), GET /openapi.json is generated from the router's table, and
// the typed client and the tests read them too.
import type { TSchema } from "@sinclair/typebox";
import type { ErrorCode } from "./codes.js";

export type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";

/** A response body: JSON of a schema, raw bytes, NDJSON lines of a schema, or nothing. */
export type Body =
  | { json: TSchema }
  | { binary: true }
  | { ndjson: TSchema }
  | { empty: true };

export interface RouteSpec {
  method: Method;
  /** `/sandboxes/:id`: `:name` segments are path parameters. */
  path: string;
  summary: string;
  description?: string;
  /** No API key needed. */
  public?: boolean;
  /** A WebSocket upgrade (GET), not a plain request. */
  websocket?: boolean;
  /** Safe to send again after a 429/503: the default is every method but POST. */
  idempotent?: boolean;
  /** A JSON body checked against this schema before the handler runs, or a raw byte body. */
  body?: TSchema | "binary";
  /** Query parameters (documented; the handler checks them). */
  query?: TSchema;
  /** Successful answers, by status. A 200 may offer several content types (JSON or NDJSON). */
  responses: Record<number, Body | Body[]>;
  /** The error codes this route answers with besides the ones every route may (invalid_request, unauthorized, rate_limited...). */
  errors?: ErrorCode[];
}

export const isIdempotent = (r: Pick<RouteSpec, "method" | "idempotent">): boolean => r.idempotent ?? r.method !== "POST";

export const json = (schema: TSchema): Body => ({ json: schema });
export const EMPTY: Body = { empty: true };
export const BINARY: Body = { binary: true };
