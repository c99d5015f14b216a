// brokerstore (issue 11), vm engine: the sandbox CA (ConfigDrive.ca_cert) in
// the guest's trust store. The system bundle becomes the image's roots plus
// the sandbox CA, and the CA alone is written for NODE_EXTRA_CA_CERTS. The
// guest's root is a tmpfs overlay: nothing here reaches a disk. (ns: the
// daemon bind-mounts both read-only instead; lohar leaves them alone.)
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { GUEST_TRUST } from "../protocol/agent.js";

const MAX_BUNDLE = 8 << 20;

export function installTrust(caCert: string): void {
  if (typeof caCert !== "string" || !caCert.startsWith("-----BEGIN CERTIFICATE-----")) throw new Error("config.json: ca_cert is not a PEM certificate");
  let system = "";
  try {
    const st = statSync(GUEST_TRUST.bundle); // through a link: it is the guest's own tree
    if (st.isFile() && st.size <= MAX_BUNDLE) system = readFileSync(GUEST_TRUST.bundle, "utf8");
  } catch { /* the image has no bundle (minimal): the sandbox CA alone */ }
  if (system && !system.endsWith("\n")) system += "\n";
  writeAtomic(GUEST_TRUST.bundle, system + caCert);
  writeAtomic(GUEST_TRUST.caCert, caCert);
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.bhatti-tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  chmodSync(tmp, 0o644);
  renameSync(tmp, path); // replaces a symlink at path, never writes through it
}
