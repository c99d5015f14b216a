// Crashes and restarts lose nothing and kill nothing that is not ours: real
// daemons, real runc sandboxes, real kill -9s.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import Database from "better-sqlite3";
import { startDaemon, createUser, api, cleanup, cli, tempDir, type Daemon } from "../testing/harness.js";
import { sh, IMAGES_DIR, RECOVERED, removeLeftovers, waitForOutput } from "../testing/sandbox-api.js";
import { scanTree } from "../testing/scan.js";
import { runtimeDirFor } from "../util/paths.js";
import { loopDevicesUnder, mountPoints, UID_SLOTS_DIR } from "../engine/runtime.js";

const start = (dataDir?: string) => startDaemon({ dataDir, args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function peek<T>(dataDir: string, sql: string, ...args: unknown[]): T[] {
  const db = new Database(join(dataDir, "state.db"), { readonly: true });
  try { return db.prepare(sql).all(...args) as T[]; } finally { db.close(); }
}
const meta = (dataDir: string, key: string) => peek<{ value: string }>(dataDir, "SELECT value FROM meta WHERE key = ?", key)[0]?.value;
const enginePid = (dataDir: string, id: string) => JSON.parse(peek<{ s: string }>(dataDir, "SELECT engine_state AS s FROM sandboxes WHERE id = ?", id)[0].s).pid as number;

/** Host pids whose cgroup path ends in /<id>. */
function pidsOf(id: string): number[] {
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readFileSync(`/proc/${p}/cgroup`, "utf8").includes(`/${id}\n`); } catch { return false; }
  }).map(Number);
}
function loharPid(id: string): number {
  const p = pidsOf(id).find((x) => {
    try { const argv = readFileSync(`/proc/${x}/cmdline`, "utf8").split("\0"); return argv[0].endsWith("node") && argv.some((a) => a.endsWith("lohar.js")); } catch { return false; }
  });
  assert.ok(p, `lohar of ${id} found`);
  return p;
}

async function statusOf(d: Daemon, key: string, name: string): Promise<string> {
  return (await api(d, "GET", `/sandboxes/${name}`, { key })).json?.status;
}

test("a daemon started from a backup on the same host leaves the original's live sandboxes alone (rows marked lost)", async () => {
  const a = await start();
  const k = createUser(a.dataDir, "alice");
  const bk = join(tempDir(), "bk");
  let b: Daemon | undefined;
  try {
    assert.equal((await api(a, "POST", "/sandboxes", { key: k, body: { name: "keep" } })).status, 201);
    assert.equal((await sh(a, k, "keep", "echo before")).stdout, "before\n");
    const id = (await api(a, "GET", "/sandboxes/keep", { key: k })).json.id;
    const r = cli(["admin", "backup", "--to", bk, "--data-dir", a.dataDir]);
    assert.equal(r.code, 0, r.stderr);

    b = await start(bk);
    const m = await waitForOutput(b, RECOVERED);
    assert.equal(m[7], "1", "one lost row");
    assert.match(b.output(), new RegExp(`marked lost, nothing of them is touched: keep \\(${id}\\)`));
    assert.notEqual(meta(bk, "instance_id"), meta(a.dataDir, "instance_id"), "a new instance");
    assert.equal(await statusOf(b, k, "keep"), "lost");
    assert.equal((await api(b, "POST", "/sandboxes/keep/exec", { key: k, body: { cmd: ["true"] } })).status, 409);
    // The original sandbox still answers, and keeps answering after B forgets its row and stops.
    assert.equal((await sh(a, k, "keep", "echo after-b-start")).stdout, "after-b-start\n");
    assert.equal((await api(b, "DELETE", "/sandboxes/keep", { key: k })).status, 204);
    assert.equal((await api(b, "GET", "/sandboxes/keep", { key: k })).status, 404);
    assert.equal(await b.stop(), 0);
    b = undefined;
    assert.equal((await sh(a, k, "keep", "echo after-b-stop")).stdout, "after-b-stop\n");
    assert.ok(pidsOf(id).length > 0);
    assert.ok(existsSync(join(a.dataDir, "sandboxes", id, "disk", "upper")), "writable layer intact (on its disk)");
    // A backup of B (now its own instance) started again keeps its identity: no more lost rows.
    const b2 = await start(bk);
    assert.equal((await waitForOutput(b2, RECOVERED))[7], "0");
    await b2.stop();
    assert.equal((await api(a, "DELETE", "/sandboxes/keep", { key: k })).status, 204);
  } finally {
    await b?.stop();
    assert.equal(await a.stop(), 0);
    cleanup(a.dataDir); cleanup(join(bk, ".."));
  }
});

