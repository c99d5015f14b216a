// The broker's substitution rules as pure functions: which placeholder becomes
// which value where, what is refused, chunk boundaries in bodies, responses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { anyBound, BODY_LIMIT, placeholderInName, Refused, RequestRules } from "./substitute.js";
import { patternTransform } from "./transform.js";
import type { BrokeredSecret } from "./types.js";
import { Readable } from "node:stream";

const OPENAI: BrokeredSecret = { name: "OPENAI", placeholder: "sk-PLACEHOLDERaaaaaaaaaaaaaaaaaaaa", hosts: ["api.openai.test"], inBody: false };
const GH: BrokeredSecret = { name: "GH", placeholder: "ghp_PLACEHOLDERbbbbbbbbbbbbbbbbbbbbbb", hosts: ["*.github.test"], header: "authorization", inBody: false };
const BODY: BrokeredSecret = { name: "BODY", placeholder: "body_PLACEHOLDERcccccccccccccccc", hosts: ["api.openai.test"], inBody: true };
// Values shaped like their placeholders (same length), as the store makes them.
const valueLike = (ph: string) => Buffer.from(ph.replace(/PLACEHOLDER[a-z]+$/, (m) => "V".repeat(m.length - 4) + "1234"));
const V = { OPENAI: valueLike(OPENAI.placeholder), GH: valueLike(GH.placeholder), BODY: valueLike(BODY.placeholder) };
const all = [OPENAI, GH, BODY];
const rulesFor = (host: string | null, values: Record<string, Buffer | null> = V) => new RequestRules(all, host, new Map(Object.entries(values)));
const refusedAs = (fn: () => unknown, secret: string, where: string) => assert.throws(fn, (e: unknown) => e instanceof Refused && e.secret === secret && e.where === where);

test("hosts match like policy patterns: exact, or *.suffix for subdomains only, case-insensitive", () => {
  assert.equal(anyBound(all, "api.openai.test")?.name, "OPENAI");
  assert.equal(anyBound(all, "API.OpenAI.test.")?.name, "OPENAI");
  assert.equal(anyBound(all, "x.api.openai.test"), undefined);
  assert.equal(anyBound(all, "api.github.test")?.name, "GH");
  assert.equal(anyBound(all, "github.test"), undefined, "*.github.test does not match github.test itself");
  assert.equal(anyBound(all, "evilgithub.test"), undefined);
});

test("headers: the placeholder becomes the value towards a bound host, only in the header it is bound to", () => {
  const r = rulesFor("api.openai.test");
  const out = r.headers(["Authorization", `Bearer ${OPENAI.placeholder}`, "X-Other", `k=${OPENAI.placeholder}`]);
  assert.deepEqual(out, ["Authorization", `Bearer ${V.OPENAI}`, "X-Other", `k=${V.OPENAI}`]);
  const g = rulesFor("api.github.test");
  assert.deepEqual(g.headers(["authorization", `token ${GH.placeholder}`]), ["authorization", `token ${V.GH}`]);
  refusedAs(() => g.headers(["x-api-key", GH.placeholder]), "GH", "header");
  refusedAs(() => g.url(`/?t=${GH.placeholder}`), "GH", "url");
});

test("Basic credentials are substituted inside their base64", () => {
  const g = rulesFor("api.github.test");
  const basic = "Basic " + Buffer.from(`x-access-token:${GH.placeholder}`).toString("base64");
  const [, v] = g.headers(["Authorization", basic]);
  assert.equal(Buffer.from(v.slice(6), "base64").toString(), `x-access-token:${V.GH}`);
});

test("another secret's placeholder, in any form, to a host it is not bound to is refused", () => {
  const r = rulesFor("api.openai.test");
  refusedAs(() => r.headers(["authorization", GH.placeholder]), "GH", "header");
  refusedAs(() => r.headers(["x", Buffer.from(`u:${GH.placeholder}`).toString("base64")]), "GH", "header");
  refusedAs(() => r.url(`/q?k=${encodeURIComponent(GH.placeholder)}`), "GH", "url");
  const other = rulesFor("elsewhere.test");
  refusedAs(() => other.headers(["authorization", `Bearer ${OPENAI.placeholder}`]), "OPENAI", "header");
  refusedAs(() => other.url(`/${OPENAI.placeholder}`), "OPENAI", "url");
  // Plain HTTP (no host): nothing substituted, everything refused.
  refusedAs(() => rulesFor(null).headers(["authorization", OPENAI.placeholder]), "OPENAI", "header");
  assert.deepEqual(other.headers(["accept", "*/*"]), ["accept", "*/*"]);
});

