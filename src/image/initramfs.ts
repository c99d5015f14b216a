// The vm engine's initramfs: an uncompressed newc cpio (the kernel's inflate
// costs ~150 ms per boot under TCG; QEMU loads a few MiB more for free) holding a static busybox, the
// virtio/overlay kernel modules the guest needs before it can see its root
// disk, and /init. /init mounts the read-only root image (/dev/vda) under a
// tmpfs-backed overlay and switch_roots into /sbin/bhatti-init.
//
// Kernel command-line knobs understood by /init:
//   bhatti.probe  print PROBE_MARKER on the console and power off (accelerator
//                 probe and the bare-boot benchmark)
//   root=DEV      root block device (default /dev/vda)
//   bhatti.disk=MB  size limit of the writable layer (the tmpfs under the overlay)
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { spawnSync } from "node:child_process";
import { tiedToParent } from "../util/run.js";

export const PROBE_MARKER = "BHATTI-PROBE-OK";
export const INIT_MARKER = "BHATTI-INITRAMFS";
export const ROOT_MARKER = "BHATTI-SWITCH-ROOT";

/** Modules /init loads, in this order after their dependencies. */
export const GUEST_MODULES = ["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "virtio_console", "virtio_net", "overlay"];

export const INIT_SCRIPT = `#!/bin/busybox sh
B=/bin/busybox
say() { echo "$*" > /dev/console; }
die() { say "bhatti-initramfs: $*"; $B sleep 1; $B poweroff -f; }
$B mount -t devtmpfs -o nosuid,mode=0755 dev /dev
$B mount -t proc -o nosuid,nodev,noexec proc /proc
$B mount -t sysfs -o nosuid,nodev,noexec sys /sys
say ${INIT_MARKER}
case " $($B cat /proc/cmdline) " in *" bhatti.probe "*) say ${PROBE_MARKER}; $B poweroff -f;; esac
for m in $($B cat /lib/modules/order); do $B insmod /lib/modules/$m.ko || die "insmod $m failed"; done
# Sandbox users get no user namespaces (same policy as the ns engine's seccomp filter).
echo 0 > /proc/sys/user/max_user_namespaces || die "cannot disable user namespaces"
root=/dev/vda
disk=
for a in $($B cat /proc/cmdline); do case "$a" in root=*) root="\${a#root=}";; bhatti.disk=*) disk="\${a#bhatti.disk=}";; esac; done
case "$disk" in *[!0-9]*) disk=;; esac
i=0
while [ ! -b "$root" ]; do i=$((i+1)); [ $i -gt 500 ] && die "no root device $root"; $B usleep 10000; done
# Large reads: under TCG every block request costs emulated guest work, and the
# first start of node pulls tens of MiB off this disk.
echo 16384 > /sys/block/\${root#/dev/}/queue/read_ahead_kb || true
$B mount -t ext4 -o ro "$root" /mnt/lower || die "cannot mount $root"
$B mount -t tmpfs -o mode=0755\${disk:+,size=\${disk}m} rw /mnt/rw || die "cannot mount tmpfs"
$B mkdir -p /mnt/rw/upper /mnt/rw/work
$B mount -t overlay root -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /newroot || die "cannot mount overlay"
for d in dev proc sys; do $B mkdir -p /newroot/$d; $B mount --move /$d /newroot/$d || die "cannot move /$d"; done
[ -x /newroot/sbin/bhatti-init ] || die "no /sbin/bhatti-init in the root image"
echo ${ROOT_MARKER} > /newroot/dev/console
exec $B env -i $B switch_root /newroot /sbin/bhatti-init
`;

interface Entry {
  name: string;
  mode: number; // full st_mode
  data?: Buffer;
  rdev?: [number, number];
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

/** Serialize entries as a newc ("070701") cpio archive, all owned by root, mtime 0. */
export function newcCpio(entries: Entry[]): Buffer {
  const out: Buffer[] = [];
  let ino = 1;
  const push = (e: Entry): void => {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(e.name + "\0", "utf8");
    const [rmaj, rmin] = e.rdev ?? [0, 0];
    const fields = [ino++, e.mode, 0, 0, (e.mode & 0o170000) === S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rmaj, rmin, name.length, 0];
    const header = Buffer.from("070701" + fields.map(hex8).join(""), "ascii");
    out.push(header, name, pad4(header.length + name.length), data, pad4(data.length));
  };
  for (const e of entries) push(e);
  push({ name: "TRAILER!!!", mode: 0 });
  return Buffer.concat(out);
}

/** Parse modules.dep ("path: dep dep ...") into name -> {path, deps}. */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const mods = new Map<string, { path: string; deps: string[] }>();
  const nameOf = (p: string): string => p.split("/").pop()!.replace(/\.ko(\.(xz|zst|gz))?$/, "").replace(/-/g, "_");
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const path = line.slice(0, i).trim();
    const deps = line.slice(i + 1).trim().split(/\s+/).filter(Boolean).map(nameOf);
    mods.set(nameOf(path), { path, deps });
  }
  return mods;
}

