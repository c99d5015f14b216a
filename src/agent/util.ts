// Small helpers kept free of heavy imports (node:crypto costs milliseconds at boot).
import { existsSync } from "node:fs";
import { GUEST } from "../protocol/agent.js";

/** Equality of two byte strings whose time depends only on their lengths. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i % (a.length || 1)] ?? 0) ^ b[i];
  return diff === 0 && a.length > 0;
}

let seq = 0;
/** A temp name next to `base`; uniqueness only (files are created O_EXCL). */
export function tempName(base: string): string {
  return `.${base}.lohar-${process.pid}-${++seq}-${Math.floor(Math.random() * 1e9).toString(36)}`;
}

let homeExists: boolean | undefined;
/** The sandbox user's home, or / on a host without it (tests). */
export function defaultCwd(): string {
  homeExists ??= existsSync(GUEST.user.home);
  return homeExists ? GUEST.user.home : "/";
}
