// Unit tests of the pure parts of networking: policy validation and
// decisions, CIDR parsing, and the ClientHello reader (against real
// ClientHellos made by node:tls). The behaviour end to end is in network.ns.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:tls";
import { createServer } from "node:net";
import { parseCidr } from "./cidr.js";
import { addressAllowed, hostAllowed, validateNetwork, type NetworkPolicy } from "./policy.js";
import { parseClientHello } from "./sni.js";

const PUB: NetworkPolicy = { egress: "public", allow_hosts: [], allow_cidrs: [] };
const ctx = { privateRanges: [parseCidr("10.0.0.0/8")!, parseCidr("198.51.100.64/26")!], hostAddrs: new Set(["198.51.100.1"]), byName: false };

test("validateNetwork: defaults, normalisation, and clear errors that name the rule", () => {
  assert.deepEqual(validateNetwork(undefined, PUB), PUB);
  assert.deepEqual(validateNetwork({ egress: "deny", allow_hosts: ["API.Example.com.", "*.github.com", "api.example.com"] }, PUB),
    { egress: "deny", allow_hosts: ["api.example.com", "*.github.com"], allow_cidrs: [] });
  for (const [bad, re] of [
    [{ egress: "open" }, /egress must be one of public, deny, none/],
    [{ allow_hosts: ["a b"] }, /allow_hosts\[0\] is not a host name/],
    [{ allow_hosts: ["*.*.x.com"] }, /allow_hosts\[0\]/],
    [{ allow_hosts: ["x.com:443"] }, /no port/],
    [{ allow_cidrs: ["198.51.100.1/24"] }, /host bits must be zero/],
    [{ allow_cidrs: ["127.0.0.0/8"] }, /no policy can open/],
    [{ allow_cidrs: ["169.254.169.254/32"] }, /no policy can open/],
    [{ egress: "none", allow_hosts: ["x.com"] }, /egress none takes no/],
    [{ surprise: 1 }, /unknown field/],
    [{ allow_hosts: Array.from({ length: 65 }, (_, i) => `h${i}.com`) }, /at most 64/],
    ["public", /must be an object/],
  ] as const) assert.throws(() => validateNetwork(bad, PUB), (e: Error) => re.test(e.message), JSON.stringify(bad));
  // a rejected value is never echoed
  assert.throws(() => validateNetwork({ allow_hosts: ["sk-secret value"] }, PUB), (e: Error) => !e.message.includes("sk-secret"));
});

test("hostAllowed: exact names, wildcards match subdomains only, none allows nothing", () => {
  const p: NetworkPolicy = { egress: "deny", allow_hosts: ["api.example.com", "*.github.com"], allow_cidrs: [] };
  assert.ok(hostAllowed(p, "api.example.com"));
  assert.ok(hostAllowed(p, "API.example.com."));
  assert.ok(!hostAllowed(p, "example.com"));
  assert.ok(!hostAllowed(p, "evilapi.example.com"));
  assert.ok(hostAllowed(p, "raw.github.com"));
  assert.ok(hostAllowed(p, "a.b.github.com"));
  assert.ok(!hostAllowed(p, "github.com"));
  assert.ok(!hostAllowed(p, "evilgithub.com"));
  assert.ok(hostAllowed(PUB, "anything.test"));
  assert.ok(!hostAllowed({ egress: "none", allow_hosts: [], allow_cidrs: [] }, "api.example.com"));
});

test("addressAllowed: hard-denied ranges and host addresses whatever the policy; private only by allow_cidrs", () => {
  const open: NetworkPolicy = { egress: "public", allow_hosts: [], allow_cidrs: ["10.1.0.0/16"] };
  for (const ip of ["127.0.0.1", "169.254.169.254", "224.0.0.1", "255.255.255.255", "0.0.0.0"]) assert.equal(addressAllowed(open, ip, ctx).rule, "always_denied", ip);
  assert.equal(addressAllowed(open, "198.51.100.1", ctx).rule, "host_address");
  assert.equal(addressAllowed(open, "10.2.0.1", ctx).rule, "private_range");
  assert.equal(addressAllowed(open, "198.51.100.70", ctx).rule, "private_range"); // another sandbox
  assert.deepEqual(addressAllowed(open, "10.1.2.3", ctx), { ok: true, rule: "allow_cidr" });
  assert.deepEqual(addressAllowed(open, "203.0.113.5", ctx), { ok: true, rule: "public" });
  const deny: NetworkPolicy = { egress: "deny", allow_hosts: ["a.test"], allow_cidrs: [] };
  assert.equal(addressAllowed(deny, "203.0.113.5", ctx).ok, false);
  assert.equal(addressAllowed(deny, "203.0.113.5", { ...ctx, byName: true }).ok, true);
  assert.equal(addressAllowed(deny, "::1", ctx).ok, false);
});

test("parseCidr rejects malformed input", () => {
  for (const s of ["1.2.3.4/33", "1.2.3", "01.2.3.4", "1.2.3.4/8/1", "256.1.1.1", "1.2.3.4/"]) assert.equal(parseCidr(s), null, s);
  assert.equal(parseCidr("198.51.100.0/24")!.text, "198.51.100.0/24");
});

/** The first bytes a real TLS client sends for this servername. */
async function helloFor(servername?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = createServer((s) => s.once("data", (d) => { resolve(d); s.destroy(); srv.close(); }));
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      const c = connect({ host: "127.0.0.1", port, ...(servername ? { servername } : {}), rejectUnauthorized: false });
      c.on("error", () => {});
    });
    srv.on("error", reject);
  });
}

test("parseClientHello reads the SNI of a real ClientHello, in any split, and refuses what is not TLS", async () => {
  const hello = await helloFor("api.example.com");
  assert.deepEqual(parseClientHello(hello), { state: "done", sni: "api.example.com" });
  for (const n of [0, 3, 5, 40, hello.length - 1]) assert.equal(parseClientHello(hello.subarray(0, n)).state, "need-more", `first ${n} bytes`);
  assert.deepEqual(parseClientHello(await helloFor()), { state: "done", sni: null });
  assert.equal(parseClientHello(Buffer.from("GET / HTTP/1.1\r\n\r\n")).state, "invalid");
  // a declared length beyond the bound is refused, not waited for
  assert.equal(parseClientHello(Buffer.from([0x16, 3, 1, 0xff, 0xff])).state, "invalid");
  // garbage inside a well-framed record never throws
  for (let i = 0; i < 200; i++) {
    const junk = Buffer.from(hello);
    for (let j = 0; j < 8; j++) junk[5 + Math.floor(Math.random() * (junk.length - 5))] = Math.floor(Math.random() * 256);
    assert.doesNotThrow(() => parseClientHello(junk));
  }
});
