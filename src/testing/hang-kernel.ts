// Test-only: the smallest kernel QEMU boots through PVH (an ELF with a Xen
// PHYS32_ENTRY note), whose entry halts the CPU forever and prints nothing.
// It stands in for a guest that hangs silently, as a KVM guest does on some
// nested hosts: a QEMU booting it runs until it is killed.

const LOAD = 0x100000; // physical load address (1 MiB)
const EHDR = 64;
const PHDR = 56;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;
const CODE = [0xfa, 0xf4, 0xeb, 0xfd]; // cli; hlt; jmp back to hlt

export function hangKernel(): Buffer {
  const noteOff = EHDR + 2 * PHDR;
  const note = Buffer.alloc(12 + 4 + 8); // namesz, descsz, type, "Xen\0", 64-bit entry
  const codeOff = noteOff + note.length;
  const size = codeOff + CODE.length;
  note.writeUInt32LE(4, 0);
  note.writeUInt32LE(8, 4);
  note.writeUInt32LE(XEN_ELFNOTE_PHYS32_ENTRY, 8);
  note.write("Xen\0", 12, "latin1");
  note.writeBigUInt64LE(BigInt(LOAD + codeOff), 16);

  const b = Buffer.alloc(size);
  b.write("\x7fELF", 0, "latin1");
  b[4] = 2; // 64-bit
  b[5] = 1; // little endian
  b[6] = 1; // ELF version
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(62, 18); // EM_X86_64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BigInt(LOAD + codeOff), 24); // e_entry
  b.writeBigUInt64LE(BigInt(EHDR), 32); // e_phoff
  b.writeUInt16LE(EHDR, 52);
  b.writeUInt16LE(PHDR, 54);
  b.writeUInt16LE(2, 56); // e_phnum
  b.writeUInt16LE(64, 58); // e_shentsize
  const phdr = (i: number, type: number, flags: number, off: number, len: number, align: number): void => {
    const o = EHDR + i * PHDR;
    b.writeUInt32LE(type, o);
    b.writeUInt32LE(flags, o + 4);
    b.writeBigUInt64LE(BigInt(off), o + 8);
    b.writeBigUInt64LE(BigInt(LOAD + off), o + 16); // vaddr
    b.writeBigUInt64LE(BigInt(LOAD + off), o + 24); // paddr
    b.writeBigUInt64LE(BigInt(len), o + 32);
    b.writeBigUInt64LE(BigInt(len), o + 40);
    b.writeBigUInt64LE(BigInt(align), o + 48);
  };
  phdr(0, 1, 5, 0, size, 0x1000); // PT_LOAD, r-x: the whole file
  phdr(1, 4, 4, noteOff, note.length, 4); // PT_NOTE
  note.copy(b, noteOff);
  Buffer.from(CODE).copy(b, codeOff);
  return b;
}
