// Migration 6 on a database from before it (real SQLite): old events get their
// owner's id and an actor, old secrets version 1; and the append-only guard.
import { test } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { migrate } from "./db.js";
import { migrations } from "./migrations.js";
import { listEvents, pruneEvents, recordEvent } from "./events.js";

function oldDb(): Database.Database {
  const db = new Database(":memory:");
  db.exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  for (const m of migrations.filter((m) => m.version <= 2)) {
    db.exec(m.sql);
    db.prepare("INSERT INTO schema_migrations VALUES (?, ?, ?)").run(m.version, m.name, "then");
  }
  db.prepare("INSERT INTO users (name, api_key_sha256, max_sandboxes, max_cpus, max_memory_mb, created_at, key_rotated_at) VALUES ('alice', 'h', 1, 1, 1, '2026-01-01T00:00:00.000Z', 'x')").run();
  db.prepare("INSERT INTO secrets (user_id, name, value_encrypted, created_at, updated_at) VALUES (1, 'OLD', x'00', 'x', 'x')").run();
  db.prepare("INSERT INTO events (at, type, user_name, subject, detail) VALUES ('2026-02-01T00:00:00.000Z', 'secret.set', 'alice', 'OLD', NULL)").run();
  db.prepare("INSERT INTO events (at, type, user_name, subject, detail) VALUES ('2026-02-01T00:00:01.000Z', 'key.rotated', NULL, NULL, '{\"secrets\":1}')").run();
  return db;
}

test("migration 6 fills in old events' owner id and actor, and gives old secrets version 1", () => {
  const db = oldDb();
  migrate(db);
  const ev = listEvents(db, { limit: 10 });
  assert.deepEqual(ev.map((e) => [e.action, e.actor, e.user, e.result]), [["secret.set", "alice", "alice", "ok"], ["key.rotated", "daemon", null, "ok"]]);
  assert.deepEqual(listEvents(db, { userId: 1, limit: 10 }).map((e) => e.object), ["OLD"]);
  assert.equal((db.prepare("SELECT version FROM secrets").get() as { version: number }).version, 1);
  db.close();
});

test("recordEvent keeps its old signature; actor and result are optional; the owner's id is looked up by name", () => {
  const db = oldDb();
  migrate(db);
  recordEvent(db, "template.created", "alice", "t1");
  recordEvent(db, "user.deleted", "ghost", "ghost", { force: true }, { actor: "operator", result: "error" });
  const [a, b] = listEvents(db, { limit: 2 });
  assert.deepEqual([a.action, a.actor, a.user, a.result], ["template.created", "alice", "alice", "ok"]);
  assert.deepEqual([b.action, b.actor, b.user, b.result, b.detail], ["user.deleted", "operator", "ghost", "error", { force: true }]);
  assert.equal(listEvents(db, { userId: 1, limit: 10 }).filter((e) => e.action === "template.created").length, 1);
  db.close();
});

test("append-only: no update, no delete of an event younger than a day; pruning takes only older ones", () => {
  const db = oldDb();
  migrate(db);
  recordEvent(db, "secret.set", "alice", "NEW");
  assert.throws(() => db.prepare("UPDATE events SET subject = 'X'").run(), /append-only/);
  assert.throws(() => db.prepare("DELETE FROM events WHERE subject = 'NEW'").run(), /append-only/);
  assert.equal(pruneEvents(db, 30), 2, "the two events from February go");
  assert.deepEqual(listEvents(db, { limit: 10 }).map((e) => e.object), ["NEW"]);
  assert.throws(() => pruneEvents(db, 0), /at least 1 day/);
  db.close();
});
