// The contract against a real daemon: GET /openapi.json lists every route the
// router serves (and documents each), every documented route is really served,
// error bodies carry their code, and request validation names the rule without
// echoing the value, identically for POST exec and WebSocket exec.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";
import { IMAGES_DIR, wsExec } from "../testing/sandbox-api.js";
import { Router } from "../server/http.js";
import { openApiDocument, missingFromDocument, openApiPath } from "./openapi.js";
import { ROUTES } from "./routes.js";
import { ERROR_CODES } from "./codes.js";
import { firstProblem } from "./check.js";
import { CreateSandboxRequest } from "./sandboxes.js";
import { Validator } from "@seriousme/openapi-schema-validator";

let d: Daemon;
let key: string;
const SECRETISH = "sk_live_9f8e7d6c5b4a3f2e1d0c";

before(async () => {
  d = await startDaemon({ args: ["--engine", "ns"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  key = createUser(d.dataDir, "alice");
});
after(async () => {
  if (!d) return;
  for (const sb of (await api(d, "GET", "/sandboxes", { key })).json ?? []) await api(d, "DELETE", `/sandboxes/${sb.id}`, { key });
  await d.stop();
  cleanup(d.dataDir);
});

test("GET /openapi.json is OpenAPI 3.1, public, and documents every route the daemon's router serves", async () => {
  const r = await api(d, "GET", "/openapi.json");
  assert.equal(r.status, 200);
  assert.equal(r.json.openapi, "3.1.0");
  const ops: [string, string, Record<string, unknown>][] = [];
  for (const [path, methods] of Object.entries(r.json.paths as Record<string, Record<string, Record<string, unknown>>>)) {
    for (const [m, op] of Object.entries(methods)) ops.push([m.toUpperCase(), path, op]);
  }
  // The document is generated from the router's table: an undocumented operation is a route served without a contract entry.
  const undocumented = ops.filter(([, , op]) => op["x-undocumented"] || !op.responses || !op.summary).map(([m, p]) => `${m} ${p}`);
  assert.deepEqual(undocumented, [], "routes the router serves without a schema");
  for (const spec of Object.values(ROUTES)) {
    assert.ok(r.json.paths[openApiPath(spec.path)]?.[spec.method.toLowerCase()], `${spec.method} ${spec.path} is missing from the document`);
  }
  // And every documented operation is really served: no route_not_found / method_not_allowed.
  for (const [m, path] of ops) {
    const concrete = path.replace(/\{[a-z_]+\}/g, "nosuch");
    const res = await api(d, m, concrete, { key, headers: m === "PUT" ? { "Content-Type": "application/octet-stream" } : {} });
    if (m !== "HEAD") assert.ok(!["route_not_found", "method_not_allowed"].includes(res.json?.code), `${m} ${path} -> ${res.status} ${res.text}`);
    else assert.notEqual(res.status, 405, `${m} ${path}`);
  }
  // A valid OpenAPI 3.1 document, by an independent validator of the specification's own JSON Schema.
  const v = await new Validator().validate(r.json);
  assert.equal(v.valid, true, JSON.stringify(v.errors));
  // Every error code is in the document, with its meaning.
  assert.deepEqual(r.json.components.schemas.ErrorCode.enum, Object.keys(ERROR_CODES));
  for (const c of Object.keys(ERROR_CODES)) assert.match(r.json.components.schemas.ErrorCode.description, new RegExp("`" + c + "`: \\w"));
});

test("the completeness check fails on a route registered without a contract entry", () => {
  const router = new Router();
  router.route(ROUTES.health, () => ({}));
  router.add("GET", "/sneaky/:id", () => ({}));
  const doc = openApiDocument(router.table());
  assert.deepEqual(missingFromDocument(router.table(), doc), ["GET /sneaky/:id"]);
  assert.deepEqual(missingFromDocument(router.table(), { paths: {} }), ["GET /health", "GET /sneaky/:id"], "a route absent from the document is caught too");
});

test("error bodies are {error, code} with a stable code", async () => {
  const cases: [string, string, Record<string, unknown> | undefined, string | undefined, number, string][] = [
    ["GET", "/nope", undefined, key, 404, "route_not_found"],
    ["PATCH", "/secrets", undefined, key, 405, "method_not_allowed"],
    ["GET", "/secrets", undefined, undefined, 401, "unauthorized"],
    ["DELETE", "/secrets/NOPE", undefined, key, 404, "secret_not_found"],
    ["GET", "/sandboxes/nope", undefined, key, 404, "sandbox_not_found"],
    ["GET", "/templates/nope", undefined, key, 404, "template_not_found"],
    ["GET", "/images/nope", undefined, key, 404, "image_not_found"],
    ["POST", "/sandboxes", { name: "x", secrets: ["MISSING"] }, key, 400, "secret_not_found"],
    ["POST", "/sandboxes", { name: "-x" }, key, 400, "invalid_request"],
    ["GET", "/sandboxes/nope/exec/ws", undefined, key, 426, "upgrade_required"],
  ];
  for (const [m, p, body, k, status, code] of cases) {
    const r = await api(d, m, p, { key: k, body });
    assert.deepEqual([r.status, r.json?.code, typeof r.json?.error], [status, code, "string"], `${m} ${p}: ${r.text}`);
  }
  const big = await api(d, "POST", "/secrets", { key, raw: "x".repeat(2 << 20), headers: { "Content-Type": "application/json" } });
  assert.deepEqual([big.status, big.json.code], [413, "payload_too_large"]);
});

test("a broken rule is named, the value never echoed", async () => {
  const bad: [string, string, Record<string, unknown>, RegExp][] = [
    ["POST", "/sandboxes", { name: "ok", cpus: SECRETISH }, /cpus must be an integer/],
    ["POST", "/sandboxes", { name: SECRETISH + "!" }, /name must be 1-63 characters/],
    ["POST", "/sandboxes", { name: "ok", env: { API: { nested: SECRETISH } } }, /env API must be a string/],
    ["POST", "/sandboxes", { name: "ok", env: { X: `a\u0000${SECRETISH}` } }, /env X must not contain a NUL byte/],
    ["POST", "/sandboxes", { name: "ok", files: [{ path: "/f", content: SECRETISH + "!" }] }, /files\[0\]\.content must be base64/],
    ["POST", "/sandboxes", { name: "ok", init: [SECRETISH] }, /init must be a string/],
    ["POST", "/secrets", { name: "OK", value: [SECRETISH] }, /value must be a string/],
    ["POST", "/secrets", { name: "OK", value: `${SECRETISH}\u0000` }, /NUL/],
    ["POST", "/templates", { name: "t", memory_mb: SECRETISH }, /memory_mb must be an integer/],
    ["POST", "/sandboxes/nosuch/exec", { cmd: [SECRETISH], timeout_sec: SECRETISH }, /timeout_sec must be a number/],
  ];
  for (const [m, p, body, re] of bad) {
    const r = await api(d, m, p, { key, body });
    assert.equal(r.status, 400, `${p} ${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.code, "invalid_request");
    assert.match(r.json.error, re);
    assert.ok(!r.text.includes(SECRETISH), `the value leaked: ${r.text}`);
  }
  assert.equal((await api(d, "GET", "/secrets", { key })).json.length, 0, "nothing was stored");
  // Unit level too: the checker's message for an unknown-typed field (no custom message) quotes no value.
  const msg = firstProblem(CreateSandboxRequest, { name: "ok", cpus: 1.5, memory_mb: SECRETISH });
  assert.ok(msg && !msg.includes(SECRETISH), msg);
});

test("POST exec and WebSocket exec apply the same rules (cmd, cwd, NUL, timeout)", async () => {
  const c = await api(d, "POST", "/sandboxes", { key, body: { name: "rules" } });
  assert.equal(c.status, 201, c.text);
  const specs: Record<string, unknown>[] = [
    { cmd: [] }, { cmd: ["a\u0000b"] }, { cmd: "ls" }, { cmd: ["true"], cwd: "relative" }, { cmd: ["true"], cwd: "/a\u0000b" },
    { cmd: ["true"], cwd: 5 }, { cmd: ["true"], timeout_sec: 0 }, { cmd: ["true"], timeout_sec: 86401 },
  ];
  for (const spec of specs) {
    const post = await api(d, "POST", "/sandboxes/rules/exec", { key, body: spec });
    assert.equal(post.status, 400, JSON.stringify(spec));
    const ws = await wsExec(d, key, "rules", spec as never);
    assert.equal(ws.exit, undefined);
    assert.equal(ws.error, post.json.error, `same message for ${JSON.stringify(spec)}`);
  }
  // lohar's errors come with a code; the daemon maps code -> status from one table (src/sandboxes/agent-errors.ts).
  const files: [string, string, number, string][] = [
    ["GET", "/sandboxes/rules/files?path=/nope", 404, "file_not_found"],
    ["HEAD", "/sandboxes/rules/files?path=/nope", 404, ""],
    ["GET", "/sandboxes/rules/files?path=/root&ls=true", 403, "forbidden"],
    ["GET", "/sandboxes/rules/files?path=/proc/1/environ", 403, "forbidden"],
    ["GET", "/sandboxes/rules/files?path=/tmp", 400, "invalid_request"],
    ["PUT", "/sandboxes/rules/files?path=/etc/passwd", 403, "forbidden"],
  ];
  for (const [m, p, status, code] of files) {
    const r = await api(d, m, p, { key, raw: m === "PUT" ? "x" : undefined });
    assert.deepEqual([r.status, r.json?.code ?? ""], [status, code], `${m} ${p}: ${r.text}`);
  }
  const cwd = await api(d, "POST", "/sandboxes/rules/exec", { key, body: { cmd: ["true"], cwd: "/nope" } });
  assert.deepEqual([cwd.status, cwd.json.code], [400, "file_not_found"], cwd.text);
  // A timeout on the WebSocket is honoured as on POST.
  const t0 = Date.now();
  const slow = await wsExec(d, key, "rules", { cmd: ["sleep", "30"], timeout_sec: 0.5 } as never);
  assert.ok(Date.now() - t0 < 10_000, "the WebSocket exec's timeout ended the command");
  assert.notEqual(slow.exit, 0);
});
