// Volumes on the ns engine (issue 14): persistent per-user ext4 images that
// outlive sandboxes, one holder at a time, read-only attachments, kept across
// stop/start; through a real daemon and real runc sandboxes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { startDaemon, createUser, api, cleanup, cli } from "../testing/harness.js";
import { sh, IMAGES_DIR } from "../testing/sandbox-api.js";
import { mountPoints } from "../engine/runtime.js";

const start = () => startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });

test("[ns] a volume outlives its sandbox, has one holder at a time, mounts read-only on request, and is per user", async () => {
  const d = await start();
  const k = createUser(d.dataDir, "alice");
  const eve = createUser(d.dataDir, "eve");
  try {
    const c = await api(d, "POST", "/volumes", { key: k, body: { name: "data", size_mb: 32 } });
    assert.equal(c.status, 201, c.text);
    assert.deepEqual({ ...c.json, created_at: "" }, { name: "data", size_mb: 32, attached_to: null, created_at: "" });
    assert.equal((await api(d, "POST", "/volumes", { key: k, body: { name: "data", size_mb: 32 } })).status, 409);
    for (const [body, re] of [
      [{ name: "x", size_mb: 1 }, /size_mb must be between 16 and 65536/],
      [{ name: "../x", size_mb: 32 }, /volume name must be/],
      [{ name: "x", size_mb: "32" }, /size_mb must be an integer/],
    ] as const) {
      const r = await api(d, "POST", "/volumes", { key: k, body });
      assert.equal(r.status, 400);
      assert.match(r.json.error, re);
    }
    for (const [vols, re] of [
      [["data:/proc/x"], /may not be mounted at or under \/proc/],
      [["data:relative"], /absolute path/],
      [["data:/a/../etc"], /\.\. components/],
      [["nope:/data"], /volume "nope" not found/],
    ] as const) {
      const r = await api(d, "POST", "/sandboxes", { key: k, body: { name: "bad", volumes: vols } });
      assert.equal(r.status, 400, JSON.stringify(vols));
      assert.match(r.json.error, re);
    }

    // a writes as uid 1000 at /data.
    const a = await api(d, "POST", "/sandboxes", { key: k, body: { name: "a", volumes: ["data:/data"] } });
    assert.equal(a.status, 201, a.text);
    assert.deepEqual(a.json.volumes, [{ name: "data", path: "/data", ro: false }]);
    assert.equal((await sh(d, k, "a", "echo persisted > /data/f && id -u && stat -c %u /data/f /data")).stdout, "1000\n1000\n1000\n");
    // One holder: b cannot claim it; it cannot be deleted.
    const b = await api(d, "POST", "/sandboxes", { key: k, body: { name: "b", volumes: ["data:/data"] } });
    assert.equal(b.status, 409);
    assert.match(b.json.error, /volume "data" is in use by sandbox "a"/);
    const del = await api(d, "DELETE", "/volumes/data", { key: k });
    assert.equal(del.status, 409);
    assert.match(del.json.error, /attached to sandbox "a"/);
    assert.equal((await api(d, "GET", "/volumes", { key: k })).json[0].attached_to, "a");
    // Kept across stop/start.
    assert.equal((await api(d, "POST", "/sandboxes/a/stop", { key: k })).status, 200);
    assert.equal((await api(d, "POST", "/sandboxes/a/start", { key: k })).status, 200);
    assert.equal((await sh(d, k, "a", "cat /data/f")).stdout, "persisted\n");
    // Another user sees nothing of it.
    assert.deepEqual((await api(d, "GET", "/volumes", { key: eve })).json, []);
    assert.equal((await api(d, "DELETE", "/volumes/data", { key: eve })).status, 404);
    const ev = await api(d, "POST", "/sandboxes", { key: eve, body: { name: "e", volumes: ["data:/data"] } });
    assert.equal(ev.status, 400);
    assert.match(ev.json.error, /volume "data" not found/);

    // Destroy a: the volume survives; c (another uid slot is likely) reads it read-only.
    const aId = a.json.id as string;
    assert.equal((await api(d, "DELETE", "/sandboxes/a", { key: k })).status, 204);
    assert.ok(!mountPoints().some((m) => m.includes(aId)), "nothing of a stays mounted");
    assert.equal((await api(d, "GET", "/volumes", { key: k })).json[0].attached_to, null);
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "hold" } })).status, 201); // shifts c to another slot
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "c", volumes: [{ name: "data", path: "/home/lohar/vol", ro: true }] } })).status, 201);
    const r = await sh(d, k, "c", "cat /home/lohar/vol/f; stat -c %u /home/lohar/vol/f; echo x > /home/lohar/vol/g 2>/dev/null || echo read-only");
    assert.equal(r.stdout, "persisted\n1000\nread-only\n");
    assert.equal((await api(d, "DELETE", "/sandboxes/c", { key: k })).status, 204);
    assert.equal((await api(d, "DELETE", "/sandboxes/hold", { key: k })).status, 204);
    assert.equal((await api(d, "DELETE", "/volumes/data", { key: k })).status, 204);
    assert.deepEqual(readdirSync(join(d.dataDir, "volumes")), [], "the image is gone");
    assert.equal((await api(d, "DELETE", "/volumes/data", { key: k })).status, 404);
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
});

test("[ns] the CLI: volume create/list/delete and create --volume", async () => {
  const d = await start();
  const k = createUser(d.dataDir, "bob");
  const b = (...args: string[]) => cli([...args, "--url", d.url, "--token", k]);
  try {
    let r = b("volume", "create", "work", "--size", "20");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "created volume work (20 MiB)\n");
    r = b("create", "--name", "s", "--volume", "work:/work");
    assert.equal(r.code, 0, r.stderr);
    assert.match(b("volume", "list").stdout, /work\s+20\s+s\s/);
    r = b("volume", "delete", "work");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /attached to sandbox "s"/);
    assert.equal(b("destroy", "s").code, 0);
    assert.equal(b("volume", "delete", "work").stdout, "deleted volume work\n");
    r = b("volume", "create", "w2");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--size/);
    assert.ok(!existsSync(join(d.dataDir, "volumes", "x")));
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
});
