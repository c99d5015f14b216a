// Every route of the API, as data. Route modules in src/server/routes/ bind a
// handler to each (router.route(ROUTES.x, handler)); a new route is one entry
// here (or in a module of its own) and one registration there.
import { Type } from "@sinclair/typebox";
import { BINARY, EMPTY, json, type RouteSpec } from "./route.js";
import { Health, ImageDetail, ImageList } from "./images.js";
import { SecretList, SecretMeta, SetSecretRequest } from "./secrets.js";
import { CreateSandboxRequest, CreatedSandbox, Sandbox, SandboxList } from "./sandboxes.js";
import { CreateTemplateRequest, Template, TemplateList } from "./templates.js";
import { ExecEvent, ExecRequest, ExecResult, WsExecRequest } from "./exec.js";
import { FileList, FilesQuery, FileWritten } from "./files.js";

const route = <T extends RouteSpec>(r: T): T => r;

export const ROUTES = {
  health: route({ method: "GET", path: "/health", summary: "Daemon status, version and engines", public: true, responses: { 200: json(Health) } }),
  openapi: route({ method: "GET", path: "/openapi.json", summary: "This document (OpenAPI 3.1)", public: true, responses: { 200: json(Type.Object({ openapi: Type.String() }, { additionalProperties: true })) } }),

  setSecret: route({
    method: "POST", path: "/secrets", summary: "Create or replace a secret (write-only: its value is never returned)", idempotent: true,
    body: SetSecretRequest, responses: { 200: json(SecretMeta), 201: json(SecretMeta) },
  }),
  listSecrets: route({ method: "GET", path: "/secrets", summary: "The caller's secret names (never values)", responses: { 200: json(SecretList) } }),
  deleteSecret: route({ method: "DELETE", path: "/secrets/:name", summary: "Delete a secret", responses: { 204: EMPTY }, errors: ["secret_not_found"] }),

  createSandbox: route({
    method: "POST", path: "/sandboxes", summary: "Create and boot a sandbox", body: CreateSandboxRequest, responses: { 201: json(CreatedSandbox) },
    errors: ["quota_exceeded", "name_taken", "daemon_busy", "too_large_for_host", "sandbox_failed", "egress_cap_exceeded"],
  }),
  listSandboxes: route({ method: "GET", path: "/sandboxes", summary: "The caller's sandboxes", responses: { 200: json(SandboxList) } }),
  getSandbox: route({ method: "GET", path: "/sandboxes/:id", summary: "One sandbox, by id or name", responses: { 200: json(Sandbox) }, errors: ["sandbox_not_found"] }),
  deleteSandbox: route({ method: "DELETE", path: "/sandboxes/:id", summary: "Destroy a sandbox", responses: { 204: EMPTY }, errors: ["sandbox_not_found", "reattaching"] }),

  exec: route({
    method: "POST", path: "/sandboxes/:id/exec", summary: "Run a command: buffered JSON, or NDJSON lines with Accept: application/x-ndjson",
    body: ExecRequest, responses: { 200: [json(ExecResult), { ndjson: ExecEvent }] },
    errors: ["sandbox_not_found", "not_running", "reattaching", "daemon_stopping"],
  }),
  execWebSocket: route({
    method: "GET", path: "/sandboxes/:id/exec/ws", websocket: true, summary: "Interactive exec over a WebSocket",
    description: "First client message: a JSON text frame (WsExecRequest). Then binary frames are stdin and text frames are {type: eof|resize|signal}. " +
      "The server sends binary frames [1|2, bytes...] for stdout|stderr and ends with a text frame {type:\"exit\"} or {type:\"error\"}.",
    body: WsExecRequest, responses: { 101: EMPTY }, errors: ["sandbox_not_found", "not_running", "reattaching", "upgrade_required"],
  }),

  readFile: route({
    method: "GET", path: "/sandboxes/:id/files", summary: "Read a file (bytes), or list a directory with ls=true", query: FilesQuery,
    responses: { 200: [BINARY, json(FileList)] }, errors: ["sandbox_not_found", "not_running", "file_not_found", "forbidden"],
  }),
  statFile: route({
    method: "HEAD", path: "/sandboxes/:id/files", summary: "A file's type, size, mode and owner in X-File-* headers", query: FilesQuery,
    responses: { 200: EMPTY }, errors: ["sandbox_not_found", "not_running", "file_not_found", "forbidden"],
  }),
  writeFile: route({
    method: "PUT", path: "/sandboxes/:id/files", summary: "Write a file (the body is its bytes, at most 64 MiB)", query: FilesQuery, body: "binary",
    responses: { 200: json(FileWritten) }, errors: ["sandbox_not_found", "not_running", "file_not_found", "forbidden", "payload_too_large"],
  }),

  createTemplate: route({ method: "POST", path: "/templates", summary: "Create a template", body: CreateTemplateRequest, responses: { 201: json(Template) }, errors: ["name_taken", "egress_cap_exceeded"] }),
  listTemplates: route({ method: "GET", path: "/templates", summary: "The caller's templates", responses: { 200: json(TemplateList) } }),
  getTemplate: route({ method: "GET", path: "/templates/:id", summary: "One template, by id or name", responses: { 200: json(Template) }, errors: ["template_not_found"] }),
  deleteTemplate: route({ method: "DELETE", path: "/templates/:id", summary: "Delete a template", responses: { 204: EMPTY }, errors: ["template_not_found"] }),

  listImages: route({ method: "GET", path: "/images", summary: "Images sandboxes can be created from", responses: { 200: json(ImageList) } }),
  getImage: route({ method: "GET", path: "/images/:name", summary: "One image in detail", responses: { 200: json(ImageDetail) }, errors: ["image_not_found"] }),
} satisfies Record<string, RouteSpec>;
