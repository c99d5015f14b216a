// kill -9 of the daemon during vm creates (slow under TCG, so a few): no file
// ever holds plaintext, and the next start leaves no QEMU, dir or row behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import Database from "better-sqlite3";
import { startDaemon, createUser, api, cleanup } from "../testing/harness.js";
import { sh, IMAGES_DIR, RECOVERED, removeLeftovers, waitForOutput } from "../testing/sandbox-api.js";
import { scanTree } from "../testing/scan.js";
import { runtimeDirFor } from "../util/paths.js";

const start = (dataDir?: string) => startDaemon({ dataDir, args: ["--engine", "vm", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rows(dataDir: string): { id: string; name: string; status: string }[] {
  const db = new Database(join(dataDir, "state.db"), { readonly: true });
  try { return db.prepare("SELECT id, name, status FROM sandboxes").all() as { id: string; name: string; status: string }[]; } finally { db.close(); }
}

/** QEMU processes started by this data dir's daemon (their argv names a socket in its runtime dir). */
function qemus(rt: string): string[] {
  const out: string[] = [];
  for (const p of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8");
      if (argv.startsWith("qemu-system") && argv.includes(`${rt}/sb/`) && !/\) Z /.test(readFileSync(`/proc/${p}/stat`, "utf8"))) {
        out.push(/bhatti-vm-([a-z0-9]+)/.exec(argv)?.[1] ?? "?");
      }
    } catch { /* gone */ }
  }
  return out;
}

test("vm: kill -9 at random moments during create leaves no plaintext file, and the next start leaves no QEMU, dir or dead row", { timeout: 900_000 }, async () => {
  const KILLS = Number(process.env.BHATTI_VM_CRASH_KILLS ?? 4);
  const secret = "vmcrash-" + randomBytes(12).toString("hex");
  let d = await start();
  const dataDir = d.dataDir;
  const rt = runtimeDirFor(dataDir);
  const k = createUser(dataDir, "alice", ["--max-sandboxes", "20", "--max-cpus", "40", "--max-memory", "40000", "--max-disk", "100000"]);
  await api(d, "POST", "/secrets", { key: k, body: { name: "S", value: secret } });
  const tally = { kills: 0, plaintextAfterKill: 0, rolledBack: 0, leakedQemu: 0, leakedDirs: 0, badRows: 0, plaintextFiles: 0 };
  try {
    for (let i = 0; i < KILLS; i++) {
      const req = api(d, "POST", "/sandboxes", { key: k, body: { name: `v${i}`, secrets: ["S"] } }).catch(() => null);
      await sleep(200 + Math.random() * 3000); // a TCG boot takes seconds: most kills land mid-boot
      d.proc.kill("SIGKILL");
      await d.stop();
      await req;
      tally.kills++;
      const hits = [...scanTree(rt, secret), ...scanTree(dataDir, secret)];
      tally.plaintextAfterKill += hits.length;
      assert.deepEqual(hits, [], `kill ${i}: plaintext in a file`);
      d = await start(dataDir);
      const m = await waitForOutput(d, RECOVERED, 120_000);
      tally.rolledBack += Number(m[4]);
      const live = new Set(rows(dataDir).filter((r) => r.status === "running").map((r) => r.id));
      const strayQemu = qemus(rt).filter((id) => !live.has(id));
      const strayDirs = existsSync(join(rt, "sb")) ? readdirSync(join(rt, "sb")).filter((n) => !live.has(n)) : [];
      const bad = rows(dataDir).filter((r) => r.status !== "running");
      tally.leakedQemu += strayQemu.length;
      tally.leakedDirs += strayDirs.length;
      tally.badRows += bad.length;
      assert.deepEqual([strayQemu, strayDirs, bad], [[], [], []], `after kill ${i} and a restart`);
    }
    for (const r of rows(dataDir)) {
      assert.equal((await sh(d, k, r.name, "echo $S")).stdout, `${secret}\n`, r.name);
      assert.equal((await api(d, "DELETE", `/sandboxes/${r.name}`, { key: k })).status, 204);
    }
    tally.plaintextFiles = scanTree(rt, secret).length + scanTree(dataDir, secret).length;
    console.log(`vm crash-recovery figures: ${JSON.stringify(tally)}`);
    assert.equal(tally.plaintextFiles, 0);
    assert.deepEqual(qemus(rt), []);
  } finally {
    await d.stop();
    await removeLeftovers(start, dataDir, k, cleanup);
  }
});