test("key rotate with a sandbox running, then start: the sandbox is reattached and works", async () => {
  let d = await start();
  const k = createUser(d.dataDir, "alice");
  const value = "rot-" + randomBytes(8).toString("hex");
  try {
    await api(d, "POST", "/secrets", { key: k, body: { name: "TOKEN", value } });
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "rot", secrets: ["TOKEN"] } })).status, 201);
    const tokenBefore = peek<{ t: Buffer }>(d.dataDir, "SELECT token_encrypted AS t FROM sandboxes")[0].t;
    assert.equal(await d.stop(), 0);
    const r = cli(["key", "rotate", "--data-dir", d.dataDir, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([JSON.parse(r.stdout).rotated, JSON.parse(r.stdout).sandbox_tokens], [1, 1]);
    assert.ok(!peek<{ t: Buffer }>(d.dataDir, "SELECT token_encrypted AS t FROM sandboxes")[0].t.equals(tokenBefore), "token re-encrypted");
    d = await start(d.dataDir);
    const m = await waitForOutput(d, RECOVERED);
    assert.deepEqual([m[1], m[2], m[3]], ["1", "0", "0"], "reattached, not unreachable or dead");
    assert.equal(await statusOf(d, k, "rot"), "running");
    assert.equal((await sh(d, k, "rot", "echo $TOKEN")).stdout, `${value}\n`);
    assert.equal((await api(d, "DELETE", "/sandboxes/rot", { key: k })).status, 204);
  } finally {
    assert.equal(await d.stop(), 0);
    cleanup(d.dataDir);
  }
});

test("an unresponsive sandbox at restart: the daemon serves at once, the sandbox is kept as unreachable, and comes back when it answers", async () => {
  let d = await start();
  const k = createUser(d.dataDir, "alice");
  let stopped = 0;
  try {
    for (const name of ["stuck", "fine"]) assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name } })).status, 201);
    assert.equal((await sh(d, k, "stuck", "echo kept > /home/lohar/marker; echo ok")).stdout, "ok\n");
    const id = (await api(d, "GET", "/sandboxes/stuck", { key: k })).json.id;
    assert.equal(await d.stop(), 0);
    stopped = loharPid(id);
    process.kill(stopped, "SIGSTOP");

    d = await start(d.dataDir);
    // Listening came first: /health answers while the stuck sandbox's reattach is still waiting (5 s handshake timeout).
    const h = await api(d, "GET", "/health");
    assert.equal(h.status, 200);
    assert.ok(!RECOVERED.test(d.output()), "health answered before recovery finished");
    // Meanwhile the stuck one is a 503 the client may retry, for exec and DELETE alike.
    for (const [method, path, body] of [["POST", "/sandboxes/stuck/exec", { cmd: ["true"] }], ["DELETE", "/sandboxes/stuck", undefined]] as const) {
      const early = await api(d, method, path, { key: k, body });
      assert.equal(early.status, 503, early.text);
      assert.equal(early.headers.get("retry-after"), "1");
    }
    const m = await waitForOutput(d, RECOVERED);
    assert.deepEqual([m[1], m[2], m[3]], ["1", "1", "0"]);
    assert.equal(await statusOf(d, k, "stuck"), "unreachable");
    assert.equal(await statusOf(d, k, "fine"), "running");
    assert.equal((await sh(d, k, "fine", "echo fine")).stdout, "fine\n");
    assert.equal((await api(d, "POST", "/sandboxes/stuck/exec", { key: k, body: { cmd: ["true"] } })).status, 409);
    assert.ok(existsSync(join(d.dataDir, "sandboxes", id, "disk", "upper")), "writable layer kept (on its disk)");
    assert.ok(pidsOf(id).length > 0, "processes kept");

    process.kill(stopped, "SIGCONT");
    stopped = 0;
    const deadline = Date.now() + 30_000;
    while ((await statusOf(d, k, "stuck")) !== "running" && Date.now() < deadline) await sleep(200);
    assert.equal(await statusOf(d, k, "stuck"), "running");
    assert.equal((await sh(d, k, "stuck", "cat /home/lohar/marker")).stdout, "kept\n", "same sandbox, files kept");
    for (const n of ["stuck", "fine"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key: k })).status, 204);
  } finally {
    if (stopped) process.kill(stopped, "SIGCONT");
    assert.equal(await d.stop(), 0);
    cleanup(d.dataDir);
  }
});

