// Bare references for bench/sandbox, measured in the same run as the daemon:
// a bare `runc run` of the image's rootfs, a host spawn, and a bare QEMU boot
// of the image's kernel + initramfs with the vm engine's own QEMU flags.
import { spawn, spawnSync } from "node:child_process";
import { createReadStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { INIT_SCRIPT, newcCpio, PROBE_MARKER } from "../src/image/initramfs.js";
import { GUEST } from "../src/protocol/agent.js";
import { allocateUidSlot, ensureRuntimeDir, freeUidSlot, RUN_BHATTI, TOOL_ENV, UID_RANGE } from "../src/engine/runtime.js";
import { PIDS_LIMIT } from "../src/engine/ns/bundle.js";
import { type Accel, QEMU_BIN, qemuArgs } from "../src/engine/vm/qemu.js";

/** A scratch dir on the bhatti runtime tmpfs (/run/bhatti), 0711 like the engines' runtime dirs. */
export async function scratchDir(): Promise<string> {
  const dir = join(RUN_BHATTI, `bench-${process.pid}`);
  await ensureRuntimeDir(dir);
  return dir;
}

/** Spawns a command with an empty environment and waits for it to exit 0. */
export function spawnWait(cmd: string, args: string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: {}, stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", (code, sig) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${sig ?? code}`))));
  });
}

export const RUNC_REF_INCLUDES =
  "runc 1.1 `run` (foreground: create, start, wait, delete) of <images>/minimal/rootfs read-only, runc-spec default mounts " +
  "(proc, /dev tmpfs, devpts, shm, mqueue, ro sysfs; no cgroup mount), pid/net/ipc/uts/mount/user/cgroup namespaces with " +
  "a 65536-id user-namespace mapping from a reserved bhatti uid slot, the ns engine's memory/cpu/pids limits, no seccomp, " +
  "no overlay, no config drive, no agent";

export interface RuncRef {
  /** One `runc run` of the named bundle to its exit. */
  run(which: "true" | "node"): Promise<void>;
  close(): Promise<void>;
}

