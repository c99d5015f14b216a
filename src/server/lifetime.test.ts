// No helper outlives the process that started it. Real daemons are killed
// (SIGKILL and SIGTERM) at several moments of the accelerator probe (of a
// kernel that hangs silently, as a KVM guest does on some hosts: the reported
// leak; a probe of a kernel that boots ends by itself in a second), and
// `bhatti image build` at several moments of a build; afterwards no process
// they started may be left, and the next daemon's start removes the runtime
// dirs the killed ones left (and only stale ones). Sandboxes are the exception:
// an ns sandbox survives SIGKILL of its daemon and is reattached.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { api, BIN, childEnv, createUser, startDaemon, tempDir } from "../testing/harness.js";
import { describe, descendants, gone, mentioning, processes, until, type Proc } from "../testing/procs.js";
import { ensureTestImage } from "../engine/ns/test-image.js";
import { allocateUidSlot, ensureRuntimeDir, freeUidSlot, RUN_BHATTI, slotOwner } from "../engine/runtime.js";
import { isProbeArgv } from "../engine/vm/strays.js";
import { kernelCmdline, QEMU_BIN } from "../engine/vm/qemu.js";
import { runtimeDirFor } from "../util/paths.js";
import { hangKernel } from "../testing/hang-kernel.js";

const work = tempDir("bhatti-lifetime-");
let imagesDir = ""; // the tests' real images dir (built if missing)
const probeImages = join(work, "probe-images"); // a vm image with a silently hanging kernel, under a path only this test uses
const noImages = join(work, "no-images"); // a daemon with no vm image starts no probe
const killedRuntimeDirs: string[] = [];
const extraPids: number[] = []; // processes this file started itself, ended in after()
const extraDirs: string[] = [];

before(async () => {
  imagesDir = await ensureTestImage();
  mkdirSync(join(probeImages, "minimal"), { recursive: true });
  writeFileSync(join(probeImages, "minimal", "vmlinux"), hangKernel());
  for (const f of ["initramfs.cpio", "rootfs.ext4"]) symlinkSync(join(imagesDir, "minimal", f), join(probeImages, "minimal", f));
  mkdirSync(noImages);
});

