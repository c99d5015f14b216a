// Real builds of the guest image into a temp dir. The .deb/kernel cache is
// shared across runs (BHATTI_TEST_CACHE or /var/cache/bhatti-test) so only the
// first run downloads anything. Needs root, apt, dpkg-deb, mke2fs, e2fsck, chroot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildImage, loadImage } from "./build.js";
import { acquireLock } from "./lock.js";
import { walk } from "./tree.js";

const cacheDir = process.env.BHATTI_TEST_CACHE ?? "/var/cache/bhatti-test";
const work = await mkdtemp(join(tmpdir(), "bhatti-image-test-"));
const imagesDir = join(work, "images");
const loharJs = join(work, "lohar.js");
// A stand-in for dist/lohar.js that reports how it was started.
const PLACEHOLDER = `const fs = require("fs");
const mounts = fs.readFileSync("/proc/self/mounts", "utf8").trim().split("\\n").map((l) => l.split(" ")).map((f) => [f[1], f[2], f[3]]);
console.log(JSON.stringify({ v: 1, argv: process.argv.slice(2), env: process.env, tmpMode: fs.statSync("/tmp").mode & 0o7777, init: fs.readFileSync("/proc/1/cmdline", "utf8").split("\\0").filter(Boolean), mounts }));
`;
await writeFile(loharJs, PLACEHOLDER);
const lines: string[] = [];
const log = (l: string): void => void lines.push(l);

function sh(cmd: string, args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { env: {}, encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const chroot = (root: string, ...args: string[]) => sh("/usr/sbin/chroot", [root, ...args]);

test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

test("cold build makes a complete rootfs and rootfs.ext4", async () => {
  // a crashed earlier build's leftovers must not survive
  await mkdir(join(imagesDir, "minimal.tmp-999999", "rootfs"), { recursive: true });
  const t0 = Date.now();
  const info = await buildImage({ imagesDir, cacheDir, loharJs, vm: false, log });
  const ms = Date.now() - t0;
  assert.equal(info.rebuilt, true);
  assert.equal(info.rootfs, join(imagesDir, "minimal", "rootfs"));
  assert.ok(info.rootfsExt4);
  assert.equal(info.kernel, undefined);
  assert.deepEqual((await readdir(imagesDir)).filter((n) => !n.startsWith(".")), ["minimal"]);
  const ext4Size = (await stat(info.rootfsExt4)).size;
  const m = JSON.parse(await readFile(join(info.dir, "manifest.json"), "utf8"));
  assert.equal(m.inputsHash, info.inputsHash);
  console.log(`# cold build (debs cached): ${ms} ms; rootfs ${(m.rootfs.bytes / 1048576).toFixed(1)} MiB in ${m.rootfs.files} entries; rootfs.ext4 ${(ext4Size / 1048576).toFixed(0)} MiB`);
});

test("busybox applets, tini and the init script are in place", async () => {
  const root = join(imagesDir, "minimal", "rootfs");
  for (const p of ["bin/sh", "bin/ls", "bin/mount", "bin/grep", "usr/bin/env", "sbin/ip"]) {
    const st = await lstat(join(root, p));
    assert.ok(st.isSymbolicLink(), `${p} is an applet link`);
  }
  const r = chroot(root, "/bin/sh", "-c", "echo hi | /usr/bin/tr a-z A-Z && /usr/bin/tini --version");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^HI\ntini version 0\.19/);
  const init = chroot(root, "/bin/sh", "-n", "/sbin/bhatti-init");
  assert.equal(init.code, 0, init.err);
  const text = await readFile(join(root, "sbin/bhatti-init"), "utf8");
  assert.match(text, /hidepid=2/);
  assert.match(text, /exec env -i \/usr\/bin\/tini -s -- \/opt\/bhatti\/node \/opt\/bhatti\/lohar\.js --transport virtio --vm/);
  assert.equal(await readFile(join(root, "opt/bhatti/lohar.js"), "utf8"), PLACEHOLDER);
});

test("bhatti-init mounts the kernel filesystems and starts lohar under tini with an empty environment", () => {
  const root = join(imagesDir, "minimal", "rootfs");
  // Fresh mount/pid/net namespaces stand in for the vm after switch_root; a
  // tmpfs on /dev keeps the host's devtmpfs out of it (and takes the "already mounted" path).
  const r = sh("/usr/bin/unshare", ["--mount", "--pid", "--net", "--fork", "--propagation", "private", "/bin/sh", "-c", 'mount -t tmpfs -o mode=0755 tmpfs "$0/dev" && exec /usr/sbin/chroot "$0" /sbin/bhatti-init', root]);
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out.trim().split("\n").pop()!);
  assert.deepEqual(got.argv, ["--transport", "virtio", "--vm"]);
  assert.deepEqual(got.env, {});
  assert.deepEqual(got.init, ["/usr/bin/tini", "-s", "--", "/opt/bhatti/node", "/opt/bhatti/lohar.js", "--transport", "virtio", "--vm"]);
  const at = (p: string) => got.mounts.find((m: string[]) => m[0] === p);
  assert.match(at("/proc")?.[2] ?? "", /hidepid=(2|invisible)/);
  for (const [p, type] of [["/sys", "sysfs"], ["/dev/pts", "devpts"], ["/dev/shm", "tmpfs"], ["/run", "tmpfs"], ["/tmp", "tmpfs"]]) assert.equal(at(p)?.[1], type, p);
  // tmpfs sizes are capped (a share of the guest's RAM; here of the host's, as the kernel computes it).
  for (const p of ["/dev/shm", "/run", "/tmp"]) assert.match(at(p)?.[2] ?? "", /size=\d+k/, p);
  assert.equal(got.tmpMode, 0o1777);
});

