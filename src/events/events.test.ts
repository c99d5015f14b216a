// The audit trail against a real daemon process, the real CLI and the real
// state.db: every action is exactly one event, owners see only their own, no
// value ever appears, the table is append-only, retention prunes, follow streams.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { join } from "node:path";
import { startDaemon, createUser, api, cli, cleanup, type Daemon } from "../testing/harness.js";
import { scanText } from "../testing/scan.js";
import { IMAGES_DIR } from "../testing/sandbox-api.js";

let d: Daemon;
let alice: string;
let bob: string;
const VALUE_1 = "audit-value-one-7f3a9c1e5b";
const VALUE_2 = "audit-value-two-0d4e8b2a6c";

before(async () => {
  d = await startDaemon({ args: ["--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } }); // templates name a built image
  alice = createUser(d.dataDir, "alice");
  bob = createUser(d.dataDir, "bob");
});
after(async () => {
  await d.stop();
  cleanup(d.dataDir);
});

async function events(key: string, qs = "") {
  const r = await api(d, "GET", `/events${qs}`, { key });
  assert.equal(r.status, 200, r.text);
  return r.json as { events: { id: number; at: string; actor: string; action: string; object: string | null; user: string | null; result: string; detail: Record<string, unknown> | null }[]; next_cursor: number | null };
}

/** The events `f` caused for `key`'s owner. */
async function caused(key: string, f: () => Promise<unknown> | unknown) {
  const before = (await events(key)).next_cursor ?? 0;
  await f();
  return (await events(key, `?cursor=${before}`)).events;
}

test("every secret action is exactly one event with actor, action, object, result and version, never the value", async () => {
  let ev = await caused(alice, () => api(d, "POST", "/secrets", { key: alice, body: { name: "DB_PASS", value: VALUE_1 } }));
  assert.equal(ev.length, 1);
  assert.equal(ev[0].action, "secret.set");
  assert.equal(ev[0].actor, "alice");
  assert.equal(ev[0].object, "DB_PASS");
  assert.equal(ev[0].result, "ok");
  assert.equal(ev[0].user, "alice");
  assert.deepEqual(ev[0].detail, { version: 1, replaced: false });
  assert.match(ev[0].at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  ev = await caused(alice, () => api(d, "POST", "/secrets", { key: alice, body: { name: "DB_PASS", value: VALUE_2 } }));
  assert.equal(ev.length, 1);
  assert.deepEqual([ev[0].action, ev[0].detail], ["secret.set", { version: 2, replaced: true }]);

  ev = await caused(alice, () => api(d, "DELETE", "/secrets/DB_PASS", { key: alice }));
  assert.equal(ev.length, 1);
  assert.deepEqual([ev[0].action, ev[0].object, ev[0].detail], ["secret.deleted", "DB_PASS", { version: 2 }]);

  // A delete of a missing name changes nothing and records nothing.
  ev = await caused(alice, () => api(d, "DELETE", "/secrets/DB_PASS", { key: alice }));
  assert.equal(ev.length, 0);

  // A set that fails validation is no event either (nothing changed).
  ev = await caused(alice, () => api(d, "POST", "/secrets", { key: alice, body: { name: "1BAD", value: "x" } }));
  assert.equal(ev.length, 0);
});

test("template create and delete are one event each", async () => {
  let ev = await caused(alice, () => api(d, "POST", "/templates", { key: alice, body: { name: "tpl-a", secrets: ["X", { name: "Y", path: "/home/lohar/y" }] } }));
  assert.deepEqual(ev.map((e) => [e.action, e.object]), [["template.created", "tpl-a"]]);
  ev = await caused(alice, () => api(d, "DELETE", "/templates/tpl-a", { key: alice }));
  assert.deepEqual(ev.map((e) => [e.action, e.object]), [["template.deleted", "tpl-a"]]);
});

test("user changes are events in the user's own trail, done by the operator", async () => {
  const carol = createUser(d.dataDir, "carol");
  let ev = (await events(carol)).events;
  assert.deepEqual(ev.map((e) => [e.action, e.actor, e.object]), [["user.created", "operator", "carol"]]);
  const r = cli(["user", "rotate-key", "carol", "--data-dir", d.dataDir, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const carol2 = JSON.parse(r.stdout).api_key as string;
  ev = (await events(carol2)).events;
  assert.deepEqual(ev.map((e) => [e.action, e.actor]), [["user.created", "operator"], ["user.key_rotated", "operator"]]);
  assert.ok(!JSON.stringify(ev).includes(carol2), "an API key never appears in an event");
});

test("owners see only their own events; a reused user name does not inherit a deleted user's trail", async () => {
  await api(d, "POST", "/secrets", { key: alice, body: { name: "ALICE_PRIVATE", value: VALUE_1 } });
  await api(d, "POST", "/secrets", { key: bob, body: { name: "BOB_OWN", value: VALUE_2 } });
  const mine = (await events(bob, "?limit=1000")).events;
  assert.ok(mine.length > 0);
  for (const e of mine) assert.equal(e.user, "bob");
  assert.ok(!JSON.stringify(mine).includes("ALICE_PRIVATE"));
  assert.ok(!JSON.stringify(mine).includes("alice"));
  // A cursor from someone else's range gives nothing of theirs either.
  const all = (await events(alice, "?limit=1000")).events;
  assert.ok(!all.some((e) => e.user !== "alice"));

  const dave = createUser(d.dataDir, "dave");
  await api(d, "POST", "/secrets", { key: dave, body: { name: "DAVE_OLD", value: VALUE_1 } });
  assert.equal(cli(["user", "delete", "dave", "--force", "--data-dir", d.dataDir]).code, 0);
  const dave2 = createUser(d.dataDir, "dave");
  const ev = (await events(dave2)).events;
  assert.deepEqual(ev.map((e) => e.action), ["user.created"], "the new dave sees only his own creation");
});

test("filters: type (exact and prefix), since, limit and cursor; bad filters are 400s naming the rule", async () => {
  for (let i = 0; i < 5; i++) await api(d, "POST", "/secrets", { key: bob, body: { name: `PAGE_${i}`, value: `v-${i}-page-value` } });
  const sets = (await events(bob, "?type=secret.set&limit=1000")).events;
  assert.ok(sets.length >= 5 && sets.every((e) => e.action === "secret.set"));
  const pref = (await events(bob, "?type=secret.*&limit=1000")).events;
  assert.ok(pref.length >= sets.length && pref.every((e) => e.action.startsWith("secret.")));
  assert.equal((await events(bob, "?type=user.*")).events.every((e) => e.action.startsWith("user.")), true);
  assert.equal((await events(bob, `?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).events.length, 0);
  assert.ok((await events(bob, "?since=1h")).events.length >= 5);
  // Paging: limit 2 from the start, cursor onwards, no overlap, no gap.
  const first = await events(bob, "?since=1h&limit=2");
  assert.equal(first.events.length, 2);
  const second = await events(bob, `?cursor=${first.next_cursor}&limit=2`);
  assert.equal(second.events.length, 2);
  assert.ok(second.events[0].id > first.events[1].id);
  const whole = (await events(bob, "?since=1h&limit=4")).events.map((e) => e.id);
  assert.deepEqual([...first.events, ...second.events].map((e) => e.id), whole);
  // Without cursor or since: the latest `limit`, oldest first.
  const latest = (await events(bob, "?limit=3")).events;
  const all = (await events(bob, "?limit=1000")).events;
  assert.deepEqual(latest.map((e) => e.id), all.slice(-3).map((e) => e.id));

  for (const [qs, rule] of [
    ["?limit=0", /limit must be an integer between 1 and 1000/],
    ["?limit=abc", /limit must be/],
    ["?cursor=-1", /cursor must be/],
    ["?since=yesterday", /since must be an ISO-8601 time/],
    ["?type=DROP%20TABLE", /type must be an event type/],
  ] as const) {
    const r = await api(d, "GET", `/events${qs}`, { key: bob });
    assert.equal(r.status, 400, qs);
    assert.match(r.json.error, rule);
  }
  assert.equal((await api(d, "GET", "/events")).status, 401);
});

test("follow streams new events as JSON lines, only the owner's, and is bounded per user", async () => {
  const start = (await events(alice)).next_cursor;
  const ac = new AbortController();
  const res = await fetch(`${d.url}/events?follow=1&cursor=${start}`, { headers: { Authorization: `Bearer ${alice}` }, signal: ac.signal });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/x-ndjson");
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  const next = async () => {
    for (;;) {
      const i = buf.indexOf("\n");
      if (i >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); return JSON.parse(l); }
      const { value, done } = await reader.read();
      if (done) throw new Error("stream ended");
      buf += dec.decode(value, { stream: true });
    }
  };
  await api(d, "POST", "/secrets", { key: bob, body: { name: "BOB_WHILE_FOLLOW", value: VALUE_2 } });
  await api(d, "POST", "/secrets", { key: alice, body: { name: "FOLLOWED", value: VALUE_1 } });
  const e = await next();
  assert.deepEqual([e.action, e.object, e.user], ["secret.set", "FOLLOWED", "alice"], "bob's event in between is not alice's");
  assert.ok(!scanText(JSON.stringify(e), VALUE_1));

  // At most 4 followers per user: the 5th is refused with a 429 naming the bound.
  const more = await Promise.all([1, 2, 3].map(() => fetch(`${d.url}/events?follow=1`, { headers: { Authorization: `Bearer ${alice}` }, signal: ac.signal })));
  assert.ok(more.every((r) => r.status === 200));
  const fifth = await api(d, "GET", "/events?follow=1", { key: alice });
  assert.equal(fifth.status, 429);
  assert.match(fifth.json.error, /at most 4 event streams/);
  // bob is not affected by alice's followers.
  const bobs = await fetch(`${d.url}/events?follow=1`, { headers: { Authorization: `Bearer ${bob}` }, signal: ac.signal });
  assert.equal(bobs.status, 200);
  ac.abort();
  // Closed followers free their slots.
  const deadline = Date.now() + 5000;
  let again;
  do {
    await new Promise((r) => setTimeout(r, 100));
    again = await fetch(`${d.url}/events?follow=1`, { headers: { Authorization: `Bearer ${alice}` } });
    if (again.status === 200) await again.body!.cancel();
  } while (again.status !== 200 && Date.now() < deadline);
  assert.equal(again.status, 200);
});

test("a follower that does not read holds the daemon at one batch: the daemon stays responsive", async () => {
  // Many events, one follower that never reads its body.
  for (let i = 0; i < 300; i++) await api(d, "POST", "/secrets", { key: bob, body: { name: `FLOOD_${i % 20}`, value: `flood-value-${i}` } });
  const ac = new AbortController();
  const stalled = await fetch(`${d.url}/events?follow=1&since=1h`, { headers: { Authorization: `Bearer ${bob}` }, signal: ac.signal });
  assert.equal(stalled.status, 200);
  const t0 = performance.now();
  const r = await api(d, "GET", "/events?limit=5", { key: bob });
  assert.equal(r.status, 200);
  assert.ok(performance.now() - t0 < 2000, "other requests are served while a follower stalls");
  ac.abort();
});

test("the CLI prints the trail (JSON lines with --json); admin events reads everyone's from state.db", async () => {
  const env = { BHATTI_URL: d.url, BHATTI_TOKEN: alice, HOME: d.dataDir };
  const r = cli(["events", "--json", "--type", "secret.*", "--limit", "1000"], { env });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(lines.length >= 3 && lines.every((e) => e.user === "alice" && e.action.startsWith("secret.")));
  const human = cli(["events", "--limit", "5"], { env });
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /secret\.set {2}FOLLOWED {2}ok/);
  const bad = cli(["events", "--since", "tomorrow"], { env });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /since must be/);

  const admin = cli(["admin", "events", "--json", "--limit", "1000", "--data-dir", d.dataDir]);
  assert.equal(admin.code, 0, admin.stderr);
  const all = admin.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(all.some((e) => e.user === "alice") && all.some((e) => e.user === "bob"), "operators see every user's events");
  const onlyBob = cli(["admin", "events", "--user", "bob", "--json", "--limit", "1000", "--data-dir", d.dataDir]);
  assert.ok(onlyBob.stdout.trim().split("\n").map((l) => JSON.parse(l)).every((e) => e.user === "bob"));
  // No value anywhere in the whole trail.
  for (const v of [VALUE_1, VALUE_2]) assert.ok(!scanText(admin.stdout, v), "a value appears in the audit trail");
});

test("bhatti events --follow --json and bhatti admin events --follow print new events as JSON lines as they happen", async () => {
  const { spawn } = await import("node:child_process");
  const { BIN, childEnv } = await import("../testing/harness.js");
  const lineFrom = (args: string[], env: Record<string, string>) => {
    const p = spawn(BIN, args, { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let buf = "";
    const first = new Promise<Record<string, unknown>>((resolve, reject) => {
      p.stdout!.on("data", (c) => {
        buf += c;
        for (const l of buf.split("\n").slice(0, -1)) {
          const e = JSON.parse(l);
          if (e.object === "FOLLOW_CLI") resolve(e);
        }
      });
      p.once("exit", (code) => reject(new Error(`exited ${code}`)));
    });
    return { p, first };
  };
  const mine = lineFrom(["events", "--follow", "--json"], { BHATTI_URL: d.url, BHATTI_TOKEN: alice, HOME: d.dataDir });
  const op = lineFrom(["admin", "events", "--follow", "--json", "--data-dir", d.dataDir], { HOME: d.dataDir });
  try {
    await new Promise((r) => setTimeout(r, 1500)); // both have started following
    await api(d, "POST", "/secrets", { key: alice, body: { name: "FOLLOW_CLI", value: VALUE_1 } });
    const [a, b] = await Promise.all([mine.first, op.first]);
    assert.deepEqual([a.action, a.user], ["secret.set", "alice"]);
    assert.deepEqual([b.action, b.user], ["secret.set", "alice"]);
  } finally {
    mine.p.kill();
    op.p.kill();
  }
});

test("events are append-only: no update, no delete of recent events; retention prunes only old ones", async () => {
  const db = new Database(join(d.dataDir, "state.db"));
  try {
    assert.throws(() => db.prepare("UPDATE events SET actor = 'mallory'").run(), /append-only/);
    assert.throws(() => db.prepare("DELETE FROM events").run(), /append-only/);
    db.prepare("INSERT INTO events (at, type, user_name, subject, actor, result) VALUES (?, 'secret.set', 'alice', 'ANCIENT', 'alice', 'ok')")
      .run(new Date(Date.now() - 10 * 86_400_000).toISOString());
  } finally {
    db.close();
  }
  // A daemon with 5 days of retention prunes the 10-day-old event at start, and keeps the rest.
  await d.stop();
  const before = cli(["admin", "events", "--json", "--limit", "1000", "--data-dir", d.dataDir]).stdout;
  assert.match(before, /ANCIENT/);
  d = await startDaemon({ dataDir: d.dataDir, args: ["--events-retention-days", "5"] });
  assert.match(d.output(), /events: pruned 1 older than 5 days/);
  const after = cli(["admin", "events", "--json", "--limit", "1000", "--data-dir", d.dataDir]).stdout;
  assert.doesNotMatch(after, /ANCIENT/);
  assert.equal(after.trim().split("\n").length, before.trim().split("\n").length - 1);
  const bad = cli(["serve", "--data-dir", d.dataDir, "--events-retention-days", "0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--events-retention-days must be a positive integer/);
});

test("key rotation is one operator event", async () => {
  await d.stop();
  const r = cli(["key", "rotate", "--data-dir", d.dataDir]);
  assert.equal(r.code, 0, r.stderr);
  const ev = cli(["admin", "events", "--type", "key.rotated", "--json", "--data-dir", d.dataDir]).stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(ev.length, 1);
  assert.equal(ev[0].actor, "operator");
  assert.equal(ev[0].user, null);
  d = await startDaemon({ dataDir: d.dataDir });
});
