// A user deleted with --force leaves nothing behind (rows, volume images,
// snapshot dirs, its running sandboxes' runc containers, mounts and network),
// whether the daemon runs at the time or is started afterwards; only the
// audit trail (events) stays. Real daemon, real CLI, real runc sandboxes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { api, cleanup, cli, createUser, startDaemon, type Daemon } from "../testing/harness.js";
import { IMAGES_DIR, RECOVERED, sh, waitForOutput } from "../testing/sandbox-api.js";
import { ADDR, POOL } from "../testing/internet.js";
import { peek, netCounts } from "../testing/net-counts.js";
import { mountPoints } from "../engine/runtime.js";
import { runtimeDirFor } from "../util/paths.js";
import { scanTree } from "../testing/scan.js";

// Sandboxes get a network (egress deny: nothing leaves; no DNS is asked) from the test pool.
const start = (dataDir?: string) => startDaemon({ dataDir, args: ["--engine", "ns", "--rate-limit", "0", "--net-pool", POOL, "--dns-upstream", ADDR.DNS], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ls = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

/** A user with a brokered secret, two volumes (one attached), a running networked sandbox and a snapshot of it; bob owns a volume too. */
async function populate(d: Daemon, value: string) {
  const alice = createUser(d.dataDir, "alice");
  const bob = createUser(d.dataDir, "bob");
  assert.equal((await api(d, "POST", "/secrets", { key: alice, body: { name: "TOKEN", value, hosts: ["api.example.test"], header: "authorization" } })).status, 201);
  for (const v of ["data", "spare"]) assert.equal((await api(d, "POST", "/volumes", { key: alice, body: { name: v, size_mb: 16 } })).status, 201);
  assert.equal((await api(d, "POST", "/volumes", { key: bob, body: { name: "keep", size_mb: 16 } })).status, 201);
  const c = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "a", volumes: ["data:/data"], secrets: ["TOKEN"], network: { egress: "deny" } } });
  assert.equal(c.status, 201, c.text);
  const id = c.json.id as string;
  assert.equal((await sh(d, alice, "a", "echo kept > /data/f && echo $TOKEN | grep -c '^' ")).stdout, "1\n");
  assert.equal((await api(d, "POST", "/sandboxes/a/snapshots", { key: alice, body: { name: "s1" } })).status, 201);
  const t = await api(d, "POST", "/templates", { key: alice, body: { name: "t1" } });
  assert.equal(t.status, 201, t.text);
  return { alice, bob, id };
}

/** What of sandbox `id` and of user alice's things is on the host and in state.db. */
function remains(d: Daemon, id: string, aliceVols: string[], snaps: string[]) {
  const rt = runtimeDirFor(d.dataDir);
  const runc = spawnSync("runc", ["--root", join(rt, "runc"), "list", "-q"], { encoding: "utf8" }).stdout.split("\n").filter((x) => x === id);
  const count = (sql: string, ...a: unknown[]) => peek<{ n: number }>(d.dataDir, sql, ...a)[0].n;
  const volRows = aliceVols.length ? count(`SELECT COUNT(*) AS n FROM volumes WHERE id IN (${aliceVols.map(() => "?").join(",")})`, ...aliceVols) : 0;
  const snapRows = snaps.length ? count(`SELECT COUNT(*) AS n FROM snapshots WHERE id IN (${snaps.map(() => "?").join(",")})`, ...snaps) : 0;
  return {
    runc: runc.length,
    mounts: mountPoints().filter((m) => m.includes(id)).length,
    sbDir: existsSync(join(rt, "sb", id)) ? 1 : 0,
    layer: existsSync(join(d.dataDir, "sandboxes", id)) ? 1 : 0,
    volumeFiles: ls(join(d.dataDir, "volumes")).filter((f) => aliceVols.some((v) => f.startsWith(v))).length,
    snapshotDirs: ls(join(d.dataDir, "snapshots")).filter((f) => snaps.some((s) => f.includes(s))).length,
    userRows: count("SELECT COUNT(*) AS n FROM users WHERE name = 'alice'"),
    secretRows: count("SELECT COUNT(*) AS n FROM secrets"),
    sandboxRows: count("SELECT COUNT(*) AS n FROM sandboxes"),
    volRows, snapRows,
    templateRows: count("SELECT COUNT(*) AS n FROM templates"),
    sandboxBrokers: count("SELECT COUNT(*) AS n FROM sandbox_brokers"),
    snapshotBrokers: count("SELECT COUNT(*) AS n FROM snapshot_brokers"),
    netLeases: count("SELECT COUNT(*) AS n FROM net_leases"),
  };
}

const NOTHING = { runc: 0, mounts: 0, sbDir: 0, layer: 0, volumeFiles: 0, snapshotDirs: 0, userRows: 0, secretRows: 0, sandboxRows: 0, volRows: 0, snapRows: 0, templateRows: 0, sandboxBrokers: 0, snapshotBrokers: 0, netLeases: 0 };

function ids(d: Daemon) {
  const vols = peek<{ id: string; name: string }>(d.dataDir, "SELECT v.id, v.name FROM volumes v JOIN users u ON u.id = v.user_id WHERE u.name = 'alice'").map((r) => r.id);
  const snaps = peek<{ id: string }>(d.dataDir, "SELECT s.id FROM snapshots s JOIN users u ON u.id = s.user_id WHERE u.name = 'alice'").map((r) => r.id);
  return { vols, snaps };
}

