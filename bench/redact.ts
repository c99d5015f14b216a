// bench/redact: the cost of output redaction (src/secrets/redact.ts), beside a
// bare reference measured in the same run: passing the same chunks through a
// copy (what forwarding output costs at the least). Run: node dist/bench/redact.js
import { randomBytes } from "node:crypto";
import { Redactor } from "../src/secrets/redact.js";
import { printTable, timeit, machine, type Row } from "./stats.js";

const MIB = 1 << 20;
const CHUNK = 64 * 1024; // lohar's output frames are at most this size in practice

function output(bytes: number, secret: string | null): Buffer[] {
  // Text-like output (log lines), with the secret in one line out of 200 when given.
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const l = i % 200 === 7 && secret ? `token=${secret} at line ${i}\n` : `2026-11-30T18:00:00Z info request ${i} served in ${i % 97} ms from 198.51.100.${i % 250}\n`;
    lines.push(l);
    n += l.length;
  }
  const all = Buffer.from(lines.join(""));
  const chunks: Buffer[] = [];
  for (let o = 0; o < all.length; o += CHUNK) chunks.push(all.subarray(o, o + CHUNK));
  return chunks;
}

async function main() {
  const secrets = new Map(Array.from({ length: 10 }, (_, i) => [`SECRET_${i}`, "sk-" + randomBytes(16).toString("hex")] as [string, string]));
  const one = new Map([...secrets].slice(0, 1));
  const red10 = new Redactor(secrets);
  const red1 = new Redactor(one);
  const clean = output(4 * MIB, null);
  const dirty = output(4 * MIB, [...secrets.values()][3]);
  const rows: Row[] = [];
  const pass = (r: Redactor | null, chunks: Buffer[]) => () => {
    if (!r) { for (const c of chunks) Buffer.from(c); return; }
    const s = r.stream();
    for (const c of chunks) s.push(c);
    s.end();
  };
  rows.push({ name: "ref: copy 4 MiB of output in 64 KiB chunks", samples: await timeit(40, pass(null, clean)) });
  rows.push({ name: "redact 4 MiB, 1 secret (6 patterns), no match", ref: "ref: copy 4 MiB of output in 64 KiB chunks", samples: await timeit(40, pass(red1, clean)) });
  rows.push({ name: "redact 4 MiB, 10 secrets (60 patterns), no match", ref: "ref: copy 4 MiB of output in 64 KiB chunks", samples: await timeit(40, pass(red10, clean)) });
  rows.push({ name: "redact 4 MiB, 10 secrets, a match every 200 lines", ref: "ref: copy 4 MiB of output in 64 KiB chunks", samples: await timeit(40, pass(red10, dirty)) });
  const small = [Buffer.from("$ make\ncompiling main.c\n")];
  rows.push({ name: "ref: copy one 24-byte interactive chunk", samples: await timeit(20000, pass(null, small)) });
  rows.push({ name: "redact one 24-byte interactive chunk, 10 secrets", ref: "ref: copy one 24-byte interactive chunk", samples: await timeit(20000, pass(red10, small)) });
  process.stdout.write(`bench/redact on ${machine()}, ${new Date().toISOString()}\n(patterns per secret: raw, base64 whole and its 3 alignment cores, URL-safe forms; ${red10.patterns.length} for 10 secrets)\n\n`);
  printTable("redaction", rows);
}

main().catch((e) => { console.error(e); process.exit(1); });