after(() => {
  // What this file started itself, and anything a regression left running with this file's paths.
  for (const pid of [...extraPids, ...mentioning(work).map((p) => p.pid)]) { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } }
  for (const d of extraDirs) rmSync(d, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

interface Spawned { proc: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }

/** A daemon (or CLI command) process that may be killed before it says anything. */
function launch(args: string[], env: Record<string, string>, cmd = BIN): Spawned {
  const proc = spawn(cmd, args, { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => { out += d; });
  proc.stderr!.on("data", (d) => { out += d; });
  const kill = () => { try { proc.kill("SIGKILL"); } catch { /* gone */ } };
  process.once("exit", kill);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once("exit", (code, signal) => {
    process.off("exit", kill);
    r({ code, signal });
  }));
  return { proc, output: () => out, exited };
}

const probeKernel = join(probeImages, "minimal", "vmlinux");
const accelOf = (p: Proc): string => p.argv[p.argv.indexOf("-accel") + 1];
const probesOfThisTest = (): Proc[] => processes().filter((p) => p.state !== "Z" && isProbeArgv(p.argv) && p.argv.includes(probeKernel));

/**
 * Kills proc with signal, then checks that nothing it started is left: neither
 * the processes seen at the moment (seen) nor those running when it was killed.
 */
async function killAndCheck(s: Spawned, signal: NodeJS.Signals, marker: string, seen: Proc[]): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const tree = [...seen, ...descendants(s.proc.pid!)];
  s.proc.kill(signal);
  const exit = await Promise.race([s.exited, sleep(15_000, null, { ref: false }).then(() => null)]);
  assert.ok(exit, `${signal} did not end the process within 15 s:\n${s.output()}`);
  const left = await gone(tree, 3_000);
  assert.deepEqual(left, [], `helpers left after ${signal}:\n${describe(left)}`);
  const strays = mentioning(marker);
  assert.deepEqual(strays, [], `processes still using ${marker}:\n${describe(strays)}`);
  return exit;
}

// ---- the accelerator probe ----

const probeCases = [
  { signal: "SIGKILL", at: "first", engine: "ns" },
  { signal: "SIGKILL", at: "tcg", engine: "ns" },
  { signal: "SIGTERM", at: "first", engine: "ns" },
  { signal: "SIGTERM", at: "tcg", engine: "vm" }, // the daemon is still starting: it waits for the probe
] as const;

for (const [i, c] of probeCases.entries()) {
  test(`daemon (--engine ${c.engine}) gets ${c.signal} during the ${c.at === "first" ? "first" : "TCG"} probe boot: no probe QEMU is left`, { timeout: 40_000 }, async () => {
    const dataDir = tempDir();
    const cache = join(work, `accel-${i}.json`); // no answer cached: the daemon must probe
    const d = launch(["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--engine", c.engine, "--rate-limit", "0"],
      { HOME: dataDir, BHATTI_IMAGES_DIR: probeImages, BHATTI_ACCEL_CACHE: cache });
    try {
      // The kernel never boots, so the probe always gets to its TCG attempt (after
      // KVM failed, at once or after 3 s of silence) and that one hangs.
      const moment = await until(`a ${c.at} probe QEMU`, 20_000, () => {
        const ps = probesOfThisTest().filter((p) => c.at === "first" || accelOf(p) === "tcg");
        return ps.length ? ps : null;
      });
      const exit = await killAndCheck(d, c.signal, probeKernel, moment);
      const rt = runtimeDirFor(dataDir);
      if (c.signal === "SIGTERM") {
        assert.equal(exit.code, 0, d.output());
        assert.match(d.output(), c.engine === "vm" ? /stopped while starting/ : /stopped/);
        assert.ok(!existsSync(cache), "an interrupted probe caches no answer");
        // A clean stop frees the runtime dir; a start that was cut short keeps it (it may hold sandboxes).
        if (c.engine === "ns") assert.ok(!existsSync(rt), "a stopped daemon with no sandboxes removes its runtime dir");
      } else {
        assert.equal(exit.signal, "SIGKILL");
      }
      if (existsSync(rt)) {
        assert.equal(readFileSync(join(rt, "datadir"), "utf8").trim(), dataDir, "the runtime dir records its data dir");
        killedRuntimeDirs.push(rt);
      }
    } finally {
      d.proc.kill("SIGKILL"); // a no-op unless the test failed half way
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

// ---- what the next daemon cleans up at start ----

/** Starts QEMU (paused: -S, so it runs until killed) as a child of pid 1, the way a dead daemon leaves its probe. */
function orphanQemu(append: string): number {
  const r = spawnSync("sh", ["-c", `"$0" "$@" </dev/null >/dev/null 2>&1 & echo $!`, QEMU_BIN, ...pausedQemuArgs(append)], { encoding: "utf8" });
  const pid = Number(r.stdout.trim());
  assert.ok(pid > 0, r.stderr);
  extraPids.push(pid);
  return pid;
}

function pausedQemuArgs(append: string): string[] {
  return [
    "-M", "microvm", "-accel", "tcg", "-cpu", "max", "-m", "64M", "-nodefaults", "-no-user-config", "-nographic",
    "-display", "none", "-S", "-kernel", probeKernel, "-initrd", join(probeImages, "minimal", "initramfs.cpio"), "-append", append, "-serial", "null",
  ];
}

const alive = (pid: number): boolean => processes().some((p) => p.pid === pid && p.state !== "Z");

test("at start a daemon ends orphaned probes only, and removes only stale runtime dirs of killed daemons", { timeout: 40_000 }, async () => {
  // The killed daemons' runtime dirs (their data dirs are gone) were there
  // when they died; the start of any later daemon removes them.
  assert.ok(killedRuntimeDirs.length > 0, "the probe tests left runtime dirs to clean");

  // Processes: an orphaned probe (to end), a probe whose parent (this test) lives, an orphaned QEMU that is no probe.
  const probeLine = kernelCmdline({ accel: "tcg", probe: true });
  const orphanProbe = orphanQemu(probeLine);
  const ownedProbe = spawn(QEMU_BIN, pausedQemuArgs(probeLine), { stdio: "ignore" });
  extraPids.push(ownedProbe.pid!);
  const orphanOther = orphanQemu("console=ttyS0 quiet");
  await until("the QEMUs to start", 5_000, () => [orphanProbe, ownedProbe.pid!, orphanOther].every(alive));
  const parentOf = (pid: number) => processes().find((p) => p.pid === pid)?.ppid;
  assert.equal(parentOf(ownedProbe.pid!), process.pid);
  assert.notEqual(parentOf(orphanProbe), process.pid);

  // Runtime dirs. Other daemons of the suite may start (and sweep) at any
  // moment, so each dir is set up under a name no sweep considers and renamed
  // into place whole: a half-built dir must never be seen.
  const staged = async (final: string, dataDir: string | undefined, fill: (dir: string) => void | Promise<void>): Promise<string> => {
    const stage = join(RUN_BHATTI, `.stage-${randomBytes(6).toString("hex")}`);
    if (dataDir) await ensureRuntimeDir(stage, dataDir);
    else mkdirSync(stage);
    await fill(stage);
    renameSync(stage, final);
    return final;
  };
  const gone1 = join(work, "gone-1");
  let slot!: { slot: number };
  const stale = await staged(runtimeDirFor(gone1), gone1, (dir) => {
    mkdirSync(join(dir, "sb", "abc"));
    slot = allocateUidSlot(`${runtimeDirFor(gone1)}:abc`);
  });
  const noRecord = await staged(join(RUN_BHATTI, randomBytes(6).toString("hex")), undefined, () => {});
  const gone2 = join(work, "gone-2");
  let user!: ChildProcess;
  const busy = await staged(runtimeDirFor(gone2), gone2, (dir) => {
    user = spawn("sleep", ["600"], { cwd: join(dir, "sb"), stdio: "ignore" }); // its cwd moves with the rename
    extraPids.push(user.pid!);
  });
  const gone3 = join(work, "gone-3");
  const runcState = await staged(runtimeDirFor(gone3), gone3, (dir) => {
    mkdirSync(join(dir, "runc", "somebox"), { recursive: true });
    writeFileSync(join(dir, "runc", "somebox", "state.json"), "{}");
  });
  const liveData = tempDir();
  const live = runtimeDirFor(liveData);
  await ensureRuntimeDir(live, liveData);
  extraDirs.push(noRecord, busy, runcState, live, liveData, stale);

  let d;
  try {
    d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: noImages } });
    const out = d.output();
    // Other tests' daemons on this host may start at the same moment and end
    // (or remove) the same strays first; then our log cannot name them.
    await until("the orphaned probe to be ended", 5_000, () => !alive(orphanProbe));
    if (!out.includes(`ended a stray accelerator probe: pid ${orphanProbe} `)) console.log("# the orphaned probe was ended by another daemon on this host");
    assert.ok(alive(ownedProbe.pid!), "a probe whose parent lives is not touched");
    assert.ok(alive(orphanOther), "an orphaned QEMU without the probe flag (a sandbox's) is not touched");

    assert.ok(!existsSync(stale), "the stale runtime dir is removed");
    assert.equal(slotOwner(slot.slot), null, "and its uid slot is freed");
    for (const rt of killedRuntimeDirs) assert.ok(!existsSync(rt), `${rt} (of a killed daemon) is removed`);
    assert.ok(existsSync(live), "a runtime dir whose data dir exists is kept");
    assert.doesNotMatch(out, new RegExp(`${live}|${stale} \\(`), out);
    for (const [dir, why] of [[noRecord, "no datadir record"], [busy, `data dir ${gone2} is gone but process ${user.pid} uses it`], [runcState, `data dir ${gone3} is gone but runc state for container(s) somebox`]]) {
      assert.ok(existsSync(dir), `${dir} is kept`);
      assert.ok(out.includes(`${dir} (${why})`), `the log says why ${dir} was kept:\n${out}`);
    }
    assert.equal(await d.stop(), 0);
  } finally {
    if (d) await d.stop("SIGKILL");
    freeUidSlot(slot.slot, `${stale}:abc`);
    rmSync(d?.dataDir ?? "/nonexistent", { recursive: true, force: true });
  }
});

// ---- sandboxes are not helpers ----

test("an ns sandbox survives SIGKILL of its daemon (runc is tied to the daemon, the container is not)", { timeout: 60_000 }, async () => {
  let d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: imagesDir } });
  const key = createUser(d.dataDir, "alice");
  try {
    const created = await api(d, "POST", "/sandboxes", { key, body: { name: "keep" } });
    assert.equal(created.status, 201, created.text);
    const id = (await api(d, "GET", "/sandboxes/keep", { key })).json.id as string;
    const init = Number(readFileSync(join(runtimeDirFor(d.dataDir), "sb", id, "pid"), "utf8"));
    assert.ok(alive(init));
    d.proc.kill("SIGKILL");
    await d.stop();
    await sleep(500);
    assert.ok(alive(init), "the sandbox's init outlives its daemon");
    d = await startDaemon({ dataDir: d.dataDir, args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: imagesDir } });
    // Reattach runs in the background after the daemon listens: wait for its report.
    await until("the recovery report", 20_000, () => /recovered sandboxes: /.test(d.output()));
    assert.match(d.output(), /recovered sandboxes: 1 reattached/);
    const r = await api(d, "POST", "/sandboxes/keep/exec", { key, body: { cmd: ["echo", "still here"] } });
    assert.equal(r.json?.stdout, "still here\n", r.text);
    assert.equal((await api(d, "DELETE", "/sandboxes/keep", { key })).status, 204);
    assert.equal(await d.stop(), 0);
  } finally {
    await d.stop("SIGKILL");
    rmSync(d.dataDir, { recursive: true, force: true });
  }
});

