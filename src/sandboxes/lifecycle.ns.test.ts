// Sandbox lifecycle on the ns engine (issue 14): stop/start, pause/resume, the
// idle policy, across daemon restarts. Real daemons, real runc sandboxes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { startDaemon, createUser, api, cleanup, cli, type Daemon } from "../testing/harness.js";
import { sh, IMAGES_DIR, RECOVERED, removeLeftovers, waitForOutput } from "../testing/sandbox-api.js";
import { UID_SLOTS_DIR } from "../engine/runtime.js";
import { scanTree } from "../testing/scan.js";
import { runtimeDirFor } from "../util/paths.js";

const start = (dataDir?: string, extra: string[] = []) => startDaemon({ dataDir, args: ["--engine", "ns", "--rate-limit", "0", ...extra], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function engineState(dataDir: string, id: string): Record<string, unknown> {
  const db = new Database(join(dataDir, "state.db"), { readonly: true });
  try { return JSON.parse((db.prepare("SELECT engine_state AS s FROM sandboxes WHERE id = ?").get(id) as { s: string }).s); } finally { db.close(); }
}
/** Host pids whose cgroup path ends in /<id>. */
function pidsOf(id: string): number[] {
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readFileSync(`/proc/${p}/cgroup`, "utf8").includes(`/${id}\n`); } catch { return false; }
  }).map(Number);
}
/** Uid slots held by this data dir's sandbox id. */
function slotsOf(id: string): string[] {
  if (!existsSync(UID_SLOTS_DIR)) return [];
  return readdirSync(UID_SLOTS_DIR).filter((n) => { try { return readFileSync(join(UID_SLOTS_DIR, n), "utf8").trim().endsWith(`:${id}`); } catch { return false; } });
}
const procState = (pid: number) => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
async function status(d: Daemon, key: string, name: string): Promise<string> {
  return (await api(d, "GET", `/sandboxes/${name}`, { key })).json?.status;
}
async function until(f: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test("[ns] stop keeps the writable layer and releases processes and the uid slot; start boots it with the current secret values", async () => {
  const d = await start();
  const k = createUser(d.dataDir, "alice");
  try {
    assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: "TOKEN", value: "first-value" } })).status, 201);
    const c = await api(d, "POST", "/sandboxes", { key: k, body: { name: "s1", secrets: ["TOKEN"], env: { PLAIN: "p-1-plain-env-value" } } });
    assert.equal(c.status, 201, c.text);
    const id = c.json.id as string;
    await sh(d, k, "s1", "echo kept > /home/lohar/file; mkdir -p /home/lohar/d; echo deep > /home/lohar/d/x");
    assert.equal((await sh(d, k, "s1", 'echo "$TOKEN $PLAIN"')).stdout, "first-value p-1-plain-env-value\n");

    const st = await api(d, "POST", "/sandboxes/s1/stop", { key: k });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.json.status, "stopped");
    assert.deepEqual(pidsOf(id), [], "no process of the sandbox runs");
    assert.deepEqual(slotsOf(id), [], "its uid slot is free");
    assert.equal(existsSync(join("/run/bhatti")), true);
    const ex = await api(d, "POST", "/sandboxes/s1/exec", { key: k, body: { cmd: ["true"] } });
    assert.equal(ex.status, 409, "a stopped sandbox is not woken by a request (a user stopped it)");
    assert.match(ex.json.error, /not running \(status stopped\)/);
    assert.equal((await api(d, "POST", "/sandboxes/s1/stop", { key: k })).status, 200, "stop is idempotent");
    // Neither the secret's value nor the plain env's is anywhere on disk or in the runtime dir while stopped
    // (the plain env is kept age-encrypted for the next start).
    for (const v of ["first-value", "p-1-plain-env-value"]) {
      assert.deepEqual([...scanTree(d.dataDir, v), ...scanTree(runtimeDirFor(d.dataDir), v)], [], `no plaintext of ${v}`);
    }
    // Another user's sandbox is simply not found, for every step; hostile keep_hot is refused.
    const eve = createUser(d.dataDir, "eve");
    for (const op of ["stop", "start", "pause", "resume"]) {
      const r = await api(d, "POST", `/sandboxes/s1/${op}`, { key: eve });
      assert.equal(r.status, 404, op);
      assert.match(r.json.error, /sandbox "s1" not found/);
    }
    assert.equal((await api(d, "PUT", "/sandboxes/s1/keep-hot", { key: eve, body: { keep_hot: true } })).status, 404);
    const bad = await api(d, "PUT", "/sandboxes/s1/keep-hot", { key: k, body: { keep_hot: "yes" } });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /keep_hot must be a boolean/);
    assert.equal((await api(d, "POST", "/sandboxes/s1/pause", { key: k })).status, 409, "a stopped sandbox cannot be paused");

    // Rotated while stopped: the start gets the new value.
    assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: "TOKEN", value: "second-value" } })).status, 200);
    const s = await api(d, "POST", "/sandboxes/s1/start", { key: k });
    assert.equal(s.status, 200, s.text);
    assert.equal(s.json.status, "running");
    const r = await sh(d, k, "s1", 'cat /home/lohar/file /home/lohar/d/x; stat -c %u:%g /home/lohar/file; echo "$TOKEN $PLAIN"; hostname');
    assert.equal(r.stdout, "kept\ndeep\n1000:1000\nsecond-value p-1-plain-env-value\ns1\n");
    assert.equal(slotsOf(id).length, 1);
    assert.equal((await api(d, "DELETE", "/sandboxes/s1", { key: k })).status, 204);
    assert.equal(existsSync(join(d.dataDir, "sandboxes", id)), false);
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
});

