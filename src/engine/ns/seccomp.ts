// The seccomp filter of every ns sandbox (runc's linux.seccomp): allow by
// default, refuse what lets a process escape or attack the kernel. umount2
// stays allowed: lohar unmounts the config drive with it.
const EPERM = 1;
const ENOSYS = 38;

const DENY = [
  "mount", "fsopen", "fsmount", "fsconfig", "move_mount", "open_tree", "fspick", "mount_setattr",
  "pivot_root", "chroot", "unshare", "setns",
  "keyctl", "add_key", "request_key",
  "bpf", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
  "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
  "open_by_handle_at", "name_to_handle_at",
  "perf_event_open", "userfaultfd", "swapon", "swapoff", "acct", "quotactl",
  "lookup_dcookie", "iopl", "ioperm", "syslog", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
  "vhangup", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
];

// clone(2) flags that create namespaces; CLONE_NEWTIME is only reachable via unshare/clone3.
const CLONE_NS_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];

export function seccompProfile(): Record<string, unknown> {
  const syscalls: Record<string, unknown>[] = [
    { names: DENY, action: "SCMP_ACT_ERRNO", errnoRet: EPERM },
    // clone3 passes flags in a struct seccomp cannot inspect: ENOSYS makes libc fall back to clone.
    { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS },
  ];
  for (const flag of CLONE_NS_FLAGS) {
    syscalls.push({
      names: ["clone"],
      action: "SCMP_ACT_ERRNO",
      errnoRet: EPERM,
      args: [{ index: 0, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ" }],
    });
  }
  return { defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], syscalls };
}
