// A guard between a hostile tar archive and `tar -x`: a Transform that parses
// every header (ustar, pax, GNU long names), checks it, and passes on only
// members that stay inside the extraction root. tar never sees a header this
// guard has not accepted, so nothing it does can reach outside the root:
//   refused (the whole import fails): absolute paths, `..` components, paths
//     through a symlink of the archive, members replacing a symlink, hardlinks
//     to anything but an earlier regular file, unsupported member types, bad
//     checksums, truncation, more than the byte or member caps;
//   dropped (neutralised): device nodes and FIFOs, the archive's root entry.
import { Transform, type TransformCallback } from "node:stream";

const BLOCK = 512;

export interface GuardLimits {
  maxBytes: number; // file data, in total
  maxMembers: number;
  maxMetaBytes: number; // one pax / GNU long-name record
}

export const DEFAULT_LIMITS: GuardLimits = { maxBytes: 16 * 1024 ** 3, maxMembers: 1_000_000, maxMetaBytes: 1 << 20 };

export interface GuardStats { members: number; bytes: number; dropped: { path: string; type: string }[] }

export class TarError extends Error {}

function field(h: Buffer, off: number, len: number): string {
  const end = h.indexOf(0, off);
  return h.subarray(off, end >= 0 && end < off + len ? end : off + len).toString("utf8");
}

function numeric(h: Buffer, off: number, len: number, what: string): number {
  if (h[off] & 0x80) {
    // GNU base-256: big-endian, high bit of the first byte is the marker
    let n = 0;
    for (let i = off; i < off + len; i++) n = n * 256 + (i === off ? h[i] & 0x7f : h[i]);
    if (!Number.isSafeInteger(n)) throw new TarError(`tar header: ${what} out of range`);
    return n;
  }
  const s = field(h, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`tar header: bad ${what} field`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  try {
    return numeric(h, 148, 8, "checksum") === sum;
  } catch {
    return false;
  }
}

/** pax records: "LEN key=value\n"... */
export function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(data.subarray(i, sp).toString("ascii"));
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length) throw new TarError("tar: corrupt pax header");
    const rec = data.subarray(sp + 1, i + len - 1).toString("utf8");
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** A member path made relative and checked: its components, or null for the archive's root entry. */
export function cleanPath(raw: string, what = "path"): string[] | null {
  if (raw.includes("\0")) throw new TarError(`tar: ${what} with a NUL byte`);
  if (raw.length > 4096) throw new TarError(`tar: ${what} longer than 4096 bytes`);
  if (raw.startsWith("/")) throw new TarError(`tar: absolute ${what} ${JSON.stringify(raw.slice(0, 200))} refused`);
  const parts = raw.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new TarError(`tar: ${what} with '..' ${JSON.stringify(raw.slice(0, 200))} refused`);
  return parts.length ? parts : null;
}

const TYPE_NAMES: Record<string, string> = { "3": "character device", "4": "block device", "6": "FIFO" };

export class TarGuard extends Transform {
  readonly stats: GuardStats = { members: 0, bytes: 0, dropped: [] };
  private buf: Buffer = Buffer.alloc(0);
  private skip = 0; // bytes of member data still to pass through
  private discard = 0; // bytes of a dropped member's data still to swallow
  private meta: { type: string; size: number; chunks: Buffer[]; got: number; header: Buffer } | null = null;
  private pending: Buffer[] = []; // pax / long-name blocks waiting for their member's verdict
  private pax: Record<string, string> = {};
  private longName: string | undefined;
  private longLink: string | undefined;
  private readonly symlinks = new Set<string>();
  private readonly files = new Set<string>();
  private readonly dirs = new Set<string>();
  private ended = false;
  private offset = 0;

