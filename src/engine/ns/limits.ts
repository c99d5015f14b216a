// What one sandbox may hold of the host's shared tables, and whether the
// operator's maximum number of sandboxes times that fits the host.
//
// Per sandbox (ns engine; the vm engine's guest has its own kernel, so only
// the tmpfs sizes apply there):
// - processes + threads: the pids cgroup (PIDS_LIMIT);
// - open files: RLIMIT_NOFILE per process (lohar's, inherited by commands);
// - pseudo-terminals: the sandbox's devpts instance (max=PTYS). All
//   non-initial devpts instances share kernel.pty.max minus kernel.pty.reserve;
// - inotify instances and watches: the sandbox user namespace's
//   /proc/sys/user/max_inotify_* (set from the host, see setNamespaceLimits).
//   The kernel also charges every sandbox's inotify use to the namespace's
//   creator on the host (root: runc runs as root), so all sandboxes together
//   share root's fs.inotify.max_user_instances/watches with the host's own
//   root services;
// - nested namespaces of every kind: 0 (seccomp refuses them too);
// - pending signals, POSIX message queue bytes (none), locked memory, core dumps: rlimits.
// Memory (tmpfs pages included) and cpu are the sandbox's own cgroup limits.
import { readFileSync } from "node:fs";

export const PIDS_LIMIT = 1024; // processes and threads of one sandbox
export const NOFILE = 1024; // open files per process
export const INOTIFY_INSTANCES = 8;
export const INOTIFY_WATCHES = 8192;
export const PTYS = 64; // tty execs at once
const MIB = 1024 * 1024;

/** OCI process.rlimits (soft = hard: nothing in a sandbox can raise them). */
export const RLIMITS: { type: string; soft: number; hard: number }[] = [
  { type: "RLIMIT_NOFILE", soft: NOFILE, hard: NOFILE },
  { type: "RLIMIT_NPROC", soft: PIDS_LIMIT, hard: PIDS_LIMIT },
  // Pending signals, POSIX message queue bytes and SHM_LOCK memory are also
  // charged to the namespace's creator (root) on the host, against the rlimit
  // runc had (the daemon's): all sandboxes and root share one budget. Message
  // queues are off (that budget is 800 KiB by default: one sandbox took all
  // of it and left root none); signals are kept small.
  { type: "RLIMIT_SIGPENDING", soft: 1024, hard: 1024 },
  { type: "RLIMIT_MSGQUEUE", soft: 0, hard: 0 },
  { type: "RLIMIT_MEMLOCK", soft: 8 * MIB, hard: 8 * MIB },
  { type: "RLIMIT_CORE", soft: 0, hard: 0 }, // a crash in a sandbox never runs the host's core_pattern helper
];

/** /proc/sys/user/* of the sandbox's user namespace. */
export const USERNS_LIMITS: Record<string, number> = {
  max_inotify_instances: INOTIFY_INSTANCES,
  max_inotify_watches: INOTIFY_WATCHES,
  max_fanotify_groups: 0,
  max_fanotify_marks: 0,
  max_user_namespaces: 0, max_mnt_namespaces: 0, max_pid_namespaces: 0, max_net_namespaces: 0,
  max_ipc_namespaces: 0, max_uts_namespaces: 0, max_cgroup_namespaces: 0, max_time_namespaces: 0,
};

/**
 * Sizes (KiB) of a sandbox's tmpfs mounts. tmpfs pages count against the
 * sandbox's memory cgroup, so together they stay well under its memory
 * (7/16 of it), leaving room for lohar and commands: /tmp 1/4, /run 1/16, /dev/shm 1/8.
 */
export function tmpfsSizesKiB(memoryMb: number): { tmp: number; run: number; shm: number } {
  const kib = memoryMb * 1024;
  return { tmp: Math.floor(kib / 4), run: Math.max(4096, Math.floor(kib / 16)), shm: Math.floor(kib / 8) };
}

/** Percent-of-RAM equivalents for the vm guest's init (tmpfs size=N%). */
export const VM_TMPFS_PERCENT = { tmp: 25, run: 6, shm: 12 };

export interface HostTables {
  pidMax: number;
  threadsMax: number;
  fileMax: number;
  nrOpen: number;
  inotifyInstances: number;
  inotifyWatches: number;
  ptyMax: number;
  ptyReserve: number;
}

function num(path: string): number {
  try {
    const n = Number(readFileSync(path, "utf8").trim().split(/\s+/)[0]);
    return Number.isFinite(n) && n > 0 ? n : Infinity;
  } catch {
    return Infinity; // not readable: no known limit to check against
  }
}

