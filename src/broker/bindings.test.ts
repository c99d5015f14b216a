// Secret bindings (issue 11) through a real daemon and the real CLI: set,
// list, rotate (keeps the binding), rebind without a value, unbind, delete;
// hostile input refused naming the rule with nothing changed; another user's
// names invisible. No sandbox is needed for any of this.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startDaemon, createUser, api, cleanup, cli, type Daemon } from "../testing/harness.js";
import { scanText, scanTree } from "../testing/scan.js";

let d: Daemon;
let alice: string;
let bob: string;
const alnum = (n: number) => [...randomBytes(n)].map((b) => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[b % 62]).join("");
const sk = "sk-proj-" + alnum(48);
const sk2 = "sk-proj-" + alnum(48);
const gh = "ghp_" + alnum(36);
const values = [sk, sk2, gh];
const conn = () => ({ BHATTI_URL: d.url, BHATTI_TOKEN: alice });

before(async () => {
  d = await startDaemon({ args: ["--rate-limit", "0"] });
  alice = createUser(d.dataDir, "alice");
  bob = createUser(d.dataDir, "bob");
});
after(async () => {
  const out = d.output();
  assert.equal(await d.stop(), 0);
  for (const v of values) {
    assert.deepEqual(scanTree(d.dataDir, v), [], "data dir holds no plaintext");
    assert.ok(!scanText(out, v), "daemon output holds no plaintext");
  }
  cleanup(d.dataDir);
});

const list = async (key = alice) => (await api(d, "GET", "/secrets", { key })).json as Record<string, unknown>[];

test("bind, list, rotate keeps the binding, rebind without a value, unbind, delete", async () => {
  const c = await api(d, "POST", "/secrets", { key: alice, body: { name: "OPENAI", value: sk, hosts: ["API.OpenAI.com.", "*.example.com", "api.openai.com"], header: "Authorization" } });
  assert.equal(c.status, 201, c.text);
  assert.deepEqual(c.json.hosts, ["api.openai.com", "*.example.com"], "normalized (lower case, no trailing dot) and deduplicated, like allow_hosts");
  assert.equal(c.json.header, "authorization");
  assert.equal(c.json.in_body, false);
  assert.equal(c.json.version, 1);
  assert.ok(!values.some((v) => c.text.includes(v)));
  await api(d, "POST", "/secrets", { key: alice, body: { name: "PLAIN", value: "plain-value" } });
  let l = await list();
  const o = l.find((s) => s.name === "OPENAI")!;
  assert.deepEqual(Object.keys(o).sort(), ["created_at", "header", "hosts", "in_body", "name", "updated_at", "version"]);
  assert.deepEqual(o.hosts, ["api.openai.com", "*.example.com"]);
  assert.deepEqual(Object.keys(l.find((s) => s.name === "PLAIN")!).sort(), ["created_at", "name", "updated_at", "version"], "an unbound secret lists exactly as before");

  // A plain rotation keeps the binding (unbinding is explicit).
  const r = await api(d, "POST", "/secrets", { key: alice, body: { name: "OPENAI", value: sk2 } });
  assert.equal(r.status, 200);
  assert.equal(r.json.version, 2);
  assert.deepEqual(r.json.hosts, ["api.openai.com", "*.example.com"]);
  assert.equal(r.json.header, "authorization");

  // Only the binding: no value, the version stays; given hosts replace the whole binding.
  const b = await api(d, "POST", "/secrets", { key: alice, body: { name: "OPENAI", hosts: ["api.openai.com"], in_body: true } });
  assert.equal(b.status, 200, b.text);
  assert.equal(b.json.version, 2, "a binding change is not a new value");
  assert.deepEqual(b.json.hosts, ["api.openai.com"]);
  assert.equal(b.json.header, undefined, "no header given with hosts: any header");
  assert.equal(b.json.in_body, true);
  // header / in_body alone amend a bound secret.
  const a = await api(d, "POST", "/secrets", { key: alice, body: { name: "OPENAI", header: "X-Api-Key" } });
  assert.equal(a.status, 200, a.text);
  assert.deepEqual([a.json.hosts, a.json.header, a.json.in_body], [["api.openai.com"], "x-api-key", true]);

  // Unbind: explicit, the fields go.
  const u = await api(d, "POST", "/secrets", { key: alice, body: { name: "OPENAI", hosts: [] } });
  assert.equal(u.status, 200, u.text);
  assert.deepEqual(Object.keys(u.json).sort(), ["created_at", "name", "updated_at", "version"]);
  l = await list();
  assert.equal(l.find((s) => s.name === "OPENAI")!.hosts, undefined);
  // Bind the stored value again, without sending it.
  const again = await api(d, "POST", "/secrets", { key: alice, body: { name: "OPENAI", hosts: ["api.openai.com"] } });
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.json.hosts, ["api.openai.com"]);

  // The audit trail names hosts and versions, never a value.
  const ev = await api(d, "GET", "/events?type=secret.set", { key: alice });
  const mine = ev.json.events.filter((e: { object: string }) => e.object === "OPENAI");
  assert.deepEqual(mine.map((e: { detail: { version: number } }) => e.detail.version), [1, 2, 2, 2, 2, 2]);
  assert.deepEqual(mine[0].detail.hosts, ["api.openai.com", "*.example.com"]);
  assert.equal(mine[4].detail.unbound, true);
  assert.equal(mine[2].detail.binding_only, true);
  assert.ok(!values.some((v) => ev.text.includes(v)));

  assert.equal((await api(d, "DELETE", "/secrets/OPENAI", { key: alice })).status, 204);
  assert.ok(!(await list()).some((s) => s.name === "OPENAI"));
});

