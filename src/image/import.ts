// `bhatti image import NAME --tar FILE`: an image from a root-filesystem
// tarball (e.g. `docker export` output, plain or gzip/xz/zstd-compressed).
// The archive is hostile: it goes through TarGuard into `tar -x` inside a
// fresh directory of the images dir, and everything bhatti then adds (lohar,
// its Node, tini, a static busybox for the vm init, user 1000, /etc files) is
// written through inroot.ts, so no link of the tree can lead a write — or a
// read — outside it. Any failure removes the half-built directory.
import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream } from "node:fs";
import { chmod, lchown, lstat, mkdir, open, readFile, realpath, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { TOOL_ENV, tiedToParent } from "../util/run.js";
import { GUEST } from "../protocol/agent.js";
import { ensureDebs, resolveDebs } from "./apt.js";
import { loadImage, readManifest, recover, swapIn } from "./build.js";
import { adaptInit, installedPackages, RESOLV_CONF } from "./debian.js";
import { sharedLibs } from "./elf.js";
import { makeExt4 } from "./ext4.js";
import { HashCache, sha256Hex } from "./hashes.js";
import { copyInRoot, mkdirInRoot, resolveInRoot, writeInRoot } from "./inroot.js";
import { acquireLock } from "./lock.js";
import { ALIASES, checkImageName, isRecipe } from "./names.js";
import { defaultLoharJs } from "./paths.js";
import { run } from "./run.js";
import { INIT_PATH, LOHAR_PATH, NODE_PATH, TINI_PATH } from "./skeleton.js";
import { DEFAULT_LIMITS, TarError, TarGuard, type GuardLimits } from "./tar-guard.js";
import { treeSize, walk } from "./tree.js";
import type { ImageInfo, Manifest, ManifestFile } from "./types.js";
import { buildVmArtifacts, KERNEL_META_PACKAGE, kernelInputs } from "./vm-artifacts.js";

/** Bump when what import adds to a tree changes. */
export const IMPORT_BUILDER_VERSION = "1";
const U = GUEST.user;
const TOOLS_BIN = "/opt/bhatti/bin"; // static busybox and the applets the vm init calls
const INIT_APPLETS = ["grep", "mount", "mkdir", "ln", "ip", "env"];

export interface ImportOptions {
  imagesDir: string;
  name: string;
  tar: string;
  vm?: boolean;
  force?: boolean;
  log?: (line: string) => void;
  cacheDir?: string;
  loharJs?: string;
  nodeBinary?: string;
  lockTimeoutMs?: number;
  limits?: GuardLimits;
}

type Decompressor = "gzip" | "xz" | "zstd" | null;

async function sniff(path: string): Promise<Decompressor> {
  const fh = await open(path, "r");
  try {
    const b = Buffer.alloc(6);
    await fh.read(b, 0, 6, 0);
    if (b[0] === 0x1f && b[1] === 0x8b) return "gzip";
    if (b.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return "xz";
    if (b.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return "zstd";
    return null;
  } finally {
    await fh.close();
  }
}

function exited(p: ChildProcess, what: string, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    p.on("error", (e) => reject(new Error(`${what}: ${e.message}`)));
    p.on("close", (code, signal) => (code === 0 ? resolve() : reject(new Error(`${what} failed (${signal ?? `exit ${code}`})${stderr() ? `: ${stderr()}` : ""}`))));
  });
}

function tail(p: ChildProcess): () => string {
  let err = "";
  p.stderr?.on("data", (b: Buffer) => { err = (err + b.toString("utf8")).slice(-2000); });
  return () => err.trim().split("\n").slice(-3).join("; ");
}

/** Extracts the archive through the guard into `rootfs` (which exists and is empty). */
export async function extractGuarded(tarFile: string, rootfs: string, limits: GuardLimits, log: (l: string) => void): Promise<TarGuard> {
  const kind = await sniff(tarFile);
  const guard = new TarGuard(limits);
  // Both tools are tied to this process like every host tool (src/util/run.ts): a killed import leaves neither behind.
  const tar = spawn(...tiedToParent("tar", ["-x", "-f", "-", "-C", rootfs, "--numeric-owner", "--same-owner", "--same-permissions", "--no-acls", "--no-selinux", "--no-xattrs", "--delay-directory-restore"]), {
    env: TOOL_ENV, stdio: ["pipe", "ignore", "pipe"],
  });
  const tarDone = exited(tar, "tar -x", tail(tar));
  let dec: ChildProcess | null = null;
  const steps: Promise<unknown>[] = [];
  try {
    if (kind === "xz" || kind === "zstd") {
      dec = spawn(...tiedToParent(kind, ["-dc"]), { env: TOOL_ENV, stdio: ["pipe", "pipe", "pipe"] });
      const decDone = exited(dec, `${kind} -d (is the archive complete?)`, tail(dec));
      steps.push(pipeline(createReadStream(tarFile), dec.stdin!).catch(() => undefined), decDone);
      steps.push(pipeline(dec.stdout!, guard, tar.stdin!));
    } else {
      steps.push(kind === "gzip" ? pipeline(createReadStream(tarFile), createGunzip(), guard, tar.stdin!) : pipeline(createReadStream(tarFile), guard, tar.stdin!));
    }
    steps.push(tarDone);
    const errors = (await Promise.allSettled(steps)).flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
    // The guard's verdict first: a refused member makes tar's broken pipe beside the point.
    const firstErr = errors.find((e) => e instanceof TarError) ?? errors[0];
    if (firstErr) throw new Error(kind === "gzip" && /incorrect header check|unexpected end of file/.test(firstErr.message) ? `not a valid gzip stream (${firstErr.message})` : firstErr.message);
  } finally {
    for (const p of [tar, dec]) if (p && p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  }
  if (guard.stats.dropped.length) log(`dropped ${guard.stats.dropped.length} members: ${guard.stats.dropped.slice(0, 5).map((d) => `${d.path} (${d.type})`).join(", ")}${guard.stats.dropped.length > 5 ? ", …" : ""}`);
  log(`extracted ${guard.stats.members} members, ${(guard.stats.bytes / 1048576).toFixed(0)} MiB`);
  return guard;
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(() => true, () => false);
}

/** A static busybox and tini from Debian's packages (the .debs cached like minimal's), unpacked under the cache. */
async function staticTools(cacheDir: string, log: (l: string) => void): Promise<{ busybox: string; tini: string }> {
  const debs = await ensureDebs(["busybox-static", "tini"], cacheDir, log);
  const out: Record<string, string> = {};
  for (const d of debs) {
    const dir = join(cacheDir, "unpacked", `${d.info.package}_${d.info.version.replace(/[^A-Za-z0-9.+~-]/g, "_")}`);
    if (!(await exists(join(dir, ".done")))) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await run("dpkg-deb", ["-x", d.path, dir]);
      await writeFile(join(dir, ".done"), "");
    }
    out[d.info.package] = dir;
  }
  return { busybox: join(out["busybox-static"], "bin/busybox"), tini: join(out.tini, "usr/bin/tini-static") };
}

/** Adds what bhatti needs to an extracted tree; refuses a tree Node cannot run in. */
async function adopt(rootfs: string, nodeBinary: string, loharJs: string, cacheDir: string, log: (l: string) => void): Promise<void> {
  if (!(await exists(await resolveInRoot(rootfs, "/bin/sh")))) throw new Error("the root filesystem has no /bin/sh: is it a Linux root filesystem?");
  const missing: string[] = [];
  for (const lib of await sharedLibs(nodeBinary)) if (!(await exists(await resolveInRoot(rootfs, lib)))) missing.push(lib);
  if (missing.some((l) => /\/libc\.so\.6$/.test(l))) throw new Error("the root filesystem has no glibc (libc.so.6): bhatti's agent runs on Node built for glibc (musl-based trees such as Alpine are not supported)");
  if (missing.length) throw new Error(`the root filesystem lacks libraries bhatti's agent (Node) needs: ${missing.join(", ")}`);

  // bhatti's own directory: whatever the tree had there goes.
  await rm(await resolveInRoot(rootfs, "/opt/bhatti", false), { recursive: true, force: true });
  await mkdirInRoot(rootfs, "/opt/bhatti");
  await copyInRoot(rootfs, NODE_PATH, nodeBinary, 0o755);
  await copyInRoot(rootfs, LOHAR_PATH, loharJs, 0o644);
  const tools = await staticTools(cacheDir, log);
  const bin = await mkdirInRoot(rootfs, TOOLS_BIN);
  await copyInRoot(rootfs, `${TOOLS_BIN}/busybox`, tools.busybox, 0o755);
  for (const a of INIT_APPLETS) await symlink(`${TOOLS_BIN}/busybox`, join(bin, a));
  if (!(await exists(await resolveInRoot(rootfs, TINI_PATH)))) await copyInRoot(rootfs, TINI_PATH, tools.tini, 0o755);
  await writeInRoot(rootfs, INIT_PATH, adaptInit(`${TOOLS_BIN}/busybox`, TOOLS_BIN), 0o755);

  for (const [d, mode] of [["/proc", 0o555], ["/sys", 0o555], ["/dev", 0o755], ["/run", 0o755], ["/tmp", 0o1777], ["/home", 0o755]] as const) {
    const host = await mkdirInRoot(rootfs, d);
    await chmod(host, mode);
  }
  const home = await mkdirInRoot(rootfs, U.home);
  await lchown(home, U.uid, U.gid);
  await chmod(home, 0o755);

  // passwd/group: the tree's entries, minus any that claim uid/gid 1000 or the name, plus ours.
  const shell = (await exists(await resolveInRoot(rootfs, "/bin/bash"))) ? "/bin/bash" : "/bin/sh";
  const read = async (p: string): Promise<string[]> => {
    const host = await resolveInRoot(rootfs, p);
    const st = await lstat(host).catch(() => null);
    if (!st?.isFile() || st.size > 1 << 20) return [];
    return (await readFile(host, "utf8")).split("\n").filter((l) => l.trim() !== "");
  };
  const passwd = (await read("/etc/passwd")).filter((l) => { const f = l.split(":"); return f[0] !== U.name && f[2] !== String(U.uid); });
  if (!passwd.some((l) => l.startsWith("root:"))) passwd.unshift("root:x:0:0:root:/root:/bin/sh");
  passwd.push(`${U.name}:x:${U.uid}:${U.gid}:${U.name}:${U.home}:${shell}`);
  const group = (await read("/etc/group")).filter((l) => { const f = l.split(":"); return f[0] !== U.name && f[2] !== String(U.gid); });
  if (!group.some((l) => l.startsWith("root:"))) group.unshift("root:x:0:");
  group.push(`${U.name}:x:${U.gid}:`);
  await writeInRoot(rootfs, "/etc/passwd", passwd.join("\n") + "\n");
  await writeInRoot(rootfs, "/etc/group", group.join("\n") + "\n");
  await writeInRoot(rootfs, "/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  await writeInRoot(rootfs, "/etc/hostname", "bhatti\n");
  await writeInRoot(rootfs, "/etc/resolv.conf", RESOLV_CONF);

  // No setuid/setgid programs (commands run with no_new_privs anyway).
  let stripped = 0;
  for await (const e of walk(rootfs)) {
    if (e.st.isFile() && e.st.mode & 0o6000) {
      await chmod(e.path, e.st.mode & 0o1777);
      stripped++;
    }
  }
  if (stripped) log(`cleared setuid/setgid bits on ${stripped} files`);
}

/** The tree's dpkg package list, if it has one: read from a copy of its status file (a link in the tree is never followed out). */
async function packagesOf(rootfs: string, tmp: string): Promise<Record<string, string>> {
  const status = join(await resolveInRoot(rootfs, "/var/lib/dpkg"), "status");
  const st = await lstat(status).catch(() => null);
  if (!st?.isFile() || st.size > 64 << 20) return {};
  const admin = join(tmp, ".dpkg");
  await mkdir(join(admin, "updates"), { recursive: true });
  await writeFile(join(admin, "status"), await readFile(status));
  try {
    return await installedPackages(rootfs, admin);
  } catch {
    return {};
  } finally {
    await rm(admin, { recursive: true, force: true });
  }
}

export async function importImage(opts: ImportOptions): Promise<ImageInfo> {
  const started = Date.now();
  const { name, imagesDir } = opts;
  checkImageName(name);
  if (isRecipe(name) || Object.hasOwn(ALIASES, name)) throw new Error(`${name} is one of bhatti's own images; import under another name`);
  const log = opts.log ?? (() => undefined);
  const vm = opts.vm ?? true;
  const cacheDir = opts.cacheDir ?? join(imagesDir, ".cache");
  const nodeBinary = await realpath(opts.nodeBinary ?? process.execPath);
  const loharJs = opts.loharJs ?? defaultLoharJs();
  if (process.getuid?.() !== 0) throw new Error("image import must run as root (the image keeps the archive's owners)");
  const st = await stat(opts.tar).catch(() => null);
  if (!st?.isFile()) throw new Error(`${opts.tar} is not a file`);

  await mkdir(imagesDir, { recursive: true, mode: 0o755 });
  await mkdir(cacheDir, { recursive: true, mode: 0o755 });
  const lock = await acquireLock(join(imagesDir, `.${name}.lock`), { timeoutMs: opts.lockTimeoutMs ?? 15 * 60_000, onWait: (pid) => log(`waiting for the image build in process ${pid}`) });
  try {
    await recover(imagesDir, name);
    const hashes = await HashCache.open(join(cacheDir, "hashes.json"));
    const kernelDeb = vm ? (await resolveDebs([KERNEL_META_PACKAGE], join(cacheDir, "import"), log))[KERNEL_META_PACKAGE] : null;
    const inputs = {
      builder: IMPORT_BUILDER_VERSION,
      recipe: "import",
      arch: process.arch,
      vm,
      tar: { sha256: await hashes.sha256(opts.tar), bytes: st.size },
      node: { sha256: await hashes.sha256(nodeBinary) },
      lohar: { sha256: await hashes.sha256(loharJs) },
      kernel: kernelDeb ? await kernelInputs(kernelDeb) : null,
    };
    await hashes.save();
    const hash = sha256Hex(JSON.stringify(inputs));
    const existing = await loadImage(imagesDir, name);
    if (existing && existing.inputsHash === hash && !opts.force) {
      log(`image ${name} is up to date (${hash.slice(0, 12)})`);
      return existing;
    }
    if (existing && (await readManifest(existing.dir))?.inputs?.recipe !== "import") throw new Error(`image ${name} exists and was not imported; delete it first`);

    const tmp = join(imagesDir, `${name}.tmp-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    let manifest: Manifest;
    try {
      await mkdir(tmp, { mode: 0o755 });
      const rootfs = join(tmp, "rootfs");
      await mkdir(rootfs, { mode: 0o755 });
      log(`extracting ${opts.tar}`);
      await extractGuarded(opts.tar, rootfs, opts.limits ?? DEFAULT_LIMITS, log);
      await adopt(rootfs, nodeBinary, loharJs, cacheDir, log);
      const packages = await packagesOf(rootfs, tmp);
      const tree = await treeSize(rootfs);
      log(vm ? "packing rootfs.ext4 and building the vm kernel artifacts" : "packing rootfs.ext4");
      // The kernel artifacts are built beside, never from the tree: its bin/busybox is not to be trusted.
      const kdir = join(tmp, ".kernel");
      const done = await Promise.allSettled([makeExt4(rootfs, join(tmp, "rootfs.ext4")), vm ? buildVmArtifacts(kdir, cacheDir, log) : Promise.resolve()]);
      for (const r of done) if (r.status === "rejected") throw r.reason;
      if (vm) {
        for (const f of ["vmlinux", "initramfs.cpio"]) await rename(join(kdir, f), join(tmp, f));
        await rm(kdir, { recursive: true, force: true });
      }
      const files: ManifestFile[] = [];
      for (const p of vm ? ["rootfs.ext4", "vmlinux", "initramfs.cpio"] : ["rootfs.ext4"]) files.push({ path: p, size: (await stat(join(tmp, p))).size });
      manifest = {
        name, inputsHash: hash, inputs, builtAt: new Date().toISOString(), buildMs: Date.now() - started,
        rootfs: { files: tree.files, bytes: tree.bytes }, files, ...(Object.keys(packages).length ? { packages } : {}),
      };
      await writeFile(join(tmp, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n", { mode: 0o644 });
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    const dir = await swapIn(imagesDir, name, tmp, log);
    log(`image ${name} imported in ${((Date.now() - started) / 1000).toFixed(1)} s: rootfs ${(manifest.rootfs.bytes / 1048576).toFixed(0)} MiB in ${manifest.rootfs.files} files`);
    return { ...(await loadImage(imagesDir, name))!, rebuilt: true, dir };
  } finally {
    await lock.release();
  }
}