// ---- image build ----

const buildDir = join(work, "build");
const buildImages = join(buildDir, "images");

/** Seeds the build's cache from the tests' images dir, so the build never downloads (it also runs without a network). */
function seedCache(): string | null {
  const from = join(imagesDir, ".cache");
  const to = join(buildImages, ".cache");
  const debs = existsSync(from) ? readdirSync(from).filter((n) => n.endsWith(".deb")) : [];
  if (!existsSync(join(from, "apt-resolve.json")) || !debs.some((n) => n.startsWith("linux-image-")) || !existsSync(join(from, "debs"))) {
    return `${from} holds no cached .debs (apt-resolve.json, debs/, the kernel .deb): run bhatti image build there once`;
  }
  mkdirSync(join(to, "debs"), { recursive: true });
  copyFileSync(join(from, "apt-resolve.json"), join(to, "apt-resolve.json"));
  for (const n of debs) symlinkSync(join(from, n), join(to, n));
  for (const n of readdirSync(join(from, "debs"))) if (n.endsWith(".deb")) symlinkSync(join(from, "debs", n), join(to, "debs", n));
  return null;
}

const buildCases: { signal: NodeJS.Signals; at: string; when: (p: Proc) => boolean; delayMs?: number }[] = [
  { signal: "SIGKILL", at: "unpacking the first .deb", when: (p) => p.comm === "dpkg-deb" },
  { signal: "SIGTERM", at: "packing rootfs.ext4", when: (p) => p.comm === "mke2fs" },
  { signal: "SIGKILL", at: "unpacking the kernel", when: (p) => p.comm === "dpkg-deb" && p.argv.some((a) => a.includes("linux-image-")), delayMs: 300 },
  { signal: "SIGKILL", at: "the first tool's start", when: (p) => p.comm === "setpriv" || p.comm === "sh" || p.comm === "unshare" },
];

