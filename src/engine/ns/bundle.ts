// The OCI runtime spec (runc bundle config.json) of an ns sandbox. It holds
// paths, ids and limits only: the process env is PATH and UV_USE_IO_URING and
// nothing else, so no secret can ever land in it.
import { GUEST, GUEST_TRUST, SECRETS_DIR } from "../../protocol/agent.js";
import { UID_RANGE } from "../runtime.js";
import { seccompProfile } from "./seccomp.js";
import { PIDS_LIMIT, PTYS, RLIMITS, tmpfsSizesKiB } from "./limits.js";

export const LOHAR_ARGS = ["/usr/bin/tini", "-s", "--", "/opt/bhatti/node", "/opt/bhatti/lohar.js", "--transport", "unix"];
export { PIDS_LIMIT };
const CPU_PERIOD = 100_000;

// What lohar (sandbox root) needs: drop to uid 1000 (SETUID/SETGID), chown and
// write files anywhere (CHOWN/DAC_OVERRIDE/FOWNER), signal uid-1000 process
// groups (KILL), umount2 the config drive and set the hostname (SYS_ADMIN).
export const LOHAR_CAPS = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_SYS_ADMIN",
];

export interface BundleSpec {
  id: string;
  hostname: string;
  rootfs: string; // host path of the prepared (overlay) root
  agentDir: string; // host dir bind-mounted at GUEST.agentDir
  configMount: string; // host read-only mount of config.ext4, bind-mounted at GUEST.configDir
  base: number; // first host uid/gid of the sandbox's range
  cgroup: string; // cgroupsPath (see cgroupsPath)
  cpus: number;
  memoryMb: number;
  volumes?: { source: string; destination: string; ro: boolean }[]; // host mount points of volumes (issue 14)
  resolvConf?: string; // host file bind-mounted read-only at /etc/resolv.conf (on tmpfs, never the image)
  trust?: { bundle: string; caCert: string }; // brokerstore (issue 11): host files (tmpfs) bind-mounted read-only at GUEST_TRUST's paths
}

/**
 * The sandbox's cgroup path. Under the daemon instance's own subtree, so a
 * pid found in it provably belongs to this daemon's sandbox: another daemon on
 * the host (even one started from a copy of this state.db, with the same
 * sandbox ids) has another instance id. No instance: the old, shared layout.
 */
export function cgroupsPath(id: string, instance?: string): string {
  return instance ? `/bhatti/${instance}/${id}` : `/bhatti/${id}`;
}

export function ociSpec(b: BundleSpec): Record<string, unknown> {
  const mem = b.memoryMb * 1024 * 1024;
  const idmap = [{ containerID: 0, hostID: b.base, size: UID_RANGE }];
  const tmpfs = tmpfsSizesKiB(b.memoryMb);
  return {
    ociVersion: "1.0.2-dev",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: LOHAR_ARGS,
      // UV_USE_IO_URING=0: libuv must not even try io_uring (seccomp refuses it anyway).
      env: [`PATH=${GUEST.defaultEnv.PATH}`, "UV_USE_IO_URING=0"],
      rlimits: RLIMITS,
      cwd: "/",
      capabilities: { bounding: LOHAR_CAPS, effective: LOHAR_CAPS, permitted: LOHAR_CAPS, inheritable: [], ambient: [] },
      noNewPrivileges: true,
      oomScoreAdj: 0,
    },
    root: { path: b.rootfs, readonly: false },
    hostname: b.hostname,
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev", "hidepid=2"] },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", `max=${PTYS}`] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${tmpfs.shm}k`] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", `size=${tmpfs.tmp}k`] },
      { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=755", `size=${tmpfs.run}k`] },
      // Secret files' values live here (src/agent/secret-files.ts): a tmpfs, never the writable layer.
      { destination: SECRETS_DIR, type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "noexec", "mode=0711", "size=16m"] },
      { destination: GUEST.agentDir, type: "bind", source: b.agentDir, options: ["bind", "nosuid", "nodev", "noexec"] },
      { destination: GUEST.configDir, type: "bind", source: b.configMount, options: ["bind", "ro", "nosuid", "nodev", "noexec"] },
      ...(b.volumes ?? []).map((v) => ({ destination: v.destination, type: "bind", source: v.source, options: ["bind", "nosuid", "nodev", v.ro ? "ro" : "rw"] })),
      ...(b.resolvConf ? [{ destination: "/etc/resolv.conf", type: "bind", source: b.resolvConf, options: ["bind", "ro", "nosuid", "nodev", "noexec"] }] : []),
      ...(b.trust ? [
        { destination: GUEST_TRUST.bundle, type: "bind", source: b.trust.bundle, options: ["bind", "ro", "nosuid", "nodev", "noexec"] },
        { destination: GUEST_TRUST.caCert, type: "bind", source: b.trust.caCert, options: ["bind", "ro", "nosuid", "nodev", "noexec"] },
      ] : []),
    ],
    linux: {
      uidMappings: idmap,
      gidMappings: idmap,
      namespaces: ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"].map((type) => ({ type })),
      cgroupsPath: b.cgroup,
      resources: {
        devices: [{ allow: false, access: "rwm" }],
        memory: { limit: mem, swap: mem },
        cpu: { quota: Math.round(b.cpus * CPU_PERIOD), period: CPU_PERIOD },
        pids: { limit: PIDS_LIMIT },
      },
      rootfsPropagation: "rprivate",
      seccomp: seccompProfile(),
      maskedPaths: [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        // Block devices: a loop device's backing_file names other sandboxes' config drives and the runtime dir.
        "/sys/block", "/sys/class/block", "/sys/dev/block", "/sys/devices/virtual/block",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}
