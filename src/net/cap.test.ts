// The egress cap's pure rules (src/net/cap.ts); the daemon-level behaviour is in netfix.ns.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lowerToCap, overCap, requireWithinCap } from "./cap.js";
import { UserError } from "../util/errors.js";
import type { NetworkPolicy } from "./policy.js";

const p = (egress: NetworkPolicy["egress"], allow_cidrs: string[] = [], allow_hosts: string[] = []): NetworkPolicy => ({ egress, allow_hosts, allow_cidrs });

test("order public > deny > none: at or under the cap passes, over it is named", () => {
  for (const [pol, cap, ok] of [["public", "public", true], ["deny", "public", true], ["none", "public", true], ["public", "deny", false], ["deny", "deny", true], ["none", "deny", true], ["public", "none", false], ["deny", "none", false], ["none", "none", true]] as const) {
    assert.equal(overCap(p(pol), cap) === null, ok, `${pol} under cap ${cap}`);
  }
  assert.match(overCap(p("public"), "deny")!, /network\.egress public is over your egress cap \(deny\)/);
});

test("a default over the cap is lowered to it with an empty allow-list; one under it is kept", () => {
  assert.deepEqual(lowerToCap(p("public"), "deny"), p("deny"));
  assert.deepEqual(lowerToCap(p("public"), "none"), p("none"));
  const kept = p("deny", ["198.51.100.0/24"], ["api.example.com"]);
  assert.equal(lowerToCap(kept, "public"), kept);
});

test("under a deny cap, allow_cidrs cannot stand in for public egress; private ranges can be named at any width", () => {
  assert.equal(overCap(p("deny", ["198.51.100.0/24", "203.0.113.0/24"]), "deny"), null);
  assert.equal(overCap(p("deny", ["8.0.0.0/16"]), "deny"), null);
  assert.match(overCap(p("deny", ["8.0.0.0/15"]), "deny")!, /8\.0\.0\.0\/15 is wider than \/16/);
  assert.match(overCap(p("deny", ["64.0.0.0/2"]), "deny")!, /wider than/);
  assert.equal(overCap(p("deny", ["10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10"]), "deny"), null);
  assert.equal(overCap(p("deny", ["64.0.0.0/2"]), "public"), null, "no such limit without a deny cap");
});

test("requireWithinCap: 403 egress_cap_exceeded naming the cap and whose policy", () => {
  assert.throws(() => requireWithinCap(p("public"), "none", 'template "t"'), (e: unknown) =>
    e instanceof UserError && e.status === 403 && e.code === "egress_cap_exceeded" && /^template "t": .*egress cap \(none\)/.test(e.message));
  assert.doesNotThrow(() => requireWithinCap(p("none"), "none"));
});