test("[ns] start in another uid slot re-owns the writable layer (files keep their owners inside); disk_mb sandboxes keep their disk", async () => {
  const d = await start();
  let held: string | undefined; // a's former slot, held by this test when no sandbox holds it
  const k = createUser(d.dataDir, "bob");
  try {
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "a", disk_mb: 64 } })).status, 201);
    const id = (await api(d, "GET", "/sandboxes/a", { key: k })).json.id as string;
    await sh(d, k, "a", "echo mine > /home/lohar/f; echo suid > /home/lohar/s; chmod 4755 /home/lohar/s");
    const before = engineState(d.dataDir, id).slot;
    assert.equal((await api(d, "POST", "/sandboxes/a/stop", { key: k })).status, 200);
    // Another sandbox takes the freed slot (slots are handed out lowest first).
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "b" } })).status, 201);
    const bId = (await api(d, "GET", "/sandboxes/b", { key: k })).json.id as string;
    // Slots are host-wide: under parallel test files another daemon's sandbox may take it first; either way it is in use now.
    // If another daemon's sandbox took it and has let it go again, hold it here until a has started elsewhere.
    if (engineState(d.dataDir, bId).slot !== before) {
      try {
        writeFileSync(join(UID_SLOTS_DIR, String(before)), "lifecycle-test-hold\n", { flag: "wx" });
        held = join(UID_SLOTS_DIR, String(before));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
    }
    const s = await api(d, "POST", "/sandboxes/a/start", { key: k });
    assert.equal(s.status, 200, s.text);
    assert.notEqual(engineState(d.dataDir, id).slot, before, "a runs in another slot");
    if (held) rmSync(held, { force: true });
    const r = await sh(d, k, "a", "cat /home/lohar/f /home/lohar/s; stat -c '%u:%g %a' /home/lohar/f /home/lohar/s; df -m / | tail -1 | awk '{print $2}'");
    const [f, rf, s1, s2, size] = r.stdout.trim().split("\n");
    assert.equal(f, "mine");
    assert.equal(rf, "suid");
    assert.match(s1, /^1000:1000 /);
    assert.equal(s2, "1000:1000 4755", "the set-uid bit survives the re-own");
    assert.ok(Number(size) <= 64, `the 64 MiB disk is still the root's limit (df says ${size})`);
    for (const n of ["a", "b"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key: k })).status, 204);
  } catch (e) {
    for (const n of ["a", "b"]) await api(d, "DELETE", `/sandboxes/${n}`, { key: k }).catch(() => {});
    throw new Error(`${(e as Error).message}\n--- daemon ---\n${d.output().slice(-3000)}`);
  } finally {
    if (held) rmSync(held, { force: true });
    await d.stop();
    cleanup(d.dataDir);
  }
});

