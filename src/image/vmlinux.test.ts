// extract-vmlinux against payloads made by the real lz4/gzip tools, and the LZ4
// decoder against the lz4 tool's legacy format (the one the kernel uses).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { elfSize, extractVmlinux, lz4Legacy } from "./vmlinux.js";

function tool(cmd: string, args: string[], input: Buffer): Buffer {
  const r = spawnSync(cmd, args, { input, maxBuffer: 256 << 20 });
  assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
  return r.stdout;
}

/** A fake ELF64 whose section headers end exactly at `size`; compressible but not trivial. */
function fakeElf(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4096) randomBytes(512).copy(b, i); // mix of random and zero runs
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2;
  const shnum = 4;
  const shentsize = 64;
  b.writeBigUInt64LE(BigInt(size - shnum * shentsize), 0x28);
  b.writeUInt16LE(shentsize, 0x3a);
  b.writeUInt16LE(shnum, 0x3c);
  return b;
}

test("elfSize reads the section header table end", () => {
  assert.equal(elfSize(fakeElf(100_000)), 100_000);
  assert.equal(elfSize(randomBytes(100)), 0);
});

test("lz4Legacy decodes the lz4 tool's legacy frames across several 8 MiB blocks", () => {
  const elf = fakeElf(20 * 1048576 + 12345);
  const packed = tool("lz4", ["-l", "-c", "-9"], elf);
  const out = lz4Legacy(packed);
  assert.ok(out && out.equals(elf));
});

test("extractVmlinux finds an lz4 payload behind a setup header, with trailing bytes", () => {
  const elf = fakeElf(9 * 1048576);
  const payload = tool("lz4", ["-l", "-c"], elf);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32LE(elf.length); // what the kernel's mkpiggy appends
  const bz = Buffer.concat([randomBytes(30_000).fill(0x90, 0, 16), payload, trailer, randomBytes(1000)]);
  const r = extractVmlinux(bz);
  assert.equal(r.compression, "lz4");
  assert.ok(r.elf.subarray(0, elf.length).equals(elf));
});

test("extractVmlinux handles gzip payloads too", () => {
  const elf = fakeElf(2 * 1048576);
  const bz = Buffer.concat([Buffer.alloc(5000, 1), tool("gzip", ["-c"], elf), randomBytes(64)]);
  const r = extractVmlinux(bz);
  assert.equal(r.compression, "gzip");
  assert.ok(r.elf.equals(elf));
});

test("extractVmlinux rejects an image without a kernel payload", () => {
  assert.throws(() => extractVmlinux(Buffer.alloc(100_000, 7)), /no lz4\/zstd\/xz\/gzip payload/);
});
