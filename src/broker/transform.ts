// A body stream through a PatternSet: replacements made across chunk
// boundaries (holding back at most the longest pattern minus one byte), and a
// check on every match that may fail the stream (a refused placeholder: the
// bytes of the match are never passed on). Backpressure is the Transform's.
import { Transform } from "node:stream";
import type { Pattern, PatternSet } from "../secrets/redact.js";

/** `check` returns an error to fail the stream at this match, or null to let the replacement through. */
export function patternTransform(set: PatternSet, check?: (p: Pattern, offset: number) => Error | null): Transform {
  let failed: Error | null = null;
  const s = set.stream(check ? (p, at) => { failed ??= check(p, at); } : undefined);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const out = s.push(chunk);
      if (failed) return cb(failed);
      cb(null, out.length ? out : undefined);
    },
    flush(cb) {
      const out = s.end();
      if (failed) return cb(failed);
      cb(null, out.length ? out : undefined);
    },
  });
}
