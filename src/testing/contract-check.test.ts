// The response checker the API suites run on every answer: it must catch
// bodies, statuses and error shapes that break the contract.
import { test } from "node:test";
import assert from "node:assert/strict";
import { responseProblems, routeFor } from "./contract-check.js";

const J = "application/json";
const sandbox = { id: "sb1", name: "a", engine: "ns", image: "minimal", cpus: 1, memory_mb: 512, disk_mb: null, status: "running", env: [], secrets: [], brokered: [], secret_files: [], secret_versions: {}, redact: false, keep_hot: false, idle: null, volumes: [], network: { egress: "none", allow_hosts: [], allow_cidrs: [] }, template_id: null, created_at: "t" };

test("conforming answers pass", () => {
  assert.deepEqual(responseProblems("GET", "/sandboxes/a", 200, J, JSON.stringify(sandbox)), []);
  assert.deepEqual(responseProblems("GET", "/sandboxes", 200, J, JSON.stringify([sandbox])), []);
  assert.deepEqual(responseProblems("DELETE", "/secrets/X", 204, null, ""), []);
  assert.deepEqual(responseProblems("GET", "/sandboxes/a/files?path=/x", 200, "application/octet-stream", "bytes"), []);
  assert.deepEqual(responseProblems("POST", "/sandboxes/a/exec", 200, "application/x-ndjson", '{"type":"stdout","data":"x"}\n{"type":"exit","exit_code":0}\n'), []);
  assert.deepEqual(responseProblems("GET", "/nope", 404, J, '{"error":"no route","code":"route_not_found"}'), []);
  assert.equal(routeFor("HEAD", "/sandboxes/a/files")?.method, "HEAD");
  assert.equal(routeFor("HEAD", "/sandboxes/a")?.method, "GET", "HEAD falls back to GET");
});

test("answers that break the contract are caught", () => {
  const bad: [string, string, number, string | null, string][] = [
    ["GET", "/sandboxes/a", 200, J, JSON.stringify({ ...sandbox, cpus: "1" })],
    ["GET", "/sandboxes/a", 200, J, JSON.stringify({ ...sandbox, status: "weird" })],
    ["GET", "/sandboxes", 200, J, JSON.stringify([{ id: "x" }])],
    ["GET", "/sandboxes/a", 201, J, JSON.stringify(sandbox)],
    ["DELETE", "/secrets/X", 204, J, "{}"],
    ["POST", "/sandboxes/a/exec", 200, "application/x-ndjson", '{"type":"exit"}\n'],
    ["GET", "/secrets", 404, J, '{"error":"x"}'],
    ["GET", "/secrets", 404, J, '{"error":"x","code":"made_up"}'],
    ["GET", "/secrets", 500, "text/html", "<html>"],
  ];
  for (const [m, p, s, ct, text] of bad) assert.notDeepEqual(responseProblems(m, p, s, ct, text), [], `${m} ${p} ${s} ${text}`);
});