/** Wanted modules plus their dependencies, each after everything it depends on. */
export function moduleLoadOrder(wanted: string[], dep: Map<string, { path: string; deps: string[] }>): string[] {
  const order: string[] = [];
  const visit = (name: string, stack: string[]): void => {
    if (order.includes(name)) return;
    if (stack.includes(name)) throw new Error(`module dependency cycle: ${[...stack, name].join(" -> ")}`);
    const m = dep.get(name);
    if (!m) throw new Error(`module ${name} not found in modules.dep (built in? then drop it from the list)`);
    for (const d of m.deps) visit(d, [...stack, name]);
    order.push(name);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

export interface InitramfsInput {
  busybox: string; // path to a static busybox binary
  moduleRoot: string; // lib/modules/<version> of the extracted kernel package, with modules.dep
  modules?: string[]; // default GUEST_MODULES
}

/** busybox insmod reads plain .ko files only: decompress .ko.xz/.ko.zst/.ko.gz at build time. */
function plainModule(path: string, data: Buffer): Buffer {
  if (path.endsWith(".ko")) return data;
  if (path.endsWith(".ko.gz")) return gunzipSync(data);
  const cmd = path.endsWith(".ko.xz") ? "xz" : path.endsWith(".ko.zst") ? "zstd" : null;
  if (!cmd) throw new Error(`module ${path}: unknown compression`);
  const r = spawnSync(...tiedToParent(cmd, ["-dcq"]), { input: data, maxBuffer: 64 << 20, env: {} });
  if (r.status !== 0) throw new Error(`module ${path}: ${cmd} -d failed: ${r.stderr?.toString().trim() ?? r.error}`);
  return r.stdout;
}

/** Build the initramfs image (uncompressed newc cpio) in memory. */
export async function buildInitramfs(input: InitramfsInput): Promise<Buffer> {
  const dep = parseModulesDep(await readFile(join(input.moduleRoot, "modules.dep"), "utf8"));
  const order = moduleLoadOrder(input.modules ?? GUEST_MODULES, dep);
  const entries: Entry[] = [];
  for (const d of ["bin", "dev", "proc", "sys", "mnt", "mnt/lower", "mnt/rw", "newroot", "lib", "lib/modules"]) {
    entries.push({ name: d, mode: S_IFDIR | 0o755 });
  }
  entries.push({ name: "dev/console", mode: S_IFCHR | 0o600, rdev: [5, 1] });
  entries.push({ name: "dev/null", mode: S_IFCHR | 0o666, rdev: [1, 3] });
  entries.push({ name: "bin/busybox", mode: S_IFREG | 0o755, data: await readFile(input.busybox) });
  entries.push({ name: "bin/sh", mode: S_IFLNK | 0o777, data: Buffer.from("busybox") });
  for (const name of order) {
    const path = dep.get(name)!.path;
    entries.push({ name: `lib/modules/${name}.ko`, mode: S_IFREG | 0o644, data: plainModule(path, await readFile(join(input.moduleRoot, path))) });
  }
  entries.push({ name: "lib/modules/order", mode: S_IFREG | 0o644, data: Buffer.from(order.join("\n") + "\n") });
  entries.push({ name: "init", mode: S_IFREG | 0o755, data: Buffer.from(INIT_SCRIPT) });
  return newcCpio(entries);
}
