// "A sandbox cannot exhaust the host", through a real daemon and real
// sandboxes: tmpfs caps and the OOM order (both engines), and on ns the
// rlimits, user-namespace caps, the seccomp allow-list and the masked host
// layout, tried from inside with a static C probe (src/testing/probe.c).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { watch } from "node:fs";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";
import { exec, sh, IMAGES_DIR } from "../testing/sandbox-api.js";
import { installProbe, probeLines, PROBE_GUEST_PATH } from "../testing/probe.js";
import { runtimeDirFor } from "../util/paths.js";
import { MUST_DENY } from "../engine/ns/seccomp.js";
import { INOTIFY_INSTANCES, INOTIFY_WATCHES, NOFILE, RLIMITS } from "../engine/ns/limits.js";

const EPERM = 1;
const EMFILE = 24;
const ENOSPC = 28;

export function hardeningSuite(engine: "ns" | "vm"): void {
  let d: Daemon;
  let key: string;

  before(async () => {
    d = await startDaemon({ args: ["--engine", engine, "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
    key = createUser(d.dataDir, "hard", ["--max-sandboxes", "4", "--max-cpus", "4", "--max-memory", "4096"]);
  });
  after(async () => {
    if (!d) return;
    for (const sb of (await api(d, "GET", "/sandboxes", { key })).json ?? []) await api(d, "DELETE", `/sandboxes/${sb.id}`, { key });
    assert.equal(await d.stop(), 0);
    cleanup(d.dataDir);
  });

  test(`[${engine}] /tmp and /dev/shm are capped; filled to ENOSPC, lohar keeps serving; commands are the OOM killer's first choice (ns: a hog is killed, lohar lives)`, async () => {
    const c = await api(d, "POST", "/sandboxes", { key, body: { name: "full", memory_mb: 256 } });
    assert.equal(c.status, 201, c.text);
    // Sizes follow the sandbox's memory: /tmp 1/4, /run 1/16, /dev/shm 1/8 (ns exactly; vm: % of guest RAM, which is a little less).
    const df = await sh(d, key, "full", "df -k /tmp /run /dev/shm | tail -n 3 | awk '{print $2}'");
    const [tmp, run, shm] = df.stdout.trim().split("\n").map(Number);
    const near = (v: number, want: number) => v <= want && v >= want * 0.85;
    assert.ok(near(tmp, 256 * 1024 / 4), `/tmp ${tmp} KiB`);
    assert.ok(near(run, 256 * 1024 / 16) || (engine === "vm" && near(run, 256 * 1024 * 0.06)), `/run ${run} KiB`);
    assert.ok(near(shm, 256 * 1024 / 8) || (engine === "vm" && near(shm, 256 * 1024 * 0.12)), `/dev/shm ${shm} KiB`);

    const fill = await sh(d, key, "full", "dd if=/dev/zero of=/tmp/fill bs=1M count=1024; echo tmp=$?; dd if=/dev/zero of=/dev/shm/fill bs=1M count=1024; echo shm=$?; head -c 1048576 /dev/zero > /run/fill; echo run=$?");
    assert.match(fill.stdout, /tmp=1/, "dd into /tmp stops at the cap");
    assert.match(fill.stdout, /shm=1/, "dd into /dev/shm stops at the cap");
    assert.match(fill.stderr, /No space left on device/);
    assert.match(fill.stdout, /run=[1-9]/, "/run belongs to the sandbox's root: commands cannot fill it");
    assert.equal((await exec(d, key, "full", ["/bin/echo", "alive"])).stdout, "alive\n", "lohar serves with tmpfs full");

    // With tmpfs full, a command that takes the rest of the memory is what the OOM killer picks, not lohar.
    assert.equal((await sh(d, key, "full", "cat /proc/self/oom_score_adj")).stdout, "1000\n", "commands start with oom_score_adj 1000");
    if (engine === "ns") {
      // (Not on vm: without a memory cgroup, a guest near OOM under TCG thrashes its page cache for minutes first.)
      const hog = await sh(d, key, "full", "/usr/local/bin/node -e 'const a = []; for (;;) a.push(Buffer.alloc(8 << 20, 1))'; echo hog=$?");
      assert.match(hog.stdout, /hog=137/, "the hog was OOM-killed");
      assert.equal((await exec(d, key, "full", ["/bin/echo", "still"])).stdout, "still\n", "lohar survived the OOM");
    }
    assert.equal((await api(d, "GET", "/sandboxes/full", { key })).json.status, "running");
    const own = await sh(d, key, "full", "rm -f /tmp/fill /dev/shm/fill && df -k /tmp | tail -n 1 | awk '{print $3}'");
    assert.equal(own.stdout.trim(), "0");
    assert.equal((await api(d, "DELETE", "/sandboxes/full", { key })).status, 204);
  });

  if (engine !== "ns") return;

  test("[ns] rlimits, open files and inotify caps: EMFILE/ENOSPC inside, host root unaffected", async () => {
    assert.equal((await api(d, "POST", "/sandboxes", { key, body: { name: "tables" } })).status, 201);
    await installProbe(d, key, "tables");
    const lim = probeLines((await exec(d, key, "tables", [PROBE_GUEST_PATH, "rlimits"])).stdout);
    const want: Record<string, string> = { nofile: "RLIMIT_NOFILE", nproc: "RLIMIT_NPROC", memlock: "RLIMIT_MEMLOCK", msgqueue: "RLIMIT_MSGQUEUE", sigpending: "RLIMIT_SIGPENDING", core: "RLIMIT_CORE" };
    for (const [name, type] of Object.entries(want)) {
      const r = RLIMITS.find((x) => x.type === type)!;
      assert.deepEqual(lim.get(name), [r.soft, r.hard], name);
    }
    // POSIX message queues would be charged to root's host-wide budget: none in a sandbox.
    assert.deepEqual(probeLines((await exec(d, key, "tables", [PROBE_GUEST_PATH, "mqueue"])).stdout).get("mqueue"), [0, EMFILE]);
    const files = probeLines((await exec(d, key, "tables", [PROBE_GUEST_PATH, "nofile"])).stdout).get("nofile")!;
    assert.equal(files[1], EMFILE, "EMFILE at the cap");
    assert.ok(files[0] > NOFILE - 10 && files[0] <= NOFILE, `opened ${files[0]} files`);

    // Hold the sandbox's inotify instances while the host's root makes one: the
    // sandbox's use is charged to root's host-wide count, so without the cap it
    // could take all of them.
    const held = exec(d, key, "tables", [PROBE_GUEST_PATH, "inotify", "3"]);
    await new Promise((r) => setTimeout(r, 1500));
    const w = watch(IMAGES_DIR); // throws EMFILE if root has no inotify instance left
    w.close();
    const ino = probeLines((await held).stdout);
    assert.deepEqual(ino.get("inotify"), [INOTIFY_INSTANCES, EMFILE]);
    assert.deepEqual(ino.get("watches"), [INOTIFY_WATCHES, ENOSPC]);
    const ns = await sh(d, key, "tables", "cat /proc/sys/user/max_inotify_instances /proc/sys/user/max_user_namespaces; echo 100000 > /proc/sys/user/max_inotify_instances; echo rc=$?");
    assert.match(ns.stdout, new RegExp(`^${INOTIFY_INSTANCES}\\n0\\nrc=[1-9]`), "set in the sandbox's namespace; the sandbox cannot raise it");
    assert.equal((await api(d, "DELETE", "/sandboxes/tables", { key })).status, 204);
  });

  test("[ns] seccomp allow-list: the denied set fails with EPERM, ordinary calls work", async () => {
    assert.equal((await api(d, "POST", "/sandboxes", { key, body: { name: "sc" } })).status, 201);
    await installProbe(d, key, "sc");
    const r = await exec(d, key, "sc", [PROBE_GUEST_PATH, "syscalls"]);
    assert.equal(r.exit_code, 0, r.stderr);
    const got = probeLines(r.stdout);
    const denied = ["io_uring_setup", "io_uring_enter", "io_uring_register", "mount", "unshare", "unshare_ns", "setns", "clone_newuser",
      "bpf", "keyctl", "add_key", "ptrace", "kexec_load", "perf_event_open", "open_by_handle_at", "init_module", "userfaultfd",
      "pivot_root", "chroot", "fsopen", "open_tree", "move_mount", "swapon", "syslog", "acct", "settimeofday", "reboot",
      "process_vm_readv", "pidfd_getfd", "personality_bad"];
    for (const name of denied) {
      assert.deepEqual(got.get(name), [EPERM], `${name} must fail with EPERM`);
      const call = name.replace(/_(bad|ns|newuser)$/, "");
      if (call !== "clone" && call !== "personality") assert.ok(MUST_DENY.includes(call), `${call} is documented as denied`);
    }
    assert.deepEqual(got.get("clone3"), [38], "clone3: ENOSYS so libc falls back to clone");
    assert.deepEqual(got.get("umount2_bad"), [2], "umount2 is allowed (lohar needs it): ENOENT from the kernel");
    for (const ok of ["getpid", "personality_query", "socket_unix"]) assert.deepEqual(got.get(ok), [0], ok);
    // Real programs: node (libuv without io_uring), busybox, script (tty).
    const node = await exec(d, key, "sc", ["/usr/local/bin/node", "-e", "require('fs').writeFileSync('/tmp/n', 'ok'); console.log(require('fs').readFileSync('/tmp/n', 'utf8'))"]);
    assert.equal(node.stdout, "ok\n", node.stderr);
    assert.equal((await sh(d, key, "sc", "hostname")).stdout, "sc\n");
    assert.equal((await api(d, "DELETE", "/sandboxes/sc", { key })).status, 204);
  });

  test("[ns] nothing shows the host layout: mountinfo has no host path, block devices are masked", async () => {
    assert.equal((await api(d, "POST", "/sandboxes", { key, body: { name: "layout" } })).status, 201);
    const mi = await exec(d, key, "layout", ["/bin/cat", "/proc/self/mountinfo"]);
    const rt = runtimeDirFor(d.dataDir);
    for (const host of [d.dataDir, rt, rt.split("/").pop()!, IMAGES_DIR, "/sandboxes/", "/layers/", "/var/lib", "/tmp/"]) {
      assert.ok(!mi.stdout.includes(host), `mountinfo shows ${host}:\n${mi.stdout}`);
    }
    assert.match(mi.stdout, / \/ \/ .* overlay bhatti-root rw,lowerdir=l0(:l1)?,upperdir=u,workdir=w/);
    const blk = await sh(d, key, "layout", "ls -A /sys/block /sys/class/block /sys/dev/block /sys/devices/virtual/block; cat /sys/devices/virtual/block/loop*/loop/backing_file /sys/block/loop*/loop/backing_file 2>/dev/null | wc -l");
    assert.equal(blk.stdout.replace(/\/sys\/[a-z/]+:\n/g, "").replace(/\n+/g, "\n").trim(), "0", blk.stdout);
    assert.equal((await api(d, "DELETE", "/sandboxes/layout", { key })).status, 204);
  });
}