test("status is reconciled while the daemon runs: a sandbox whose init is SIGKILLed from the host is dead within 2 s", async () => {
  const d = await start();
  const k = createUser(d.dataDir, "alice");
  try {
    for (const [name, victim] of [["byinit", "init"], ["bylohar", "lohar"]] as const) {
      assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name } })).status, 201);
      const id = (await api(d, "GET", `/sandboxes/${name}`, { key: k })).json.id;
      const pid = victim === "init" ? enginePid(d.dataDir, id) : loharPid(id);
      assert.ok(pidsOf(id).includes(pid));
      const t0 = Date.now();
      process.kill(pid, "SIGKILL");
      while ((await statusOf(d, k, name)) !== "dead" && Date.now() - t0 < 5000) await sleep(20);
      const took = Date.now() - t0;
      assert.equal(await statusOf(d, k, name), "dead", `${victim} killed: marked dead`);
      assert.ok(took <= 2000, `${victim} killed: marked dead in ${took} ms (bound 2000)`);
      assert.equal((await api(d, "POST", `/sandboxes/${name}/exec`, { key: k, body: { cmd: ["true"] } })).status, 409);
      // Its leftovers go; the row stays for its owner to see, and does not count against quota.
      const gone = Date.now() + 5000;
      while (existsSync(join(runtimeDirFor(d.dataDir), "sb", id)) && Date.now() < gone) await sleep(50);
      assert.ok(!existsSync(join(runtimeDirFor(d.dataDir), "sb", id)));
      assert.equal((await api(d, "DELETE", `/sandboxes/${name}`, { key: k })).status, 204);
    }
  } finally {
    assert.equal(await d.stop(), 0);
    cleanup(d.dataDir);
  }
});

test("an interrupted delete is finished at start (never comes back dead), and trash is swept at start", async () => {
  let d = await start();
  const k = createUser(d.dataDir, "alice");
  try {
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "del" } })).status, 201);
    const id = (await api(d, "GET", "/sandboxes/del", { key: k })).json.id;
    assert.equal(await d.stop(), 0);
    // A crash right after DELETE wrote its status (the first thing it does).
    const w = new Database(join(d.dataDir, "state.db"));
    w.prepare("UPDATE sandboxes SET status = 'deleting' WHERE id = ?").run(id);
    w.close();
    const trash = join(d.dataDir, "sandboxes", ".trash-sbdeadbeef-1-2");
    mkdirSync(join(trash, "upper", "home"), { recursive: true });
    writeFileSync(join(trash, "upper", "home", "f"), "x");
    d = await start(d.dataDir);
    const m = await waitForOutput(d, RECOVERED);
    assert.deepEqual([m[1], m[3], m[5]], ["0", "0", "1"], "the delete was finished");
    assert.equal((await api(d, "GET", "/sandboxes/del", { key: k })).status, 404);
    assert.deepEqual(pidsOf(id), []);
    assert.ok(!existsSync(join(runtimeDirFor(d.dataDir), "sb", id)));
    assert.ok(!existsSync(join(d.dataDir, "sandboxes", id)));
    assert.ok(!existsSync(trash), "trash swept at start");
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "del" } })).status, 201, "the name is free again");
    assert.equal((await api(d, "DELETE", "/sandboxes/del", { key: k })).status, 204);
  } finally {
    assert.equal(await d.stop(), 0);
    cleanup(d.dataDir);
  }
});