test("hostile input is refused naming the rule, and nothing stored changes", async () => {
  assert.equal((await api(d, "POST", "/secrets", { key: alice, body: { name: "KEEP", value: gh, hosts: ["api.github.com"], header: "authorization" } })).status, 201);
  assert.equal((await api(d, "POST", "/secrets", { key: alice, body: { name: "LOOSE", value: "x" } })).status, 201);
  const before = JSON.stringify(await list());
  const eventsBefore = (await api(d, "GET", "/events?limit=1000", { key: alice })).json.events.length;
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["hosts not an array", { name: "KEEP", value: gh, hosts: "api.github.com" }, /hosts must be an array of host names/],
    ["17 hosts", { name: "KEEP", value: gh, hosts: Array.from({ length: 17 }, (_, i) => `h${i}.example.com`) }, /at most 16/],
    ["a URL", { name: "KEEP", value: gh, hosts: ["https://api.github.com"] }, /hosts\[0\] is not a host name/],
    ["a port", { name: "KEEP", value: gh, hosts: ["api.github.com:443"] }, /hosts\[0\] is not a host name/],
    ["a path", { name: "KEEP", value: gh, hosts: ["ok.example.com", "api.github.com/x"] }, /hosts\[1\] is not a host name/],
    ["a bare star", { name: "KEEP", value: gh, hosts: ["*"] }, /not a host name/],
    ["a star on a TLD", { name: "KEEP", value: gh, hosts: ["*.com"] }, /not a host name/],
    ["a star in the middle", { name: "KEEP", value: gh, hosts: ["api.*.com"] }, /not a host name/],
    ["an IP-less empty name", { name: "KEEP", value: gh, hosts: [""] }, /not a host name/],
    ["a space", { name: "KEEP", value: gh, hosts: ["a b.example.com"] }, /not a host name/],
    ["a number", { name: "KEEP", value: gh, hosts: [42] }, /hosts\[0\] must be a string/],
    ["header host", { name: "KEEP", value: gh, hosts: ["api.github.com"], header: "Host" }, /header must not be host/],
    ["header content-length", { name: "KEEP", value: gh, hosts: ["api.github.com"], header: "Content-Length" }, /must not be content-length/],
    ["header hop-by-hop", { name: "KEEP", value: gh, hosts: ["api.github.com"], header: "Transfer-Encoding" }, /hop-by-hop/],
    ["header proxy-authorization", { name: "KEEP", value: gh, hosts: ["api.github.com"], header: "proxy-authorization" }, /hop-by-hop/],
    ["header not a token", { name: "KEEP", value: gh, hosts: ["api.github.com"], header: "Auth: x" }, /HTTP header name/],
    ["header empty", { name: "KEEP", value: gh, hosts: ["api.github.com"], header: "" }, /HTTP header name/],
    ["in_body not boolean", { name: "KEEP", value: gh, hosts: ["api.github.com"], in_body: "yes" }, /in_body must be true or false/],
    ["a value too short to hide", { name: "KEEP", value: "ghp_abc", hosts: ["api.github.com"] }, /at least 64 random bits/],
    ["a bound secret rotated to a short value", { name: "KEEP", value: "short-one" }, /at least 64 random bits/],
    ["a non-ASCII value", { name: "KEEP", value: "ключ-" + alnum(30), hosts: ["api.github.com"] }, /printable ASCII/],
    ["binding a stored value too short", { name: "LOOSE", hosts: ["api.github.com"] }, /at least 64 random bits/],
    ["header on an unbound secret", { name: "LOOSE", header: "authorization" }, /need hosts/],
    ["unbind with a header", { name: "KEEP", hosts: [], header: "authorization" }, /takes no header or in_body/],
    ["no value and nothing to change", { name: "KEEP" }, /value must be a string: it is required/],
    ["no value for a new secret", { name: "NEW_ONE", hosts: ["api.github.com"] }, /it is required to create a secret/],
  ];
  for (const [what, body, re] of cases) {
    const r = await api(d, "POST", "/secrets", { key: alice, body });
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.match(r.json.error, re, what);
    assert.ok(!values.some((v) => r.text.includes(v)) && !r.text.includes("short-one") && !r.text.includes("ghp_abc"), `${what}: no value in the error`);
  }
  assert.equal(JSON.stringify(await list()), before, "nothing stored changed");
  assert.equal((await api(d, "GET", "/events?limit=1000", { key: alice })).json.events.length, eventsBefore, "and nothing was recorded");
});