test("[ns] pause freezes every process, a request wakes it; resume; a daemon restart keeps paused paused and stopped stopped", async () => {
  let d = await start();
  const dataDir = d.dataDir;
  const k = createUser(dataDir, "carol");
  try {
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "p" } })).status, 201);
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "q" } })).status, 201);
    const id = (await api(d, "GET", "/sandboxes/p", { key: k })).json.id as string;
    await sh(d, k, "p", "echo warm > /home/lohar/w");
    const pa = await api(d, "POST", "/sandboxes/p/pause", { key: k });
    assert.equal(pa.status, 200, pa.text);
    assert.equal(pa.json.status, "paused");
    const pids = pidsOf(id);
    assert.ok(pids.length > 0);
    await until(async () => pids.every((p) => procState(p) === "D" || procState(p) === "S"), 2000, "frozen tasks");
    assert.equal((await api(d, "POST", "/sandboxes/p/pause", { key: k })).status, 200, "pause is idempotent");
    // A request wakes it transparently.
    assert.equal((await sh(d, k, "p", "cat /home/lohar/w")).stdout, "warm\n");
    assert.equal(await status(d, k, "p"), "running");
    // So do the sessions and archive routes (they reach lohar too).
    for (const path of ["/sandboxes/p/sessions", "/sandboxes/p/archive?path=/home/lohar/w"]) {
      assert.equal((await api(d, "POST", "/sandboxes/p/pause", { key: k })).status, 200);
      const r = await api(d, "GET", path, { key: k });
      assert.equal(r.status, 200, `${path}: ${r.text}`);
      assert.equal(await status(d, k, "p"), "running", `${path} woke it`);
    }

    // Across a restart: p paused, q stopped.
    assert.equal((await api(d, "POST", "/sandboxes/p/pause", { key: k })).status, 200);
    assert.equal((await api(d, "POST", "/sandboxes/q/stop", { key: k })).status, 200);
    assert.equal(await d.stop(), 0);
    d = await start(dataDir);
    await waitForOutput(d, RECOVERED);
    assert.equal(await status(d, k, "p"), "paused");
    assert.equal(await status(d, k, "q"), "stopped");
    assert.ok(pidsOf(id).length > 0, "the paused sandbox's processes are still there");
    const re = await api(d, "POST", "/sandboxes/p/resume", { key: k });
    assert.equal(re.status, 200, re.text);
    assert.equal(re.json.status, "running");
    assert.equal((await sh(d, k, "p", "cat /home/lohar/w")).stdout, "warm\n");
    assert.equal((await api(d, "POST", "/sandboxes/q/start", { key: k })).status, 200);
    assert.equal((await sh(d, k, "q", "echo up")).stdout, "up\n");
    // Destroying a paused sandbox works (it is thawed to die).
    assert.equal((await api(d, "POST", "/sandboxes/q/pause", { key: k })).status, 200);
    assert.equal((await api(d, "DELETE", "/sandboxes/q", { key: k })).status, 204);
    assert.equal((await api(d, "DELETE", "/sandboxes/p", { key: k })).status, 204);
    assert.deepEqual(pidsOf(id), []);
  } finally {
    await d.stop();
    await removeLeftovers((dir) => start(dir), dataDir, k, cleanup);
  }
});

test("[ns] idle policy: warm after N s, cold after M min, a request wakes it from either; keep_hot stays running", async () => {
  const d = await start(undefined, ["--idle-warm-seconds", "1", "--idle-cold-minutes", "0.1"]);
  const k = createUser(d.dataDir, "dave");
  try {
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "idle" } })).status, 201);
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "hot", keep_hot: true } })).status, 201);
    await sh(d, k, "idle", "echo z > /home/lohar/z");
    await until(async () => (await status(d, k, "idle")) === "paused", 5000, "warm");
    assert.equal((await api(d, "GET", "/sandboxes/idle", { key: k })).json.idle, "warm");
    // Wake on exec from warm.
    assert.equal((await sh(d, k, "idle", "cat /home/lohar/z")).stdout, "z\n");
    assert.equal(await status(d, k, "idle"), "running");
    // Then cold (6 s from the last request).
    await until(async () => (await status(d, k, "idle")) === "stopped", 15_000, "cold");
    assert.equal((await api(d, "GET", "/sandboxes/idle", { key: k })).json.idle, "cold");
    // Wake on exec from cold: started again on its writable layer.
    assert.equal((await sh(d, k, "idle", "cat /home/lohar/z")).stdout, "z\n");
    assert.equal(await status(d, k, "idle"), "running");
    assert.equal(await status(d, k, "hot"), "running", "keep_hot is never paused");
    const list = (await api(d, "GET", "/sandboxes", { key: k })).json as { name: string; status: string; keep_hot: boolean }[];
    assert.deepEqual(list.map((s) => [s.name, s.keep_hot]), [["hot", true], ["idle", false]]);
    for (const n of ["idle", "hot"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key: k })).status, 204);
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
});

test("[ns] the CLI: create --keep-hot, pause, list shows the state, resume, stop, start, keep-hot off", async () => {
  const d = await start();
  const k = createUser(d.dataDir, "erin");
  const b = (...args: string[]) => cli([...args, "--url", d.url, "--token", k]);
  try {
    let r = b("create", "--name", "c", "--keep-hot");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await api(d, "GET", "/sandboxes/c", { key: k })).json.keep_hot, true);
    r = b("pause", "c");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "paused c (status paused)\n");
    assert.match(b("list").stdout, /\nc\s+sb[0-9a-f]+\s+ns\s+paused\s/);
    assert.equal(b("resume", "c").stdout, "resumed c (status running)\n");
    assert.equal(b("stop", "c").stdout, "stopped c (status stopped)\n");
    assert.equal(b("start", "c").stdout, "started c (status running)\n");
    r = b("keep-hot", "c", "off", "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).keep_hot, false);
    r = b("keep-hot", "c", "maybe");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /keep-hot takes on or off/);
    r = b("stop", "nope");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not found/);
    assert.equal(b("destroy", "c").code, 0);
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
});
