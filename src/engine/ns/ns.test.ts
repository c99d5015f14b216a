// The ns engine against real runc and the real base image: the shared
// conformance suite (full) and ns-specific host checks. Speed is measured by bench/sandbox.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { conformanceSuite, newId, specFor, type HostInspector } from "../conformance.js";
import type { EngineEnv } from "../types.js";
import { loopBackingFiles, loopDevicesUnder, mountPoints, RUN_BHATTI, TOOL_ENV, UID_SLOTS_DIR } from "../runtime.js";
import { NsEngine } from "./engine.js";
import { cgroupDirs, nsPaths } from "./paths.js";
import { cgroupsPath } from "./bundle.js";
import { ensureTestImage } from "./test-image.js";

const env: EngineEnv = {
  dataDir: mkdtempSync("/var/tmp/bhatti-nstest-"),
  runtimeDir: join(RUN_BHATTI, `nstest-${process.pid}`),
  imagesDir: "",
};

const engines: NsEngine[] = [];
async function makeEngine(): Promise<NsEngine> {
  env.imagesDir = await ensureTestImage();
  const e = new NsEngine(env);
  engines.push(e);
  return e;
}

function runcIds(): string[] {
  const r = spawnSync("runc", ["--root", join(env.runtimeDir, "runc"), "list", "-q"], { env: TOOL_ENV, encoding: "utf8" });
  return r.status === 0 ? r.stdout.split("\n").filter(Boolean) : [];
}

function slotFilesOf(owner: string): string[] {
  if (!existsSync(UID_SLOTS_DIR)) return [];
  return readdirSync(UID_SLOTS_DIR).filter((n) => {
    try {
      return readFileSync(join(UID_SLOTS_DIR, n), "utf8").trim() === owner;
    } catch {
      return false;
    }
  });
}

const inspector: HostInspector = {
  async configDriveTraces(id) {
    const p = nsPaths(env, id);
    const img = join(p.sb, "config.ext4");
    const out: string[] = [];
    if (existsSync(img)) out.push(`file ${img}`);
    for (const d of loopDevicesUnder(p.sb)) out.push(`loop ${d}`);
    for (const m of mountPoints()) if (m.startsWith(join(p.sb, "config"))) out.push(`mount ${m}`);
    return out;
  },
  async traces(id) {
    const p = nsPaths(env, id);
    const out: string[] = [];
    if (runcIds().includes(id)) out.push(`runc container ${id}`);
    for (const m of mountPoints()) if (m.startsWith(`${p.sb}/`) || m.startsWith(`${p.data}/`)) out.push(`mount ${m}`);
    for (const f of loopBackingFiles()) if (f.includes(`/sb/${id}/`)) out.push(`loop ${f}`);
    for (const c of cgroupDirs(cgroupsPath(id))) out.push(`cgroup ${c}`);
    for (const s of slotFilesOf(`${env.runtimeDir}:${id}`)) out.push(`uid slot ${s}`);
    if (existsSync(p.sb)) out.push(`dir ${p.sb}`);
    if (existsSync(p.data)) out.push(`dir ${p.data}`);
    return out;
  },
  async counts() {
    for (const e of engines) await e.idle(); // writable layers are deleted in the background
    // Scoped to this test daemon: other daemons on the host run sandboxes in parallel.
    const ours = (p: string) => p.startsWith(`${env.runtimeDir}/`) || p.startsWith(`${env.dataDir}/`);
    const known = new Set(readdirSync(join(env.runtimeDir, "sb")));
    const cg = (ctrl: string) => {
      const d = join("/sys/fs/cgroup", ctrl, "bhatti");
      if (!existsSync(d)) return 0;
      return readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory() && (e.name.startsWith(`cy${process.pid.toString(36)}`) || known.has(e.name))).length;
    };
    const ls = (d: string) => (existsSync(d) ? readdirSync(d).length : 0);
    const slots = existsSync(UID_SLOTS_DIR)
      ? readdirSync(UID_SLOTS_DIR).filter((n) => {
        try {
          return readFileSync(join(UID_SLOTS_DIR, n), "utf8").startsWith(`${env.runtimeDir}:`);
        } catch {
          return false;
        }
      }).length
      : 0;
    return {
      mounts: mountPoints().filter(ours).length,
      loops: loopBackingFiles().filter(ours).length,
      cgroupsMemory: cg("memory"),
      cgroupsPids: cg("pids"),
      cgroupsV2: cg(""),
      uidSlots: slots,
      runc: runcIds().length,
      runtimeSandboxes: ls(join(env.runtimeDir, "sb")),
      dataSandboxes: ls(join(env.dataDir, "sandboxes")),
    };
  },
};

after(async () => {
  rmSync(env.dataDir, { recursive: true, force: true });
  if (existsSync(env.runtimeDir) && readdirSync(join(env.runtimeDir, "sb")).length === 0) {
    rmSync(env.runtimeDir, { recursive: true, force: true });
  }
});

conformanceSuite(makeEngine, { full: true, inspector, cycles: Number(process.env.BHATTI_NS_CYCLES ?? 100) });

