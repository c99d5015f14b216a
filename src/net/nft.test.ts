// The table text nft is given, checked by nft itself (`nft -c`: parsed and
// validated by the kernel's rules engine without being applied).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { HARD_DENIED, PRIVATE } from "./cidr.js";
import { LOG_RATE, sandboxLines, tableText } from "./nft.js";

const check = (text: string) => spawnSync("nft", ["-c", "-f", "-"], { input: text, encoding: "utf8" });

test("the table, with and without drop logging, is accepted by nft; drop logging is rate-limited and copies headers only", () => {
  const plain = tableText("0123456789ab", { http: 10080, tls: 10443 }, HARD_DENIED, PRIVATE);
  assert.equal(check(plain).status, 0, check(plain).stderr);
  assert.doesNotMatch(plain, / log /);
  const logged = tableText("0123456789ab", { http: 10080, tls: 10443 }, HARD_DENIED, PRIVATE, { group: 12345, tag: "bh0123456789ab", snaplen: 48 });
  assert.ok(logged.includes(`limit droplog { rate ${LOG_RATE.total} }`));
  const r = check(logged);
  assert.equal(r.status, 0, r.stderr);
  const logs = logged.split("\n").filter((l) => / log /.test(l));
  assert.deepEqual(logs.map((l) => /prefix "bh0123456789ab:([a-z_]+)"/.exec(l)?.[1]).sort(), ["always_denied", "host_address", "not_allowed", "private_range", "udp_denied"]);
  for (const l of logs) {
    assert.ok(l.includes(`limit rate ${LOG_RATE.perSandbox}`) && l.includes('limit name "droplog"'), l); // one shared limit for all of them
    assert.match(l, /group 12345 snaplen 48$/);
  }
  // Each log rule sits right before the rule that drops what it logs.
  const lines = logged.split("\n");
  for (const [i, l] of lines.entries()) if (/ log /.test(l)) assert.match(lines[i + 1], /drop|reject/, l);
});

test("removing a sandbox's elements also clears its drop-log meter entry, idempotently (added first)", () => {
  const lines = sandboxLines("0123456789ab", "delete", { ifname: "bhc6336441", address: "198.51.100.66", gateway: "198.51.100.65", public: true, cidrs: [] });
  assert.ok(lines.includes("add element inet bhatti_0123456789ab logrl { 198.51.100.66 }"));
  assert.ok(lines.includes("delete element inet bhatti_0123456789ab logrl { 198.51.100.66 }"));
  assert.ok(!sandboxLines("0123456789ab", "add", { ifname: "x", address: "198.51.100.66", gateway: "198.51.100.65", public: true, cidrs: [] }).some((l) => l.includes("logrl")));
});
