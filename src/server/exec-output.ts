// Buffered exec output: capped collection, and a JSON response written in
// pieces (never one string of the whole output) at the pace the client reads.
import type { ServerResponse } from "node:http";
import { isUtf8 } from "node:buffer";
import { StringDecoder } from "node:string_decoder";

/** Default cap on each of stdout and stderr of a buffered exec, and the most a request may ask for. */
export { DEFAULT_OUTPUT_CAP, MAX_OUTPUT_CAP } from "../api/exec.js";

/** Keeps the first `cap` bytes; the rest is counted and dropped. */
export class CappedOutput {
  private readonly parts: Buffer[] = [];
  private kept = 0;
  truncated = false;

  constructor(private readonly cap: number) {}

  add(b: Buffer): void {
    const room = this.cap - this.kept;
    if (b.length > room) this.truncated = true;
    if (room <= 0) return;
    const piece = b.length > room ? Buffer.from(b.subarray(0, room)) : b;
    this.parts.push(piece);
    this.kept += piece.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts, this.kept);
  }
}

const PIECE = 48 * 1024; // a multiple of 3: base64 pieces concatenate cleanly

function write(res: ServerResponse, s: string): Promise<void> | void {
  if (res.destroyed || res.write(s)) return;
  return new Promise<void>((resolve) => {
    const done = () => { res.off("drain", done); res.off("close", done); resolve(); };
    res.on("drain", done);
    res.on("close", done);
  });
}

/**
 * Writes `{...fields, <key>: text | <key>_base64: base64, <key>_truncated?: true, ...}`
 * as a 200 JSON response: text when the bytes are valid UTF-8, else base64.
 */
export async function sendExecJson(res: ServerResponse, fields: Record<string, unknown>, outputs: [string, CappedOutput][]): Promise<void> {
  res.writeHead(200, { "Content-Type": "application/json" });
  const head = JSON.stringify(fields);
  await write(res, head.slice(0, -1));
  let first = head === "{}";
  for (const [key, out] of outputs) {
    const data = out.bytes();
    const text = isUtf8(data);
    await write(res, `${first ? "" : ","}${JSON.stringify(text ? key : `${key}_base64`)}:"`);
    first = false;
    const dec = new StringDecoder("utf8");
    for (let off = 0; off < data.length && !res.destroyed; off += PIECE) {
      const slice = data.subarray(off, off + PIECE);
      await write(res, text ? JSON.stringify(dec.write(slice)).slice(1, -1) : slice.toString("base64"));
    }
    if (text) await write(res, JSON.stringify(dec.end()).slice(1, -1));
    await write(res, `"${out.truncated ? `,${JSON.stringify(`${key}_truncated`)}:true` : ""}`);
  }
  res.end("}");
}
