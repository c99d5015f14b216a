// The vm engine: each sandbox is a QEMU microvm with its own kernel. The image's
// rootfs.ext4 is /dev/vda (read-only; the initramfs overlays it with guest
// RAM), the config drive is /dev/vdb (read-only), and lohar talks to the host
// over a virtio-serial port that QEMU exposes as a unix socket.
import type { Socket } from "node:net";
import { closeSync, fchownSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { finishRestore, incomingArgs, saveMemory } from "./memsnap.js";
import { AgentClient } from "../agent-client.js";
import type { Availability, CreateSpec, Engine, EngineEnv, EngineState, LifecycleOp, RunningSandbox } from "../types.js";
import { qmp } from "./qmp.js";
import { join } from "node:path";
import { reown } from "../reown.js";
import { setVolumeBase, volumeBase } from "../../volumes/image.js";
import { buildConfigDrive, CHILD_DRIVE_PATH, destroyConfigDrive, type Drive } from "../configdrive.js";
import { ensureRuntimeDir, isMounted, run, sandboxDirsWith, tryConnect, unmountIfMounted } from "../runtime.js";
import { accelCacheFile, probeAccelCached } from "./accel.js";
import { imagePaths, probeImageName, vmPaths, type VmPaths } from "./paths.js";
import { findOurQemu, isAlive, isOurQemu, spawnQemu, stopProcess } from "./proc.js";
import { type Accel, QEMU_BIN, type QemuNet, qemuArgs } from "./qemu.js";

export interface VmState extends EngineState {
  pid: number;
  accel: Accel;
  image: string;
  configSize?: number; // bytes of the config drive (a restore attaches a blank one of this size)
  memory?: string; // while stopped: the age-encrypted memory snapshot
  net?: QemuNet; // netvm (issue 10): the NIC on the daemon's tap (a restore must attach the same one)
}

export interface VmOptions {
  bootTimeoutMs?: number; // lohar must say hello within this (default 20 s with KVM, 90 s with TCG)
  probeImage?: string; // image whose kernel the accelerator probe boots (default "minimal")
  accel?: Accel; // skip the probe and use this (tests, operators who know)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class VmEngine implements Engine {
  readonly name = "vm" as const;
  readonly restoresMemory = true;
  private availability?: Promise<Availability>;
  private runtimeReady?: Promise<void>;

  constructor(private readonly env: EngineEnv, private readonly opts: VmOptions = {}) {}

  available(): Promise<Availability> {
    this.availability ??= this.probe();
    return this.availability;
  }

  private async probe(): Promise<Availability> {
    const r = await run(QEMU_BIN, ["--version"], { allowFail: true }).catch(() => null);
    if (!r || r.code !== 0) return { ok: false, reason: `${QEMU_BIN} not found or not runnable; install it: apt-get install qemu-system-x86` };
    const img = imagePaths(this.env, this.opts.probeImage ?? probeImageName(this.env));
    for (const f of [img.kernel, img.initramfs, img.rootfs]) {
      if (!existsSync(f)) return { ok: false, reason: `guest image incomplete: ${f} is missing; run: bhatti image build` };
    }
    if (this.opts.accel) return { ok: true, accel: this.opts.accel };
    const p = await probeAccelCached(img.kernel, img.initramfs, accelCacheFile());
    if (!p.accel) {
      return { ok: false, reason: `QEMU cannot boot the guest kernel: ${p.attempts.map((a) => `${a.accel}: ${a.detail}`).join("; ")}` };
    }
    return { ok: true, accel: p.accel };
  }

  async create(spec: CreateSpec): Promise<RunningSandbox> {
    const avail = await this.available();
    if (!avail.ok || !avail.accel) throw new Error(`vm engine unavailable: ${avail.reason}`);
    this.runtimeReady ??= ensureRuntimeDir(this.env.runtimeDir, this.env.dataDir);
    await this.runtimeReady;
    const p = vmPaths(this.env, spec.id);
    const img = imagePaths(this.env, spec.image);
    for (const f of [img.kernel, img.initramfs, img.rootfs]) {
      if (!existsSync(f)) throw new Error(`image ${spec.image} is not built for the vm engine (no ${f}); run: bhatti image build`);
    }
    if (existsSync(p.sb)) throw new Error(`sandbox ${spec.id} already exists`);
    if (spec.from) throw new Error(`vm engine: ${this.cannot("snapshot", spec.id, {})}`);

    const state: VmState = { pid: 0, accel: avail.accel, image: spec.image };
    let drive: Drive | undefined;
    try {
      mkdirSync(p.sb, { recursive: true, mode: 0o700 });
      // A nameless file: QEMU gets it as its fd 3 and opens /proc/self/fd/3. If
      // this daemon dies now, QEMU is the only holder and the next start stops it.
      // Volumes: ids back to the guest's own (an ns sandbox may have shifted them), then one disk each.
      const volumes = (spec.volumes ?? []).map((v, i) => ({ file: v.file, serial: `bhatti-vol${i}`, ro: v.ro, path: v.path }));
      for (const v of volumes) await unshiftVolume(p.sb, v.file);
      if (volumes.length) spec.config.volumes = volumes.map((v) => ({ serial: v.serial, path: v.path, ro: v.ro }));
      // netvm (issue 10): the daemon made the tap (src/net); lohar configures the guest side from the drive's net field.
      if (spec.network) {
        const g = (await spec.network).guest;
        if (!g) throw new Error("the sandbox's network was prepared without a tap");
        state.net = { ifname: g.ifname, mac: g.mac };
        spec.config.net = { mac: g.mac, address: g.address, prefix: g.prefix, gateway: g.gateway, nameserver: g.nameserver };
      }
      drive = await buildConfigDrive(p.sb, spec.config);
      state.configSize = fstatSync(drive.fd).size;
      const args = qemuArgs({ volumes,
        id: spec.id, accel: avail.accel, kernel: img.kernel, initramfs: img.initramfs, rootfs: img.rootfs,
        configDrive: CHILD_DRIVE_PATH, agentSocket: p.socket, qmpSocket: p.qmp, consoleLog: p.console,
        cpus: spec.cpus, memoryMb: spec.memoryMb, ...(spec.diskMb ? { diskMb: spec.diskMb } : {}), ...(state.net ? { net: state.net } : {}),
      });
      const qemu = spawnQemu(args, p.qemuLog, drive.fd);
      state.pid = qemu.pid;
      const agent = await this.connectAgent(p, spec.config.token, qemu.exited, avail.accel);
      if (agent.hello.config !== "consumed") {
        agent.close();
        throw new Error("lohar did not consume the config drive");
      }
      // lohar has unmounted the drive and removed /dev/vdb. QEMU still holds the
      // file open: empty it so its pages (plaintext) are freed now.
      drive.discard();
      return { id: spec.id, engine: "vm", state, agent };
    } catch (e) {
      drive?.discard();
      await this.destroy(spec.id, state).catch(() => {});
      throw e;
    }
  }

  /** Connects to QEMU's agent socket and authenticates; fails early if QEMU dies. */
  private async connectAgent(p: VmPaths, token: string, exited: Promise<string>, accel: Accel): Promise<AgentClient> {
    const timeout = this.opts.bootTimeoutMs ?? (accel === "kvm" ? 20_000 : 90_000);
    const deadline = Date.now() + timeout;
    let died: string | null = null;
    void exited.then((why) => { died = why; });
    let delay = 2;
    let sock: Socket | null = null;
    while (!sock) {
      if (died) throw new Error(`QEMU ${died} during boot${tails(p)}`);
      if (Date.now() > deadline) throw new Error(`QEMU did not open its agent socket within ${timeout} ms${tails(p)}`);
      if (existsSync(p.socket)) sock = await tryConnect(p.socket);
      if (!sock) {
        await sleep(delay);
        delay = Math.min(delay * 2, 25);
      }
    }
    // The AUTH frame waits in the socket until lohar opens the port in the guest.
    const s = sock;
    const open = AgentClient.open(s, token, Math.max(1000, deadline - Date.now()));
    const death = exited.then((why) => { throw new Error(`QEMU ${why} during boot`); });
    try {
      return await Promise.race([open, death]);
    } catch (e) {
      s.destroy();
      open.then((a) => a.close(), () => {});
      throw new Error(`lohar handshake failed: ${(e as Error).message}${tails(p)}`);
    }
  }

  async reattach(id: string, state: EngineState, token: string): Promise<RunningSandbox | null> {
    const p = vmPaths(this.env, id);
    const pid = Number(state.pid);
    if (isOurQemu(pid, id, p.socket) && existsSync(p.socket)) {
      const agent = await this.reconnect(p, token, pid);
      if (agent) return { id, engine: "vm", state, agent };
      // Alive but silent: an error, not a reason to kill it.
      if (isOurQemu(pid, id, p.socket)) throw new Error(`sandbox ${id}: QEMU runs but lohar does not answer`);
    }
    await this.destroy(id, state);
    return null;
  }

  async alive(id: string, state: EngineState): Promise<boolean> {
    return isOurQemu(Number(state.pid), id, vmPaths(this.env, id).socket);
  }

  cannot(op: LifecycleOp, id: string, _state: EngineState): string | null {
    if ((op === "stop" || op === "start") && !this.env.ageRecipient) {
      return "vm engine: stopping a VM keeps its memory in an encrypted snapshot, and this engine was given no daemon key to encrypt it with";
    }
    if (op === "start") return null;
    if (op === "snapshot") {
      return "vm engine: a vm sandbox's files live in guest memory, so a snapshot needs a memory snapshot (QEMU migration to a file), which is not implemented yet";
    }
    if (!existsSync(vmPaths(this.env, id).qmp)) return "vm engine: the sandbox was created before pause support (its QEMU has no control socket); recreate it to pause it";
    return null;
  }

  /**
   * Cold: the VM's state (its memory: the writable layer lives there) goes to
   * <data>/sandboxes/<id>/memory.age, encrypted by age on its way out; QEMU
   * then ends and its runtime dir goes. Idempotent.
   */
  async stop(id: string, state: EngineState): Promise<EngineState> {
    const why = this.cannot("stop", id, state);
    const st = state as VmState;
    const p = vmPaths(this.env, id);
    const file = join(p.data, "memory.age");
    if (!isOurQemu(Number(st.pid), id, p.socket)) {
      if (st.memory && existsSync(st.memory)) return { ...st, pid: 0 }; // already stopped
      throw new Error(`sandbox ${id}: its QEMU is gone, nothing to keep`);
    }
    if (why) throw new Error(`sandbox ${id}: ${why}`);
    mkdirSync(p.data, { recursive: true, mode: 0o700 });
    rmSync(file, { force: true });
    await saveMemory(p.qmp, file, this.env.ageRecipient!);
    await stopProcess(Number(st.pid));
    rmSync(p.sb, { recursive: true, force: true });
    return { ...st, pid: 0, memory: file };
  }

  /** Restores a stopped VM from its memory snapshot (spec.config is not used: the guest's memory holds its env and token). */
  async start(spec: CreateSpec, state: EngineState): Promise<RunningSandbox> {
    const avail = await this.available();
    if (!avail.ok || !avail.accel) throw new Error(`vm engine unavailable: ${avail.reason}`);
    this.runtimeReady ??= ensureRuntimeDir(this.env.runtimeDir, this.env.dataDir);
    await this.runtimeReady;
    const st = state as VmState;
    const p = vmPaths(this.env, spec.id);
    const img = imagePaths(this.env, spec.image);
    if (!st.memory || !existsSync(st.memory)) throw new Error(`sandbox ${spec.id} has no memory snapshot to start from`);
    if (st.accel !== avail.accel) throw new Error(`sandbox ${spec.id} was stopped under ${st.accel} and this host now runs ${avail.accel}`);
    if (existsSync(p.sb)) throw new Error(`sandbox ${spec.id} is still running (its runtime dir exists)`);
    const next: VmState = { ...st, pid: 0 };
    mkdirSync(p.sb, { recursive: true, mode: 0o700 });
    // The same machine as at create: a blank drive where the config drive was (the guest no longer reads it).
    const blank = join(p.sb, "blank.img");
    const fd = openSync(blank, "w+", 0o600);
    try {
      ftruncateSync(fd, st.configSize ?? 4 << 20);
      unlinkSync(blank);
      const volumes = (spec.volumes ?? []).map((v, i) => ({ file: v.file, serial: `bhatti-vol${i}`, ro: v.ro }));
      const args = [...qemuArgs({
        volumes, id: spec.id, accel: st.accel, kernel: img.kernel, initramfs: img.initramfs, rootfs: img.rootfs,
        configDrive: CHILD_DRIVE_PATH, agentSocket: p.socket, qmpSocket: p.qmp, consoleLog: p.console,
        cpus: spec.cpus, memoryMb: spec.memoryMb, ...(spec.diskMb ? { diskMb: spec.diskMb } : {}), ...(st.net ? { net: st.net } : {}),
      }), ...incomingArgs(st.memory, join(this.env.dataDir, "age.key"))];
      const qemu = spawnQemu(args, p.qemuLog, fd);
      next.pid = qemu.pid;
      let died: string | null = null;
      void qemu.exited.then((why) => { died = why; });
      await finishRestore(p.qmp, this.opts.bootTimeoutMs ?? 120_000).catch((e: Error) => { throw new Error(`${died ? `QEMU ${died}: ` : ""}${e.message}${tails(p)}`); });
      const agent = await this.reconnect(p, spec.config.token, qemu.pid);
      if (!agent) throw new Error(`the restored VM's agent does not answer${tails(p)}`);
      rmSync(st.memory, { force: true }); // live again: the snapshot is spent
      delete next.memory;
      return { id: spec.id, engine: "vm", state: next, agent };
    } catch (e) {
      if (next.pid) await stopProcess(next.pid).catch(() => {});
      rmSync(p.sb, { recursive: true, force: true });
      throw e;
    } finally {
      closeSync(fd);
    }
  }

  async snapshot(id: string, _state: EngineState, _dir: string): Promise<{ base: number }> {
    throw new Error(`sandbox ${id}: ${this.cannot("snapshot", id, {})}`);
  }

  /** Stops the VM's vCPUs (QMP `stop`): guest memory stays, nothing runs. */
  async pause(id: string, _state: EngineState): Promise<void> {
    await qmp(this.qmpOf(id), "stop");
  }

  /** Starts the vCPUs again (QMP `cont`). */
  async resume(id: string, _state: EngineState): Promise<void> {
    await qmp(this.qmpOf(id), "cont");
  }

  async paused(id: string, _state: EngineState): Promise<boolean> {
    const p = vmPaths(this.env, id);
    if (!existsSync(p.qmp)) return false;
    const st = (await qmp(p.qmp, "query-status")) as { status?: string; running?: boolean };
    return st.running === false;
  }

  private qmpOf(id: string): string {
    const p = vmPaths(this.env, id);
    if (!existsSync(p.qmp)) throw new Error(`sandbox ${id} was created before pause support (QEMU has no control socket); recreate it to pause it`);
    return p.qmp;
  }

  async sweep(): Promise<void> {
    // Nothing persistent: a vm sandbox's writable layer lives in guest RAM.
  }

  /**
   * A new session on the virtio port. lohar notices that a host left only if the
   * guest processes the port-closed event on its own: a close immediately
   * followed by a connect can reach the guest as one batch, and lohar then takes
   * our AUTH as bytes of the old session. So give the guest a moment before
   * connecting, and retry with longer pauses if hello does not come.
   */
  private async reconnect(p: VmPaths, token: string, pid: number): Promise<AgentClient | null> {
    const deadline = Date.now() + (this.opts.bootTimeoutMs ?? 30_000);
    for (let attempt = 1; Date.now() < deadline; attempt++) {
      await sleep(250 * attempt);
      if (!isAlive(pid)) return null;
      const sock = await tryConnect(p.socket);
      if (!sock) return null;
      try {
        return await AgentClient.open(sock, token, Math.min(2000 * attempt, Math.max(1000, deadline - Date.now())));
      } catch (e) {
        sock.destroy();
        if (/refused/.test((e as Error).message)) return null; // wrong token: retrying cannot help
      }
    }
    return null;
  }

  async list(): Promise<string[]> {
    return sandboxDirsWith(this.env.runtimeDir, ["agent.sock", "qemu.log", "console.log"]);
  }

  async destroy(id: string, state: EngineState): Promise<void> {
    const p = vmPaths(this.env, id);
    const errors: string[] = [];
    const step = async (what: string, f: () => unknown) => {
      try {
        await f();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    // Only signal pids we can prove are this sandbox's QEMU (pids get reused). A
    // create interrupted before its state was saved has no pid: find it by argv.
    const pid = Number(state.pid);
    const pids = isOurQemu(pid, id, p.socket) ? [pid] : findOurQemu(id, p.socket);
    await step("qemu", () => Promise.all(pids.map((x) => stopProcess(x))));
    await step("config drive", () => destroyConfigDrive(p.sb)); // only a named leftover of an older version can be here
    await step("runtime dir", () => rmSync(p.sb, { recursive: true, force: true }));
    await step("sandbox dir", () => rmSync(p.data, { recursive: true, force: true }));
    if (errors.length) throw new Error(`destroy ${id}: ${errors.join("; ")}`);
  }
}

/** Moves a volume's files back to unshifted ids (as the guest sees them) if an ns sandbox left them shifted. */
async function unshiftVolume(sb: string, file: string): Promise<void> {
  // A volume whose last holder was killed has a journal to replay: a guest that
  // attaches it read-only cannot, so the host does it first (e2fsck -p: replay, preen).
  // A guest wrote this image: e2fsck reads it as nobody (never as root), through
  // an fd we opened. Reopening /proc/self/fd/3 checks the inode's owner, so the
  // image belongs to nobody meanwhile; its directory (0700 root) keeps others out.
  const fd = openSync(file, "r+");
  let fsck;
  try {
    fchownSync(fd, 65534, 65534);
    fsck = await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs", "--", "e2fsck", "-p", "/proc/self/fd/3"], { allowFail: true, fds: [fd], timeoutMs: 120_000 });
  } finally {
    fchownSync(fd, 0, 0);
    closeSync(fd);
  }
  if (fsck.code >= 4) throw new Error(`volume ${file}: e2fsck -p exited ${fsck.code}: ${fsck.stdout.trim().split("\n").pop() ?? ""}`);
  const from = volumeBase(file);
  if (from === 0) return;
  const mnt = join(sb, "vol-unshift");
  mkdirSync(mnt, { mode: 0o700 });
  try {
    await run("mount", ["-t", "ext4", "-o", "loop,nosuid,nodev", file, mnt]);
    try {
      reown(mnt, from, 0);
      setVolumeBase(file, 0);
    } finally {
      await unmountIfMounted(mnt);
    }
  } finally {
    if (!isMounted(mnt)) rmSync(mnt, { recursive: true, force: true });
  }
}

function tail(path: string, what: string): string {
  try {
    const lines = readFileSync(path, "utf8").trim().split("\n").slice(-12).join("\n");
    return lines ? `\n--- ${what} (tail) ---\n${lines}` : "";
  } catch {
    return "";
  }
}

/** Console and QEMU log tails for error messages: kernel/init/QEMU output only, never config values. */
function tails(p: VmPaths): string {
  return tail(p.qemuLog, "qemu") + tail(p.console, "guest console");
}
