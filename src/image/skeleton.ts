// The fixed parts of the guest root tree: directories, /etc files, the vm
// init script, and ownership. Nothing here is per-sandbox and nothing is secret.
import { chmod, lchown, mkdir, rm, symlink, writeFile, lstat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { GUEST } from "../protocol/agent.js";
import { run } from "./run.js";
import { walk } from "./tree.js";
import { VM_TMPFS_PERCENT } from "../engine/ns/limits.js";

const U = GUEST.user;

/** Directories of the image and their modes (everything else is 0755). */
export const DIRS: Record<string, number> = {
  "/bin": 0o755, "/sbin": 0o755, "/usr/bin": 0o755, "/usr/sbin": 0o755, "/usr/local/bin": 0o755,
  "/lib": 0o755, "/lib64": 0o755, "/etc": 0o755, "/etc/ssl/certs": 0o755, "/opt/bhatti": 0o755,
  "/home": 0o755, [U.home]: 0o755, "/proc": 0o555, "/sys": 0o555, "/dev": 0o755, "/run": 0o755,
  "/tmp": 0o1777, "/mnt": 0o755, "/root": 0o700, "/var": 0o755, "/var/tmp": 0o1777,
};

/** lohar's own Node: under /opt/bhatti so it never clashes with a user's node (both images). */
export const NODE_PATH = "/opt/bhatti/node";
/** minimal only: where `node` was before, kept as a link for users of that image. */
export const NODE_LINK = "/usr/local/bin/node";
export const LOHAR_PATH = "/opt/bhatti/lohar.js";
export const TINI_PATH = "/usr/bin/tini";
export const INIT_PATH = "/sbin/bhatti-init";

export async function makeDirs(root: string): Promise<void> {
  await mkdir(root, { recursive: true });
  await chmod(root, 0o755);
  for (const [d, mode] of Object.entries(DIRS)) {
    await mkdir(join(root, d), { recursive: true, mode: 0o755 });
    await chmod(join(root, d), mode);
  }
}

// The vm engine's PID 1 after the initramfs switch_root: kernel filesystems
// (tmpfs sizes as a share of the guest's RAM, like the ns engine's, see
// src/engine/ns/limits.ts), then tini as PID 1 running lohar with an empty
// environment.
export const INIT_SCRIPT = `#!/bin/sh
# bhatti vm init (written by the image builder). Runs as PID 1 after switch_root.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mounted() { [ -r /proc/mounts ] && grep -q "^[^ ]* $1 " /proc/mounts; }
if mounted /proc; then mount -o remount,hidepid=2 /proc; else mount -t proc -o nosuid,nodev,noexec,hidepid=2 proc /proc; fi
mounted /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mounted /dev || mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mounted /dev/pts || mount -t devpts -o nosuid,noexec,ptmxmode=0666,mode=0620 devpts /dev/pts
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
mounted /dev/shm || mount -t tmpfs -o nosuid,nodev,mode=1777,size=${VM_TMPFS_PERCENT.shm}% tmpfs /dev/shm
mounted /run || mount -t tmpfs -o nosuid,nodev,mode=0755,size=${VM_TMPFS_PERCENT.run}% tmpfs /run
mounted /tmp || mount -t tmpfs -o nosuid,nodev,mode=1777,size=${VM_TMPFS_PERCENT.tmp}% tmpfs /tmp
ip link set lo up 2>/dev/null
exec env -i ${TINI_PATH} -s -- ${NODE_PATH} ${LOHAR_PATH} --transport virtio --vm
`;

export const ETC_FILES: Record<string, string> = {
  "/etc/passwd": `root:x:0:0:root:/root:/bin/sh\n${U.name}:x:${U.uid}:${U.gid}:${U.name}:${U.home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n`,
  "/etc/group": `root:x:0:\n${U.name}:x:${U.gid}:\nnogroup:x:65534:\n`,
  "/etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
  "/etc/hostname": "bhatti\n",
  "/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
  "/etc/os-release": 'NAME="bhatti base"\nID=bhatti\nPRETTY_NAME="bhatti base image"\n',
};

export async function writeEtc(root: string): Promise<void> {
  for (const [p, text] of Object.entries(ETC_FILES)) {
    await writeFile(join(root, p), text);
    await chmod(join(root, p), 0o644);
  }
  await writeFile(join(root, INIT_PATH), INIT_SCRIPT);
  await chmod(join(root, INIT_PATH), 0o755);
}

/** Creates every busybox applet link (`busybox --list-full`) that is not already a file. */
export async function busyboxLinks(root: string): Promise<number> {
  const { stdout } = await run(join(root, "bin/busybox"), ["--list-full"]);
  let n = 0;
  for (const rel of stdout.split("\n").map((l) => l.trim()).filter(Boolean)) {
    if (rel.includes("..") || rel === "linuxrc") continue;
    const dest = join(root, rel);
    const exists = await lstat(dest).then(() => true, () => false);
    if (exists) continue;
    await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
    await symlink("/bin/busybox", dest);
    n++;
  }
  return n;
}

/** Drops package documentation the guest never reads. */
export async function pruneDocs(root: string): Promise<void> {
  for (const d of ["usr/share/doc", "usr/share/man", "usr/share/lintian", "usr/share/initramfs-tools"]) {
    await rm(join(root, d), { recursive: true, force: true });
  }
}

/**
 * Everything root:root and not group/world-writable, except the lohar home
 * (uid/gid 1000) and the sticky tmp dirs; symlinks are left as they are.
 */
export async function fixOwnership(root: string): Promise<void> {
  for await (const e of walk(root)) {
    const home = e.rel === U.home;
    await lchown(e.path, home ? U.uid : 0, home ? U.gid : 0);
    if (e.st.isSymbolicLink()) continue;
    const keep = DIRS[e.rel];
    if (keep !== undefined) await chmod(e.path, keep);
    else if (e.st.mode & 0o022) await chmod(e.path, e.st.mode & 0o7755);
  }
}
