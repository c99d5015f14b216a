// Placeholders (pure): shape kept, randomness real, the value never reproduced,
// too-short values refused naming the rule.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { KNOWN_PREFIXES, MIN_PLACEHOLDER_BITS, makePlaceholder, parseShape, placeholderFor, shapeBits, shapeOf, unbrokerable } from "./placeholder.js";

const cls = (c: string) => (/[0-9]/.test(c) ? "9" : /[a-z]/.test(c) ? "a" : /[A-Z]/.test(c) ? "A" : c);

/** Same length, same class at every position (punctuation: the same character). */
function sameShape(p: string, v: string, prefix: string): void {
  assert.equal(p.length, v.length, "same length");
  assert.equal(Buffer.byteLength(p), Buffer.byteLength(v), "same byte length");
  assert.ok(p.startsWith(prefix), `keeps the prefix ${prefix}`);
  for (let i = 0; i < v.length; i++) assert.equal(cls(p[i]), cls(v[i]), `position ${i}: same class`);
}

const alnum = (n: number) => {
  const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return [...randomBytes(n)].map((b) => a[b % a.length]).join("");
};

test("real key formats keep their prefix, length and class per position", () => {
  const keys: [string, string][] = [
    ["sk-proj-" + alnum(40) + "_" + alnum(20) + "-" + alnum(10), "sk-proj-"],
    ["sk-" + alnum(48), "sk-"],
    ["sk-ant-api03-" + alnum(80) + "-" + alnum(6) + "AA", "sk-ant-api03-"],
    ["ghp_" + alnum(36), "ghp_"],
    ["github_pat_" + alnum(22) + "_" + alnum(59), "github_pat_"],
    ["xoxb-1234567890123-1234567890123-" + alnum(24), "xoxb-"],
    ["AKIA" + "IOSFODNN7EXAMPLE", "AKIA"],
    ["glpat-" + alnum(20), "glpat-"],
    ["hf_" + alnum(34), "hf_"],
  ];
  for (const [v, prefix] of keys) {
    const p = makePlaceholder(v);
    sameShape(p, v, prefix);
    assert.notEqual(p, v);
    assert.ok(!p.includes(v) && !v.includes(p));
    // Punctuation stays where it is (SDKs split on it).
    for (let i = 0; i < v.length; i++) if (!/[0-9A-Za-z]/.test(v[i])) assert.equal(p[i], v[i]);
  }
});

test("a hex value stays hex in the same case; base64 punctuation stays", () => {
  const hex = randomBytes(20).toString("hex");
  const p = makePlaceholder(hex);
  assert.match(p, /^[0-9a-f]{40}$/);
  sameShape(p, hex, "");
  const HEX = randomBytes(20).toString("hex").toUpperCase() + "A";
  assert.match(makePlaceholder(HEX), /^[0-9A-F]{41}$/);
  const b64 = randomBytes(30).toString("base64") + "+/=";
  const pb = makePlaceholder(b64);
  sameShape(pb, b64, "");
  assert.ok(pb.endsWith("+/="));
});

test("placeholders are random: many draws, all different, every position varies", () => {
  const v = "sk-" + alnum(32);
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) seen.add(makePlaceholder(v));
  assert.equal(seen.size, 2000, "no repeats in 2000 draws");
  const all = [...seen];
  for (let i = 3; i < v.length; i++) assert.ok(new Set(all.map((p) => p[i])).size > 5, `position ${i} varies`);
  // Letters: the whole alphabet of the class shows up over many draws at one position (uniform, not a subset).
  const lower = "sk-" + "q".repeat(20);
  const at5 = new Set<string>();
  for (let i = 0; i < 3000; i++) at5.add(makePlaceholder(lower)[5]);
  assert.equal(at5.size, 26);
});

test("avoid: a sandbox's placeholders never collide", () => {
  const v = "z".repeat(14);
  const first = makePlaceholder(v);
  for (let i = 0; i < 100; i++) assert.notEqual(makePlaceholder(v, [first]), first);
});

test("too little randomness is refused naming the rule; enough is accepted", () => {
  assert.equal(MIN_PLACEHOLDER_BITS, 64);
  for (const v of ["short", "sk-" + "a".repeat(13), "1".repeat(19), "----------------------------------------", "AKIA" + "1234567890123456", randomBytes(8).toString("hex")]) {
    const why = unbrokerable(v);
    assert.ok(why, `refused: ${v.length} chars`);
    assert.match(why!, /at least 64 random bits/);
    assert.ok(!why!.includes(v), "the message never quotes the value");
    assert.throws(() => makePlaceholder(v), /64 random bits/);
  }
  for (const v of ["q".repeat(14), "1".repeat(20), "sk-" + "q".repeat(14), randomBytes(16).toString("hex")]) assert.equal(unbrokerable(v), null, `${v.length} chars accepted`);
  assert.ok(shapeBits(shapeOf("q".repeat(14))) >= 64);
  // Hex letters draw from a-f only: a hex value needs more characters.
  assert.ok(unbrokerable("a".repeat(14)));
  // A known prefix is not randomness: "sk-proj-" + 13 letters is refused, 14 are enough.
  assert.ok(unbrokerable("sk-proj-" + "x".repeat(13)));
  assert.equal(unbrokerable("sk-proj-" + "x".repeat(14)), null);
});

test("non-ASCII or control characters cannot be bound (they travel in headers)", () => {
  for (const v of ["é".repeat(30) + "a".repeat(20), "a".repeat(30) + "\n", "a".repeat(30) + "\t" + "b"]) {
    assert.match(unbrokerable(v)!, /printable ASCII/);
  }
});

test("the shape stored for a create gives the same placeholders as the value; a malformed one is refused", () => {
  const v = "ghp_" + alnum(36);
  const shape = parseShape(JSON.stringify(shapeOf(v)));
  assert.deepEqual(shape, shapeOf(v));
  sameShape(placeholderFor(shape), v, "ghp_");
  assert.ok(!JSON.stringify(shape).includes(v.slice(4, 12)), "the shape holds classes, not the value's characters");
  assert.throws(() => parseShape('{"p": 1, "b": "a"}'), /malformed/);
  assert.throws(() => placeholderFor({ p: "", b: "aaaa" }), /64 random bits/);
});

test("known prefixes: longest first, only when something follows", () => {
  for (let i = 1; i < KNOWN_PREFIXES.length; i++) assert.ok(KNOWN_PREFIXES[i - 1].length >= KNOWN_PREFIXES[i].length);
  assert.equal(shapeOf("sk-proj-" + "a".repeat(20)).p, "sk-proj-");
  assert.equal(shapeOf("sk-" + "a".repeat(20)).p, "sk-");
  assert.equal(shapeOf("skx" + "a".repeat(20)).p, "");
});
