// NDJSON lines of a response body as parsed objects, with a bound on a line's
// length (a daemon, or whatever answers in its place, cannot grow the
// client's memory without end).
import { BhattiError } from "./errors.js";

export const MAX_LINE = 8 << 20; // exec lines carry at most one output chunk (1 MiB), base64'd and quoted

export async function* ndjsonLines<T>(body: ReadableStream<Uint8Array>, maxLine = MAX_LINE): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let buf = "";
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) yield parse<T>(line);
      }
      if (buf.length > maxLine) throw new BhattiError(200, `an NDJSON line exceeds ${maxLine} bytes`, new Headers(), "bad_response");
    }
    buf += decoder.decode();
    if (buf.trim()) yield parse<T>(buf);
  } finally {
    reader.cancel().catch(() => {}); // a consumer that stops early ends the stream (and the command)
  }
}

function parse<T>(line: string): T {
  try { return JSON.parse(line) as T; } catch { throw new BhattiError(200, "the daemon sent a line that is not JSON", new Headers(), "bad_response"); }
}
