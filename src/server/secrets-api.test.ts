// The secrets API against a real daemon process: validation, cross-user
// isolation, auth, error shapes, timestamps, rate limits.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";

let d: Daemon;
let alice: string;
let bob: string;

before(async () => {
  d = await startDaemon();
  alice = createUser(d.dataDir, "alice");
  bob = createUser(d.dataDir, "bob");
});
after(async () => {
  assert.equal(await d.stop(), 0);
  cleanup(d.dataDir);
});

test("create is 201, replace is 200, list is sorted names with real ISO-8601 UTC timestamps", async () => {
  const t0 = Date.now();
  const c = await api(d, "POST", "/secrets", { key: alice, body: { name: "ZETA", value: "z" } });
  assert.equal(c.status, 201);
  assert.deepEqual(Object.keys(c.json).sort(), ["created_at", "name", "updated_at", "version"]);
  assert.equal(c.json.version, 1, "a new secret is version 1");
  assert.match(c.json.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Math.abs(Date.parse(c.json.created_at) - t0) < 10_000);
  await new Promise((r) => setTimeout(r, 5));
  const r = await api(d, "POST", "/secrets", { key: alice, body: { name: "ZETA", value: "z2" } });
  assert.equal(r.status, 200);
  assert.equal(r.json.created_at, c.json.created_at, "replace keeps created_at");
  assert.equal(r.json.version, 2, "a replace is the next version");
  assert.ok(Date.parse(r.json.updated_at) > Date.parse(c.json.updated_at), "replace moves updated_at");
  await api(d, "POST", "/secrets", { key: alice, body: { name: "ALPHA", value: "a" } });
  await api(d, "POST", "/secrets", { key: alice, body: { name: "_mid", value: "m" } });
  const l = await api(d, "GET", "/secrets", { key: alice });
  assert.equal(l.status, 200);
  assert.deepEqual(l.json.map((s: { name: string }) => s.name), ["ALPHA", "ZETA", "_mid"]);
  for (const s of l.json) assert.deepEqual(Object.keys(s).sort(), ["created_at", "name", "updated_at", "version"], "never a value or ciphertext");
  assert.deepEqual(l.json.map((s: { version: number }) => s.version), [1, 2, 1], "list shows each secret's version");
});

test("another user's secret is indistinguishable from a missing one on every route", async () => {
  await api(d, "POST", "/secrets", { key: alice, body: { name: "ALICE_ONLY", value: "private-value" } });
  const bobList = await api(d, "GET", "/secrets", { key: bob });
  assert.ok(!bobList.json.some((s: { name: string }) => s.name === "ALICE_ONLY"));
  const other = await api(d, "DELETE", "/secrets/ALICE_ONLY", { key: bob });
  const missing = await api(d, "DELETE", "/secrets/NEVER_EXISTED_X", { key: bob });
  assert.equal(other.status, 404);
  assert.equal(missing.status, 404);
  assert.equal(other.text, '{"error":"secret \\"ALICE_ONLY\\" not found","code":"secret_not_found"}');
  assert.equal(missing.text.replace("NEVER_EXISTED_X", "ALICE_ONLY"), other.text, "same body shape");
  // bob creating the same name makes his own secret; alice's is untouched
  const mine = await api(d, "POST", "/secrets", { key: bob, body: { name: "ALICE_ONLY", value: "bob-value" } });
  assert.equal(mine.status, 201, "bob's namespace is separate: create, not replace");
  const aliceList = await api(d, "GET", "/secrets", { key: alice });
  const a = aliceList.json.find((s: { name: string }) => s.name === "ALICE_ONLY");
  assert.ok(a && a.updated_at !== mine.json.updated_at);
  assert.equal((await api(d, "DELETE", "/secrets/ALICE_ONLY", { key: bob })).status, 204);
  assert.equal((await api(d, "DELETE", "/secrets/ALICE_ONLY", { key: bob })).status, 404);
  assert.ok((await api(d, "GET", "/secrets", { key: alice })).json.some((s: { name: string }) => s.name === "ALICE_ONLY"), "alice still has hers");
});

test("delete is 204 then 404 with the exact error body", async () => {
  await api(d, "POST", "/secrets", { key: alice, body: { name: "GONE", value: "v" } });
  const del = await api(d, "DELETE", "/secrets/GONE", { key: alice });
  assert.equal(del.status, 204);
  assert.equal(del.text, "");
  const again = await api(d, "DELETE", "/secrets/GONE", { key: alice });
  assert.equal(again.status, 404);
  assert.deepEqual(again.json, { error: 'secret "GONE" not found', code: "secret_not_found" });
});

