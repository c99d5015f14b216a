// Unit tests of the idle policy's decision and the boot config parser (pure logic;
// the policy itself runs against real sandboxes in lifecycle.{ns,vm}.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { idleStep, parseBoot } from "./lifecycle.js";

test("idleStep: warm after warmMs for running, cold after coldMs for paused, never for keep_hot or with the step off", () => {
  const p = { warmMs: 1000, coldMs: 5000 };
  assert.equal(idleStep("running", 999, p, false), null);
  assert.equal(idleStep("running", 1000, p, false), "warm");
  assert.equal(idleStep("paused", 4999, p, false), null);
  assert.equal(idleStep("paused", 5000, p, false), "cold");
  assert.equal(idleStep("running", 1e9, p, true), null);
  assert.equal(idleStep("stopped", 1e9, p, false), null);
  assert.equal(idleStep("running", 1e9, { warmMs: 0, coldMs: 5000 }, false), null);
  assert.equal(idleStep("paused", 1e9, { warmMs: 1000, coldMs: 0 }, false), null);
});

test("parseBoot keeps env and init, refuses malformed input", () => {
  assert.deepEqual(parseBoot('{"env":{"A":"1"},"init":"x"}'), { env: { A: "1" }, init: "x" });
  assert.deepEqual(parseBoot('{"env":{},"init":5}'), { env: {} });
  assert.throws(() => parseBoot('{"env":null}'), /malformed/);
  assert.throws(() => parseBoot("null"), /malformed/);
});
