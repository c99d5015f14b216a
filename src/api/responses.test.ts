// Every JSON answer of the contract has a real schema (not "any object" or
// "an array of anything"), and the harness's contract check covers the routes
// of routes-more.ts as it does those of routes.ts. The bodies themselves are
// checked against real daemons by every suite that calls harness api().
import { test } from "node:test";
import assert from "node:assert/strict";
import type { TSchema } from "@sinclair/typebox";
import { ROUTES } from "./routes.js";
import { MORE_ROUTES } from "./routes-more.js";
import type { Body, RouteSpec } from "./route.js";
import { responseProblems } from "../testing/contract-check.js";

const ALL: RouteSpec[] = [...Object.values(ROUTES as Record<string, RouteSpec>), ...MORE_ROUTES];

/** A schema that says nothing: an object of no declared fields open to any, or an array of unknowns. */
function loose(s: TSchema): boolean {
  if (s.type === "object") return !s.properties || Object.keys(s.properties).length === 0 ? s.additionalProperties !== false : false;
  if (s.type === "array") return !s.items || Object.keys(s.items).filter((k) => k !== "description").length === 0 || loose(s.items as TSchema);
  return false;
}

test("every JSON or NDJSON response body in the contract has a schema that names its fields", () => {
  const vague: string[] = [];
  for (const r of ALL) {
    for (const [status, declared] of Object.entries(r.responses)) {
      for (const b of ([] as Body[]).concat(declared)) {
        const s = "json" in b ? b.json : "ndjson" in b ? b.ndjson : undefined;
        if (s && loose(s)) vague.push(`${r.method} ${r.path} -> ${status}`);
      }
    }
  }
  assert.deepEqual(vague, []);
});

test("the harness's contract check knows the routes of routes-more.ts and rejects wrong bodies", () => {
  const sandboxLike = { id: "x", name: "x" };
  assert.match(responseProblems("POST", "/sandboxes/box/stop", 200, "application/json", JSON.stringify(sandboxLike))[0] ?? "", /breaks the contract/);
  assert.match(responseProblems("PATCH", "/sandboxes/box", 200, "application/json", "{}")[0] ?? "", /breaks the contract/);
  assert.match(responseProblems("GET", "/me", 200, "application/json", JSON.stringify({ name: "a", extra: 1 }))[0] ?? "", /breaks the contract/);
  assert.match(responseProblems("POST", "/sandboxes/box/share", 200, "application/json", "{}")[0] ?? "", /status 200 is not in the contract/);
  assert.match(responseProblems("GET", "/events", 200, "application/x-ndjson", "{\"id\":1}\n")[0] ?? "", /NDJSON line breaks/);
  // What the handlers really send conforms.
  const session = { id: "s1a2b3c4d5e6", cmd: ["sleep", "1"], tty: false, started_at: "2026-01-01T00:00:00.000Z", state: "exited", exit_code: 0, ended_at: "2026-01-01T00:00:01.000Z", keep: true, idle_timeout_ms: 0, viewers: 0 };
  assert.deepEqual(responseProblems("GET", "/sandboxes/box/sessions", 200, "application/json", JSON.stringify([session])), []);
  assert.deepEqual(responseProblems("GET", "/sandboxes/box/ports", 200, "application/json", JSON.stringify([{ port: 8080, address: "0.0.0.0", family: 4 }])), []);
  assert.deepEqual(responseProblems("GET", "/events", 200, "application/json", JSON.stringify({ events: [], next_cursor: null })), []);
  assert.deepEqual(responseProblems("DELETE", "/sandboxes/box/share", 200, "application/json", JSON.stringify({ sandbox: "box", tokens: 1, terminals: 0 })), []);
});