test("bhatti image build killed at several moments leaves no helper, and a build afterwards succeeds", { timeout: 120_000 }, async (t) => {
  const why = seedCache();
  if (why) { t.skip(why); return; }
  const build = () => launch(["--net", "--", BIN, "image", "build", "minimal", "--images-dir", buildImages], { HOME: buildDir }, "unshare");
  for (const c of buildCases) {
    const b = build();
    try {
      const seen = await until(`a helper ${c.at}`, 60_000, () => {
        const ps = descendants(b.proc.pid!);
        return ps.some(c.when) ? ps : b.proc.exitCode !== null ? "exited" : null;
      }, 5);
      assert.notEqual(seen, "exited", `the build ended before ${c.at}:\n${b.output()}`);
      if (c.delayMs) await sleep(c.delayMs);
      const exit = await killAndCheck(b, c.signal, buildDir, seen as Proc[]);
      assert.equal(exit.signal, c.signal, `killed ${c.at}`);
    } finally {
      b.proc.kill("SIGKILL");
    }
  }
  const b = build();
  const exit = await Promise.race([b.exited, sleep(90_000, null, { ref: false }).then(() => { b.proc.kill("SIGKILL"); return null; })]);
  assert.equal(exit?.code, 0, b.output());
  assert.match(b.output(), /image minimal built in/);
  assert.deepEqual(readdirSync(buildImages).filter((n) => !n.startsWith(".")), ["minimal"], "no leftovers of the killed builds");
});
