// The daemon's age identity: generating, loading and using it.
//
// age.key is an ordinary age identity file (readable by `age -d -i age.key`).
// Normally it holds one X25519 identity. During `bhatti key rotate` it briefly
// holds two (new first, then old) so that, whatever moment the rotation dies
// at, the file still decrypts every blob in state.db; settleKeyFile() brings it
// back to the single identity the database is actually encrypted to.
import * as age from "age-encryption";
import { bech32 } from "@scure/base";
import { existsSync, readFileSync, statSync } from "node:fs";
import { writeFileAtomic } from "../util/atomic.js";
import { NativeX25519Identity, NativeX25519Recipient } from "./x25519.js";
import { decryptNative, encryptNative } from "./age-native.js";

// "AGE-SECRET-KEY-1" + 58 characters of upper-case bech32.
const IDENTITY_RE = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;

export class KeyFileError extends Error {}

export class Keyring {
  private constructor(
    readonly identity: string,
    readonly recipient: string,
    private readonly decrypter: age.Decrypter,
    private readonly nativeIdentity: NativeX25519Identity,
  ) {
    this.native = new NativeX25519Recipient(recipient);
  }

  // Encryption on node:crypto's native X25519 (see x25519.ts): byte-compatible, ~10x faster.
  private readonly native: NativeX25519Recipient;

  static async fromIdentity(identity: string): Promise<Keyring> {
    const recipient = await age.identityToRecipient(identity);
    const d = new age.Decrypter();
    // A node:crypto key parsed once (x25519.ts): given the string, age-encryption
    // re-imports the private key (a slow PKCS#8 parse in Node) on every decryption.
    const native = new NativeX25519Identity(identityBytes(identity));
    d.addIdentity(native);
    return new Keyring(identity, recipient, d, native);
  }

  /** age, on node:crypto (age-native.ts): the same bytes age-encryption would write, without its stream machinery. */
  async encrypt(plaintext: string): Promise<Buffer> {
    return encryptNative(this.native, plaintext);
  }

  /** The native path for bhatti's own canonical files; age-encryption for anything else (armor, other recipients). */
  async decrypt(ciphertext: Uint8Array): Promise<string> {
    const fast = decryptNative(this.nativeIdentity, ciphertext);
    if (fast === null) return this.decrypter.decrypt(ciphertext, "text");
    const text = fast.toString("utf8");
    fast.fill(0);
    return text;
  }
}

function identityBytes(identity: string): Uint8Array {
  const { prefix, bytes } = bech32.decodeToBytes(identity.toLowerCase(), false);
  if (prefix !== "age-secret-key-" || bytes.length !== 32) throw new Error("invalid age identity");
  return bytes;
}

export async function generateIdentity(): Promise<string> {
  // X25519, the identity type every age implementation (Debian's age 1.1 too) reads.
  return age.generateX25519Identity();
}

export async function keyFileText(identities: string[], note?: string): Promise<string> {
  const lines: string[] = [];
  lines.push(`# bhatti daemon identity, created: ${new Date().toISOString()}`);
  if (note) lines.push(`# ${note}`);
  for (const id of identities) {
    lines.push(`# public key: ${await age.identityToRecipient(id)}`);
    lines.push(id);
  }
  return lines.join("\n") + "\n";
}

export async function writeKeyFile(path: string, identities: string[], note?: string): Promise<void> {
  writeFileAtomic(path, await keyFileText(identities, note), 0o600);
}

export type KeyFileState =
  | { kind: "missing" }
  | { kind: "empty" }
  | { kind: "invalid"; why: string }
  | { kind: "ok"; identities: string[] };

/** Reads age.key without ever throwing on bad content: callers decide what a bad file means. */
export function readKeyFile(path: string): KeyFileState {
  if (!existsSync(path)) return { kind: "missing" };
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return { kind: "invalid", why: `cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"})` };
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  if (lines.length === 0) return { kind: "empty" };
  for (const l of lines) {
    if (!IDENTITY_RE.test(l)) return { kind: "invalid", why: "does not contain a valid AGE-SECRET-KEY-1 identity" };
  }
  return { kind: "ok", identities: lines };
}

/**
 * age.key must be readable by its owner only. A key file with any group or
 * other permission bit has been exposed (or is about to be): refuse, and say
 * how to fix it, rather than silently tightening a file someone may have
 * loosened on purpose.
 */
export function assertKeyFileMode(path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return; // missing: the caller decides what that means
  }
  if (mode & 0o077) {
    throw new KeyFileError(`${path} has mode ${mode.toString(8).padStart(4, "0")}: the age key must not be readable or writable by group or others. ` +
      `Check who could have read it, then run: chmod 600 ${path}`);
  }
}
