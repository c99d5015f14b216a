// lohar's error codes as API errors: the table, and a lohar older than the codes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AGENT_ERRORS, agentFailure } from "./agent-errors.js";
import { AgentError } from "../engine/agent-client.js";
import { ERRNO_CODES, errnoCode } from "../protocol/agent.js";
import { ERROR_CODES } from "../api/codes.js";

test("every lohar code maps to a status and an API code that exists", () => {
  for (const c of ERRNO_CODES) assert.ok(AGENT_ERRORS[c], c);
  for (const [c, m] of Object.entries(AGENT_ERRORS)) assert.ok(Object.hasOwn(ERROR_CODES, m.code), `${c} -> ${m.code}`);
  assert.equal(errnoCode(Object.assign(new Error("x"), { code: "ENOENT" })), "enoent");
  assert.equal(errnoCode(Object.assign(new Error("x"), { code: "EWEIRD" })), "io_error");
  assert.equal(errnoCode(new Error("plain")), "io_error");
});

test("a coded error is mapped by its code alone, whatever the message says", () => {
  const e = agentFailure(new AgentError("read /tmp/: EACCES (permission denied): ENOENT", "enoent"));
  assert.deepEqual([e.status, e.code], [404, "file_not_found"]);
  assert.deepEqual([agentFailure(new AgentError("x", "forbidden_path")).status, agentFailure(new AgentError("x", "io_error")).status], [403, 502]);
  assert.match(agentFailure(new AgentError("boom", "io_error")).message, /^sandbox agent: boom$/);
});

test("an older lohar's uncoded error: only the errno after the last ': ' counts, never one inside the path", () => {
  const e = agentFailure(new AgentError("read /x: ENOENT (not found)"));
  assert.deepEqual([e.status, e.code], [404, "file_not_found"]);
  const tricky = agentFailure(new AgentError("read /a: EACCES (permission denied)/b: failed"));
  assert.deepEqual([tricky.status, tricky.code], [502, "agent_error"]);
  assert.equal(agentFailure(new AgentError("read: path must be absolute")).status, 400);
  assert.equal(agentFailure(new Error("connection closed")).status, 502);
});
