// Turns a distribution bzImage (boot/vmlinuz-*) into the uncompressed ELF
// vmlinux that QEMU boots directly through PVH. Same idea as the kernel tree's
// scripts/extract-vmlinux: find the compressed payload by its magic, decompress,
// keep the first result that is an ELF file. LZ4 (Debian's choice) is decoded
// here; gzip/xz/zstd go through the usual command-line tools.
import { spawnSync } from "node:child_process";
import { tiedToParent } from "../util/run.js";

const LZ4_LEGACY_MAGIC = 0x184c2102;
const LZ4_LEGACY_BLOCK = 8 << 20; // uncompressed size of every block but the last

interface Format {
  name: string;
  magic: Buffer;
  decompress(data: Buffer): Buffer | null;
}

function tool(cmd: string, args: string[]): (data: Buffer) => Buffer | null {
  return (data) => {
    // Trailing bytes after the payload make these tools exit non-zero; the output is still usable.
    const r = spawnSync(...tiedToParent(cmd, args), { input: data, maxBuffer: 512 << 20, env: {} });
    return r.stdout && r.stdout.length > 0 ? r.stdout : null;
  };
}

const FORMATS: Format[] = [
  { name: "lz4", magic: Buffer.from([0x02, 0x21, 0x4c, 0x18]), decompress: lz4Legacy },
  { name: "zstd", magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), decompress: tool("zstd", ["-dcq"]) },
  { name: "xz", magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), decompress: tool("xz", ["-dcq"]) },
  { name: "gzip", magic: Buffer.from([0x1f, 0x8b, 0x08]), decompress: tool("gzip", ["-dcq"]) },
];

/** Size an ELF64 file must have to hold its section headers (they come last), or 0 if not ELF64. */
export function elfSize(buf: Buffer): number {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) return 0;
  const shoff = Number(buf.readBigUInt64LE(0x28));
  return shoff + buf.readUInt16LE(0x3a) * buf.readUInt16LE(0x3c);
}

/** Decompress one LZ4 block (no framing) into out; returns the bytes written. */
export function lz4Block(src: Buffer, out: Buffer): number {
  let ip = 0;
  let op = 0;
  const end = src.length;
  while (ip < end) {
    const token = src[ip++];
    let lit = token >> 4;
    if (lit === 15) {
      let b: number;
      do { b = src[ip++]; lit += b; } while (b === 255 && ip < end);
    }
    if (ip + lit > end || op + lit > out.length) throw new Error("lz4: literal run out of bounds");
    src.copy(out, op, ip, ip + lit);
    ip += lit;
    op += lit;
    if (ip >= end) break; // the last sequence has literals only
    const offset = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw new Error("lz4: bad match offset");
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do { b = src[ip++]; len += b; } while (b === 255 && ip < end);
    }
    len += 4;
    if (op + len > out.length) throw new Error("lz4: match out of bounds");
    let from = op - offset;
    if (offset >= len) {
      out.copy(out, op, from, from + len);
      op += len;
    } else {
      for (let i = 0; i < len; i++) out[op++] = out[from++];
    }
  }
  return op;
}

/** The kernel's LZ4 "legacy" stream: magic, then (u32 LE size, block)*; stops at whatever follows. */
export function lz4Legacy(data: Buffer): Buffer | null {
  if (data.length < 8 || data.readUInt32LE(0) !== LZ4_LEGACY_MAGIC) return null;
  const parts: Buffer[] = [];
  let total = 0;
  let want = Infinity;
  let p = 4;
  while (p + 4 <= data.length && total < want) {
    const size = data.readUInt32LE(p);
    if (size === LZ4_LEGACY_MAGIC) { p += 4; continue; } // concatenated stream
    if (size === 0 || p + 4 + size > data.length || size > LZ4_LEGACY_BLOCK + (LZ4_LEGACY_BLOCK >> 7) + 64) break;
    const out = Buffer.allocUnsafe(LZ4_LEGACY_BLOCK);
    let n: number;
    try {
      n = lz4Block(data.subarray(p + 4, p + 4 + size), out);
    } catch {
      break;
    }
    parts.push(out.subarray(0, n));
    total += n;
    p += 4 + size;
    if (parts.length === 1) want = elfSize(parts[0]) || Infinity;
  }
  return parts.length ? Buffer.concat(parts, total) : null;
}

function* offsets(hay: Buffer, needle: Buffer): Generator<number> {
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + 1)) yield i;
}

/** Extract the ELF vmlinux from a bzImage. Throws if no payload decompresses to an ELF file. */
export function extractVmlinux(bzImage: Buffer): { elf: Buffer; compression: string } {
  if (elfSize(bzImage) > 0) return { elf: bzImage, compression: "none" };
  for (const f of FORMATS) {
    let tries = 0;
    for (const off of offsets(bzImage, f.magic)) {
      if (++tries > 8) break;
      const out = f.decompress(bzImage.subarray(off));
      const size = out ? elfSize(out) : 0;
      if (out && size > 0 && size <= out.length) return { elf: out, compression: f.name };
    }
  }
  throw new Error("extract-vmlinux: no lz4/zstd/xz/gzip payload in the kernel image decompresses to an ELF file");
}