/** Two runc bundles over the image's rootfs: /bin/true and `/opt/bhatti/node -e 0`. */
export function runcReference(scratch: string, rootfs: string, memoryMb: number, cpus: number): RuncRef {
  const dir = join(scratch, "runc-ref");
  const root = join(dir, "state");
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const owner = `bench:${process.pid}:${dir}`;
  const { slot, base } = allocateUidSlot(owner);
  const idmap = [{ containerID: 0, hostID: base, size: UID_RANGE }];
  const mem = memoryMb * 1024 * 1024;
  const caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]; // runc spec's defaults
  const bundles = { true: ["/bin/true"], node: ["/opt/bhatti/node", "-e", "0"] };
  for (const [name, args] of Object.entries(bundles)) {
    const b = join(dir, name);
    mkdirSync(b, { mode: 0o700 });
    writeFileSync(join(b, "config.json"), JSON.stringify({
      ociVersion: "1.0.2-dev",
      process: {
        terminal: false, user: { uid: 0, gid: 0 }, args, env: [`PATH=${GUEST.defaultEnv.PATH}`], cwd: "/",
        capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
        rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
        noNewPrivileges: true,
      },
      root: { path: rootfs, readonly: true },
      hostname: "ref",
      mounts: [
        { destination: "/proc", type: "proc", source: "proc" },
        { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
        { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
        { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
        { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
        { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      ],
      linux: {
        uidMappings: idmap, gidMappings: idmap,
        namespaces: ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"].map((type) => ({ type })),
        resources: {
          devices: [{ allow: false, access: "rwm" }],
          memory: { limit: mem, swap: mem },
          cpu: { quota: Math.round(cpus * 100_000), period: 100_000 },
          pids: { limit: PIDS_LIMIT },
        },
        maskedPaths: ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
      },
    }));
  }
  let n = 0;
  const runc = (args: string[], stdio: "ignore" | "pipe" = "pipe") => new Promise<void>((resolve, reject) => {
    const child = spawn("runc", ["--root", root, ...args], { env: TOOL_ENV, stdio: ["ignore", "ignore", stdio] });
    let err = "";
    child.stderr?.on("data", (d) => { err += d; });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`runc ${args[0]} exited ${code}: ${err.trim()}`))));
  });
  return {
    async run(which) {
      const id = `benchref${process.pid}x${n++}`;
      // Each container gets its own cgroup; runc removes it when the container is deleted.
      const b = join(dir, which);
      try {
        await runc(["run", "--bundle", b, id]);
      } catch (e) {
        await runc(["delete", "--force", id]).catch(() => {});
        throw e;
      }
    },
    async close() {
      freeUidSlot(slot, owner);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const QEMU_REF_INCLUDES =
  "QEMU started with the vm engine's own qemuArgs() (microvm, same accel/cpu/smp/memory, same kernel command line plus " +
  "`bhatti.probe`, same -kernel/-initrd, rootfs.ext4 as read-only virtio-blk, a virtio-serial agent port on a socket, " +
  "serial console) and no config drive; timed from spawn until the initramfs /init prints " + PROBE_MARKER +
  " on the serial console (right after it mounts /dev, /proc and /sys, before module loading, the root mount and lohar), then killed";

export const NODE_MARKER = "BHATTI-BENCH-NODE-DONE";

export const QEMU_NODE_REF_INCLUDES =
  "the same QEMU command line with `rdinit=/bench-init` appended instead of `bhatti.probe`, where /bench-init (a gzip'd cpio " +
  "member appended to the image's initramfs) is the image's own /init up to its switch_root — modules, read-only root " +
  "mount, tmpfs overlay, /dev /proc /sys moved — followed by `chroot /newroot /opt/bhatti/node -e 0` and a console " +
  "marker; timed from spawn to that marker";

/**
 * The image's initramfs plus a /bench-init that does everything /init does up
 * to switch_root, then runs `node -e 0` in the new root and prints NODE_MARKER.
 */
export function nodeInitramfs(scratch: string, initramfs: string): string {
  const cut = INIT_SCRIPT.indexOf("[ -x /newroot/sbin/bhatti-init ]");
  if (cut < 0) throw new Error("the initramfs /init changed: no bhatti-init check to cut at");
  const script = INIT_SCRIPT.slice(0, cut) +
    `$B chroot /newroot /opt/bhatti/node -e 0 && echo ${NODE_MARKER} > /newroot/dev/console\n$B poweroff -f\n`;
  const extra = gzipSync(newcCpio([{ name: "bench-init", mode: 0o100755, data: Buffer.from(script) }]));
  const out = join(scratch, "initramfs-node.cpio.gz");
  // The kernel unpacks concatenated (compressed) cpio archives in order.
  writeFileSync(out, Buffer.concat([readFileSync(initramfs), extra]));
  return out;
}

export interface BootOpts { scratch: string; n: number; accel: Accel; kernel: string; initramfs: string; rootfs: string; cpus: number; memoryMb: number }

/** One bare boot: ms from spawning QEMU to the probe marker on the serial console. */
export function bareBoot(opts: BootOpts): Promise<number> {
  return bootTo(opts, PROBE_MARKER, true, "");
}

/** One boot through the root mount to `node -e 0` (initramfs from nodeInitramfs). */
export function bareBootNode(opts: BootOpts): Promise<number> {
  return bootTo(opts, NODE_MARKER, false, " rdinit=/bench-init");
}

function bootTo(opts: BootOpts, marker: string, probe: boolean, append: string): Promise<number> {
  const id = `benchref${process.pid}x${opts.n}`;
  const sock = join(opts.scratch, `${id}.sock`);
  // The console goes to a FIFO we read as it is written (the engine's file chardev, unchanged flags).
  const fifo = join(opts.scratch, `${id}.console`);
  const mk = spawnSync("mkfifo", ["-m", "600", fifo]);
  if (mk.status !== 0) return Promise.reject(new Error(`mkfifo: ${mk.stderr}`));
  const args = qemuArgs({
    id, accel: opts.accel, kernel: opts.kernel, initramfs: opts.initramfs, rootfs: opts.rootfs,
    agentSocket: sock, consoleLog: fifo, cpus: opts.cpus, memoryMb: opts.memoryMb, probe,
  });
  const ai = args.indexOf("-append");
  args[ai + 1] += append;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const console = createReadStream(fifo); // its open() completes when QEMU opens the FIFO for writing
    const child = spawn(QEMU_BIN, args, { env: TOOL_ENV, stdio: ["ignore", "ignore", "pipe"] });
    let out = "";
    let err = "";
    let ms = -1;
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.accel === "kvm" ? 20_000 : 120_000);
    console.on("error", () => {});
    console.on("data", (b: Buffer | string) => {
      out = (out + b.toString()).slice(-8192);
      if (ms < 0 && out.includes(marker)) {
        ms = performance.now() - t0;
        child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (b: Buffer) => { err = (err + b.toString()).slice(-4096); });
    child.on("error", reject);
    child.on("exit", () => {
      clearTimeout(timer);
      console.destroy();
      rmSync(sock, { force: true });
      rmSync(fifo, { force: true });
      if (ms >= 0) resolve(ms);
      else reject(new Error(`bare QEMU boot: no ${marker}:\n${err}\n${out.split("\n").slice(-8).join("\n")}`));
    });
  });
}
