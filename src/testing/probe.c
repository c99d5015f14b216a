/* Test-only probe run inside a sandbox (built by src/testing/probe.ts with
 * gcc -static, never committed as a binary). Modes:
 *   syscalls        try each syscall a sandbox must not have; print "name errno"
 *   nofile          open /dev/null until it fails; print "nofile COUNT ERRNO"
 *   inotify         inotify_init1 until it fails; print "inotify COUNT ERRNO",
 *                   then inotify_add_watch on one instance until it fails;
 *                   print "watches COUNT ERRNO"; with a second argument N,
 *                   hold them for N seconds before exiting
 *   mqueue          create POSIX message queues (10 x 8 KiB) until it fails;
 *                   print "mqueue COUNT ERRNO" (and unlink them)
 *   rlimits         print "NAME SOFT HARD" for the rlimits bhatti sets
 * Arguments are chosen so that a call that is NOT filtered fails harmlessly
 * (bad pointers, invalid fds) or does nothing lasting. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif
#ifndef __NR_open_tree
#define __NR_open_tree 428
#define __NR_move_mount 429
#define __NR_fsopen 430
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif

static void try(const char *name, long nr, long a, long b, long c, long d, long e) {
  errno = 0;
  long r = syscall(nr, a, b, c, d, e, 0);
  printf("%s %d\n", name, r == -1 ? errno : 0);
}

static int syscalls(void) {
  char params[120];
  memset(params, 0, sizeof params);
  try("io_uring_setup", __NR_io_uring_setup, 1, (long)params, 0, 0, 0);
  try("io_uring_enter", __NR_io_uring_enter, -1, 0, 0, 0, 0);
  try("io_uring_register", __NR_io_uring_register, -1, 0, 0, 0, 0);
  try("mount", SYS_mount, (long)"none", (long)"/tmp", (long)"tmpfs", 0, 0);
  try("umount2_bad", SYS_umount2, (long)"/nonexistent-bhatti", 0, 0, 0, 0);
  try("unshare", SYS_unshare, CLONE_NEWUSER, 0, 0, 0, 0);
  try("unshare_ns", SYS_unshare, CLONE_NEWNS, 0, 0, 0, 0);
  try("setns", SYS_setns, -1, 0, 0, 0, 0);
  try("clone_newuser", SYS_clone, CLONE_NEWUSER | 17 /* SIGCHLD */, 0, 0, 0, 0);
  try("clone3", __NR_clone3, 0, 0, 0, 0, 0);
  try("bpf", SYS_bpf, 0, 0, 0, 0, 0);
  try("keyctl", SYS_keyctl, 0, 0, 0, 0, 0);
  try("add_key", SYS_add_key, 0, 0, 0, 0, 0);
  try("ptrace", SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0, 0);
  try("kexec_load", SYS_kexec_load, 0, 0, 0, 0, 0);
  try("perf_event_open", SYS_perf_event_open, 0, 0, -1, -1, 0);
  try("open_by_handle_at", SYS_open_by_handle_at, -1, 0, 0, 0, 0);
  try("init_module", SYS_init_module, 0, 0, 0, 0, 0);
  try("userfaultfd", SYS_userfaultfd, 0, 0, 0, 0, 0);
  try("pivot_root", SYS_pivot_root, 0, 0, 0, 0, 0);
  try("chroot", SYS_chroot, (long)"/nonexistent-bhatti", 0, 0, 0, 0);
  try("fsopen", __NR_fsopen, 0, 0, 0, 0, 0);
  try("open_tree", __NR_open_tree, -1, 0, 0, 0, 0);
  try("move_mount", __NR_move_mount, -1, 0, -1, 0, 0);
  try("swapon", SYS_swapon, 0, 0, 0, 0, 0);
  try("syslog", SYS_syslog, 3, 0, 0, 0, 0);
  try("acct", SYS_acct, 0, 0, 0, 0, 0);
  try("settimeofday", SYS_settimeofday, 0, 0, 0, 0, 0);
  try("reboot", SYS_reboot, 0, 0, 0, 0, 0);
  try("process_vm_readv", SYS_process_vm_readv, 1, 0, 0, 0, 0);
  try("pidfd_getfd", __NR_pidfd_getfd, -1, 0, 0, 0, 0);
  try("personality_bad", SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */, 0, 0, 0, 0);
  try("socket_alg", SYS_socket, 38 /* AF_ALG */, 5, 0, 0, 0);
  /* Must still work: */
  try("getpid", SYS_getpid, 0, 0, 0, 0, 0);
  try("personality_query", SYS_personality, 0xffffffff, 0, 0, 0, 0);
  try("socket_unix", SYS_socket, 1 /* AF_UNIX */, 1, 0, 0, 0);
  return 0;
}

static int nofile(void) {
  long n = 0;
  for (;;) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0) break;
    n++;
  }
  printf("nofile %ld %d\n", n, errno);
  return 0;
}

static int inotify(int hold) {
  long n = 0;
  int first = -1;
  for (;;) {
    int fd = inotify_init1(0);
    if (fd < 0) break;
    if (first < 0) first = fd;
    n++;
  }
  printf("inotify %ld %d\n", n, errno);
  if (first < 0) return 0;
  /* Watches: one per directory, so make directories to watch. */
  char path[64];
  long w = 0;
  mkdir("/tmp/bhatti-w", 0700);
  for (;;) {
    snprintf(path, sizeof path, "/tmp/bhatti-w/%ld", w);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) { printf("mkdir-failed %d\n", errno); break; }
    if (inotify_add_watch(first, path, IN_CREATE) < 0) break;
    w++;
  }
  printf("watches %ld %d\n", w, errno);
  if (hold > 0) sleep(hold); /* keep them while the caller looks from outside */
  return 0;
}

static int mqueue(void) {
  struct mq_attr a;
  memset(&a, 0, sizeof a);
  a.mq_maxmsg = 10;
  a.mq_msgsize = 8192;
  char name[64];
  long n = 0;
  for (;;) {
    snprintf(name, sizeof name, "/bhatti-probe-%ld", n);
    if (mq_open(name, O_CREAT | O_RDWR, 0600, &a) == (mqd_t)-1) break;
    n++;
  }
  printf("mqueue %ld %d\n", n, errno);
  for (long i = 0; i < n; i++) {
    snprintf(name, sizeof name, "/bhatti-probe-%ld", i);
    mq_unlink(name);
  }
  return 0;
}

static int rlimits(void) {
  static const struct { const char *name; int r; } L[] = {
    {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"memlock", RLIMIT_MEMLOCK},
    {"msgqueue", RLIMIT_MSGQUEUE}, {"sigpending", RLIMIT_SIGPENDING}, {"core", RLIMIT_CORE},
  };
  for (unsigned i = 0; i < sizeof L / sizeof L[0]; i++) {
    struct rlimit rl;
    getrlimit(L[i].r, &rl);
    printf("%s %lld %lld\n", L[i].name, (long long)rl.rlim_cur, (long long)rl.rlim_max);
  }
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  if (!strcmp(argv[1], "syscalls")) return syscalls();
  if (!strcmp(argv[1], "nofile")) return nofile();
  if (!strcmp(argv[1], "inotify")) return inotify(argc > 2 ? atoi(argv[2]) : 0);
  if (!strcmp(argv[1], "mqueue")) return mqueue();
  if (!strcmp(argv[1], "rlimits")) return rlimits();
  return 2;
}
