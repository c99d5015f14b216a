// HKDF-SHA256 (RFC 5869) for one 32-byte output, on two HMACs. node:crypto's
// hkdfSync wraps its inputs in KeyObjects on every call (~17 us here); this
// costs a few microseconds, and the age format calls it three times per file.
import { createHmac } from "node:crypto";

const ZERO_SALT = Buffer.alloc(32);
const ONE = Buffer.from([1]);

export function hkdf32(ikm: Uint8Array, salt: Uint8Array, info: string | Uint8Array): Buffer {
  const prk = createHmac("sha256", salt.length ? salt : ZERO_SALT).update(ikm).digest();
  const okm = createHmac("sha256", prk).update(info).update(ONE).digest();
  prk.fill(0);
  return okm;
}
