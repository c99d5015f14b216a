// The streaming redactor on its own (pure logic; the daemon's output paths are
// tested against real sandboxes in src/sandboxes/secrets-extra.ns.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Redactor, encodingsOf, MIN_REDACT_BYTES } from "./redact.js";
import { Rng } from "../testing/rng.js";

const KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c";
const r = new Redactor(new Map([["API_KEY", KEY], ["PASS", "hunter2 with spaces/&?"]]));

/** Runs `text` through a stream cut at the given offsets. */
function through(red: Redactor, text: Buffer, cuts: number[]): string {
  const s = red.stream();
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, text.length]) {
    out.push(s.push(text.subarray(prev, c)));
    prev = c;
  }
  out.push(s.end());
  return Buffer.concat(out).toString();
}

test("raw values are replaced with [REDACTED:NAME], everything else kept byte for byte", () => {
  const text = `token=${KEY}\nagain ${KEY}${KEY} and hunter2 with spaces/&? done\n`;
  assert.equal(r.redact(Buffer.from(text)).toString(),
    "token=[REDACTED:API_KEY]\nagain [REDACTED:API_KEY][REDACTED:API_KEY] and [REDACTED:PASS] done\n");
  const plain = Buffer.from("nothing secret here at all\n");
  assert.deepEqual(r.redact(plain), plain);
});

test("an occurrence split across chunks at every possible position is found", () => {
  const text = Buffer.from(`before ${KEY} after`);
  for (let cut = 0; cut <= text.length; cut++) {
    assert.equal(through(r, text, [cut]), "before [REDACTED:API_KEY] after", `cut at ${cut}`);
  }
  // One byte per chunk.
  assert.equal(through(r, text, [...Array(text.length).keys()].slice(1)), "before [REDACTED:API_KEY] after");
});

test("random chunking never changes the result, never leaks, and holds back at most the longest pattern", () => {
  const g = new Rng(1234);
  const rand = () => g.next();
  for (let round = 0; round < 200; round++) {
    const parts: string[] = [];
    for (let i = 0; i < 6; i++) {
      const pick = Math.floor(rand() * 5);
      parts.push(pick === 0 ? KEY : pick === 1 ? Buffer.from(KEY).toString("base64") : pick === 2 ? encodeURIComponent("hunter2 with spaces/&?") : "x".repeat(Math.floor(rand() * 40)) + KEY.slice(0, Math.floor(rand() * KEY.length)));
    }
    const text = Buffer.from(parts.join(" "));
    const cuts = [...new Set([...Array(4)].map(() => Math.floor(rand() * text.length)))].sort((a, b) => a - b);
    const once = r.redact(text).toString();
    const s = r.stream();
    const out: Buffer[] = [];
    let prev = 0;
    for (const c of [...cuts, text.length]) {
      out.push(s.push(text.subarray(prev, c)));
      assert.ok(s.pending < r.maxLen, "held back less than the longest pattern");
      prev = c;
    }
    out.push(s.end());
    assert.equal(Buffer.concat(out).toString(), once);
    assert.ok(!once.includes(KEY));
    assert.ok(!once.includes(Buffer.from(KEY).toString("base64")));
  }
});

test("base64 (standard and URL-safe) at every alignment inside a longer base64 text", () => {
  for (let pre = 0; pre < 6; pre++) {
    for (let post = 0; post < 4; post++) {
      const payload = Buffer.concat([Buffer.from("P".repeat(pre)), Buffer.from(KEY), Buffer.from("Q".repeat(post))]);
      for (const enc of [payload.toString("base64"), payload.toString("base64url")]) {
        const out = r.redact(Buffer.from(`Authorization: Basic ${enc}\n`)).toString();
        assert.match(out, /\[REDACTED:API_KEY\]/, `pre ${pre} post ${post}: ${enc}`);
        // Whatever is left around the marker cannot decode back to the whole value.
        assert.ok(!Buffer.from(out.replace(/\[REDACTED:API_KEY\]/g, ""), "base64").includes(Buffer.from(KEY)));
      }
    }
  }
});

test("URL-encoded forms: %XX (either case) and + for spaces", () => {
  const v = "hunter2 with spaces/&?";
  for (const enc of [encodeURIComponent(v), encodeURIComponent(v).replace(/%20/g, "+"), encodeURIComponent(v).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())]) {
    assert.equal(r.redact(Buffer.from(`GET /?p=${enc}&x=1`)).toString(), "GET /?p=[REDACTED:PASS]&x=1", enc);
  }
});

test("values too short to redact safely are skipped; overlapping secrets take the longest match", () => {
  assert.equal(new Redactor(new Map([["PIN", "123"]])).empty, true);
  assert.equal(MIN_REDACT_BYTES, 4);
  const o = new Redactor(new Map([["SHORT", "abcd1234"], ["LONG", "abcd1234efgh5678"]]));
  assert.equal(o.redact(Buffer.from("x abcd1234efgh5678 y abcd1234 z")).toString(), "x [REDACTED:LONG] y [REDACTED:SHORT] z");
});

test("non-UTF-8 bytes around a value pass through untouched", () => {
  const text = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from(KEY), Buffer.from([0x80, 0x81])]);
  assert.deepEqual(r.redact(text), Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from("[REDACTED:API_KEY]"), Buffer.from([0x80, 0x81])]));
});

test("a stream with nothing that could start a match holds nothing back (interactive output is not delayed)", () => {
  const s = r.stream();
  assert.equal(s.push(Buffer.from("$ ls\nfile1 file2\n")).toString(), "$ ls\nfile1 file2\n");
  assert.equal(s.pending, 0);
  assert.equal(s.push(Buffer.from("prompt sk-li")).toString(), "prompt ");
  assert.equal(s.pending, 5);
  assert.equal(s.push(Buffer.from("ke\n")).toString(), "sk-like\n");
  assert.ok(encodingsOf(KEY).length >= 5);
});