test("node runs inside the rootfs with an empty environment, as root and as lohar", () => {
  const root = join(imagesDir, "minimal", "rootfs");
  const r = chroot(root, "/opt/bhatti/node", "-e", "console.log(process.version, Object.keys(process.env).length, require('os').userInfo().username)");
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), `${process.version} 0 root`);
  const u = sh("/usr/sbin/chroot", ["--userspec=1000:1000", root, "/opt/bhatti/node", "-e", "const o=require('os').userInfo(); console.log(o.username, o.homedir, o.uid)"]);
  assert.equal(u.code, 0, u.err);
  assert.equal(u.out.trim(), "lohar /home/lohar 1000");
});

test("users, ownership and permissions", async () => {
  const root = join(imagesDir, "minimal", "rootfs");
  const passwd = await readFile(join(root, "etc/passwd"), "utf8");
  assert.match(passwd, /^root:x:0:0:/m);
  assert.match(passwd, /^lohar:x:1000:1000:[^:]*:\/home\/lohar:\/bin\/sh$/m);
  assert.match(passwd, /^nobody:x:65534:65534:/m);
  assert.match(await readFile(join(root, "etc/group"), "utf8"), /^lohar:x:1000:/m);
  const home = await stat(join(root, "home/lohar"));
  assert.deepEqual([home.uid, home.gid, home.mode & 0o7777], [1000, 1000, 0o755]);
  assert.equal((await stat(join(root, "tmp"))).mode & 0o7777, 0o1777);
  for (const d of ["proc", "sys", "dev", "run", "mnt", "root", "var/tmp", "etc/ssl/certs"]) assert.ok((await stat(join(root, d))).isDirectory(), d);
  const bad: string[] = [];
  for await (const e of walk(root)) {
    if (e.st.isSymbolicLink()) continue;
    if (e.rel !== "/home/lohar" && (e.st.uid !== 0 || e.st.gid !== 0)) bad.push(`${e.rel} owned ${e.st.uid}:${e.st.gid}`);
    if (e.st.mode & 0o002 && e.rel !== "/tmp" && e.rel !== "/var/tmp") bad.push(`${e.rel} world-writable`);
  }
  assert.deepEqual(bad, []);
});

test("rootfs.ext4 is a clean ext4 with the same tree", () => {
  const img = join(imagesDir, "minimal", "rootfs.ext4");
  const fsck = sh("/usr/sbin/e2fsck", ["-fn", img]);
  assert.equal(fsck.code, 0, fsck.out + fsck.err);
  const home = sh("/usr/sbin/debugfs", ["-R", "stat /home/lohar", img]);
  assert.match(home.out, /User:\s+1000\s+Group:\s+1000/);
  const node = sh("/usr/sbin/debugfs", ["-R", "stat /opt/bhatti/node", img]);
  assert.match(node.out, /User:\s+0\s+Group:\s+0/);
  const label = sh("/usr/sbin/dumpe2fs", ["-h", img]);
  assert.match(label.out, /Filesystem volume name:\s+bhatti-root/);
});

test("a second build with the same inputs is skipped", async () => {
  const before = await loadImage(imagesDir, "minimal");
  assert.ok(before);
  const info = await buildImage({ imagesDir, cacheDir, loharJs, vm: false, log });
  assert.equal(info.rebuilt, false);
  assert.equal(info.builtAt, before.builtAt);
  assert.equal(info.inputsHash, before.inputsHash);
});