test("another user's bound secret is invisible: same answers as a missing name", async () => {
  assert.equal((await api(d, "POST", "/secrets", { key: alice, body: { name: "ALICE_BOUND", value: sk, hosts: ["api.openai.com"] } })).status, 201);
  assert.ok(!(await list(bob)).some((s) => s.name === "ALICE_BOUND"));
  // Rebinding without a value: as if missing.
  const other = await api(d, "POST", "/secrets", { key: bob, body: { name: "ALICE_BOUND", hosts: [] } });
  const missing = await api(d, "POST", "/secrets", { key: bob, body: { name: "NEVER_THERE", hosts: [] } });
  assert.equal(other.status, 400);
  assert.equal(other.text.replace("ALICE_BOUND", "X"), missing.text.replace("NEVER_THERE", "X"));
  // A sandbox naming it: the same 400 as a missing secret, before anything starts.
  const sb = await api(d, "POST", "/sandboxes", { key: bob, body: { name: "steal", secrets: ["ALICE_BOUND"] } });
  const sb2 = await api(d, "POST", "/sandboxes", { key: bob, body: { name: "steal", secrets: ["NEVER_THERE"] } });
  assert.equal(sb.status, 400);
  assert.equal(sb.text.replace("ALICE_BOUND", "X"), sb2.text.replace("NEVER_THERE", "X"));
  // bob's own secret of that name is his: alice's binding is untouched.
  assert.equal((await api(d, "POST", "/secrets", { key: bob, body: { name: "ALICE_BOUND", value: "bob-" + alnum(20) } })).status, 201);
  assert.deepEqual((await list()).find((s) => s.name === "ALICE_BOUND")!.hosts, ["api.openai.com"]);
  assert.equal((await list(bob)).find((s) => s.name === "ALICE_BOUND")!.hosts, undefined);
});

test("CLI: secret set --host/--header/--in-body, --keep-value, --unbind; list shows HOSTS; --json", () => {
  let r = cli(["secret", "set", "CLI_KEY", "--host", "api.example.com", "--host", "*.example.org", "--header", "Authorization"], { env: conn(), input: gh + "\n" });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /secret CLI_KEY created: version 1/);
  assert.match(r.stdout, /brokered for api\.example\.com, \*\.example\.org \(header authorization only\)/);
  r = cli(["secret", "list"], { env: conn() });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.split("\n")[0], /^NAME\s+VERSION\s+HOSTS\s+CREATED\s+UPDATED$/);
  assert.match(r.stdout, /CLI_KEY\s+1\s+api\.example\.com,\*\.example\.org \[authorization\]/);
  assert.match(r.stdout, /LOOSE\s+1\s+-\s/);
  r = cli(["secret", "set", "CLI_KEY", "--keep-value", "--host", "api.example.com", "--in-body", "--json"], { env: conn() });
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual([j.version, j.hosts, j.header, j.in_body, j.created], [1, ["api.example.com"], undefined, true, false]);
  r = cli(["secret", "set", "CLI_KEY", "--keep-value"], { env: conn() });
  assert.equal(r.code, 2, "usage error");
  r = cli(["secret", "set", "CLI_KEY", "--unbind", "--host", "x.example.com"], { env: conn() });
  assert.equal(r.code, 2);
  r = cli(["secret", "set", "CLI_KEY", "--keep-value", "--unbind"], { env: conn() });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /sandboxes created from now on get the value itself/);
  r = cli(["secret", "list", "--json"], { env: conn() });
  assert.equal(JSON.parse(r.stdout).find((s: { name: string }) => s.name === "CLI_KEY").hosts, undefined);
  // A bad host from the CLI: the daemon's rule, exit 1.
  r = cli(["secret", "set", "CLI_KEY", "--keep-value", "--host", "https://x.example.com"], { env: conn() });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is not a host name/);
  assert.ok(!scanText(r.stdout + r.stderr, gh));
});

test("OpenAPI documents the binding fields", async () => {
  const doc = (await api(d, "GET", "/openapi.json")).json;
  const text = JSON.stringify(doc);
  for (const f of ["hosts", "header", "in_body"]) assert.ok(text.includes(`"${f}"`), f);
});
