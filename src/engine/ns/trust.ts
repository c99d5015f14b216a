// brokerstore (issue 11), ns engine: the sandbox CA in the sandbox's trust
// store. The system bundle is rebuilt at every boot — the image's own roots
// (read through the image tree's links, never out of it), then the sandbox CA —
// into the sandbox's runtime dir (tmpfs) and bind-mounted read-only over the
// image's bundle; the CA alone goes to GUEST_TRUST.caCert. Both are public.
import { closeSync, constants, fstatSync, openSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GUEST_TRUST } from "../../protocol/agent.js";
import { resolveInRoot } from "../../image/inroot.js";

const MAX_BUNDLE = 8 << 20;

/** The image's CA bundle ("" if it has none, or it is not a regular file of sane size). */
export async function imageBundle(imageRoot: string): Promise<string> {
  let fd: number;
  try {
    fd = openSync(await resolveInRoot(imageRoot, GUEST_TRUST.bundle), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return "";
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_BUNDLE) return "";
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

export interface TrustMounts { bundle: string; caCert: string }

/** Writes the bundle and the CA into the sandbox's runtime dir; returns their host paths (mounted by the bundle). */
export async function writeTrust(sbDir: string, imageRoot: string, caCert: string): Promise<TrustMounts> {
  const system = await imageBundle(imageRoot);
  const bundle = join(sbDir, "trust-bundle.pem");
  const ca = join(sbDir, "sandbox-ca.pem");
  writeFileSync(bundle, system + (system && !system.endsWith("\n") ? "\n" : "") + caCert, { mode: 0o644 });
  writeFileSync(ca, caCert, { mode: 0o644 });
  return { bundle, caCert: ca };
}
