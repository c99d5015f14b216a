// Builds one image's contents into a fresh directory: rootfs/, rootfs.ext4,
// the vm artifacts and manifest.json. build.ts decides whether and where.
import { chmod, copyFile, mkdir, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureDebs } from "./apt.js";
import { copyInto, installLibs } from "./elf.js";
import { makeExt4 } from "./ext4.js";
import { PACKAGES, SCRIPT_BINARY, type Inputs } from "./inputs.js";
import { run } from "./run.js";
import { busyboxLinks, fixOwnership, LOHAR_PATH, makeDirs, NODE_LINK, NODE_PATH, pruneDocs, TINI_PATH, writeEtc } from "./skeleton.js";
import { treeSize } from "./tree.js";
import type { Manifest, ManifestFile } from "./types.js";
import { buildVmArtifacts } from "./vm-artifacts.js";

type Log = (line: string) => void;

export interface AssembleSpec {
  dir: string; // must not exist yet
  name: string;
  inputs: Inputs;
  inputsHash: string;
  nodeBinary: string;
  loharJs: string;
  cacheDir: string;
  vm: boolean;
  log: Log;
  started: number;
}

async function fileSize(p: string): Promise<number> {
  return (await stat(p)).size;
}

export async function assemble(s: AssembleSpec): Promise<Manifest> {
  const { log } = s;
  await mkdir(s.dir, { mode: 0o755 });
  const rootfs = join(s.dir, "rootfs");
  await makeDirs(rootfs);

  for (const d of await ensureDebs(PACKAGES, s.cacheDir, log)) {
    if (d.info.version !== s.inputs.debs[d.info.package].version) throw new Error(`apt's candidate for ${d.info.package} changed during the build; run it again`);
    log(`unpacking ${d.info.package} ${d.info.version}`);
    await run("dpkg-deb", ["-x", d.path, rootfs]);
  }
  await pruneDocs(rootfs);
  log(`linked ${await busyboxLinks(rootfs)} busybox applets`);

  log(`copying node (${((await fileSize(s.nodeBinary)) / 1048576).toFixed(0)} MiB) and its libraries`);
  await copyInto(rootfs, s.nodeBinary, 0o755, NODE_PATH);
  await symlink(NODE_PATH, join(rootfs, NODE_LINK)); // where node was before it moved to /opt/bhatti
  await copyInto(rootfs, SCRIPT_BINARY, 0o755);
  const libs = new Set([
    ...(await installLibs(rootfs, s.nodeBinary)), ...(await installLibs(rootfs, join(rootfs, TINI_PATH))), ...(await installLibs(rootfs, SCRIPT_BINARY)),
  ]);
  log(`installed ${libs.size} shared libraries`);

  await copyFile(s.loharJs, join(rootfs, LOHAR_PATH));
  await chmod(join(rootfs, LOHAR_PATH), 0o644);
  await writeEtc(rootfs);
  await fixOwnership(rootfs);
  const tree = await treeSize(rootfs);

  // mke2fs is mostly I/O, the kernel extraction mostly CPU: run them side by side.
  log(s.vm ? "packing rootfs.ext4 and building the vm kernel artifacts" : "packing rootfs.ext4");
  // allSettled: neither may still be writing into the directory when a failure removes it.
  const done = await Promise.allSettled([makeExt4(rootfs, join(s.dir, "rootfs.ext4")), s.vm ? buildVmArtifacts(s.dir, s.cacheDir, log) : Promise.resolve()]);
  for (const r of done) if (r.status === "rejected") throw r.reason;
  const files: ManifestFile[] = [];
  for (const p of s.vm ? ["rootfs.ext4", "vmlinux", "initramfs.cpio"] : ["rootfs.ext4"]) files.push({ path: p, size: await fileSize(join(s.dir, p)) });

  const manifest: Manifest = {
    name: s.name,
    inputsHash: s.inputsHash,
    inputs: s.inputs as unknown as Record<string, unknown>,
    builtAt: new Date().toISOString(),
    buildMs: Date.now() - s.started,
    rootfs: { files: tree.files, bytes: tree.bytes },
    files,
  };
  await writeFile(join(s.dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n", { mode: 0o644 });
  return manifest;
}