test("changing lohar.js rebuilds; force rebuilds; a held lock waits or times out", async () => {
  const before = (await loadImage(imagesDir, "minimal"))!;
  await writeFile(loharJs, PLACEHOLDER.replace("v: 1", "v: 2"));
  const info = await buildImage({ imagesDir, cacheDir, loharJs, vm: false, log });
  assert.equal(info.rebuilt, true);
  assert.notEqual(info.inputsHash, before.inputsHash);
  assert.match(await readFile(join(info.rootfs, "opt/bhatti/lohar.js"), "utf8"), /v: 2/);
  assert.deepEqual((await readdir(imagesDir)).filter((n) => !n.startsWith(".")), ["minimal"]);

  const forced = await buildImage({ imagesDir, cacheDir, loharJs, vm: false, force: true, log });
  assert.equal(forced.rebuilt, true);
  assert.equal(forced.inputsHash, info.inputsHash);

  // another builder holding the lock: fail after lockTimeoutMs, or wait for it
  const lock = await acquireLock(join(imagesDir, ".minimal.lock"));
  let released = false;
  try {
    await assert.rejects(buildImage({ imagesDir, cacheDir, loharJs, vm: false, lockTimeoutMs: 300 }), /another image build/);
    const waiting = buildImage({ imagesDir, cacheDir, loharJs, vm: false, log }).then((i) => ({ i, released }));
    await new Promise((r) => setTimeout(r, 500));
    released = true;
    await lock.release();
    const after = await waiting;
    assert.equal(after.released, true, "the build went ahead while the lock was held");
    assert.equal(after.i.rebuilt, false);
  } finally {
    await lock.release();
  }
  assert.equal(await loadImage(imagesDir, "nope"), null);
  await assert.rejects(loadImage(imagesDir, "../etc"), /bad image name/);
});

test("a crash between the swap's two renames is repaired: the old image comes back", async () => {
  const before = (await loadImage(imagesDir, "minimal"))!;
  await rename(join(imagesDir, "minimal"), join(imagesDir, "minimal.old-999999"));
  assert.equal(await loadImage(imagesDir, "minimal"), null);
  const info = await buildImage({ imagesDir, cacheDir, loharJs, vm: false, log });
  assert.equal(info.rebuilt, false);
  assert.equal(info.builtAt, before.builtAt);
  assert.deepEqual((await readdir(imagesDir)).filter((n) => !n.startsWith(".")), ["minimal"]);
});

test("a replaced image is kept while an overlay still reads it, and removed once nothing uses it", async () => {
  const ovl = join(work, "ovl");
  for (const d of ["upper", "work", "merged"]) await mkdir(join(ovl, d), { recursive: true });
  const mounted = sh("/bin/mount", ["-t", "overlay", "overlay", "-o",
    `lowerdir=${join(imagesDir, "minimal", "rootfs")},upperdir=${join(ovl, "upper")},workdir=${join(ovl, "work")}`, join(ovl, "merged")]);
  assert.equal(mounted.code, 0, mounted.err);
  try {
    await writeFile(loharJs, PLACEHOLDER.replace("v: 1", "v: 3"));
    const info = await buildImage({ imagesDir, cacheDir, loharJs, vm: false, log });
    assert.equal(info.rebuilt, true);
    const olds = (await readdir(imagesDir)).filter((n) => n.startsWith("minimal.old-"));
    assert.equal(olds.length, 1, "the previous image is kept aside");
    // The "sandbox" still reads files it had not looked up before the rebuild.
    assert.match(await readFile(join(ovl, "merged", "etc", "group"), "utf8"), /lohar:x:1000/);
    assert.ok((await stat(join(ovl, "merged", "opt", "bhatti", "node"))).size > 1 << 20);
  } finally {
    assert.equal(sh("/bin/umount", [join(ovl, "merged")]).code, 0);
  }
  const again = await buildImage({ imagesDir, cacheDir, loharJs, vm: false, log });
  assert.equal(again.rebuilt, false);
  assert.deepEqual((await readdir(imagesDir)).filter((n) => n.startsWith("minimal.")), [], "unused, it is gone at the next build");
});

test("vm build adds vmlinux and initramfs.cpio", async () => {
  const t0 = Date.now();
  const info = await buildImage({ imagesDir, cacheDir, loharJs, log });
  assert.equal(info.rebuilt, true); // vm is an input: the vm: false image does not count
  assert.ok(info.kernel && info.initramfs);
  const vmlinux = await readFile(info.kernel);
  assert.equal(vmlinux.subarray(0, 4).toString("latin1"), "\x7fELF");
  assert.ok((await stat(info.initramfs)).size > 100_000);
  console.log(`# vm build (kernel .deb cached after first run): ${Date.now() - t0} ms; vmlinux ${(vmlinux.length / 1048576).toFixed(1)} MiB`);
  const again = await buildImage({ imagesDir, cacheDir, loharJs });
  assert.equal(again.rebuilt, false);
  assert.equal(again.kernel, info.kernel);
});

test("base is an alias of minimal; a leftover base/ image is removed at the next build; unknown recipes are refused", async () => {
  assert.equal((await loadImage(imagesDir, "base"))?.name, "minimal");
  await mkdir(join(imagesDir, "base", "rootfs"), { recursive: true });
  const info = await buildImage({ imagesDir, cacheDir, loharJs, name: "base", log });
  assert.equal(info.name, "minimal");
  assert.equal(info.rebuilt, false);
  assert.deepEqual((await readdir(imagesDir)).filter((n) => !n.startsWith(".")), ["minimal"]);
  await assert.rejects(buildImage({ imagesDir, cacheDir, loharJs, name: "ubuntu", log }), /no recipe for an image called ubuntu: it builds minimal, debian/);
});
