// Kernel artifacts of a guest image for the vm engine: Debian's cloud kernel
// (downloaded as a .deb, never installed on the host), unpacked to an ELF
// vmlinux for QEMU's PVH boot, plus the initramfs built from its modules.
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildInitramfs } from "./initramfs.js";
import { run } from "./run.js";
import { extractVmlinux } from "./vmlinux.js";

const META_PACKAGE = "linux-image-cloud-amd64";

export interface KernelArtifacts {
  kernel: string; // <imageDir>/vmlinux
  initramfs: string; // <imageDir>/initramfs.cpio
  kernelVersion: string; // e.g. 6.1.0-57-cloud-amd64
}

/** The versioned package the meta package depends on, e.g. linux-image-6.1.0-57-cloud-amd64. */
export async function resolveKernelPackage(meta = META_PACKAGE): Promise<string> {
  const { stdout } = await run("apt-cache", ["depends", meta]);
  const m = /Depends:\s*(linux-image-\d\S*)/.exec(stdout);
  if (!m) throw new Error(`apt-cache depends ${meta}: no linux-image-<version> dependency (run apt-get update?)`);
  return m[1];
}

/** A .deb of pkg in cacheDir, downloaded with apt-get download when absent. */
async function debFor(pkg: string, cacheDir: string, log: (s: string) => void): Promise<string> {
  const find = async (): Promise<string | undefined> =>
    (await readdir(cacheDir)).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb")).sort().pop();
  let deb = await find();
  if (!deb) {
    log(`downloading ${pkg}`);
    await run("apt-get", ["download", "-q", pkg], { cwd: cacheDir });
    deb = await find();
    if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb in ${cacheDir}`);
  }
  return join(cacheDir, deb);
}

/** dpkg-deb -x into cacheDir/<pkg>/ once; returns that directory. */
async function unpacked(pkg: string, cacheDir: string, log: (s: string) => void): Promise<string> {
  const dir = join(cacheDir, pkg);
  const done = join(dir, ".unpacked");
  if (existsSync(done)) return dir;
  const deb = await debFor(pkg, cacheDir, log);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await run("dpkg-deb", ["-x", deb, dir]);
  await writeFile(done, "");
  return dir;
}

async function atomicWrite(path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode: 0o644 });
  await rename(tmp, path);
}

export async function buildKernelArtifacts(imageDir: string, cacheDir: string, log: (s: string) => void): Promise<KernelArtifacts> {
  await mkdir(cacheDir, { recursive: true });
  await mkdir(imageDir, { recursive: true });
  const pkg = await resolveKernelPackage();
  const kdir = await unpacked(pkg, cacheDir, log);

  const versions = await readdir(join(kdir, "lib/modules"));
  if (versions.length !== 1) throw new Error(`${pkg}: expected one lib/modules/<version>, found ${versions.join(", ") || "none"}`);
  const kernelVersion = versions[0];
  const moduleRoot = join(kdir, "lib/modules", kernelVersion);
  if (!existsSync(join(moduleRoot, "modules.dep"))) {
    // The .deb does not ship modules.dep (postinst generates it); generate it inside the unpacked tree.
    await run("depmod", ["-b", kdir, kernelVersion]);
  }

  log(`extracting vmlinux from ${pkg}`);
  const { elf, compression } = extractVmlinux(await readFile(join(kdir, "boot", `vmlinuz-${kernelVersion}`)));
  const kernel = join(imageDir, "vmlinux");
  await atomicWrite(kernel, elf);
  log(`vmlinux: ${(elf.length / 1048576).toFixed(1)} MiB (payload was ${compression})`);

  const rootfsBusybox = join(imageDir, "rootfs", "bin", "busybox");
  const busybox = existsSync(rootfsBusybox)
    ? rootfsBusybox
    : join(await unpacked("busybox-static", cacheDir, log), "bin", "busybox");
  const initramfs = join(imageDir, "initramfs.cpio");
  await atomicWrite(initramfs, await buildInitramfs({ busybox, moduleRoot }));
  log(`initramfs: kernel ${kernelVersion}`);
  return { kernel, initramfs, kernelVersion };
}
