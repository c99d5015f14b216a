// The `debian` image: Debian 12 minbase plus a normal userland, made by
// mmdebstrap, with lohar and its own Node under /opt/bhatti, user lohar (uid
// 1000, bash) and /sbin/bhatti-init for the vm engine.
//
// Inputs hash: the host apt's candidate (version + sha256) of every package
// the image holds (the previous build's package list, plus the requested
// ones), Node, lohar, mmdebstrap's version and this recipe. The candidates
// come from the host's package lists (the cache in apt.ts makes a warm check
// take milliseconds); mmdebstrap fetches its own lists from the same mirrors.
// Downloaded .debs are kept in <cache>/debian/debs and handed back to each
// build, so a rebuild after one change downloads only what changed.
import { chmod, copyFile, lchown, mkdir, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { resolveDebs, type DebInfo } from "./apt.js";
import { copyInto, installLibs } from "./elf.js";
import { makeExt4 } from "./ext4.js";
import { sha256Hex } from "./hashes.js";
import type { Recipe, RecipeContext } from "./recipe.js";
import { run } from "./run.js";
import { INIT_PATH, INIT_SCRIPT, LOHAR_PATH, NODE_PATH, TINI_PATH } from "./skeleton.js";
import { runStreaming } from "./stream.js";
import { treeSize } from "./tree.js";
import type { Manifest, ManifestFile } from "./types.js";
import { buildVmArtifacts, KERNEL_META_PACKAGE, kernelInputs } from "./vm-artifacts.js";
import { GUEST } from "../protocol/agent.js";

/** Bump when this recipe's output changes for the same inputs. */
export const DEBIAN_BUILDER_VERSION = "2";
export const DEBIAN_SUITE = "bookworm";

/**
 * On top of minbase. util-linux and bsdutils (`script`, for lohar's ttys) are
 * there already; iproute2 for users; busybox-static runs the vm init (a static
 * binary: under TCG every dynamically linked exec at boot costs tens of ms).
 */
export const DEBIAN_PACKAGES = [
  "bash", "coreutils", "procps", "findutils", "grep", "sed", "less", "git", "curl", "ca-certificates",
  "openssh-client", "python3", "python3-venv", "python3-pip", "make", "xz-utils", "unzip", "zip", "jq", "tini",
  "util-linux", "bsdutils", "iproute2", "busybox-static",
];

/** The tools the vm init calls, as busybox applets in a directory of their own (users' PATH never sees it). */
const INIT_BIN = "/opt/bhatti/bin";
const INIT_APPLETS = ["grep", "mount", "mkdir", "ln", "ip", "env"];

/** The shared vm init, run by a static busybox (`busybox`) with `binDir` (its applet links) first on its PATH. */
export function adaptInit(busybox: string, binDir: string, script = INIT_SCRIPT): string {
  const out = script.replace(/^#!\/bin\/sh\n/, `#!${busybox} sh\n`).replace(/^export PATH=(.*)$/m, `export PATH=${binDir}:$1`);
  if (!out.startsWith(`#!${busybox} sh\n`) || !out.includes(`export PATH=${binDir}:`)) throw new Error("the vm init script has no #!/bin/sh line or PATH line to adapt");
  return out;
}

export function debianInit(script = INIT_SCRIPT): string {
  return adaptInit("/bin/busybox", INIT_BIN, script);
}

/** Left out of every package as dpkg unpacks it. */
export const DPKG_EXCLUDES = [
  "path-exclude=/usr/share/doc/*", "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
  "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias",
  "path-exclude=/usr/share/lintian/*", "path-exclude=/usr/share/linda/*",
];

const U = GUEST.user;

/** The sandbox has no network: no nameserver, so lookups fail at once instead of leaking anywhere. */
export const RESOLV_CONF = "# bhatti: sandboxes have no network; no nameserver is configured\n";
const ETC: Record<string, string> = {
  "/etc/hosts": "127.0.0.1\tlocalhost\n127.0.1.1\tbhatti\n::1\tlocalhost ip6-localhost ip6-loopback\n",
  "/etc/hostname": "bhatti\n",
  "/etc/resolv.conf": RESOLV_CONF,
};

interface DebianInputs {
  builder: string;
  recipe: "debian";
  suite: string;
  arch: string;
  vm: boolean;
  packages: string[]; // requested
  from?: "debian"; // a derived image: debian's packages plus `extra`
  extra?: string[];
  debs: Record<string, { version: string; sha256: string }>; // the host's candidates for every package in the image
  node: { sha256: string };
  lohar: { sha256: string };
  mmdebstrap: string;
  kernel: string | null;
}

async function mmdebstrapVersion(): Promise<string> {
  const r = await run("dpkg-query", ["-W", "-f", "${Version}", "mmdebstrap"]).catch(() => null);
  if (!r || !r.stdout.trim()) throw new Error("mmdebstrap is not installed (apt-get install mmdebstrap; scripts/install does it)");
  return r.stdout.trim();
}

/** Installed packages of a Debian root tree (or of dpkg's database dir `admindir`): name -> version. */
export async function installedPackages(rootfs: string, admindir = join(rootfs, "var/lib/dpkg")): Promise<Record<string, string>> {
  const { stdout } = await run("dpkg-query", [`--admindir=${admindir}`, "-W", "-f", "${Package}\\t${Version}\\t${db:Status-Abbrev}\\n"]);
  const out: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const [name, version, status] = line.split("\t");
    if (name && status?.startsWith("ii")) out[name] = version;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** A Debian package name as apt takes it: no options, patterns, versions or paths can hide in one. */
export const DEB_NAME_RE = /^[a-z0-9][a-z0-9+.-]{0,99}$/;

/** Extra packages of a derived image: each a plain Debian package name, at most 200, sorted, no duplicates. */
export function checkExtraPackages(list: string[]): string[] {
  const out = [...new Set(list)].sort();
  if (out.length > 200) throw new Error(`at most 200 extra packages (got ${out.length})`);
  for (const p of out) if (!DEB_NAME_RE.test(p)) throw new Error(`bad package name ${JSON.stringify(p.slice(0, 100))} (want ${DEB_NAME_RE.source})`);
  return out;
}

/**
 * The debian image, or (extra non-empty) an image derived from it: the same
 * recipe with more packages. Every debian-family image shares the .deb cache.
 */
export function debianRecipe(c: RecipeContext, extra: string[] = []): Recipe {
  const packages = [...new Set([...DEBIAN_PACKAGES, ...checkExtraPackages(extra)])];
  const debsDir = join(c.cacheDir, "debian", "debs");
  const resolveDir = c.name === "debian" ? join(c.cacheDir, "debian") : join(c.cacheDir, "debian", "resolve", c.name); // one apt answer cached per image

  /** Every extra package must be one Debian has (per the host's lists): a clear error before mmdebstrap runs. */
  async function checkExtrasExist(): Promise<void> {
    if (!extra.length) return;
    const names = checkExtraPackages(extra);
    const r = await run("apt-cache", ["show", "--no-all-versions", "-q", ...names], { allowFail: true });
    const found = new Set(r.stdout.split("\n").filter((l) => l.startsWith("Package: ")).map((l) => l.slice(9).trim()));
    const missing = names.filter((n) => !found.has(n));
    if (missing.length) throw new Error(`Debian has no package ${missing.join(", ")} (as far as this host's apt lists know: apt-get update refreshes them)`);
  }

  async function inputsFor(names: string[]): Promise<DebianInputs> {
    const all = [...new Set([...packages, ...names])].sort();
    const want = c.vm ? [...all, KERNEL_META_PACKAGE] : all;
    let debs: Record<string, DebInfo>;
    try {
      debs = await resolveDebs(want, resolveDir, c.log);
    } catch (e) {
      // a package the host's apt does not know: hash names only, a rebuild then follows every change of the list
      c.log(`apt on the host cannot resolve every package of the image (${(e as Error).message}); hashing names only`);
      debs = Object.fromEntries(want.map((n) => [n, { package: n, version: "?", architecture: "", sha256: "", filename: "" }]));
    }
    return {
      builder: DEBIAN_BUILDER_VERSION,
      recipe: "debian",
      suite: DEBIAN_SUITE,
      arch: process.arch,
      vm: c.vm,
      packages: [...packages].sort(),
      ...(extra.length ? { from: "debian" as const, extra: checkExtraPackages(extra) } : {}),
      debs: Object.fromEntries(all.map((n) => [n, { version: debs[n].version, sha256: debs[n].sha256 }])),
      node: { sha256: await c.hashes.sha256(c.nodeBinary) },
      lohar: { sha256: await c.hashes.sha256(c.loharJs) },
      mmdebstrap: await mmdebstrapVersion(),
      kernel: c.vm ? await kernelInputs(debs[KERNEL_META_PACKAGE]) : null,
    };
  }
  const hashOf = (i: DebianInputs): string => sha256Hex(JSON.stringify(i));

  return {
    async currentHash(existing) {
      await checkExtrasExist();
      return hashOf(await inputsFor(Object.keys(existing?.packages ?? {})));
    },

    async assemble(dir) {
      const { log } = c;
      await mkdir(dir, { mode: 0o755 });
      if (/[\s'"\\$`]/.test(debsDir) || /[\s'"\\$`]/.test(dir)) throw new Error(`the images dir path ${JSON.stringify(c.imagesDir)} has whitespace or quotes, which mmdebstrap's hooks cannot take`);
      await mkdir(debsDir, { recursive: true, mode: 0o755 });
      const rootfs = join(dir, "rootfs");
      log(`mmdebstrap ${DEBIAN_SUITE} minbase + ${packages.length} packages${extra.length ? ` (debian's and ${extra.join(" ")})` : ""} (cached .debs in ${debsDir})`);
      // A private mount namespace: the chroot's /proc, /sys and /dev mounts die
      // with mmdebstrap, which dies with this process (runStreaming ties it).
      await runStreaming("unshare", [
        "--mount", "--propagation", "private", "--", "mmdebstrap",
        "--variant=minbase", "--mode=root", "--format=directory",
        `--include=${packages.join(",")}`,
        ...DPKG_EXCLUDES.map((x) => `--dpkgopt=${x}`),
        '--aptopt=Acquire::Languages "none"',
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
        `--setup-hook=sync-in ${debsDir} /var/cache/apt/archives/`,
        `--customize-hook=sync-out /var/cache/apt/archives ${debsDir}`,
        `--customize-hook=chroot "$1" useradd --uid ${U.uid} --user-group --create-home --home-dir ${U.home} --shell /bin/bash ${U.name}`,
        "--skip=download/empty", "--skip=essential/unlink", // keep the essential .debs for sync-out
        DEBIAN_SUITE, rootfs,
      ], (line) => log(`mmdebstrap: ${line}`));

      const installed = await installedPackages(rootfs);
      for (const p of packages) if (!installed[p]) throw new Error(`package ${p} is not installed in the image`);
      await pruneDebCache(debsDir, installed, log);

      for (const [p, text] of Object.entries(ETC)) {
        await rm(join(rootfs, p), { force: true });
        await writeFile(join(rootfs, p), text, { mode: 0o644 });
        await chmod(join(rootfs, p), 0o644);
      }
      for (const p of [TINI_PATH, "/usr/bin/script", "/bin/bash", "/bin/busybox"]) {
        if (!existsSync(join(rootfs, p))) throw new Error(`${p} is missing from the image`);
      }
      log(`copying node to ${NODE_PATH}`);
      await mkdir(join(rootfs, "opt/bhatti"), { recursive: true, mode: 0o755 });
      await copyInto(rootfs, c.nodeBinary, 0o755, NODE_PATH);
      const libs = await installLibs(rootfs, c.nodeBinary); // Debian has them all; only a missing one is copied from the host
      log(`node's ${libs.length} shared libraries are in place`);
      await copyFile(c.loharJs, join(rootfs, LOHAR_PATH));
      await chmod(join(rootfs, LOHAR_PATH), 0o644);
      await mkdir(join(rootfs, INIT_BIN), { recursive: true, mode: 0o755 });
      for (const a of INIT_APPLETS) await symlink("/bin/busybox", join(rootfs, INIT_BIN, a));
      await writeFile(join(rootfs, INIT_PATH), debianInit());
      await chmod(join(rootfs, INIT_PATH), 0o755);
      await lchown(join(rootfs, U.home), U.uid, U.gid);
      await chmod(join(rootfs, U.home), 0o755);

      const inputs = await inputsFor(Object.keys(installed));
      const tree = await treeSize(rootfs);
      log(c.vm ? "packing rootfs.ext4 and building the vm kernel artifacts" : "packing rootfs.ext4");
      const done = await Promise.allSettled([makeExt4(rootfs, join(dir, "rootfs.ext4")), c.vm ? buildVmArtifacts(dir, c.cacheDir, log) : Promise.resolve()]);
      for (const r of done) if (r.status === "rejected") throw r.reason;
      const files: ManifestFile[] = [];
      for (const p of c.vm ? ["rootfs.ext4", "vmlinux", "initramfs.cpio"] : ["rootfs.ext4"]) files.push({ path: p, size: (await stat(join(dir, p))).size });
      const manifest: Manifest = {
        name: c.name,
        inputsHash: hashOf(inputs),
        inputs: inputs as unknown as Record<string, unknown>,
        builtAt: new Date().toISOString(),
        buildMs: Date.now() - c.started,
        rootfs: { files: tree.files, bytes: tree.bytes },
        files,
        packages: installed,
      };
      await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n", { mode: 0o644 });
      return manifest;
    },
  };
}

/**
 * Drops cached .debs of other versions of the packages this image holds (the
 * cache keeps one version per package; other images' packages stay).
 */
async function pruneDebCache(debsDir: string, installed: Record<string, string>, log: (l: string) => void): Promise<void> {
  const keep = new Set(Object.entries(installed).map(([n, v]) => `${n}_${v.replace(/:/g, "%3a")}_`));
  let dropped = 0;
  for (const f of await readdir(debsDir)) {
    if (!f.endsWith(".deb")) continue;
    const prefix = f.slice(0, f.lastIndexOf("_") + 1);
    const pkg = f.slice(0, f.indexOf("_"));
    if (Object.hasOwn(installed, pkg) && !keep.has(prefix)) {
      await rm(join(debsDir, f), { force: true });
      dropped++;
    }
  }
  if (dropped) log(`dropped ${dropped} cached .debs the image no longer uses`);
}