describe("ns engine specifics", () => {
  let engine: NsEngine;
  before(async () => {
    engine = await makeEngine();
  });

  test("cgroup limits are in force on the host", async () => {
    const s = await engine.create(specFor(newId(), {}, { cpus: 0.5, memoryMb: 128 }));
    try {
      const dirs = cgroupDirs(cgroupsPath(s.id));
      assert.ok(dirs.length > 0, "cgroup dirs exist");
      const read = (file: string) => {
        for (const d of dirs) if (existsSync(join(d, file))) return readFileSync(join(d, file), "utf8").trim();
        return undefined;
      };
      const v2 = read("memory.max");
      if (v2 !== undefined) {
        assert.equal(v2, String(128 * 1048576));
        assert.equal(read("cpu.max"), "50000 100000");
      } else {
        assert.equal(read("memory.limit_in_bytes"), String(128 * 1048576));
        assert.equal(read("cpu.cfs_quota_us"), "50000");
        assert.equal(read("cpu.cfs_period_us"), "100000");
      }
      assert.equal(read("pids.max"), "1024");
      // The sandbox's processes are really in them.
      const procs = read("cgroup.procs") ?? "";
      assert.ok(procs.split("\n").includes(String(s.state.pid)), "PID 1 is in the sandbox cgroup");
    } finally {
      await engine.destroy(s.id, s.state);
    }
  });

  test("distinct id ranges, seccomp and no_new_privs on the sandbox's root processes", async () => {
    const a = await engine.create(specFor(newId()));
    const b = await engine.create(specFor(newId()));
    try {
      const map = (pid: unknown) => readFileSync(`/proc/${pid}/uid_map`, "utf8").trim().split(/\s+/).map(Number);
      const [, baseA, sizeA] = map(a.state.pid);
      const [, baseB] = map(b.state.pid);
      assert.equal(sizeA, 65536);
      assert.notEqual(baseA, baseB);
      assert.ok(Math.abs(baseA - baseB) >= 65536);
      assert.equal(baseA, a.state.base);
      const status = readFileSync(`/proc/${a.state.pid}/status`, "utf8");
      assert.match(status, /^Seccomp:\s+2$/m);
      assert.match(status, /^NoNewPrivs:\s+1$/m);
      assert.match(status, /^CapEff:\s+00000000002000eb$/m, "lohar's capabilities are the minimum set");
    } finally {
      await engine.destroy(a.id, a.state);
      await engine.destroy(b.id, b.state);
    }
  });

  test("the image stays unmodified; the OCI bundle holds no secret", async () => {
    const secret = `sk-${Date.now()}-never-in-bundle`;
    const s = await engine.create(specFor(newId(), { env: { SECRET: secret } }));
    try {
      const bundle = readFileSync(join(nsPaths(env, s.id).bundle, "config.json"), "utf8");
      assert.ok(!bundle.includes(secret));
      assert.deepEqual((JSON.parse(bundle) as { process: { env: string[] } }).process.env.map((e) => e.split("=")[0]), ["PATH", "UV_USE_IO_URING"]);
      // Root inside the sandbox (entered from the host, without seccomp) writes into the image's paths.
      const r = spawnSync("nsenter", ["-t", String(s.state.pid), "-U", "-m", "-r", "-w", "--", "/bin/sh", "-c",
        "echo x > /usr/bin/planted && echo changed > /etc/hostname && chmod 777 /bin/busybox && id -u"], { env: TOOL_ENV, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), "0");
      const lower = join(env.imagesDir, "minimal", "rootfs");
      assert.ok(!existsSync(join(lower, "usr/bin/planted")));
      assert.notEqual(existsSync(join(lower, "etc/hostname")) ? readFileSync(join(lower, "etc/hostname"), "utf8") : "", "changed\n");
      assert.equal(statSync(join(lower, "bin/busybox")).mode & 0o777, 0o755);
      assert.equal(statSync(join(lower, "bin/busybox")).uid, 0);
      assert.ok(!JSON.stringify(s.state).includes(secret));
    } finally {
      await engine.destroy(s.id, s.state);
    }
  });

  for (const kind of ["crashes", "hangs"] as const) {
    test(`lohar that ${kind} at boot: clear error with its log tail, nothing left`, async () => {
      // An image whose lohar.js is replaced: an overlay of the base rootfs under a one-file layer.
      const images = mkdtempSync("/var/tmp/bhatti-broken-");
      const patch = join(images, "patch/opt/bhatti");
      mkdirSync(patch, { recursive: true });
      writeFileSync(join(patch, "lohar.js"), kind === "crashes"
        ? "console.error('broken-lohar-marker: cannot start'); process.exit(3);\n"
        : "console.error('hanging-lohar-marker'); setInterval(() => {}, 1000);\n", { mode: 0o644 });
      const rootfs = join(images, "broken/rootfs");
      mkdirSync(rootfs, { recursive: true });
      const m = spawnSync("mount", ["-t", "overlay", "-o", `ro,lowerdir=${join(images, "patch")}:${join(env.imagesDir, "minimal/rootfs")}`, "broken", rootfs], { env: TOOL_ENV, encoding: "utf8" });
      assert.equal(m.status, 0, m.stderr);
      try {
        const broken = new NsEngine({ ...env, imagesDir: images }, { bootTimeoutMs: 1500 });
        const id = newId();
        const t = performance.now();
        await assert.rejects(broken.create(specFor(id, {}, { image: "broken" })), (e: Error) => {
          if (kind === "crashes") assert.match(e.message, /lohar exited during boot[\s\S]*broken-lohar-marker/);
          else assert.match(e.message, /did not come up within 1500 ms[\s\S]*hanging-lohar-marker/);
          return true;
        });
        assert.ok(performance.now() - t < 10_000);
        await broken.idle();
        assert.deepEqual(await inspector.traces(id), []);
      } finally {
        spawnSync("umount", [rootfs]);
        rmSync(images, { recursive: true, force: true });
      }
    });
  }
});
