// Test-only: looks for a secret's bytes (raw, base64, hex, and JSON-escaped)
// anywhere under a directory tree.
import { readdirSync, lstatSync, readFileSync } from "node:fs";
import { join } from "node:path";

export function needles(value: string): Buffer[] {
  const raw = Buffer.from(value, "utf8");
  return [raw, Buffer.from(raw.toString("base64")), Buffer.from(raw.toString("hex")), Buffer.from(JSON.stringify(value).slice(1, -1))];
}

/** Paths of files under root (modified at or after `since`, if given) that contain any needle. */
export function scanTree(root: string, value: string, opts: { since?: number; maxBytes?: number } = {}): string[] {
  const hits: string[] = [];
  const ns = needles(value);
  const walk = (dir: string) => {
    let names: string[];
    try { names = readdirSync(dir); } catch { return; }
    for (const n of names) {
      const p = join(dir, n);
      let st;
      try { st = lstatSync(p); } catch { continue; }
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        if (opts.since !== undefined && st.mtimeMs < opts.since) continue;
        if (st.size > (opts.maxBytes ?? 256 << 20)) continue;
        let buf: Buffer;
        try { buf = readFileSync(p); } catch { continue; }
        if (ns.some((x) => buf.includes(x))) hits.push(p);
      }
    }
  };
  walk(root);
  return hits;
}

export function scanText(text: string, value: string): boolean {
  const b = Buffer.from(text);
  return needles(value).some((x) => b.includes(x));
}
