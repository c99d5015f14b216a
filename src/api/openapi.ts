// GET /openapi.json: an OpenAPI 3.1 document generated from the router's own
// table, so a route cannot be served without being listed. Routes registered
// without a contract entry are listed too, marked `x-undocumented` (and the
// completeness test fails on them).
import type { TSchema } from "@sinclair/typebox";
import { ERROR_CODES } from "./codes.js";
import { ErrorBody } from "./common.js";
import { isIdempotent, type Body, type RouteSpec } from "./route.js";
import { VERSION } from "../version.js";

export interface TableRoute { method: string; pattern: string; public: boolean; spec?: RouteSpec }

type Json = Record<string, unknown>;

/** A plain JSON copy of a TypeBox schema (symbols dropped), nested $ids removed. */
function plain(schema: TSchema, components: Json): Json {
  const copy = JSON.parse(JSON.stringify(schema)) as Json;
  const strip = (o: unknown, top: boolean): void => {
    if (Array.isArray(o)) { o.forEach((x) => strip(x, false)); return; }
    if (!o || typeof o !== "object") return;
    const r = o as Json;
    if (!top) delete r.$id;
    if ("errorMessage" in r) { r["x-error-message"] = r.errorMessage; delete r.errorMessage; }
    for (const v of Object.values(r)) strip(v, false);
  };
  strip(copy, true);
  const id = copy.$id as string | undefined;
  if (!id) return copy;
  delete copy.$id;
  components[id] = copy;
  return { $ref: `#/components/schemas/${id}` };
}

function content(bodies: Body[], components: Json): Json {
  const out: Json = {};
  for (const b of bodies) {
    if ("json" in b) out["application/json"] = { schema: plain(b.json, components) };
    else if ("ndjson" in b) out["application/x-ndjson"] = { schema: plain(b.ndjson, components) }; // the schema of one line
    else if ("binary" in b) out["application/octet-stream"] = { schema: { type: "string", contentMediaType: "application/octet-stream" } };
  }
  return out;
}

const COMMON_ERRORS = ["invalid_request", "unauthorized", "rate_limited", "daemon_busy", "payload_too_large", "internal_error"] as const;

function operation(r: TableRoute, components: Json): Json {
  const s = r.spec;
  const params = [...r.pattern.matchAll(/:([a-z_]+)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
  if (!s) {
    return { summary: "undocumented", "x-undocumented": true, parameters: params, responses: { default: { description: "undocumented" } } };
  }
  if (s.query) {
    const q = plain(s.query, {}) as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {})) params.push({ name, in: "query", required: (q.required ?? []).includes(name), schema: schema as { type: string } });
  }
  const responses: Json = {};
  for (const [status, b] of Object.entries(s.responses)) {
    const bodies = Array.isArray(b) ? b : [b];
    const c = content(bodies, components);
    responses[status] = { description: Number(status) === 101 ? "switching to the WebSocket protocol" : "success", ...(Object.keys(c).length ? { content: c } : {}) };
  }
  const codes = [...new Set([...(s.public ? [] : COMMON_ERRORS), ...(s.errors ?? [])])];
  responses.default = {
    description: `An error: {error, code}. Codes this route may answer with: ${codes.join(", ")}.`,
    content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorBody" } } },
  };
  const op: Json = {
    operationId: `${r.method.toLowerCase()}${r.pattern.replace(/[/:]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase())}`,
    summary: s.summary,
    ...(s.description ? { description: s.description } : {}),
    ...(params.length ? { parameters: params } : {}),
    responses,
    "x-idempotent": isIdempotent(s),
    ...(s.websocket ? { "x-websocket": true } : {}),
    ...(s.public ? { security: [] } : {}),
  };
  if (s.body === "binary") op.requestBody = { required: true, content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } } };
  else if (s.body && s.websocket) op["x-websocket-first-message"] = plain(s.body, components);
  else if (s.body) op.requestBody = { required: true, content: { "application/json": { schema: plain(s.body, components) } } };
  return op;
}

export const openApiPath = (pattern: string): string => pattern.replace(/:([a-z_]+)/g, "{$1}");

export function openApiDocument(table: readonly TableRoute[]): Json {
  const components: Json = {};
  const paths: Record<string, Json> = {};
  for (const r of table) {
    const p = openApiPath(r.pattern);
    (paths[p] ??= {})[r.method.toLowerCase()] = operation(r, components);
  }
  plain(ErrorBody, components); // hoisted under its $id, ErrorBody
  components.ErrorCode = {
    type: "string", enum: Object.keys(ERROR_CODES),
    description: Object.entries(ERROR_CODES).map(([c, d]) => `- \`${c}\`: ${d}`).join("\n"),
  };
  (components.ErrorBody as { properties: Json }).properties.code = { $ref: "#/components/schemas/ErrorCode" };
  return {
    openapi: "3.1.0",
    info: {
      title: "bhatti", version: VERSION,
      description: "Self-hosted sandbox orchestrator. Every error body is {error, code}; `code` is stable (see ErrorCode). " +
        "Calls marked x-idempotent may be retried after 429/503, after the Retry-After header's seconds.",
    },
    components: {
      schemas: components,
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "an API key (bht_...) from `bhatti user create`" } },
    },
    security: [{ bearer: [] }],
    paths,
  };
}

/** Routes of `table` the document lacks or documents only as undocumented: "METHOD /path" each. */
export function missingFromDocument(table: readonly TableRoute[], doc: Json): string[] {
  const paths = doc.paths as Record<string, Record<string, Json>>;
  return table.filter((r) => {
    const op = paths[openApiPath(r.pattern)]?.[r.method.toLowerCase()];
    return !op || op["x-undocumented"] === true || !op.responses;
  }).map((r) => `${r.method} ${r.pattern}`);
}
