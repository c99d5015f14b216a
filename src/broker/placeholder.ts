// Placeholders: what a sandbox holds instead of a brokered secret's value.
// A placeholder has the value's length (in bytes: it is ASCII, like the value),
// keeps a known key prefix (`sk-proj-`, `ghp_`, `AKIA`...) and every
// punctuation character where it is, and puts a crypto-random character of the
// same class (digit, lower case, upper case; hex digits stay hex) at every
// other position, so an SDK that checks a key's format accepts it. Pure: no
// I/O; messages name the rule, never the value.
import { randomInt } from "node:crypto";

/** Least randomness a placeholder must carry (bits in its random positions). */
export const MIN_PLACEHOLDER_BITS = 64;

/**
 * Prefixes kept verbatim, longest first (the first match wins). They say what
 * kind of key it is, not which key: every key of that kind starts with them.
 */
export const KNOWN_PREFIXES: readonly string[] = [
  "sk-ant-admin01-", "sk-ant-api03-", "sk-ant-", "sk-proj-", "sk-svcacct-", "sk-admin-", "sk-or-v1-", "sk-",
  "github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
  "glpat-", "gldt-", "glrt-", "glptt-",
  "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xapp-",
  "AKIA", "ASIA",
  "sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "pk_test_", "whsec_",
  "hf_", "npm_", "pypi-", "dop_v1_", "doo_v1_", "shpat_", "shpss_", "SG.", "AIza", "ya29.",
  "gsk_", "r8_", "pplx-", "nvapi-", "csk-", "lin_api_", "ntn_", "secret_", "figd_",
  "Bearer ",
].slice().sort((a, b) => b.length - a.length);

/** Alphabets by class letter. A shape's body has a class letter where the value has a letter or digit. */
const CLASSES: Record<string, string> = {
  "9": "0123456789",
  a: "abcdefghijklmnopqrstuvwxyz",
  A: "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
  f: "abcdef", // the body is hex (lower case): letters stay a-f
  F: "ABCDEF",
};

/**
 * What a placeholder copies of a value: its known prefix `p`, then `b`, one
 * character per position: a class letter (9 a A f F) where the value has a
 * letter or digit, the value's own character where it has anything else.
 * Computed at `secret set` (the value is in hand), stored with the binding, so
 * a create never decrypts the value. A placeholder shows exactly this much.
 */
export interface Shape { p: string; b: string }

export function shapeOf(value: string): Shape {
  const p = knownPrefix(value);
  const body = value.slice(p.length);
  // A body of hex digits (one case) stays hex: digits where digits are, a-f (or A-F) where letters are.
  const alnum = body.replace(/[^0-9A-Za-z]/g, "");
  const hexLower = /^[0-9a-f]+$/.test(alnum) && /[a-f]/.test(alnum);
  const hexUpper = /^[0-9A-F]+$/.test(alnum) && /[A-F]/.test(alnum);
  let b = "";
  for (const c of body) {
    if (c >= "0" && c <= "9") b += "9";
    else if (c >= "a" && c <= "z") b += hexLower ? "f" : "a";
    else if (c >= "A" && c <= "Z") b += hexUpper ? "F" : "A";
    else b += c;
  }
  return { p, b };
}

/** Bits of randomness a placeholder of this shape carries. */
export function shapeBits(s: Shape): number {
  let n = 0;
  for (const c of s.b) if (CLASSES[c]) n += Math.log2(CLASSES[c].length);
  return n;
}

/** Why a value cannot be brokered, or null. Names the rule, never the value. */
export function unbrokerable(value: string): string | null {
  if (!/^[\x20-\x7e]*$/.test(value)) return "a secret bound to hosts must be printable ASCII (it travels in HTTP headers and URLs): no control or non-ASCII characters";
  const bits = shapeBits(shapeOf(value));
  if (bits < MIN_PLACEHOLDER_BITS) {
    return `a secret bound to hosts must be long enough for an unguessable placeholder: its letters and digits after any known prefix must give at least ${MIN_PLACEHOLDER_BITS} random bits (this one gives ${Math.floor(bits)}; e.g. at least 14 letters, or 20 digits)`;
  }
  return null;
}

/** The known prefix the value starts with, or "". */
export function knownPrefix(value: string): string {
  return KNOWN_PREFIXES.find((p) => value.startsWith(p) && value.length > p.length) ?? "";
}

/** Checks a stored shape (it comes from the database): a prefix and a body of printable ASCII. */
export function parseShape(text: string): Shape {
  const s = JSON.parse(text) as Shape;
  if (!s || typeof s.p !== "string" || typeof s.b !== "string" || !/^[\x20-\x7e]*$/.test(s.p + s.b)) throw new Error("malformed placeholder shape");
  return s;
}

/**
 * A fresh placeholder of this shape: crypto-random at each class position,
 * the prefix and punctuation as they are. Refuses a shape with too little
 * randomness; never one of `avoid` (the sandbox's other placeholders).
 */
export function placeholderFor(shape: Shape, avoid: Iterable<string> = []): string {
  if (shapeBits(shape) < MIN_PLACEHOLDER_BITS) throw new Error(`a placeholder needs at least ${MIN_PLACEHOLDER_BITS} random bits`);
  const taken = new Set(avoid);
  for (;;) {
    let out = shape.p;
    for (const c of shape.b) {
      const alphabet = CLASSES[c];
      out += alphabet ? alphabet[randomInt(alphabet.length)] : c;
    }
    if (!taken.has(out)) return out;
  }
}

/**
 * A placeholder for a value in hand (tests, and anything that has the value):
 * as placeholderFor(shapeOf(value)), and never the value itself. The create
 * path has only the shape; at 64 bits or more, a draw equal to the value is
 * as likely as guessing it.
 */
export function makePlaceholder(value: string, avoid: Iterable<string> = []): string {
  const why = unbrokerable(value);
  if (why) throw new Error(why);
  const shape = shapeOf(value);
  for (;;) {
    const p = placeholderFor(shape, avoid);
    if (p !== value) return p;
  }
}