test("a deleted secret (value null) is not substituted: its placeholder is refused", () => {
  const r = rulesFor("api.openai.test", { ...V, OPENAI: null });
  refusedAs(() => r.headers(["authorization", OPENAI.placeholder]), "OPENAI", "header");
});

test("the error never carries a value", () => {
  const r = rulesFor("api.openai.test");
  try { r.headers(["a", `${V.OPENAI} ${GH.placeholder}`]); assert.fail("not refused"); } catch (e) {
    assert.ok(!String((e as Error).message).includes(V.OPENAI.toString()));
    assert.ok(!JSON.stringify(e).includes(V.OPENAI.toString()));
  }
});

async function through(r: RequestRules, chunks: Buffer[]): Promise<{ out?: Buffer; err?: Refused }> {
  const set = r.body()!;
  const t = patternTransform(set, (p, at) => {
    const [kind, name] = p.tag!.split(":");
    return kind === "deny" || at + p.bytes.length > BODY_LIMIT ? new Refused(name, "body") : null;
  });
  const parts: Buffer[] = [];
  try {
    for await (const c of Readable.from(chunks).pipe(t)) parts.push(c as Buffer);
    return { out: Buffer.concat(parts) };
  } catch (e) { return { err: e as Refused }; }
}

test("bodies: in-body secrets substituted across every chunk split; others refused", async () => {
  const r = rulesFor("api.openai.test");
  const body = Buffer.from(`{"key":"${BODY.placeholder}","n":1}`);
  for (let cut = 0; cut <= body.length; cut++) {
    const { out } = await through(r, [body.subarray(0, cut), body.subarray(cut)]);
    assert.equal(out?.toString(), `{"key":"${V.BODY}","n":1}`, `split at ${cut}`);
  }
  const one = await through(r, [...Buffer.from(`x${BODY.placeholder}y`)].map((b) => Buffer.from([b])));
  assert.equal(one.out?.toString(), `x${V.BODY}y`);
  const bad = await through(r, [Buffer.from(`{"k":"${OPENAI.placeholder.slice(0, 5)}`), Buffer.from(`${OPENAI.placeholder.slice(5)}"}`)]);
  assert.equal(bad.err?.secret, "OPENAI"); // bound here, but not in-body
  const gh = await through(r, [Buffer.from(GH.placeholder)]);
  assert.equal(gh.err?.secret, "GH");
});

test("bodies: past BODY_LIMIT a placeholder is refused, not substituted", async () => {
  const r = rulesFor("api.openai.test");
  const pad = Buffer.alloc(BODY_LIMIT, 0x61);
  const { err } = await through(r, [pad, Buffer.from(BODY.placeholder)]);
  assert.equal(err?.secret, "BODY");
  assert.equal(err?.where, "body");
});

test("responses: a bound value comes back as its placeholder (same length), across chunks and in headers", async () => {
  const r = rulesFor("api.openai.test");
  const set = r.response()!;
  const text = Buffer.from(`echo: ${V.OPENAI} and ${V.BODY}`);
  for (let cut = 0; cut <= text.length; cut += 3) {
    const s = set.stream();
    const out = Buffer.concat([s.push(text.subarray(0, cut)), s.push(text.subarray(cut)), s.end()]);
    assert.equal(out.toString(), `echo: ${OPENAI.placeholder} and ${BODY.placeholder}`);
    assert.equal(out.length, text.length);
  }
  assert.equal(r.responseHeader(`Bearer ${V.OPENAI}`), `Bearer ${OPENAI.placeholder}`);
  // GH is not bound to this host: its value was never sent, nothing to rewrite.
  assert.equal(r.response()!.patterns.some((p) => p.tag === "GH"), false);
});

test("names: a placeholder in an SNI or DNS name is found, case-insensitively and across labels", () => {
  assert.equal(placeholderInName(all, `${OPENAI.placeholder.toLowerCase()}.evil.test`), "OPENAI");
  assert.equal(placeholderInName(all, `${GH.placeholder.toUpperCase()}.evil.test`), "GH");
  const p = BODY.placeholder.toLowerCase();
  assert.equal(placeholderInName(all, `${p.slice(0, 10)}.${p.slice(10)}.evil.test`), "BODY");
  assert.equal(placeholderInName(all, "api.openai.test"), undefined);
});
