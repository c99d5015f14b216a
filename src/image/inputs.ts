// Everything an image is made from, reduced to a hash: when the hash of a
// built image matches, `image build` has nothing to do.
import { realpath } from "node:fs/promises";
import type { DebInfo } from "./apt.js";
import { sharedLibs } from "./elf.js";
import type { HashCache } from "./hashes.js";
import { sha256Hex } from "./hashes.js";

/** Bump when the builder's output changes for the same inputs (layout, /etc files, init script, ...). */
export const BUILDER_VERSION = "7"; // 6: vm init caps /tmp, /run, /dev/shm; 7: node at /opt/bhatti/node, named images
/** util-linux `script`, copied from the host: lohar runs tty commands under it (busybox has no pty applet). */
export const SCRIPT_BINARY = "/usr/bin/script";

export const PACKAGES = ["busybox-static", "tini"];

export interface Inputs {
  builder: string;
  arch: string;
  vm: boolean;
  debs: Record<string, { version: string; sha256: string }>;
  node: { sha256: string; libs: Record<string, string> };
  lohar: { sha256: string };
  script: { sha256: string };
  kernel: string | null; // the kernel artifacts' own inputs (package version), vm only
}

export async function collectInputs(a: {
  debs: Record<string, DebInfo>;
  nodeBinary: string;
  loharJs: string;
  vm: boolean;
  kernel: string | null;
  hashes: HashCache;
}): Promise<Inputs> {
  const node = await realpath(a.nodeBinary);
  const libs: Record<string, string> = {};
  for (const lib of await sharedLibs(node)) libs[lib] = await a.hashes.sha256(lib);
  const debs: Inputs["debs"] = {};
  for (const n of PACKAGES) debs[n] = { version: a.debs[n].version, sha256: a.debs[n].sha256 };
  return {
    builder: BUILDER_VERSION,
    arch: process.arch,
    vm: a.vm,
    debs,
    node: { sha256: await a.hashes.sha256(node), libs },
    lohar: { sha256: await a.hashes.sha256(a.loharJs) },
    script: { sha256: await a.hashes.sha256(SCRIPT_BINARY) },
    kernel: a.vm ? a.kernel : null,
  };
}

export function inputsHash(inputs: Inputs): string {
  return sha256Hex(JSON.stringify(inputs));
}