export function readHostTables(): HostTables {
  return {
    pidMax: num("/proc/sys/kernel/pid_max"),
    threadsMax: num("/proc/sys/kernel/threads-max"),
    fileMax: num("/proc/sys/fs/file-max"),
    nrOpen: num("/proc/sys/fs/nr_open"),
    inotifyInstances: num("/proc/sys/fs/inotify/max_user_instances"),
    inotifyWatches: num("/proc/sys/fs/inotify/max_user_watches"),
    ptyMax: num("/proc/sys/kernel/pty/max"),
    ptyReserve: Number.isFinite(num("/proc/sys/kernel/pty/reserve")) ? num("/proc/sys/kernel/pty/reserve") : 0,
  };
}

export const DEFAULT_MAX_SANDBOXES = 64;
/** Sandboxes together may take this share of a host table; the rest stays for the host itself. */
const SHARE = 0.75;

interface Need { what: string; sysctl: string; perSandbox: number; host: number; reserved?: number }

export interface CapacityPlan {
  maxSandboxes: number;
  /** Lines for the daemon's log: what bounds the number, and warnings. */
  log: string[];
}

/**
 * Decides the host-wide maximum of running sandboxes. Tables whose exhaustion
 * hurts root and so the daemon itself (pids, threads, root's inotify) must
 * fit: without an explicit maximum the largest count that fits is used (at
 * most DEFAULT_MAX_SANDBOXES); an explicit maximum that does not fit is
 * refused (throws, naming the sysctl). The file table only warns: the kernel
 * keeps its last entries for CAP_SYS_ADMIN (the daemon), and each sandbox's
 * files also cost kernel memory charged to its memory cgroup.
 */
export function planCapacity(requested: number | undefined, host: HostTables = readHostTables()): CapacityPlan {
  const hard: Need[] = [
    { what: "processes", sysctl: "kernel.pid_max", perSandbox: PIDS_LIMIT, host: host.pidMax },
    { what: "threads", sysctl: "kernel.threads-max", perSandbox: PIDS_LIMIT, host: host.threadsMax },
    { what: "inotify instances", sysctl: "fs.inotify.max_user_instances", perSandbox: INOTIFY_INSTANCES, host: host.inotifyInstances },
    { what: "inotify watches", sysctl: "fs.inotify.max_user_watches", perSandbox: INOTIFY_WATCHES, host: host.inotifyWatches },
    // The host's own devpts keeps kernel.pty.reserve for itself.
    { what: "pseudo-terminals", sysctl: "kernel.pty.max", perSandbox: PTYS, host: host.ptyMax - host.ptyReserve, reserved: host.ptyReserve },
  ];
  if (NOFILE > host.nrOpen) throw new Error(`fs.nr_open (${host.nrOpen}) is below the per-process open-file limit of a sandbox (${NOFILE}); raise it: sysctl fs.nr_open=${NOFILE}`);
  const fits = (n: Need) => Math.floor((n.host * SHARE) / n.perSandbox);
  const bound = hard.reduce((a, b) => (fits(b) < fits(a) ? b : a));
  const fit = fits(bound);
  const log: string[] = [];
  let max: number;
  if (requested === undefined) {
    max = Math.min(DEFAULT_MAX_SANDBOXES, fit);
    if (max < 1) throw new Error(`this host cannot hold one sandbox: ${bound.what} per sandbox ${bound.perSandbox}, ${bound.sysctl} = ${bound.host}`);
    log.push(max < DEFAULT_MAX_SANDBOXES
      ? `max sandboxes: ${max} (bounded by ${bound.sysctl} = ${bound.host + (bound.reserved ?? 0)}: ${bound.perSandbox} ${bound.what} per sandbox, ${SHARE * 100}% of the table for sandboxes; raise it for more)`
      : `max sandboxes: ${max}`);
  } else {
    for (const n of hard) {
      if (requested * n.perSandbox > n.host * SHARE) {
        const need = Math.ceil((requested * n.perSandbox) / SHARE) + (n.reserved ?? 0);
        const of = n.reserved ? `${n.sysctl} (${n.host + n.reserved}) less ${n.reserved} reserved` : `${n.sysctl} (${n.host})`;
        throw new Error(`--max-sandboxes ${requested} does not fit this host: ${requested} sandboxes x ${n.perSandbox} ${n.what} > ${SHARE * 100}% of ${of}. Lower --max-sandboxes to ${fits(n)} or raise it: sysctl ${n.sysctl}=${need}`);
      }
    }
    max = requested;
    log.push(`max sandboxes: ${max} (set by --max-sandboxes; fits: ${hard.map((n) => `${n.sysctl} ${n.host + (n.reserved ?? 0)}`).join(", ")})`);
  }
  const files = max * PIDS_LIMIT * NOFILE;
  if (files > host.fileMax) {
    log.push(`warning: ${max} sandboxes x ${PIDS_LIMIT} processes x ${NOFILE} open files (${files}) exceed fs.file-max (${host.fileMax}): sandboxes together could fill the file table (the daemon, as root, keeps working; each sandbox's files are also charged to its memory cgroup). Raise fs.file-max to be safe.`);
  }
  return { maxSandboxes: max, log };
}
