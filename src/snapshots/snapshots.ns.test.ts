// Filesystem snapshots and fork on the ns engine (issue 14): a fork has its
// own identity, its own copy of the files (writes do not cross), and secrets
// resolved again at fork time; nothing of a secret lands on disk.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { startDaemon, createUser, api, cleanup, cli } from "../testing/harness.js";
import { sh, IMAGES_DIR } from "../testing/sandbox-api.js";
import { scanTree } from "../testing/scan.js";
import { runtimeDirFor } from "../util/paths.js";

const start = () => startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });

test("[ns] snapshot and fork: new identity, independent files, secrets resolved again at fork time, no plaintext on disk", async () => {
  const d = await start();
  const k = createUser(d.dataDir, "alice", ["--max-sandboxes", "6", "--max-cpus", "6", "--max-memory", "4096"]);
  const eve = createUser(d.dataDir, "eve");
  try {
    assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: "API", value: "secret-at-parent-boot" } })).status, 201);
    const p = await api(d, "POST", "/sandboxes", { key: k, body: { name: "parent", secrets: ["API"], env: { MODE: "plain-env-xyz" } } });
    assert.equal(p.status, 201, p.text);
    await sh(d, k, "parent", "echo one > /home/lohar/a; mkdir /home/lohar/dir; echo inner > /home/lohar/dir/x; rm -f /home/lohar/.profile 2>/dev/null; true");
    const s = await api(d, "POST", "/sandboxes/parent/snapshots", { key: k, body: { name: "s1" } });
    assert.equal(s.status, 201, s.text);
    assert.equal(s.json.name, "s1");
    assert.equal(s.json.sandbox, "parent");
    await sh(d, k, "parent", "echo two > /home/lohar/a");
    assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: "API", value: "secret-at-fork-time" } })).status, 200);

    const c = await api(d, "POST", "/sandboxes", { key: k, body: { name: "child", from: "s1" } });
    assert.equal(c.status, 201, c.text);
    assert.notEqual(c.json.id, p.json.id);
    assert.deepEqual(c.json.secrets, ["API"]);
    let r = await sh(d, k, "child", 'cat /home/lohar/a /home/lohar/dir/x; stat -c %u /home/lohar/a; echo "$API $MODE"; hostname');
    assert.equal(r.stdout, "one\ninner\n1000\nsecret-at-fork-time plain-env-xyz\nchild\n");
    // Independent: the child's writes never reach the parent, and the other way round.
    await sh(d, k, "child", "echo child-only > /home/lohar/b; echo three > /home/lohar/a");
    r = await sh(d, k, "parent", "cat /home/lohar/a; test -e /home/lohar/b && echo leaked || echo absent");
    assert.equal(r.stdout, "two\nabsent\n");
    await sh(d, k, "parent", "echo parent-only > /home/lohar/c");
    assert.equal((await sh(d, k, "child", "test -e /home/lohar/c && echo leaked || echo absent")).stdout, "absent\n");

    // Fork straight from a running sandbox: its files as they are now; no snapshot is left behind.
    const c2 = await api(d, "POST", "/sandboxes", { key: k, body: { name: "child2", from: "parent" } });
    assert.equal(c2.status, 201, c2.text);
    assert.equal((await sh(d, k, "child2", "cat /home/lohar/a /home/lohar/c")).stdout, "two\nparent-only\n");
    assert.equal((await sh(d, k, "parent", "echo still-running")).stdout, "still-running\n", "the parent was thawed");
    assert.deepEqual((await api(d, "GET", "/snapshots", { key: k })).json.map((x: { name: string }) => x.name), ["s1"]);

    // A stopped sandbox can be snapshotted too; a paused one stays paused.
    assert.equal((await api(d, "POST", "/sandboxes/child2/stop", { key: k })).status, 200);
    assert.equal((await api(d, "POST", "/sandboxes/child2/snapshots", { key: k, body: { name: "from-stopped" } })).status, 201);
    assert.equal((await api(d, "POST", "/sandboxes/child/pause", { key: k })).status, 200);
    const auto = await api(d, "POST", "/sandboxes/child/snapshots", { key: k });
    assert.equal(auto.status, 201, auto.text);
    assert.match(auto.json.name, /^child-\d{8}-\d{6}$/);
    assert.equal((await api(d, "GET", "/sandboxes/child", { key: k })).json.status, "paused");

    // Plaintext scan: no secret value (either version) and no plain env value anywhere on disk.
    for (const v of ["secret-at-parent-boot", "secret-at-fork-time", "plain-env-xyz"]) {
      assert.deepEqual([...scanTree(d.dataDir, v), ...scanTree(runtimeDirFor(d.dataDir), v)], [], `no plaintext of ${v}`);
    }

    // Bad requests and other users.
    for (const [body, status, re] of [
      [{ name: "x", from: "nope" }, 404, /no snapshot or sandbox named "nope"/],
      [{ name: "x", from: "s1", image: "debian" }, 400, /takes the source's image/],
      [{ name: "x", from: "s1", secrets: ["API"] }, 400, /takes the source's secrets/],
      [{ name: "x", from: 7 }, 400, /from must be the name/],
    ] as const) {
      const res = await api(d, "POST", "/sandboxes", { key: k, body });
      assert.equal(res.status, status, JSON.stringify(body));
      assert.match(res.json.error, re);
    }
    assert.equal((await api(d, "POST", "/sandboxes/parent/snapshots", { key: k, body: { name: "s1" } })).status, 409);
    assert.equal((await api(d, "POST", "/sandboxes/parent/snapshots", { key: k, body: { name: "../x" } })).status, 400);
    assert.deepEqual((await api(d, "GET", "/snapshots", { key: eve })).json, []);
    assert.equal((await api(d, "DELETE", "/snapshots/s1", { key: eve })).status, 404);
    assert.equal((await api(d, "POST", "/sandboxes", { key: eve, body: { name: "steal", from: "s1" } })).status, 404);
    assert.equal((await api(d, "POST", "/sandboxes/parent/snapshots", { key: eve, body: {} })).status, 404);

    for (const n of ["s1", "from-stopped", auto.json.name]) assert.equal((await api(d, "DELETE", `/snapshots/${n}`, { key: k })).status, 204);
    assert.deepEqual(readdirSync(join(d.dataDir, "snapshots")), []);
    for (const n of ["parent", "child", "child2"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key: k })).status, 204);
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
});

test("[ns] the CLI: snapshot create/list/delete and create --from", async () => {
  const d = await start();
  const k = createUser(d.dataDir, "bob");
  const b = (...args: string[]) => cli([...args, "--url", d.url, "--token", k]);
  try {
    assert.equal(b("create", "--name", "src").code, 0);
    await sh(d, k, "src", "echo hi > /home/lohar/h");
    let r = b("snapshot", "create", "src", "--name", "snap");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "created snapshot snap of src\n");
    assert.match(b("snapshot", "list").stdout, /\nsnap\s+src\s+ns\s+minimal\s/);
    r = b("create", "--name", "dst", "--from", "snap");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await sh(d, k, "dst", "cat /home/lohar/h")).stdout, "hi\n");
    assert.equal(b("snapshot", "delete", "snap").stdout, "deleted snapshot snap\n");
    for (const n of ["src", "dst"]) assert.equal(b("destroy", n).code, 0);
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
});
