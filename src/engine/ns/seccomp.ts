// The seccomp filter of every ns sandbox (runc's linux.seccomp): an ALLOW-list.
// Anything not named below fails with EPERM. Modelled on moby's default
// profile (profiles/seccomp/default.json): its unconditional list, minus
// io_uring_* (moby dropped those too: a large, often-exploited kernel surface)
// and a few calls we have always denied (adjtimex, clock_adjtime,
// name_to_handle_at); its conditional parts resolved for what a sandbox has:
// lohar (sandbox root) holds CAP_SYS_ADMIN in its user namespace, but of moby's
// CAP_SYS_ADMIN group only umount2 (the config drive) and sethostname are
// allowed; nothing gets the ptrace, chroot, module, time, reboot, bpf or perf
// groups. Syscalls newer than runc's libseccomp knows get ENOSYS from runc's
// own stub, so libc fallbacks (e.g. fchmodat2 -> fchmodat) keep working.
const EPERM = 1;
const ENOSYS = 38;

export const ALLOW = [
  "accept", "accept4", "access", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod", "chown", "chown32",
  "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
  "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
  "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old",
  "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
  "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64",
  "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64",
  "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat",
  "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
  "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
  "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage",
  "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
  "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
  "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
  "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
  "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr",
  "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore",
  "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
  "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
  "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
  "munlockall", "munmap", "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause",
  "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
  "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
  "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
  "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename",
  "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
  "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
  "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
  "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
  "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
  "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
  "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
  "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
  "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
  "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
  "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
  "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
  "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
  "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
  "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
  "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
  "waitpid", "write", "writev",
  // x86 only (moby: arches amd64/x32/x86)
  "arch_prctl", "modify_ldt",
  // moby's CAP_SYS_ADMIN group, reduced to what lohar uses: unmount the config drive, set the hostname.
  "umount", "umount2", "sethostname",
];

/** Calls a sandbox must never make; every one is outside ALLOW (ns.test checks that). Documentation and tests. */
export const MUST_DENY = [
  "io_uring_setup", "io_uring_enter", "io_uring_register",
  "mount", "fsopen", "fsmount", "fsconfig", "move_mount", "open_tree", "fspick", "mount_setattr",
  "pivot_root", "chroot", "unshare", "setns", "keyctl", "add_key", "request_key",
  "bpf", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
  "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
  "open_by_handle_at", "name_to_handle_at", "perf_event_open", "userfaultfd", "fanotify_init",
  "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "lookup_dcookie", "iopl", "ioperm", "syslog",
  "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "reboot", "vhangup", "setdomainname",
  "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "get_mempolicy", "set_mempolicy", "mbind",
];

// clone(2) flags that create namespaces (moby's mask 0x7E020000): CLONE_NEWNS,
// NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET. CLONE_NEWTIME is only
// reachable via unshare/clone3, both denied.
export const CLONE_NS_MASK = 0x7e020000;
const AF_VSOCK = 40;
// personality(2) values moby allows: PER_LINUX, UNAME26, PER_LINUX32, PER_LINUX32|UNAME26, and the query 0xffffffff.
const PERSONALITIES = [0x0, 0x0008, 0x20000, 0x20008, 0xffffffff];

export function seccompProfile(): Record<string, unknown> {
  const syscalls: Record<string, unknown>[] = [
    { names: ALLOW, action: "SCMP_ACT_ALLOW" },
    // clone without any namespace flag (x86: flags are argument 0).
    { names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: CLONE_NS_MASK, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] },
    // clone3 passes flags in a struct seccomp cannot inspect: ENOSYS makes libc fall back to clone.
    { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS },
    // Any socket family but vsock (which would reach the host's vsock services).
    { names: ["socket"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: AF_VSOCK, valueTwo: 0, op: "SCMP_CMP_NE" }] },
  ];
  for (const p of PERSONALITIES) {
    syscalls.push({ names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: p, valueTwo: 0, op: "SCMP_CMP_EQ" }] });
  }
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: EPERM,
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    syscalls,
  };
}
