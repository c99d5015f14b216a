// Puts a host ELF binary into a root tree together with exactly the shared
// libraries (and the dynamic loader) that `ldd` says it needs, each at the
// path ldd reports, so the loader's default search path finds them.
import { chmod, constants, copyFile, mkdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { run } from "./run.js";

/** Absolute paths of the libraries and loader `binary` needs (no vdso). */
export async function sharedLibs(binary: string): Promise<string[]> {
  let out: string;
  try {
    out = (await run("ldd", [binary])).stdout;
  } catch (e) {
    // a static binary: ldd says so and exits 1
    if (/not a dynamic executable/.test((e as Error).message)) return [];
    throw e;
  }
  const libs: string[] = [];
  for (const raw of out.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("linux-vdso") || /statically linked/.test(line)) continue;
    if (/=> not found/.test(line)) throw new Error(`${binary}: shared library missing on the host: ${line}`);
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return [...new Set(libs)];
}

/** Copies a host file (following symlinks) to the same path inside root; reflinks where the filesystem can. */
export async function copyInto(root: string, hostPath: string, mode: number, destPath = hostPath): Promise<void> {
  const dest = join(root, destPath);
  await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
  await copyFile(hostPath, dest, constants.COPYFILE_FICLONE);
  await chmod(dest, mode);
}

/** Installs the libraries `binary` (a host path) needs into root, skipping ones already there. */
export async function installLibs(root: string, binary: string): Promise<string[]> {
  const libs = await sharedLibs(binary);
  for (const lib of libs) {
    const exists = await stat(join(root, lib)).then(() => true, () => false);
    if (!exists) await copyInto(root, lib, 0o755);
  }
  return libs;
}