const big = (n: number, ch = "x") => ch.repeat(n);

const validation: [string, unknown, RegExp][] = [
  ["empty name", { name: "", value: "v" }, /name must be a valid environment variable name/],
  ["name starts with a digit", { name: "1ABC", value: "v" }, /environment variable name/],
  ["name with a dash", { name: "A-B", value: "v" }, /environment variable name/],
  ["name with a space", { name: "A B", value: "v" }, /environment variable name/],
  ["name with unicode", { name: "CAFÉ", value: "v" }, /environment variable name/],
  ["name with =", { name: "A=B", value: "v" }, /environment variable name/],
  ["name of 257 characters", { name: "A" + big(256), value: "v" }, /at most 256 characters/],
  ["name not a string", { name: 42, value: "v" }, /name must be a string/],
  ["name missing", { value: "v" }, /name must be a string/],
  ["value missing", { name: "OK" }, /value must be a string/],
  ["value a number", { name: "OK", value: 5 }, /value must be a string/],
  ["value an object", { name: "OK", value: { a: 1 } }, /value must be a string/],
  ["value null", { name: "OK", value: null }, /value must be a string/],
  ["empty value", { name: "OK", value: "" }, /must not be empty/],
  ["value with NUL", { name: "OK", value: "a\u0000b" }, /NUL/],
  ["value of 65537 bytes", { name: "OK", value: big(65537) }, /at most 65536 bytes/],
  ["value of 65537 bytes in multibyte chars", { name: "OK", value: big(21846, "€") }, /at most 65536 bytes/],
];

test("validation: every broken rule is a 400 that names the rule, and stores nothing", async () => {
  for (const [what, body, re] of validation) {
    const r = await api(d, "POST", "/secrets", { key: alice, body });
    assert.equal(r.status, 400, what);
    assert.match(r.json.error, re, what);
  }
  const names = (await api(d, "GET", "/secrets", { key: alice })).json.map((s: { name: string }) => s.name);
  assert.ok(!names.includes("OK"), "no invalid request stored anything");
});

test("validation: boundaries that are allowed", async () => {
  for (const [name, value] of [["A" + big(255), "v"], ["_", "v"], ["MAXV", big(65536)], ["UTF", big(21845, "€") + "a"], ["NL", "line1\nline2\n"]]) {
    const r = await api(d, "POST", "/secrets", { key: alice, body: { name, value } });
    assert.ok(r.status === 201 || r.status === 200, `${name.slice(0, 10)}: ${r.text}`);
  }
});

test("malformed bodies: bad JSON, wrong types, bad UTF-8, lone surrogates, huge bodies", async () => {
  const cases: [string | Buffer, number, RegExp][] = [
    ['{"name":"A","value":"sekrit"', 400, /not valid JSON/],
    ["[1,2]", 400, /must be a JSON object/],
    ['"str"', 400, /must be a JSON object/],
    ["", 400, /must be a JSON object/],
    [Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 400, /not valid UTF-8/],
    ['{"name":"S","value":"\\ud800"}', 400, /unpaired surrogate/],
  ];
  for (const [raw, status, re] of cases) {
    const r = await api(d, "POST", "/secrets", { key: alice, raw, headers: { "Content-Type": "application/json" } });
    assert.equal(r.status, status, String(raw));
    assert.match(r.json.error, re);
    assert.ok(!r.text.includes("sekrit"), "a parse error never quotes the body");
  }
  const huge = await api(d, "POST", "/secrets", { key: alice, raw: JSON.stringify({ name: "H", value: big(2 << 20) }) });
  assert.equal(huge.status, 413);
  assert.match(huge.json.error, /exceeds 1048576 bytes/);
});

test("unknown route 404, wrong method 405, JSON errors without internals", async () => {
  const r404 = await api(d, "GET", "/nope", { key: alice });
  assert.equal(r404.status, 404);
  assert.ok(r404.json.error);
  const r405 = await api(d, "PATCH", "/secrets", { key: alice });
  assert.equal(r405.status, 405);
  assert.match(r405.headers.get("allow") ?? "", /GET/);
  const r405b = await api(d, "GET", "/secrets/X", { key: alice });
  assert.equal(r405b.status, 405);
  for (const r of [r404, r405, r405b]) assert.ok(!/at .*\.js|Error:/.test(r.text), "no stack trace");
});

