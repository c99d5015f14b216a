// The age v1 file format for bhatti's own case — one X25519 recipient, binary
// (not armored), held in memory — on node:crypto only.
//
// Why: age-encryption runs every file through WHATWG streams (TransformStream,
// pipeThrough, a Response to collect the output) and pure-JS ChaCha20 and
// HMAC; for a 40-byte secret that machinery is most of the time of an encrypt
// or a decrypt (~0.3 ms). The format itself is small (age-encryption.org/v1):
//
//   age-encryption.org/v1\n
//   -> X25519 <ephemeral share, base64>\n
//   <wrapped file key, base64, 64-column lines>\n
//   --- <HMAC-SHA256(HKDF(file key, "", "header"), everything up to "---"), base64>\n
//   <16-byte nonce> <STREAM: ChaCha20-Poly1305 under HKDF(file key, nonce, "payload"),
//                    64 KiB chunks, nonce = 11-byte counter || last-chunk flag>
//
// Output is byte-compatible with every age implementation (the Debian `age`
// interop tests check it). Decryption takes the fast path only for a header of
// exactly this canonical shape; anything else (armor, other or several
// recipients, non-canonical encodings) returns null and the caller falls back
// to age-encryption, which is the reference and gives its own errors.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { hkdf32 } from "./hkdf.js";
import type { Stanza } from "age-encryption";
import type { NativeX25519Identity, NativeX25519Recipient } from "./x25519.js";

const INTRO = Buffer.from("age-encryption.org/v1\n");
const CHUNK = 64 * 1024;
const TAG = 16;
const EMPTY = Buffer.alloc(0);

function b64(b: Uint8Array): string {
  return Buffer.from(b).toString("base64").replace(/=+$/, "");
}

/** Canonical unpadded base64 only (age rejects anything else), or null. */
function unb64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*$/.test(s)) return null;
  const b = Buffer.from(s, "base64");
  return b64(b) === s ? b : null;
}

function stanzaText(s: Stanza): string {
  const body = b64(s.body);
  const lines: string[] = [];
  for (let i = 0; i < body.length; i += 64) lines.push(body.slice(i, i + 64));
  if (body.length % 64 === 0) lines.push(""); // a full last line is followed by an empty one
  return `-> ${s.args.join(" ")}\n${lines.join("\n")}\n`;
}

function keys(fileKey: Uint8Array, nonce: Buffer): { mac: Buffer; payload: Buffer } {
  return {
    mac: hkdf32(fileKey, EMPTY, "header"),
    payload: hkdf32(fileKey, nonce, "payload"),
  };
}

function chunkNonce(i: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(i, 5, 6); // counter in bytes 0..10 (big-endian); 2^48 chunks is far beyond any secret
  n[11] = last ? 1 : 0;
  return n;
}

export function encryptNative(recipient: NativeX25519Recipient, plaintext: string | Uint8Array): Buffer {
  const data = typeof plaintext === "string" ? Buffer.from(plaintext, "utf8") : Buffer.from(plaintext);
  const fileKey = randomBytes(16);
  const nonce = randomBytes(16);
  const [stanza] = recipient.wrapFileKey(fileKey);
  const headerNoMac = Buffer.from(`age-encryption.org/v1\n${stanzaText(stanza)}---`);
  const k = keys(fileKey, nonce);
  fileKey.fill(0);
  const mac = createHmac("sha256", k.mac).update(headerNoMac).digest();
  const parts: Buffer[] = [headerNoMac, Buffer.from(` ${b64(mac)}\n`), nonce];
  const chunks = Math.max(1, Math.ceil(data.length / CHUNK));
  for (let i = 0; i < chunks; i++) {
    const c = createCipheriv("chacha20-poly1305", k.payload, chunkNonce(i, i === chunks - 1), { authTagLength: TAG });
    parts.push(c.update(data.subarray(i * CHUNK, (i + 1) * CHUNK)), c.final(), c.getAuthTag());
  }
  k.mac.fill(0);
  k.payload.fill(0);
  if (typeof plaintext === "string") data.fill(0);
  return Buffer.concat(parts);
}

/**
 * Decrypts a canonical one-X25519-stanza binary age file. Returns null when the
 * file is not of that shape (the caller falls back); throws when it is, but
 * does not decrypt (wrong key, bad MAC, tampered payload).
 */
export function decryptNative(identity: NativeX25519Identity, file: Uint8Array): Buffer | null {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.length < INTRO.length || !buf.subarray(0, INTRO.length).equals(INTRO)) return null;
  // The header is text up to the MAC line; find its end without decoding the binary payload.
  let pos = INTRO.length;
  const line = (): string | null => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0 || nl - pos > 1024) return null;
    const s = buf.toString("latin1", pos, nl);
    pos = nl + 1;
    return s;
  };
  const stanzaLine = line();
  const m = stanzaLine === null ? null : /^-> X25519 ([A-Za-z0-9+/]{43})$/.exec(stanzaLine);
  if (!m) return null;
  let bodyText = "";
  for (;;) {
    const l = line();
    if (l === null || l.length > 64) return null;
    bodyText += l;
    if (l.length < 64) break;
  }
  const macStart = pos;
  const macLine = line();
  if (macLine === null || !macLine.startsWith("--- ")) return null;
  const share = unb64(m[1]);
  const body = unb64(bodyText);
  const mac = unb64(macLine.slice(4));
  if (!share || share.length !== 32 || !body || body.length !== 32 || !mac || mac.length !== 32) return null;

  const stanza = { args: ["X25519", m[1]], body } as unknown as Stanza;
  const fileKey = identity.unwrapFileKey([stanza]);
  if (fileKey === null) throw new Error("no identity matched any of the file's recipients");
  const nonce = buf.subarray(pos, pos + 16);
  if (nonce.length !== 16) throw new Error("age: file is truncated (no payload nonce)");
  const k = keys(fileKey, nonce);
  fileKey.fill(0);
  try {
    const want = createHmac("sha256", k.mac).update(buf.subarray(0, macStart + 3)).digest();
    if (!timingSafeEqual(want, mac)) throw new Error("invalid header HMAC");
    const payload = buf.subarray(pos + 16);
    if (payload.length < TAG) throw new Error("age: payload is truncated");
    const chunks = Math.ceil(payload.length / (CHUNK + TAG));
    const out: Buffer[] = [];
    for (let i = 0; i < chunks; i++) {
      const c = payload.subarray(i * (CHUNK + TAG), (i + 1) * (CHUNK + TAG));
      const last = i === chunks - 1;
      if (c.length < TAG || (last && i > 0 && c.length === TAG)) throw new Error("age: invalid last chunk");
      const d = createDecipheriv("chacha20-poly1305", k.payload, chunkNonce(i, last), { authTagLength: TAG });
      d.setAuthTag(c.subarray(c.length - TAG));
      out.push(d.update(c.subarray(0, c.length - TAG)));
      try {
        out.push(d.final());
      } catch {
        throw new Error("age: payload authentication failed");
      }
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  } finally {
    k.mac.fill(0);
    k.payload.fill(0);
  }
}
