// The one interface every sandbox engine implements. The daemon's sandbox
// service (src/sandboxes) only ever talks to an Engine and to the AgentClient
// an engine hands back; it never knows about runc or QEMU.
import type { GuestLink } from "../net/egress.js";
import type { AgentClient } from "./agent-client.js";
import type { ConfigDrive } from "../protocol/agent.js";

export type { EngineName } from "./names.js";
import type { EngineName } from "./names.js";

export interface EngineEnv {
  dataDir: string; // <data_dir>
  runtimeDir: string; // tmpfs directory owned by this daemon, e.g. /run/bhatti/<hash>
  imagesDir: string; // <data_dir>/images
  /** This daemon instance's id (state.db meta instance_id): scopes host-global names (cgroups) to it. */
  instance?: string;
  /** The daemon's age public key: memory snapshots are encrypted to it (issue 14); <dataDir>/age.key decrypts them. */
  ageRecipient?: string;
}

/** A volume the sandbox holds (issue 14): an ext4 image mounted at path inside. */
export interface EngineVolume { id: string; file: string; path: string; ro: boolean }

export interface CreateSpec {
  id: string; // globally unique sandbox id, [a-z0-9]+, used for paths and cgroups
  name: string; // becomes the hostname
  image: string; // image name under imagesDir ("minimal" by default; "base" is its alias)
  cpus: number;
  memoryMb: number;
  diskMb?: number; // size limit of the writable layer (unset: none beyond the host's disk)
  volumes?: EngineVolume[]; // mounted at every boot (create and start)
  /** Fork (issue 14): start from a filesystem snapshot (a copy of a writable layer in dir/upper, its ids in the range at base). */
  from?: { dir: string; base: number };
  // Holds plaintext secret values: keep it in memory, write it only into
  // config.ext4 on tmpfs, never log it, never put it in argv or a file on disk.
  config: ConfigDrive;
  /** Networking (egress public|deny): the daemon prepares it alongside the boot (src/net); absent: loopback only. */
  network?: Promise<{ resolvConf: string; attach(pid: number): Promise<void>; guest?: GuestLink }>;
}

/** Engine-private facts about a running sandbox, persisted (no secrets) so a restarted daemon can reattach. */
export type EngineState = Record<string, unknown>;

export interface RunningSandbox {
  id: string;
  engine: EngineName;
  state: EngineState;
  agent: AgentClient; // authenticated; the config drive is already gone when create() resolves
}

export interface Availability {
  ok: boolean;
  reason?: string; // why it cannot run here (shown to users on a 400)
  accel?: "kvm" | "tcg"; // vm engine only
}

/** Lifecycle operations (issue 14) an engine may or may not support on this host. */
export type LifecycleOp = "stop" | "start" | "pause" | "resume" | "snapshot";

export interface Engine {
  readonly name: EngineName;
  /** start() restores the sandbox's memory (its env, secrets and agent token as they were) instead of booting it. */
  readonly restoresMemory?: boolean;
  /** Can this engine run on this host? Cached after the first probe. */
  available(): Promise<Availability>;
  /** Boot a sandbox. Resolves once lohar has consumed the config drive and the drive is gone (unmounted, detached, deleted). */
  create(spec: CreateSpec): Promise<RunningSandbox>;
  /**
   * After a daemon restart (or to retry an unreachable sandbox): reconnect to a sandbox created earlier.
   * null if it is dead (its leftovers are then cleaned up); throws if it is alive but does not answer
   * (it is then left alone).
   */
  reattach(id: string, state: EngineState, token: string): Promise<RunningSandbox | null>;
  /** Whether the sandbox's processes still run; cheap (no tool spawned), for status reconciliation while the daemon runs. */
  alive(id: string, state: EngineState): Promise<boolean>;
  /** Start-up: finishes removals a crashed daemon left half done (e.g. trashed writable layers). */
  sweep(): Promise<void>;
  /** Ids of the sandboxes this engine has on the host for this daemon (runtime and data dirs, runtime state), live or not. */
  list(): Promise<string[]>;
  /** Why this engine cannot do op for a sandbox in this state on this host; null if it can. */
  cannot(op: LifecycleOp, id: string, state: EngineState): string | null;
  /**
   * Ends the sandbox's processes and releases what it holds (memory, cgroup,
   * uid slot, runtime dir); keeps its writable layer. Returns the state to
   * record while it is stopped (start takes it back). Idempotent.
   */
  stop(id: string, state: EngineState): Promise<EngineState>;
  /** Boots a stopped sandbox again on its kept writable layer with a freshly built config drive. */
  start(spec: CreateSpec, state: EngineState): Promise<RunningSandbox>;
  /** Freezes every process of the sandbox in memory (warm); resume thaws them. */
  pause(id: string, state: EngineState): Promise<void>;
  resume(id: string, state: EngineState): Promise<void>;
  /**
   * Filesystem snapshot (issue 14): copies the sandbox's writable layer into
   * dir/upper while its processes are frozen (a consistent copy). Returns the
   * uid range base its ids are in (a fork re-owns them).
   */
  snapshot(id: string, state: EngineState, dir: string): Promise<{ base: number }>;
  /** Whether the sandbox is frozen (after a daemon restart: a paused sandbox stays paused). */
  paused(id: string, state: EngineState): Promise<boolean>;
  /** Stop and remove everything of a sandbox: processes, cgroups, mounts, loop devices, runtime and sandbox dirs. Idempotent. */
  destroy(id: string, state: EngineState): Promise<void>;
}