async function until(what: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!what() && Date.now() < end) await sleep(100);
}

async function scenario(daemonRuns: boolean) {
  let d = await start();
  const value = "tok_" + randomBytes(16).toString("hex");
  let alice: string | undefined;
  try {
    const p = await populate(d, value);
    alice = p.alice;
    const { bob, id } = p;
    const { vols, snaps } = ids(d);
    assert.equal(vols.length, 2);
    assert.equal(snaps.length, 1);
    // Before: everything is there (so the counts below can fail).
    const before = remains(d, id, vols, snaps);
    assert.deepEqual(before, { ...NOTHING, runc: 1, mounts: before.mounts, sbDir: 1, layer: before.layer, volumeFiles: before.volumeFiles, snapshotDirs: 1, userRows: 1, secretRows: 1, sandboxRows: 1, volRows: 2, snapRows: 1, templateRows: 1, sandboxBrokers: 1, snapshotBrokers: 1, netLeases: 1 });
    assert.ok(before.mounts > 0, "the sandbox's rootfs and volume are mounted");
    assert.ok(before.volumeFiles >= 2, "two images (and the attached one's uid-base mark)");
    const net0 = netCounts(d.dataDir, d.proc.pid!);
    assert.equal(net0.veths, 1);

    const refuse = cli(["user", "delete", "alice", "--data-dir", d.dataDir]);
    assert.equal(refuse.code, 1);
    assert.match(refuse.stderr, /still owns 1 secret\(s\), 1 sandbox\(es\), 2 volume\(s\) and 1 snapshot\(s\); delete them first or pass --force/);
    assert.deepEqual(remains(d, id, vols, snaps), before, "a refused delete changes nothing");

    const pid = d.proc.pid!;
    if (!daemonRuns) assert.equal(await d.stop(), 0);
    const del = cli(["user", "delete", "alice", "--force", "--json", "--data-dir", d.dataDir]);
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual(JSON.parse(del.stdout), { name: "alice", deleted: true, secrets: 1, sandboxes: 1, volumes: 2, snapshots: 1 });
    // The operator command itself removed the files and rows.
    const now = remains(d, id, vols, snaps);
    assert.deepEqual([now.volumeFiles, now.snapshotDirs, now.volRows, now.snapRows, now.snapshotBrokers, now.sandboxBrokers, now.secretRows, now.sandboxRows], [0, 0, 0, 0, 0, 0, 0, 0]);

    if (daemonRuns) {
      // The running daemon reaps the sandbox whose row is gone (reapOrphans, every 2 s).
      await waitForOutput(d, new RegExp(`sandbox ${id}: destroyed \\(its owner was deleted\\)`), 30_000);
    } else {
      d = await start(d.dataDir);
      const m = await waitForOutput(d, RECOVERED, 60_000);
      assert.equal(m[6], "1", "one orphan removed at start");
    }
    await until(() => remains(d, id, vols, snaps).netLeases === 0 && netCounts(d.dataDir, d.proc.pid!).veths === 0, 10_000);
    assert.deepEqual(remains(d, id, vols, snaps), NOTHING);
    const net = netCounts(d.dataDir, d.proc.pid!);
    assert.deepEqual([net.leases, net.veths, net.elements, net.rows], [0, 0, 0, 0], "its network is gone");
    assert.ok(daemonRuns ? d.proc.pid === pid : true);
    // Bob keeps his; the audit trail of alice stays, with what the delete took (no secret value).
    assert.equal(ls(join(d.dataDir, "volumes")).length, 1);
    assert.equal((await api(d, "GET", "/volumes", { key: bob })).json[0].name, "keep");
    const ev = peek<{ detail: string }>(d.dataDir, "SELECT detail FROM events WHERE type = 'user.deleted' AND user_name = 'alice'");
    assert.equal(ev.length, 1);
    const detail = JSON.parse(ev[0].detail);
    assert.deepEqual({ ...detail, volume_ids: [...detail.volume_ids].sort() }, { secrets: 1, sandboxes: 1, volumes: 2, snapshots: 1, templates: 1, force: true, volume_ids: [...vols].sort(), snapshot_ids: snaps });
    assert.ok(peek<{ n: number }>(d.dataDir, "SELECT COUNT(*) AS n FROM events WHERE user_name = 'alice'")[0].n > 5, "alice's events stay");
    assert.deepEqual(scanTree(d.dataDir, value), [], "no plaintext of its secret on disk");
    // The name is free again, with nothing of the old alice.
    const alice2 = createUser(d.dataDir, "alice");
    assert.deepEqual((await api(d, "GET", "/volumes", { key: alice2 })).json, []);
    assert.deepEqual((await api(d, "GET", "/snapshots", { key: alice2 })).json, []);
  } finally {
    // A test that failed half way leaves no running sandbox behind (stop keeps them running).
    if (alice && d.proc.exitCode === null) await api(d, "DELETE", "/sandboxes/a", { key: alice }).catch(() => {});
    if (d.proc.exitCode === null) assert.equal(await d.stop(), 0);
    cleanup(d.dataDir);
  }
}

test("[ns] user delete --force while the daemon runs: its volumes, snapshots, rows and running sandbox are all gone", () => scenario(true));
test("[ns] user delete --force while the daemon is stopped: the same, once it starts again", () => scenario(false));
