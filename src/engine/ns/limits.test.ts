// planCapacity against made-up host tables (the real host's are read by the daemon test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_MAX_SANDBOXES, INOTIFY_INSTANCES, PIDS_LIMIT, planCapacity, tmpfsSizesKiB, type HostTables } from "./limits.js";

const big: HostTables = { pidMax: 4194304, threadsMax: 1 << 22, fileMax: 2 ** 62, nrOpen: 1 << 20, inotifyInstances: 8192, inotifyWatches: 1 << 22, ptyMax: 1 << 20, ptyReserve: 1024 };

test("a roomy host gets the default maximum, with no warning", () => {
  assert.deepEqual(planCapacity(undefined, big), { maxSandboxes: DEFAULT_MAX_SANDBOXES, log: [`max sandboxes: ${DEFAULT_MAX_SANDBOXES}`] });
});

test("without --max-sandboxes the tightest table decides, and the log names it", () => {
  const p = planCapacity(undefined, { ...big, inotifyInstances: 128 });
  assert.equal(p.maxSandboxes, Math.floor((128 * 0.75) / INOTIFY_INSTANCES));
  assert.match(p.log[0], /bounded by fs\.inotify\.max_user_instances = 128/);
  const q = planCapacity(undefined, { ...big, pidMax: 32768 });
  assert.equal(q.maxSandboxes, Math.floor((32768 * 0.75) / PIDS_LIMIT));
});

test("an explicit maximum that does not fit is refused, naming the sysctl and the value needed", () => {
  assert.throws(() => planCapacity(100, { ...big, pidMax: 32768 }), /--max-sandboxes 100 does not fit this host: 100 sandboxes x 1024 processes > 75% of kernel\.pid_max \(32768\)\. Lower --max-sandboxes to 24 or raise it: sysctl kernel\.pid_max=136534/);
  assert.equal(planCapacity(24, { ...big, pidMax: 32768 }).maxSandboxes, 24);
});

test("pseudo-terminals: the host's reserve is not for sandboxes", () => {
  assert.equal(planCapacity(undefined, { ...big, ptyMax: 4096, ptyReserve: 1024 }).maxSandboxes, 36);
  assert.throws(() => planCapacity(40, { ...big, ptyMax: 4096, ptyReserve: 1024 }), /40 sandboxes x 64 pseudo-terminals > 75% of kernel\.pty\.max \(4096\) less 1024 reserved\. Lower --max-sandboxes to 36 or raise it: sysctl kernel\.pty\.max=4438/);
});

test("the file table only warns; fs.nr_open below the per-process cap is refused", () => {
  const p = planCapacity(10, { ...big, fileMax: 1000000 });
  assert.equal(p.maxSandboxes, 10);
  assert.match(p.log[1], /^warning: 10 sandboxes x 1024 processes x 1024 open files \(10485760\) exceed fs\.file-max \(1000000\)/);
  assert.throws(() => planCapacity(undefined, { ...big, nrOpen: 512 }), /fs\.nr_open \(512\)/);
});

test("tmpfs sizes are shares of the sandbox's memory", () => {
  assert.deepEqual(tmpfsSizesKiB(512), { tmp: 131072, run: 32768, shm: 65536 });
  assert.deepEqual(tmpfsSizesKiB(64), { tmp: 16384, run: 4096, shm: 8192 });
});
