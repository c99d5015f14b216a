// The ns engine: each sandbox is a runc container in its own user, pid, mount,
// uts, ipc, network and cgroup namespaces, rooted on an overlay of the image.
import { writeTrust } from "./trust.js";
import { chownSync, closeSync, existsSync, watch, type FSWatcher, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { AgentClient } from "../agent-client.js";
import type { Availability, CreateSpec, Engine, EngineEnv, EngineState, LifecycleOp, RunningSandbox } from "../types.js";
import { buildConfigDrive, configMountPath, destroyConfigDrive, type Drive } from "../configdrive.js";
import {
  allocateUidSlot, ensureRuntimeDir, freeUidSlot, loopDevicesUnder, run, UID_SLOTS_DIR, tryConnect, sandboxDirsWith, unmountIfMounted, isMounted,
} from "../runtime.js";
import { cgroupsPath, ociSpec } from "./bundle.js";
import { cgroupDirs, nsPaths, type NsPaths } from "./paths.js";
import { dropStaleLayers, metacopyInUse, planRootfs, releaseRootfs, sweepLayerBuilds, upperOwner, type RootfsMount } from "./rootfs.js";
import { Runc, type HostMount } from "./runc.js";
import { isZombie, readProcFile } from "../../util/proc.js";
import { guardSandbox } from "./guard.js";
import { canonicalImage } from "../../image/names.js";
import { DISK_MOUNT, diskSteps, mountDisk, releaseDisk, remountDisk, unmountDisk } from "./disk.js";
import { freeze, hostHasFreezer, isFrozen, thaw } from "./freezer.js";
import { copyLayer, reown } from "../reown.js";
import { mountVolumes, unmountVolumes } from "./volumes.js";
import { DiskTemplates } from "./disk-template.js";
import { phase } from "../../util/phases.js";

export interface NsState extends EngineState {
  slot: number;
  base: number;
  pid: number;
  image: string;
  diskMb?: number; // the writable layer is a disk of this size (disk.ts)
  cgroup?: string; // absent in sandboxes made before cgroups were per daemon instance
}

export interface NsOptions {
  bootTimeoutMs?: number; // lohar must say hello within this (default 10 s)
  runcBin?: string;
  /** Called with each create/destroy step's duration (benchmarks, debugging). */
  trace?: (step: string, ms: number) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class NsEngine implements Engine {
  readonly name = "ns" as const;
  private readonly runc: Runc;
  private availability?: Promise<Availability>;
  private runtimeReady?: Promise<void>;
  private readonly removals = new Set<Promise<void>>();
  /** Fresh disks of a size without a mke2fs each (disk-template.ts). */
  private readonly disks = new DiskTemplates(() => join(this.env.dataDir, "sandboxes"));

  constructor(private readonly env: EngineEnv, private readonly opts: NsOptions = {}) {
    this.runc = new Runc(join(env.runtimeDir, "runc"), opts.runcBin);
  }

  available(): Promise<Availability> {
    this.availability ??= probe(this.runc.bin);
    return this.availability;
  }

  /** Ownership layers of images, per id range (see rootfs.ts). */
  private get layers(): string {
    return join(this.env.runtimeDir, "layers");
  }

  private owner(id: string): string {
    return `${this.env.runtimeDir}:${id}`;
  }

  /** Runs a step, timing it for the trace option and, given the sandbox id, for the daemon's phase log (util/phases.ts). */
  private async timed<T>(step: string, f: () => Promise<T> | T, id?: string): Promise<T> {
    const t = performance.now();
    try {
      return await f();
    } finally {
      const ms = performance.now() - t;
      this.opts.trace?.(step, ms);
      if (id) phase(id, step, ms);
    }
  }

  async create(spec: CreateSpec): Promise<RunningSandbox> {
    const avail = await this.available();
    if (!avail.ok) throw new Error(`ns engine unavailable: ${avail.reason}`);
    await this.ready();
    const p = nsPaths(this.env, spec.id);
    const lower = join(this.env.imagesDir, canonicalImage(spec.image), "rootfs");
    if (!existsSync(join(lower, "opt/bhatti/lohar.js"))) throw new Error(`image ${spec.image} not found (no ${lower}); run: bhatti image build`);
    if (existsSync(p.sb) || existsSync(p.data)) throw new Error(`sandbox ${spec.id} already exists`);

    const { slot, base } = allocateUidSlot(this.owner(spec.id));
    const state: NsState = { slot, base, pid: 0, image: spec.image, cgroup: cgroupsPath(spec.id, this.env.instance) };
    try {
      mkdirSync(p.data, { recursive: true, mode: 0o700 });
      // disk_mb: the writable layer on a size-limited filesystem of its own (disk.ts),
      // made while boot() prepares the rest; only the root overlay waits for it.
      if (spec.diskMb) state.diskMb = spec.diskMb;
      // Usually the disk is only made here and mounted by runc's wrapper process with the
      // rest (one spawn fewer); a fork must copy into it first, and without overlay
      // metacopy (known after the first create) the root is re-owned once mounted.
      if (spec.diskMb && !spec.from && metacopyInUse() === true) {
        const d = await this.timed("disk", () => diskSteps(p.data, spec.diskMb!, this.disks, spec.id, upperOwner(lower, base)), spec.id);
        return await this.boot(spec, state, Promise.resolve(d.mnt), d.steps);
      }
      const disk = spec.diskMb ? this.timed("disk", () => mountDisk(p.data, spec.diskMb!, this.disks, spec.id), spec.id) : Promise.resolve(p.data);
      // Fork: the snapshot's writable layer, moved into this sandbox's uid range.
      const layer = spec.from
        ? disk.then((l) => this.timed("fork copy", () => copyLayer(join(spec.from!.dir, "upper"), join(l, "upper"), spec.from!.base, base), spec.id).then(() => l))
        : disk;
      layer.catch(() => {}); // awaited in boot(); a failure fails the create there
      return await this.boot(spec, state, layer).catch(async (e: unknown) => {
        await layer.catch(() => {}); // nothing may still be mounting when destroy() below cleans up
        throw e;
      });
    } catch (e) {
      await this.destroy(spec.id, state).catch(() => {});
      throw e;
    }
  }

  /**
   * Boots lohar on the writable layer at `layer` (create and start): runtime
   * dir, root overlay, config drive, runc, then the agent's hello. On failure
   * the caller undoes what it made (create: destroy; start: stop).
   */
  private async boot(spec: CreateSpec, state: NsState, layerReady: Promise<string>, diskMount: HostMount[] = []): Promise<RunningSandbox> {
    const p = nsPaths(this.env, spec.id);
    const lower = join(this.env.imagesDir, canonicalImage(spec.image), "rootfs");
    const base = state.base;
    let drive: Drive | undefined;
    let root: RootfsMount | null = null;
    try {
      mkdirSync(p.sb, { mode: 0o710 });
      chownSync(p.sb, 0, base); // only host root and the sandbox's root may enter
      mkdirSync(p.bundle, { mode: 0o700 });
      mkdirSync(p.agentDir, { mode: 0o700 });
      // The slow steps are independent: run them side by side. The drive is a
      // nameless file: nothing of it is visible on the host (see Runc.start).
      // The root overlay's and the agent dir's mounts are made by runc's own
      // process (Runc.start hostMounts): every spawn costs the daemon's thread.
      const [rootfs, built] = await Promise.allSettled([
        layerReady.then((layer) => this.timed("rootfs plan", () => planRootfs({ lower, upper: join(layer, "upper"), work: join(layer, "work"), merged: p.rootfs }, base, this.layers, diskMount.length > 0), spec.id)),
        this.timed("config drive", () => buildConfigDrive(p.sb, spec.config, { owner: base }), spec.id),
      ]);
      if (built.status === "fulfilled") drive = built.value;
      if (rootfs.status === "fulfilled") root = rootfs.value;
      for (const r of [rootfs, built]) if (r.status === "rejected") throw r.reason;
      // The agent dir is its own small tmpfs: the sandbox's mountinfo then shows
      // "/" as the bind's source, not <rt>/sb/<id>/agent inside the host's /run.
      const hostMounts: HostMount[] = [
        ...diskMount,
        { args: ["-t", "tmpfs", "-o", `size=256k,nr_inodes=64,mode=0700,uid=${base},gid=${base},nosuid,nodev,noexec`, "bhatti-agent", p.agentDir] },
        ...(root ? [{ args: root.mountArgs, cwd: root.cwd }] : []),
      ];
      const configMount = configMountPath(p.sb);
      mkdirSync(configMount, { mode: 0o700 });
      const volumes = spec.volumes?.length ? await this.timed("volumes", () => mountVolumes(p.sb, spec.volumes!, base), spec.id) : [];
      const net = spec.network ? await this.timed("network wait", () => spec.network!, spec.id) : undefined; // set up alongside the steps above
      const trust = spec.config.ca_cert ? await this.timed("trust", () => writeTrust(p.sb, lower, spec.config.ca_cert!), spec.id) : undefined;
      const oci = ociSpec({
        id: spec.id, hostname: spec.name, rootfs: p.rootfs, agentDir: p.agentDir,
        configMount, base, cgroup: state.cgroup!, cpus: spec.cpus, memoryMb: spec.memoryMb, volumes, ...(net ? { resolvConf: net.resolvConf } : {}),
        ...(trust ? { trust } : {}),
      });
      writeFileSync(join(p.bundle, "config.json"), JSON.stringify(oci), { mode: 0o600 });
      try {
        await this.timed("host mounts + runc run", () => this.runc.start(spec.id, p.bundle, p.pidFile, p.log, { fd: drive!.fd, mountPoint: configMount, options: "ro,nosuid,nodev,noexec" }, hostMounts), spec.id);
      } catch (e) {
        throw new Error(`${(e as Error).message}${logTail(p)}`);
      } finally {
        // Not discard(): the sandbox's loop device reads these very pages until lohar has read them.
        closeSync(drive!.fd);
        drive = undefined;
        root?.done();
        root = null;
      }
      state.pid = Number(readFileSync(p.pidFile, "utf8").trim());
      // The user namespace's limits are written while lohar boots: no command
      // runs before create returns, and it returns only once they are in place.
      const limits = Promise.all([
        this.timed("limits", () => guardSandbox(state.pid), spec.id),
        net ? this.timed("network attach", () => net.attach(state.pid), spec.id) : undefined,
      ]);
      limits.catch(() => {}); // awaited below, or moot if the boot fails
      const agent = await this.timed("agent hello", () => this.connectAgent(p, spec.config.token, state.pid), spec.id)
        .catch(async (e: unknown) => { await limits.catch(() => {}); throw e; });
      try {
        if (agent.hello.config !== "consumed") throw new Error("lohar did not consume the config drive");
        await Promise.all([this.timed("drive removal", () => destroyConfigDrive(p.sb), spec.id), limits]);
        if (typeof agent.hello.boot_ms === "number") phase(spec.id, "lohar boot (its own clock)", agent.hello.boot_ms);
        if (!(await released(p.sb))) throw new Error("config drive still in use inside the sandbox after boot");
      } catch (e) {
        agent.close();
        throw e;
      }
      return { id: spec.id, engine: "ns", state, agent };
    } catch (e) {
      drive?.discard();
      root?.done();
      throw e;
    }
  }

  cannot(op: LifecycleOp, id: string, state: EngineState): string | null {
    if (op !== "pause" && op !== "resume") return null;
    if (typeof state.cgroup !== "string") return "ns engine: the sandbox was created before per-instance cgroups and cannot be paused; stop and start it first";
    if (!hostHasFreezer()) return "ns engine: this host has no cgroup freezer for the sandbox (neither the cgroup v1 freezer nor cgroup v2 cgroup.freeze)";
    return null;
  }

  async stop(id: string, state: EngineState): Promise<EngineState> {
    await this.teardown(id, state, true);
    const { pid: _pid, ...kept } = state as NsState;
    return { ...kept, pid: 0 };
  }

  async start(spec: CreateSpec, state: EngineState): Promise<RunningSandbox> {
    const avail = await this.available();
    if (!avail.ok) throw new Error(`ns engine unavailable: ${avail.reason}`);
    await this.ready();
    const p = nsPaths(this.env, spec.id);
    const old = state as NsState;
    if (existsSync(p.sb)) throw new Error(`sandbox ${spec.id} is still running (its runtime dir exists)`);
    if (!existsSync(p.data)) throw new Error(`sandbox ${spec.id} has no writable layer to start from (${p.data} is gone)`);
    const { slot, base } = allocateUidSlot(this.owner(spec.id), typeof old.slot === "number" ? old.slot : undefined);
    const next: NsState = { ...old, slot, base, pid: 0, image: spec.image, cgroup: cgroupsPath(spec.id, this.env.instance) };
    try {
      const layer = old.diskMb ? await this.timed("disk", () => remountDisk(p.data), spec.id) : p.data;
      // The slot was taken meanwhile: move the files into the new id range.
      if (typeof old.base === "number" && old.base !== base) await this.timed("reown", () => reown(join(layer, "upper"), old.base, base), spec.id);
      return await this.boot(spec, next, Promise.resolve(layer));
    } catch (e) {
      await this.teardown(spec.id, next, true).catch(() => {});
      throw e;
    }
  }

  async snapshot(id: string, state: EngineState, dir: string): Promise<{ base: number }> {
    const p = nsPaths(this.env, id);
    const st = state as NsState;
    // A stopped sandbox's disk is not mounted: mount it for the copy, and unmount it after.
    const mountedHere = !!st.diskMb && !isMounted(join(p.data, DISK_MOUNT));
    const layer = st.diskMb ? await remountDisk(p.data) : p.data;
    try {
      if (!existsSync(join(layer, "upper"))) throw new Error(`sandbox ${id} has no writable layer to snapshot`);
      // Frozen while copied (unless stopped or already paused): a consistent copy.
      const running = typeof st.cgroup === "string" && st.pid > 0 && !isFrozen(st.cgroup) && (await this.alive(id, state));
      if (running) await freeze(st.cgroup!);
      try {
        await copyLayer(join(layer, "upper"), join(dir, "upper"), st.base, st.base);
      } finally {
        if (running) await thaw(st.cgroup!);
      }
    } finally {
      if (mountedHere) await unmountDisk(p.data);
    }
    return { base: st.base };
  }

  async pause(_id: string, state: EngineState): Promise<void> {
    await freeze(String(state.cgroup));
  }

  async resume(_id: string, state: EngineState): Promise<void> {
    await thaw(String(state.cgroup));
  }

  async paused(_id: string, state: EngineState): Promise<boolean> {
    return typeof state.cgroup === "string" && isFrozen(state.cgroup);
  }

  /**
   * Waits for lohar's socket (inotify on the agent dir, with a short poll as a
   * backstop), then authenticates. Fails early if the container dies.
   */
  private async connectAgent(p: NsPaths, token: string, pid: number): Promise<AgentClient> {
    const timeout = this.opts.bootTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeout;
    let wake: (() => void) | undefined;
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(p.agentDir, () => wake?.());
      watcher.on("error", () => {});
    } catch {
      // no inotify: the poll below still finds it
    }
    try {
      for (;;) {
        if (existsSync(p.socket)) {
          const sock = await tryConnect(p.socket);
          if (sock) {
            try {
              return await AgentClient.open(sock, token, Math.max(1000, deadline - Date.now()));
            } catch (e) {
              sock.destroy();
              throw new Error(`lohar handshake failed: ${(e as Error).message}${logTail(p)}`);
            }
          }
        }
        if (dead(pid)) throw new Error(`lohar exited during boot${logTail(p)}`);
        if (Date.now() > deadline) throw new Error(`lohar did not come up within ${timeout} ms${logTail(p)}`);
        // The socket exists before lohar listens: retry that quickly.
        await new Promise<void>((r) => {
          const t = setTimeout(r, existsSync(p.socket) ? 1 : 10);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
        wake = undefined;
      }
    } finally {
      watcher?.close();
    }
  }

  async reattach(id: string, state: EngineState, token: string): Promise<RunningSandbox | null> {
    const p = nsPaths(this.env, id);
    const st = await this.runc.state(id);
    // Frozen while its row said running (a pause cut short by a crash): it is alive; thaw it.
    if (st?.status === "paused" && typeof state.cgroup === "string") {
      await thaw(state.cgroup);
      st.status = "running";
    }
    if (!st || st.status !== "running") {
      await this.destroy(id, state);
      return null;
    }
    // Alive: a failure to talk to it is an error, not a reason to kill it.
    const sock = existsSync(p.socket) ? await tryConnect(p.socket) : null;
    if (!sock) throw new Error(`sandbox ${id} is running but its agent socket does not answer`);
    try {
      const agent = await AgentClient.open(sock, token, 5000);
      return { id, engine: "ns", state: { ...state, pid: st.pid }, agent };
    } catch (e) {
      sock.destroy();
      throw new Error(`sandbox ${id}: agent handshake failed: ${(e as Error).message}`);
    }
  }

  /** Whether the sandbox's init still runs (a cheap /proc check; no runc call). */
  /** Whether the sandbox's init still runs. Throws when that cannot be told (e.g. EMFILE): never a false "dead". */
  async alive(id: string, state: EngineState): Promise<boolean> {
    const pid = typeof state.pid === "number" ? state.pid : 0;
    if (pid <= 0) return false;
    const stat = readProcFile(`/proc/${pid}/stat`);
    if (stat === null || isZombie(stat)) return false;
    const cgroups = readProcFile(`/proc/${pid}/cgroup`);
    return cgroups !== null && cgroups.includes(`:${cgroupOf(id, state)}\n`);
  }

  /** The runtime dir exists; half-made ownership layers and trash a crashed daemon left are being removed. */
  private ready(): Promise<void> {
    if (!this.runtimeReady) {
      this.runtimeReady = ensureRuntimeDir(this.env.runtimeDir, this.env.dataDir).then(() => sweepLayerBuilds(this.layers));
      this.sweepTrash();
    }
    return this.runtimeReady;
  }

  /** Start-up: removes what a crashed daemon left half done (ownership layer builds, trashed writable layers). */
  async sweep(): Promise<void> {
    if (!(await this.available()).ok) return;
    await this.ready();
    await this.idle();
  }

  async list(): Promise<string[]> {
    const ids = new Set(sandboxDirsWith(this.env.runtimeDir, ["bundle", "rootfs", "agent"]));
    for (const c of await this.runc.list()) ids.add(c.id);
    try {
      // Writable layers left by a sandbox whose runtime dir is gone (e.g. after a host reboot).
      for (const d of readdirSync(join(this.env.dataDir, "sandboxes"))) if (/^[a-z0-9]+$/.test(d)) ids.add(d);
    } catch { /* no sandboxes dir yet */ }
    return [...ids];
  }

  async destroy(id: string, state: EngineState): Promise<void> {
    await this.teardown(id, state, false);
  }

  /** destroy (keepData false) or stop (keepData true: the writable layer and its disk image stay). */
  private async teardown(id: string, state: EngineState, keepData: boolean): Promise<void> {
    const p = nsPaths(this.env, id);
    const errors: string[] = [];
    const step = async (what: string, f: () => unknown) => {
      try {
        await this.timed(what, f);
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    // A frozen sandbox cannot die: thaw it first (SIGKILL is queued, not delivered, while frozen).
    if (typeof state.cgroup === "string" && isFrozen(state.cgroup)) await step("thaw", () => thaw(state.cgroup as string));
    await step("kill", () => killSandbox(id, state));
    // Independent once nothing runs in the sandbox any more.
    await Promise.all([
      step("runc delete", () => this.runc.delete(id)).then(() => step("cgroups", () => removeCgroups(id, state, this.env.instance))),
      step("rootfs", () => releaseRootfs(p.rootfs)),
      step("agent dir", () => unmountIfMounted(p.agentDir)),
      step("config drive", () => destroyConfigDrive(p.sb)),
    ]);
    // After the overlay on it is gone.
    if (keepData) await step("disk", () => unmountDisk(p.data));
    else await step("disk", () => releaseDisk(p.data));
    // Never remove the runtime dir over a mounted volume: rm would empty the volume.
    const volumesOff = await step("volumes", () => unmountVolumes(p.sb)).then(() => !errors.some((e) => e.startsWith("volumes:")));
    if (volumesOff) await step("runtime dir", () => rmSync(p.sb, { recursive: true, force: true }));
    if (!keepData) await step("sandbox dir", () => this.discard(p.data));
    if (typeof state.base === "number" && !errors.length) await step("layers", () => dropStaleLayers(this.layers, state.base as number));
    await step("uid slot", () => this.freeSlots(id, state));
    if (errors.length) throw new Error(`${keepData ? "stop" : "destroy"} ${id}: ${errors.join("; ")}`);
  }

  /** Waits for background removals of destroyed sandboxes' writable layers. */
  async idle(): Promise<void> {
    while (this.removals.size) await Promise.all([...this.removals]);
    await this.disks.idle();
  }

  /**
   * Removes a writable layer: renamed out of the way at once (so the id is
   * free and nothing is visible under its name), deleted in the background.
   */
  private discard(dir: string): void {
    if (!existsSync(dir)) return;
    const trash = join(this.env.dataDir, "sandboxes", `.trash-${basename(dir)}-${process.pid}-${Date.now()}`);
    renameSync(dir, trash);
    const job: Promise<void> = rm(trash, { recursive: true, force: true })
      .catch(() => {})
      .finally(() => this.removals.delete(job));
    this.removals.add(job);
  }

  /** Deletes trash a crashed daemon left behind. */
  private sweepTrash(): void {
    const dir = join(this.env.dataDir, "sandboxes");
    if (!existsSync(dir)) return;
    for (const n of readdirSync(dir)) {
      if (!n.startsWith(".trash-") && !n.startsWith(".disk-template-")) continue;
      const job: Promise<void> = rm(join(dir, n), { recursive: true, force: true })
        .catch(() => {})
        .finally(() => this.removals.delete(job));
      this.removals.add(job);
    }
  }

  private freeSlots(id: string, state: EngineState): void {
    const owner = this.owner(id);
    if (typeof state.slot === "number") freeUidSlot(state.slot, owner);
    // A create that died before recording its slot: find it by owner.
    if (!existsSync(UID_SLOTS_DIR)) return;
    for (const n of readdirSync(UID_SLOTS_DIR)) freeUidSlot(Number(n), owner);
  }
}

function cgroupOf(id: string, state: EngineState): string {
  return typeof state.cgroup === "string" ? state.cgroup : cgroupsPath(id);
}

function inCgroup(pid: number, cgroup: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(`:${cgroup}\n`);
  } catch {
    return false;
  }
}

/**
 * Removes the sandbox's (empty) cgroup dirs. The old shared layout
 * (/bhatti/<id>) may be another daemon's live sandbox with the same id (a copy
 * of this state.db): a busy cgroup is left alone there.
 */
async function removeCgroups(id: string, state: EngineState, instance?: string): Promise<void> {
  // This instance's cgroup is ours whatever the state says: a create cut by a
  // crash (runc dies with the daemon) never recorded it, and may have left a
  // process in it. Whatever sits there is ours to end.
  const own = instance ? cgroupsPath(id, instance) : undefined;
  if (own) {
    const dirs = cgroupDirs(own);
    for (const d of dirs) {
      let procs: string[] = [];
      try { procs = readFileSync(join(d, "cgroup.procs"), "utf8").split("\n").filter(Boolean); } catch { /* gone */ }
      for (const pid of procs) try { process.kill(Number(pid), "SIGKILL"); } catch { /* gone */ }
    }
    for (const d of dirs) {
      for (let i = 0; ; i++) {
        try {
          rmdirSync(d);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === "ENOENT") break;
          if (code !== "EBUSY" || i >= 250) throw e;
          await sleep(2); // the killed processes are still leaving
        }
      }
    }
    if (typeof state.cgroup !== "string" || state.cgroup === own) return;
  }
  // The old shared layout (/bhatti/<id>) may be another daemon's live sandbox
  // with the same id (a copy of this state.db): a busy cgroup is left alone there.
  const owned = typeof state.cgroup === "string";
  for (const d of cgroupDirs(cgroupOf(id, state))) {
    try {
      rmdirSync(d);
    } catch (e) {
      if (owned || (e as NodeJS.ErrnoException).code !== "EBUSY") throw e;
    }
  }
}

/**
 * SIGKILLs the sandbox's PID 1 (the whole pid namespace goes with it) and waits
 * for it to die: `runc delete --force` alone polls in 100 ms steps. The pid is
 * only trusted if it sits in this sandbox's cgroup under this daemon
 * instance's subtree; a sandbox of the old shared layout is left to
 * `runc delete`, which only sees containers under this daemon's runc root.
 */
async function killSandbox(id: string, state: EngineState): Promise<void> {
  const pid = typeof state.pid === "number" ? state.pid : 0;
  if (pid <= 0 || typeof state.cgroup !== "string") return;
  if (!inCgroup(pid, state.cgroup)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && !dead(pid)) await sleep(2);
}

/** Whether no loop device is bound to a drive image in dir (waits briefly for the kernel to release it). */
async function released(dir: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if (loopDevicesUnder(dir).length === 0) return true;
    await sleep(2);
  }
  return false;
}

function dead(pid: number): boolean {
  try {
    const stat = readProcFile(`/proc/${pid}/stat`);
    return stat === null || isZombie(stat);
  } catch {
    return true;
  }
}

function logTail(p: NsPaths): string {
  try {
    const lines = readFileSync(p.log, "utf8").trim().split("\n").slice(-10).join("\n");
    return lines ? `\n--- sandbox log (tail) ---\n${lines}` : "";
  } catch {
    return "";
  }
}

async function probe(runcBin: string): Promise<Availability> {
  try {
    await run(runcBin, ["--version"]);
  } catch {
    return { ok: false, reason: `runc not found or not runnable (${runcBin}); install it: apt-get install runc` };
  }
  if (process.getuid?.() !== 0) return { ok: false, reason: "the ns engine needs the daemon to run as root" };
  const r = await run("unshare", ["--user", "--map-root-user", "--mount", "true"], { allowFail: true });
  if (r.code !== 0) return { ok: false, reason: `user namespaces do not work here: ${r.stderr.trim().split("\n").pop()}` };
  return { ok: true };
}