interface Leaks { plaintextFiles: number; loops: number; runc: number; cgroups: number; uidSlots: number; sbDirs: number; layers: number; mounts: number; badRows: number; what?: string[] }

/** Everything of this data dir's daemon on the host that no running sandbox accounts for. */
function leaks(dataDir: string, secret: string): Leaks {
  const rt = runtimeDirFor(dataDir);
  const rows = peek<{ id: string; status: string }>(dataDir, "SELECT id, status FROM sandboxes");
  const live = new Set(rows.filter((r) => r.status === "running").map((r) => r.id));
  const inst = meta(dataDir, "instance_id");
  const runc = spawnSync("runc", ["--root", join(rt, "runc"), "list", "-q"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
  const cgroups: string[] = [];
  for (const c of readdirSync("/sys/fs/cgroup")) {
    const dir = join("/sys/fs/cgroup", c, "bhatti", inst);
    if (existsSync(dir)) for (const n of readdirSync(dir, { withFileTypes: true })) if (n.isDirectory() && !live.has(n.name)) cgroups.push(join(dir, n.name));
  }
  const slots = existsSync(UID_SLOTS_DIR) ? readdirSync(UID_SLOTS_DIR).filter((n) => {
    try { const o = readFileSync(join(UID_SLOTS_DIR, n), "utf8").trim(); return o.startsWith(`${rt}:`) && !live.has(o.slice(rt.length + 1)); } catch { return false; }
  }) : [];
  const sb = existsSync(join(rt, "sb")) ? readdirSync(join(rt, "sb")).filter((n) => !live.has(n)) : [];
  const layers = existsSync(join(dataDir, "sandboxes")) ? readdirSync(join(dataDir, "sandboxes")).filter((n) => !live.has(n)) : [];
  const mounts = mountPoints().filter((m) => m.startsWith(`${rt}/`) && !live.has(m.slice(rt.length + 4).split("/")[0]));
  const what = [...runc.filter((id) => !live.has(id)), ...cgroups, ...slots, ...sb, ...layers, ...mounts, ...rows.filter((r) => r.status !== "running").map((r) => `${r.id} ${r.status}`)];
  return {
    plaintextFiles: scanTree(rt, secret).length + scanTree(dataDir, secret).length,
    loops: loopDevicesUnder(rt).length,
    runc: runc.filter((id) => !live.has(id)).length,
    cgroups: cgroups.length,
    uidSlots: slots.length,
    sbDirs: sb.length,
    layers: layers.length,
    mounts: mounts.length,
    badRows: rows.filter((r) => r.status !== "running").length,
    ...(what.length ? { what } : {}),
  };
}

test("kill -9 at random moments during create (and delete): no plaintext file ever, nothing leaked and no dead row after the next start", async () => {
  const KILLS = Number(process.env.BHATTI_CRASH_KILLS ?? 24);
  const secret = "crash-" + randomBytes(12).toString("hex");
  let d = await start();
  const dataDir = d.dataDir;
  const k = createUser(dataDir, "alice", ["--max-sandboxes", "100", "--max-cpus", "100", "--max-memory", "100000", "--max-disk", "1000000"]);
  await api(d, "POST", "/secrets", { key: k, body: { name: "S", value: secret } });
  const rt = runtimeDirFor(dataDir);
  const tally = { kills: 0, createKills: 0, deleteKills: 0, plaintextAfterKill: 0, rolledBack: 0, finishedDeletes: 0, completedBeforeKill: 0, deadRows: 0 };
  try {
    // Aim the kills at the window: time one create and one delete on this machine, now. A warm-up
    // first: a daemon's first create of a disk size also makes that size's disk template, and would
    // stretch the window far past a normal create (the kills would then land after it).
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "warm", secrets: ["S"] } })).status, 201);
    assert.equal((await api(d, "DELETE", "/sandboxes/warm", { key: k })).status, 204);
    let t = Date.now();
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "timing", secrets: ["S"] } })).status, 201);
    const createMs = Date.now() - t;
    t = Date.now();
    assert.equal((await api(d, "DELETE", "/sandboxes/timing", { key: k })).status, 204);
    const deleteMs = Date.now() - t;
    const DELETE_KILLS = Math.ceil(KILLS / 4);
    for (let i = 0; i < KILLS + DELETE_KILLS; i++) {
      const del = i % 5 === 4 && tally.deleteKills < DELETE_KILLS; // some kills land during a DELETE instead
      let req: Promise<unknown>;
      if (del) {
        assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: `d${i}`, secrets: ["S"] } })).status, 201);
        req = api(d, "DELETE", `/sandboxes/d${i}`, { key: k }).catch(() => null);
        await sleep(Math.random() * deleteMs);
        tally.deleteKills++;
      } else {
        if (tally.createKills >= KILLS) continue;
        req = api(d, "POST", "/sandboxes", { key: k, body: { name: `c${i}`, secrets: ["S"], env: { X: "1" } } }).catch(() => null);
        await sleep(Math.random() * createMs * 1.2);
        tally.createKills++;
      }
      d.proc.kill("SIGKILL");
      await d.stop();
      await req;
      tally.kills++;
      // The moment of the crash: no file anywhere under the runtime or data dir holds the value.
      const hits = [...scanTree(rt, secret), ...scanTree(dataDir, secret)];
      tally.plaintextAfterKill += hits.length;
      assert.deepEqual(hits, [], `kill ${i}: plaintext in a file`);
      d = await start(dataDir);
      const m = await waitForOutput(d, RECOVERED);
      tally.rolledBack += Number(m[4]);
      tally.finishedDeletes += Number(m[5]);
      tally.deadRows += Number(m[3]);
      const l = leaks(dataDir, secret);
      assert.deepEqual(l, { plaintextFiles: 0, loops: 0, runc: 0, cgroups: 0, uidSlots: 0, sbDirs: 0, layers: 0, mounts: 0, badRows: 0 }, `after kill ${i} and a restart`);
      // A create or delete that finished before its kill left a sandbox: it works and carries the
      // secret. It is removed at once, so survivors never add up to the host's admission limit.
      for (const r of peek<{ name: string }>(dataDir, "SELECT name FROM sandboxes")) {
        assert.equal((await sh(d, k, r.name, "echo $S")).stdout, `${secret}\n`, r.name);
        assert.equal((await api(d, "DELETE", `/sandboxes/${r.name}`, { key: k })).status, 204);
        tally.completedBeforeKill++;
      }
    }
    let final = leaks(dataDir, secret);
    for (let t = 0; t < 50 && final.layers > 0; t++) { await sleep(100); final = leaks(dataDir, secret); } // writable layers are deleted in the background
    console.log(`crash-recovery figures: ${JSON.stringify({ createMs, deleteMs, ...tally, ...final })}`);
    assert.deepEqual(final, { plaintextFiles: 0, loops: 0, runc: 0, cgroups: 0, uidSlots: 0, sbDirs: 0, layers: 0, mounts: 0, badRows: 0 });
    assert.ok(tally.rolledBack > 0, "some kills landed inside a create (the test exercised the window)");
  } finally {
    await d.stop();
    await removeLeftovers(start, dataDir, k, cleanup);
  }
});
