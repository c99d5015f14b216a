// The single call site of the vm engine helper's kernel module, plus what
// goes into the inputs hash for it: the kernel package apt would use and the
// code that turns it into vmlinux + initramfs.cpio.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { DebInfo } from "./apt.js";
import { sha256Hex } from "./hashes.js";
import { buildKernelArtifacts } from "./kernel.js";

type Log = (line: string) => void;

/** Debian's cloud kernel meta package (kernel.ts resolves the same one); its version is the kernel's. */
export const KERNEL_META_PACKAGE = "linux-image-cloud-amd64";

const CODE = ["./kernel.js", "./initramfs.js", "./vmlinux.js"];

/** A fingerprint of the kernel artifacts' inputs. */
export async function kernelInputs(meta: DebInfo): Promise<string> {
  const code = await Promise.all(CODE.map((m) => readFile(fileURLToPath(new URL(m, import.meta.url)), "utf8").then(sha256Hex, () => "")));
  return sha256Hex(JSON.stringify({ meta: [meta.package, meta.version, meta.sha256], code }));
}

export async function buildVmArtifacts(imageDir: string, cacheDir: string, log: Log): Promise<void> {
  await buildKernelArtifacts(imageDir, cacheDir, log);
}
