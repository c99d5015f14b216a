// Streaming redaction of secret values in command output.
//
//   const r = new Redactor(new Map([["API_KEY", value]]));
//   const s = r.stream();            // one per output stream (stdout, stderr, a scrollback...)
//   out.write(s.push(chunk));        // may hold back the tail of a chunk that could start a match
//   out.write(s.end());              // the held tail, at the end
//
// Every occurrence of a value is replaced by `[REDACTED:NAME]`: the raw bytes,
// base64 (standard and URL-safe, at any of the three byte alignments a value
// embedded in a longer base64 text can have: only the part of the encoding
// that does not depend on the neighbouring bytes is matched) and URL encoding
// (encodeURIComponent, and + for spaces). Matches split across chunks are
// found: a stream holds back at most the longest pattern minus one byte, and
// only while the tail could still begin a match.
//
// This is a guard against accidental logging, not a security boundary: code in
// the sandbox can always encode a value some other way (reverse it, hex, xor).
// Values shorter than MIN_REDACT_BYTES are not redacted (they would match
// everywhere); patterns (encodings) shorter than MIN_PATTERN_BYTES are dropped.

export const MIN_REDACT_BYTES = 4;
const MIN_PATTERN_BYTES = 6;

/** One byte sequence to find and what it becomes; `tag` says whose it is (the broker names a secret by it). */
export interface Pattern { bytes: Buffer; replacement: Buffer; tag?: string }
/** Told of every match a stream makes: the pattern, and its offset in the whole stream. */
export type OnMatch = (p: Pattern, offset: number) => void;

function b64url(s: string): string {
  return s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The encodings of one value that are matched (distinct, long enough). */
export function encodingsOf(value: string): Buffer[] {
  const raw = Buffer.from(value, "utf8");
  const out = new Set<string>();
  const add = (s: string) => { if (Buffer.byteLength(s) >= MIN_PATTERN_BYTES) out.add(s); };
  add(value);
  // base64: the whole value as a standalone text, then the alignment-independent cores.
  const whole = raw.toString("base64");
  add(whole);
  add(b64url(whole));
  for (let k = 0; k < 3; k++) {
    const padded = Buffer.concat([Buffer.alloc(k), raw]);
    const enc = padded.toString("base64");
    const start = k === 0 ? 0 : 4; // the first 4 characters mix in the k preceding bytes
    const end = Math.floor(padded.length / 3) * 4; // a partial last group depends on the bytes that follow
    if (end - start >= 8) {
      const core = enc.slice(start, end);
      add(core);
      add(b64url(core));
    }
  }
  const url = encodeURIComponent(value);
  if (url !== value) {
    add(url);
    add(url.replace(/%20/g, "+"));
    add(url.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())); // lower-case hex escapes
  }
  return [...out].map((s) => Buffer.from(s, "utf8"));
}

/**
 * Any set of byte patterns and their replacements, matched in streams across
 * chunk boundaries: the Redactor's (values to `[REDACTED:NAME]`) and the
 * credential broker's (placeholders to values and back, src/broker/).
 */
export class PatternSet {
  readonly patterns: Pattern[];
  /** Longest pattern, bytes: a stream holds back at most this minus one. */
  readonly maxLen: number;

  constructor(patterns: Iterable<Pattern>) {
    const seen = new Map<string, Pattern>();
    for (const p of patterns) {
      if (!p.bytes.length) continue;
      const key = p.bytes.toString("latin1");
      if (!seen.has(key)) seen.set(key, p); // the first one given for the same bytes wins
    }
    // Longest first: at the same position the longest pattern wins.
    this.patterns = [...seen.values()].sort((a, b) => b.bytes.length - a.bytes.length);
    this.maxLen = this.patterns.reduce((m, p) => Math.max(m, p.bytes.length), 0);
  }

  get empty(): boolean { return this.patterns.length === 0; }

  stream(onMatch?: OnMatch): RedactStream {
    return new RedactStream(this, onMatch);
  }

