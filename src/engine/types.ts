// The one interface every sandbox engine implements. The daemon's sandbox
// service (src/sandboxes) only ever talks to an Engine and to the AgentClient
// an engine hands back; it never knows about runc or QEMU.
import type { AgentClient } from "./agent-client.js";
import type { ConfigDrive } from "../protocol/agent.js";

export type EngineName = "ns" | "vm";

export interface EngineEnv {
  dataDir: string; // <data_dir>
  runtimeDir: string; // tmpfs directory owned by this daemon, e.g. /run/bhatti/<hash>
  imagesDir: string; // <data_dir>/images
  /** This daemon instance's id (state.db meta instance_id): scopes host-global names (cgroups) to it. */
  instance?: string;
}

export interface CreateSpec {
  id: string; // globally unique sandbox id, [a-z0-9]+, used for paths and cgroups
  name: string; // becomes the hostname
  image: string; // image name under imagesDir ("minimal" by default; "base" is its alias)
  cpus: number;
  memoryMb: number;
  diskMb?: number; // size limit of the writable layer (unset: none beyond the host's disk)
  // Holds plaintext secret values: keep it in memory, write it only into
  // config.ext4 on tmpfs, never log it, never put it in argv or a file on disk.
  config: ConfigDrive;
  /** Networking (egress public|deny): the daemon prepares it alongside the boot (src/net); absent: loopback only. */
  network?: Promise<{ resolvConf: string; attach(pid: number): Promise<void> }>;
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

export interface Engine {
  readonly name: EngineName;
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
  /** Stop and remove everything of a sandbox: processes, cgroups, mounts, loop devices, runtime and sandbox dirs. Idempotent. */
  destroy(id: string, state: EngineState): Promise<void>;
}
