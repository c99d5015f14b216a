// Sandbox lifecycle on the vm engine (issue 14): pause/resume through QMP
// (the vCPUs stop, guest memory stays), a request waking a paused VM, a
// daemon restart keeping it paused, and stop/start refused with the reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { scanTree } from "../testing/scan.js";
import { runtimeDirFor } from "../util/paths.js";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";
import { sh, IMAGES_DIR, RECOVERED, removeLeftovers, waitForOutput } from "../testing/sandbox-api.js";

const start = (dataDir?: string) => startDaemon({ dataDir, args: ["--engine", "vm", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuTicks = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return Number(f[11]) + Number(f[12]); };

test("[vm] pause stops the vCPUs; a request wakes it; stop saves memory age-encrypted and start restores it; a restart keeps it paused", { timeout: 300_000 }, async () => {
  let d: Daemon = await start();
  const dataDir = d.dataDir;
  const k = createUser(dataDir, "vera");
  try {
    assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: "S", value: "vm-secret-value-91c" } })).status, 201);
    const c = await api(d, "POST", "/sandboxes", { key: k, body: { name: "v", secrets: ["S"] } });
    assert.equal(c.status, 201, c.text);
    await sh(d, k, "v", "echo in-ram > /home/lohar/f");
    const pa = await api(d, "POST", "/sandboxes/v/pause", { key: k });
    assert.equal(pa.status, 200, pa.text);
    assert.equal(pa.json.status, "paused");
    // QEMU's vCPU threads stop: its cpu time barely moves while paused.
    const db = (await import("better-sqlite3")).default;
    const conn = new db(`${dataDir}/state.db`, { readonly: true });
    const pid = JSON.parse((conn.prepare("SELECT engine_state AS s FROM sandboxes WHERE name = 'v'").get() as { s: string }).s).pid as number;
    conn.close();
    const t0 = cpuTicks(pid);
    await sleep(1000);
    assert.ok(cpuTicks(pid) - t0 < 50, `a paused VM uses little cpu (${cpuTicks(pid) - t0} ticks in 1 s)`);
    // A request wakes it transparently, memory intact.
    assert.equal((await sh(d, k, "v", "cat /home/lohar/f")).stdout, "in-ram\n");
    assert.equal((await api(d, "GET", "/sandboxes/v", { key: k })).json.status, "running");

    // Cold: the VM's memory goes to an age-encrypted file and QEMU ends; start restores it.
    await sh(d, k, "v", "echo memory-marker-4f2a > /home/lohar/m");
    const st = await api(d, "POST", "/sandboxes/v/stop", { key: k });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.json.status, "stopped");
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) { try { process.kill(pid, 0); await sleep(100); } catch { gone = true; } }
    assert.ok(gone, "QEMU has ended: its memory is released");
    const memFile = readdirSync(`${dataDir}/sandboxes`).map((x) => `${dataDir}/sandboxes/${x}/memory.age`).find((f) => existsSync(f));
    assert.ok(memFile, "a memory snapshot exists");
    assert.equal(readFileSync(memFile).subarray(0, 21).toString(), "age-encryption.org/v1", "it is age-encrypted");
    for (const v of ["vm-secret-value-91c", "memory-marker-4f2a"]) {
      assert.deepEqual([...scanTree(dataDir, v), ...scanTree(runtimeDirFor(dataDir), v)], [], `no plaintext of ${v} on disk`);
    }
    assert.equal((await api(d, "POST", "/sandboxes/v/exec", { key: k, body: { cmd: ["true"] } })).status, 409, "a user's stop is not undone by a request");
    const sa = await api(d, "POST", "/sandboxes/v/start", { key: k });
    assert.equal(sa.status, 200, sa.text);
    assert.equal((await sh(d, k, "v", 'cat /home/lohar/f /home/lohar/m; echo "$S"')).stdout, "in-ram\nmemory-marker-4f2a\nvm-secret-value-91c\n");
    assert.ok(!existsSync(memFile), "the spent snapshot is removed");
    const sn = await api(d, "POST", "/sandboxes/v/snapshots", { key: k, body: { name: "vs" } });
    assert.equal(sn.status, 400);
    assert.match(sn.json.error, /vm engine: a vm sandbox's files live in guest memory, so a snapshot needs a memory snapshot/);
    const fk = await api(d, "POST", "/sandboxes", { key: k, body: { name: "vf", from: "v" } });
    assert.equal(fk.status, 400);
    assert.deepEqual((await api(d, "GET", "/snapshots", { key: k })).json, [], "nothing half-made is left");

    assert.equal((await api(d, "POST", "/sandboxes/v/pause", { key: k })).status, 200);
    assert.equal(await d.stop(), 0);
    d = await start(dataDir);
    await waitForOutput(d, RECOVERED, 120_000);
    assert.equal((await api(d, "GET", "/sandboxes/v", { key: k })).json.status, "paused");
    const re = await api(d, "POST", "/sandboxes/v/resume", { key: k });
    assert.equal(re.status, 200, re.text);
    assert.equal((await sh(d, k, "v", "cat /home/lohar/f")).stdout, "in-ram\n");
    assert.equal((await api(d, "DELETE", "/sandboxes/v", { key: k })).status, 204);
  } finally {
    await d.stop();
    await removeLeftovers((dir) => start(dir), dataDir, k, cleanup);
  }
});

test("[vm] idle policy: warm (vCPUs stopped), then cold (memory saved), a request wakes it from either", { timeout: 300_000 }, async () => {
  const d = await startDaemon({ args: ["--engine", "vm", "--rate-limit", "0", "--idle-warm-seconds", "1", "--idle-cold-minutes", "0.15"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  const k = createUser(d.dataDir, "ivy");
  const status = async () => (await api(d, "GET", "/sandboxes/iv", { key: k })).json.status as string;
  const until = async (want: string, ms: number) => {
    const deadline = Date.now() + ms;
    while ((await status()) !== want) {
      if (Date.now() > deadline) throw new Error(`not ${want} within ${ms} ms (${await status()})`);
      await sleep(200);
    }
  };
  try {
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "iv" } })).status, 201);
    await sh(d, k, "iv", "echo idle-vm > /home/lohar/z");
    await until("paused", 10_000);
    assert.equal((await sh(d, k, "iv", "cat /home/lohar/z")).stdout, "idle-vm\n", "wake on exec from warm");
    await until("stopped", 60_000);
    assert.equal((await api(d, "GET", "/sandboxes/iv", { key: k })).json.idle, "cold");
    assert.equal((await sh(d, k, "iv", "cat /home/lohar/z")).stdout, "idle-vm\n", "wake on exec from cold (memory restored)");
    assert.equal(await status(), "running");
    assert.equal((await api(d, "DELETE", "/sandboxes/iv", { key: k })).status, 204);
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
});
