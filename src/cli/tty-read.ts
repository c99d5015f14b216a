// Reads one line from the terminal without echoing it (for secret values).
// Raw mode: Enter ends, Backspace deletes, Ctrl-U clears, Ctrl-C aborts (130),
// Ctrl-D on an empty line ends with an empty value. The terminal is restored
// on every way out.
export async function readHidden(prompt: string, maxBytes: number): Promise<Buffer> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  let buf: Buffer = Buffer.alloc(0);
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const onData = (d: Buffer) => {
        for (const b of d) {
          if (b === 0x0d || b === 0x0a || (b === 0x04 && buf.length === 0)) { stdin.off("data", onData); resolve(buf); return; }
          if (b === 0x03) { stdin.off("data", onData); reject(new Interrupted()); return; }
          if (b === 0x7f || b === 0x08) buf = dropLastChar(buf);
          else if (b === 0x15) buf = Buffer.alloc(0);
          else {
            if (buf.length >= maxBytes) { stdin.off("data", onData); reject(new Error(`the value is longer than ${maxBytes} bytes`)); return; }
            buf = Buffer.concat([buf, Buffer.of(b)]);
          }
        }
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write("\n");
  }
}

/** Ctrl-C at a prompt: the CLI exits 130 without a message. */
export class Interrupted extends Error {
  constructor() { super("interrupted"); }
}

/** Removes the last UTF-8 character (not just the last byte). */
function dropLastChar(b: Buffer): Buffer {
  let i = b.length - 1;
  while (i > 0 && (b[i] & 0xc0) === 0x80) i--;
  return b.subarray(0, Math.max(i, 0));
}
