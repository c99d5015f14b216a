// A sandbox's own CA (issue 11): made at create for a sandbox that holds a
// brokered secret. The egress proxy signs the certificates of bound hosts with
// it; its certificate goes into the sandbox's trust store (public), its key
// stays in the daemon (age-encrypted in state.db, never on any other disk).
import { randomBytes } from "node:crypto";
import { GUEST_TRUST } from "../protocol/agent.js";
import { selfSignedCa } from "./x509.js";
import type { SandboxCa } from "./types.js";

/** Ten years: a sandbox may live long, and the key never leaves the daemon. */
const CA_DAYS = 3650;

export function createSandboxCa(): Promise<SandboxCa> {
  return selfSignedCa(`bhatti sandbox broker CA ${randomBytes(4).toString("hex")}`, CA_DAYS);
}

/**
 * The default-layer env of a sandbox with a CA: every common TLS stack finds
 * the bundle (system roots + the sandbox CA) without flags. Below secrets and
 * the sandbox env, so `--env` still wins.
 */
export function trustEnv(): Record<string, string> {
  return {
    SSL_CERT_FILE: GUEST_TRUST.bundle,
    REQUESTS_CA_BUNDLE: GUEST_TRUST.bundle,
    CURL_CA_BUNDLE: GUEST_TRUST.bundle,
    NODE_EXTRA_CA_CERTS: GUEST_TRUST.caCert, // Node keeps its own roots and adds these
  };
}