  /** Replaces in a whole buffer at once. */
  redact(buf: Buffer, onMatch?: OnMatch): Buffer {
    const s = this.stream(onMatch);
    const a = s.push(buf);
    const b = s.end();
    return b.length ? Buffer.concat([a, b]) : a;
  }
}

export class Redactor extends PatternSet {
  constructor(secrets: Iterable<[string, string]>) {
    const pats: Pattern[] = [];
    for (const [name, value] of secrets) {
      if (Buffer.byteLength(value) < MIN_REDACT_BYTES) continue;
      const replacement = Buffer.from(`[REDACTED:${name}]`);
      for (const bytes of encodingsOf(value)) pats.push({ bytes, replacement });
    }
    super(pats);
  }
}

export class RedactStream {
  private held: Buffer = Buffer.alloc(0);
  private base = 0; // stream offset of held[0]

  constructor(private readonly r: PatternSet, private readonly onMatch?: OnMatch) {}

  /** Bytes held back so far (at most the longest pattern minus one). */
  get pending(): number { return this.held.length; }

  push(chunk: Buffer): Buffer {
    if (this.r.empty) return chunk;
    const buf = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    const { out, rest } = this.scan(buf, false);
    this.base += buf.length - rest.length;
    this.held = rest;
    return out;
  }

  end(): Buffer {
    if (this.r.empty || this.held.length === 0) return Buffer.alloc(0);
    const { out } = this.scan(this.held, true);
    this.base += this.held.length;
    this.held = Buffer.alloc(0);
    return out;
  }

  private scan(buf: Buffer, final: boolean): { out: Buffer; rest: Buffer } {
    const pats = this.r.patterns;
    const next = pats.map((p) => buf.indexOf(p.bytes));
    const parts: Buffer[] = [];
    let pos = 0;
    for (;;) {
      let best = -1;
      for (let i = 0; i < pats.length; i++) {
        if (next[i] >= 0 && next[i] < pos) next[i] = buf.indexOf(pats[i].bytes, pos);
        if (next[i] < 0) continue;
        if (best < 0 || next[i] < next[best]) best = i; // patterns are longest first: ties keep the longer
      }
      if (best < 0) break;
      const at = next[best];
      // A longer pattern may match here once more bytes come (the base64 core, then its padding): wait for them.
      if (!final && this.longerMayFollow(buf, at, pats[best].bytes.length)) return this.finish(parts, buf, pos, at);
      this.onMatch?.(pats[best], this.base + at);
      parts.push(buf.subarray(pos, at), pats[best].replacement);
      pos = at + pats[best].bytes.length;
    }
    return this.finish(parts, buf, pos, final ? buf.length : this.holdFrom(buf, pos));
  }

  private finish(parts: Buffer[], buf: Buffer, pos: number, hold: number): { out: Buffer; rest: Buffer } {
    parts.push(buf.subarray(pos, hold));
    // The held tail is copied: it must not pin (or alias) the caller's chunk.
    return { out: parts.length === 1 ? parts[0] : Buffer.concat(parts), rest: Buffer.from(buf.subarray(hold)) };
  }

  /** Whether the bytes from `at` to the end are a proper prefix of a pattern longer than `len`. */
  private longerMayFollow(buf: Buffer, at: number, len: number): boolean {
    const tail = buf.subarray(at);
    for (const p of this.r.patterns) {
      if (p.bytes.length <= len) break; // longest first
      if (p.bytes.length > tail.length && p.bytes.subarray(0, tail.length).equals(tail)) return true;
    }
    return false;
  }

  /** Where the tail that could still begin a match starts (buf.length: nothing to hold). */
  private holdFrom(buf: Buffer, from: number): number {
    let hold = buf.length;
    for (const p of this.r.patterns) {
      const first = p.bytes[0];
      let i = Math.max(from, buf.length - p.bytes.length + 1);
      while (i < hold) {
        i = buf.indexOf(first, i);
        if (i < 0 || i >= hold) break;
        const tail = buf.subarray(i);
        if (p.bytes.subarray(0, tail.length).equals(tail)) { hold = i; break; }
        i++;
      }
    }
    return hold;
  }
}