test("auth: missing, malformed, unknown and query-string keys are refused; /health is open", async () => {
  const none = await api(d, "GET", "/secrets");
  assert.equal(none.status, 401);
  assert.deepEqual(none.json, { error: "authorization required", code: "unauthorized" });
  const basic = await api(d, "GET", "/secrets", { headers: { Authorization: "Basic Zm9vOmJhcg==" } });
  assert.equal(basic.status, 401);
  const unknown = await api(d, "GET", "/secrets", { key: "bht_" + "0".repeat(64) });
  assert.deepEqual([unknown.status, unknown.json], [401, { error: "invalid api key", code: "unauthorized" }]);
  const garbage = await api(d, "GET", "/secrets", { key: "hello" });
  assert.deepEqual([garbage.status, garbage.json], [401, { error: "invalid api key", code: "unauthorized" }]);
  const q = await api(d, "GET", `/secrets?token=${alice}`);
  assert.equal(q.status, 401, "a key in the query string is never accepted");
  const q2 = await api(d, "GET", `/secrets?api_key=${alice}`, { key: alice });
  assert.equal(q2.status, 401, "even alongside a header");
  const h = await api(d, "GET", "/health");
  assert.equal(h.status, 200);
  assert.equal(h.json.status, "ok");
});

test("no route returns a value or ciphertext, for anyone", async () => {
  const value = "needle-" + Math.random().toString(36).slice(2);
  await api(d, "POST", "/secrets", { key: alice, body: { name: "NEEDLE", value } });
  for (const [m, p] of [["GET", "/secrets"], ["GET", "/secrets/NEEDLE"], ["GET", "/secrets/NEEDLE/value"], ["GET", "/health"], ["POST", "/secrets"]]) {
    for (const key of [alice, bob, undefined]) {
      const r = await api(d, m, p, { key, body: m === "POST" ? { name: "NEEDLE", value: "other" + value } : undefined });
      assert.ok(!r.text.includes(value), `${m} ${p}`);
      assert.ok(!r.text.includes("age-encryption.org"), "no ciphertext");
    }
  }
});

test("a rejected replace leaves the stored value and its timestamps exactly as they were", async () => {
  const { readSecretForTest } = await import("../testing/store-peek.js");
  const first = await api(d, "POST", "/secrets", { key: alice, body: { name: "KEEP_ME", value: "original" } });
  for (const value of ["", "a\u0000b", "x".repeat(65537), 42]) {
    assert.equal((await api(d, "POST", "/secrets", { key: alice, body: { name: "KEEP_ME", value } })).status, 400);
  }
  assert.equal(await readSecretForTest(d.dataDir, "alice", "KEEP_ME"), "original");
  const listed = (await api(d, "GET", "/secrets", { key: alice })).json.find((s: { name: string }) => s.name === "KEEP_ME");
  assert.deepEqual(listed, first.json);
});

test("the list is never stale: after a set, a delete, and a write by another process (the answer is cached)", async () => {
  const names = async () => ((await api(d, "GET", "/secrets", { key: alice })).json as { name: string; version: number }[]).map((s) => `${s.name}@${s.version}`);
  await api(d, "POST", "/secrets", { key: alice, body: { name: "CACHED", value: "c1" } });
  assert.ok((await names()).includes("CACHED@1"));
  assert.ok((await names()).includes("CACHED@1"), "a second list (from the cache) is the same");
  await api(d, "POST", "/secrets", { key: alice, body: { name: "CACHED", value: "c2" } });
  assert.ok((await names()).includes("CACHED@2"), "a replace shows at once");
  await api(d, "DELETE", "/secrets/CACHED", { key: alice });
  assert.ok(!(await names()).some((n) => n.startsWith("CACHED@")), "a delete shows at once");
  // Another process (an operator tool) writes state.db: the next list sees it.
  const { default: Database } = await import("better-sqlite3");
  const { join } = await import("node:path");
  const other = new Database(join(d.dataDir, "state.db"));
  try {
    other.prepare("UPDATE secrets SET version = 41 WHERE user_id = (SELECT id FROM users WHERE name = 'alice') AND name = 'ALPHA'").run();
  } finally {
    other.close();
  }
  assert.ok((await names()).includes("ALPHA@41"), "a write by another connection invalidates the cache");
});
