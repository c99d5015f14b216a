// The hardening suite on the ns engine, and host-wide admission through a real daemon.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { availableParallelism, totalmem } from "node:os";
import { hardeningSuite } from "./hardening-suite.js";
import { BIN, startDaemon, createUser, api, cleanup, childEnv, tempDir } from "../testing/harness.js";
import { IMAGES_DIR } from "../testing/sandbox-api.js";

hardeningSuite("ns");

describe("[ns] host-wide admission", () => {
  test("memory, cpus and the sandbox count are checked across users before anything starts: 503 + Retry-After, 409 for what never fits", async () => {
    const hostMb = Math.floor(totalmem() / 1048576);
    // Room for 700 MiB of sandboxes, and 3 cpus.
    const factor = (700 / hostMb).toFixed(6);
    const cpuFactor = (3 / availableParallelism()).toFixed(6);
    const d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0", "--max-sandboxes", "3", "--overcommit-memory", factor, "--overcommit-cpus", cpuFactor], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
    const a = createUser(d.dataDir, "a");
    const b = createUser(d.dataDir, "b");
    try {
      assert.match(d.output(), /admission: at most 3 sandboxes, (699|700) MiB of memory/);
      const too = await api(d, "POST", "/sandboxes", { key: a, body: { name: "huge", memory_mb: 1024 } });
      assert.equal(too.status, 409);
      assert.match(too.json.error, /memory_mb 1024 is more than this host admits/);
      assert.equal((await api(d, "POST", "/sandboxes", { key: a, body: { name: "c4", cpus: 4, memory_mb: 64 } })).status, 409);

      assert.equal((await api(d, "POST", "/sandboxes", { key: a, body: { name: "m1", memory_mb: 400 } })).status, 201);
      // Another user: the host's memory is shared by everyone.
      const m2 = await api(d, "POST", "/sandboxes", { key: b, body: { name: "m2", memory_mb: 400 } });
      assert.equal(m2.status, 503);
      assert.equal(m2.headers.get("retry-after"), "30");
      assert.match(m2.json.error, /host capacity reached: the memory of running sandboxes may not exceed (699|700) MiB \(serve --overcommit-memory\); 400 MiB requested/);
      assert.ok(!m2.text.includes("m1"), "another user's sandbox is not named");
      assert.deepEqual((await api(d, "GET", "/sandboxes", { key: b })).json, [], "nothing was created");

      // cpus: 1 in use, 3 admitted.
      const c3 = await api(d, "POST", "/sandboxes", { key: b, body: { name: "c3", cpus: 3, memory_mb: 64 } });
      assert.equal(c3.status, 503);
      assert.match(c3.json.error, /the cpus of running sandboxes may not exceed 3 \(serve --overcommit-cpus\)/);

      // Two concurrent creates with room for one: exactly one passes (the check is in the create's transaction).
      const race = await Promise.all(["r1", "r2"].map((name, i) => api(d, "POST", "/sandboxes", { key: i ? b : a, body: { name, memory_mb: 200 } })));
      assert.deepEqual(race.map((r) => r.status).sort(), [201, 503], race.map((r) => r.text).join("\n"));

      // The count: m1 and one racer run; a third small one fits, a fourth does not.
      assert.equal((await api(d, "POST", "/sandboxes", { key: b, body: { name: "s3", memory_mb: 64 } })).status, 201);
      const s4 = await api(d, "POST", "/sandboxes", { key: b, body: { name: "s4", memory_mb: 64 } });
      assert.equal(s4.status, 503);
      assert.match(s4.json.error, /at most 3 sandboxes run on this host \(serve --max-sandboxes\)/);
      // Deleting frees the room.
      assert.equal((await api(d, "DELETE", "/sandboxes/m1", { key: a })).status, 204);
      assert.equal((await api(d, "POST", "/sandboxes", { key: b, body: { name: "s4", memory_mb: 64 } })).status, 201);
    } finally {
      for (const k of [a, b]) for (const sb of (await api(d, "GET", "/sandboxes", { key: k })).json ?? []) await api(d, "DELETE", `/sandboxes/${sb.id}`, { key: k });
      assert.equal(await d.stop(), 0);
      cleanup(d.dataDir);
    }
  });

  test("the daemon says what bounds the number of sandboxes, and refuses a maximum the host's tables cannot hold", async () => {
    const dir = tempDir();
    try {
      const r = spawnSync(BIN, ["serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--engine", "ns", "--max-sandboxes", "1000000"], { env: childEnv({ HOME: dir }), encoding: "utf8", timeout: 30_000 });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr + r.stdout, /--max-sandboxes 1000000 does not fit this host: .* Lower --max-sandboxes to \d+ or raise it: sysctl [a-z_.-]+=\d+/);
      const bad = spawnSync(BIN, ["serve", "--data-dir", dir, "--max-sandboxes", "0"], { env: childEnv({ HOME: dir }), encoding: "utf8", timeout: 30_000 });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /--max-sandboxes must be a positive integer/);
      const d = await startDaemon({ dataDir: dir, args: ["--engine", "ns"] });
      assert.match(d.output(), /max sandboxes: \d+/);
      assert.equal(await d.stop(), 0);
    } finally {
      cleanup(dir);
    }
  });
});