  constructor(private readonly limits: GuardLimits = DEFAULT_LIMITS) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this.pump();
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (!this.ended) return cb(new TarError(this.offset === 0 && this.buf.length === 0 ? "tar: empty archive" : "tar: archive is truncated (no end-of-archive marker)"));
    cb();
  }

  private eat(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.offset += n;
    return out;
  }

  private pump(): void {
    for (;;) {
      if (this.ended) {
        this.buf = Buffer.alloc(0); // whatever follows the end marker is not passed on
        return;
      }
      if (this.discard > 0) {
        if (!this.buf.length) return;
        const n = Math.min(this.discard, this.buf.length);
        this.eat(n);
        this.discard -= n;
        continue;
      }
      if (this.skip > 0) {
        if (!this.buf.length) return;
        const n = Math.min(this.skip, this.buf.length);
        this.push(this.eat(n));
        this.skip -= n;
        continue;
      }
      if (this.meta) {
        const m = this.meta;
        const padded = Math.ceil(m.size / BLOCK) * BLOCK;
        if (this.buf.length < padded - m.got) {
          m.chunks.push(this.eat(this.buf.length));
          m.got += m.chunks[m.chunks.length - 1].length;
          return;
        }
        const rest = this.eat(padded - m.got);
        m.chunks.push(rest);
        const all = Buffer.concat(m.chunks);
        this.meta = null;
        this.pending.push(m.header, all);
        if (this.pending.reduce((a, b) => a + b.length, 0) > 4 * this.limits.maxMetaBytes) throw new TarError("tar: too many pax / long-name headers before a member");
        this.applyMeta(m.type, all.subarray(0, m.size));
        continue;
      }
      if (this.buf.length < BLOCK) return;
      const h = this.eat(BLOCK);
      if (h.every((b) => b === 0)) {
        // end of archive: two zero blocks (one is enough for us; tar reads the rest)
        this.push(h);
        this.push(Buffer.alloc(BLOCK));
        this.ended = true;
        continue;
      }
      this.header(h);
    }
  }

  private applyMeta(type: string, data: Buffer): void {
    if (type === "L") this.longName = data.toString("utf8").replace(/\0.*$/s, "");
    else if (type === "K") this.longLink = data.toString("utf8").replace(/\0.*$/s, "");
    else if (type === "x") Object.assign(this.pax, parsePax(data));
    else if (type === "g") {
      const g = parsePax(data);
      if ("path" in g || "linkpath" in g) throw new TarError("tar: a global pax header setting path or linkpath is refused");
    }
  }

  private header(h: Buffer): void {
    const at = this.offset - BLOCK;
    if (!checksumOk(h)) throw new TarError(at === 0 ? "not a tar archive (the first header's checksum is wrong)" : `tar: corrupt archive (bad header checksum at byte ${at})`);
    const type = String.fromCharCode(h[156] || 0x30);
    // A pax `size` overrides the header's, for tar too: the guard must skip exactly what tar skips.
    const paxSize = this.pax.size;
    if (paxSize !== undefined && !/^\d{1,15}$/.test(paxSize)) throw new TarError("tar: bad pax size");
    const size = paxSize !== undefined && type !== "x" && type !== "g" && type !== "L" && type !== "K" ? Number(paxSize) : numeric(h, 124, 12, "size");
    if (type === "x" || type === "g" || type === "L" || type === "K") {
      if (size > this.limits.maxMetaBytes) throw new TarError(`tar: a ${type} header of ${size} bytes is over the ${this.limits.maxMetaBytes}-byte cap`);
      this.meta = { type, size, chunks: [], got: 0, header: h };
      if (size === 0) {
        this.meta = null;
        this.pending.push(h);
      }
      return;
    }
    if (++this.stats.members > this.limits.maxMembers) throw new TarError(`tar: more than ${this.limits.maxMembers} members`);
    if (Object.keys(this.pax).some((k) => k.startsWith("GNU.sparse"))) throw new TarError("tar: sparse members are not supported");
    // Only POSIX ustar ("ustar\0") has a name prefix; in the old GNU format those bytes are times.
    const prefix = h.subarray(257, 263).equals(Buffer.from("ustar\0", "latin1")) ? field(h, 345, 155) : "";
    const rawName = this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    const rawLink = this.pax.linkpath ?? this.longLink ?? field(h, 157, 100);
    this.pax = {};
    this.longName = this.longLink = undefined;
    const pending = this.pending;
    this.pending = [];

    const parts = cleanPath(rawName);
    const dataBlocks = Math.ceil(size / BLOCK) * BLOCK;
    const drop = (why: string): void => {
      this.stats.dropped.push({ path: parts ? parts.join("/") : ".", type: why });
      this.skipData(dataBlocks);
    };
    if (parts === null) return this.skipData(dataBlocks); // the archive's "./": the root stays bhatti's
    const path = parts.join("/");
    if (TYPE_NAMES[type]) return drop(TYPE_NAMES[type]);
    if (!["0", "7", "1", "2", "5"].includes(type)) throw new TarError(`tar: member ${JSON.stringify(path.slice(0, 200))} has unsupported type ${JSON.stringify(type)}`);
    for (let i = 1; i < parts.length; i++) {
      if (this.symlinks.has(parts.slice(0, i).join("/"))) throw new TarError(`tar: member ${JSON.stringify(path.slice(0, 200))} goes through a symlink of the archive; refused`);
    }
    if (this.symlinks.has(path)) throw new TarError(`tar: member ${JSON.stringify(path.slice(0, 200))} replaces a symlink of the archive; refused`);
    if (type === "2") {
      if (this.dirs.has(path)) throw new TarError(`tar: symlink ${JSON.stringify(path.slice(0, 200))} replaces a directory of the archive; refused`);
      this.symlinks.add(path); // its target may point anywhere: nothing is ever extracted through it
      this.files.delete(path);
    } else if (type === "1") {
      const target = cleanPath(rawLink, "hardlink target");
      const t = target?.join("/") ?? "";
      if (!this.files.has(t)) throw new TarError(`tar: hardlink ${JSON.stringify(path.slice(0, 200))} to ${JSON.stringify(t.slice(0, 200))}, which is not an earlier file of the archive; refused`);
      this.files.add(path);
    } else if (type === "5") {
      this.dirs.add(path);
      this.files.delete(path);
    } else {
      this.stats.bytes += size;
      if (this.stats.bytes > this.limits.maxBytes) throw new TarError(`tar: more than ${this.limits.maxBytes} bytes of file data`);
      this.files.add(path);
    }
    for (const b of pending) this.push(b);
    this.push(h);
    this.skip = type === "0" || type === "7" ? dataBlocks : 0;
    if (type !== "0" && type !== "7" && dataBlocks) this.skipData(dataBlocks); // links and dirs carry no data; drop any
  }

  /** Consumes `n` bytes of member data without passing them on. */
  private skipData(n: number): void {
    this.discard += n;
  }
}
