// Leaf minting: a certificate for the name, from the sandbox CA, that a TLS
// client trusting only that CA accepts (and one for another name it refuses).
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer } from "node:tls";
import { LeafCache } from "./leaf.js";
import { testCa } from "./test-ca.js";
import type { SandboxBroker } from "./types.js";

function brokerWith(ca: { certPem: string; keyPem: string }, id = "sb1"): SandboxBroker & { calls: number } {
  const b = { sandboxId: id, calls: 0, ca: async () => { b.calls++; return ca; }, secrets: () => [], value: async () => null };
  return b;
}

async function handshake(ctx: import("node:tls").SecureContext, caPem: string, servername: string): Promise<string> {
  const srv = createServer({ SNICallback: (_n, cb) => cb(null, ctx) }, (s) => s.end("ok"));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  try {
    return await new Promise<string>((resolve) => {
      const c = connect({ host: "127.0.0.1", port: (srv.address() as { port: number }).port, servername, ca: caPem }, () => { c.end(); resolve("trusted"); });
      c.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
  } finally { srv.close(); }
}

for (const kind of ["ec", "rsa"] as const) {
  test(`a leaf from a ${kind} CA is trusted for its name and only its name`, async () => {
    const ca = await testCa(kind);
    const cache = new LeafCache();
    const b = brokerWith(ca);
    const ctx = await cache.context(b, "api.bhatti.test");
    assert.equal(await handshake(ctx, ca.certPem, "api.bhatti.test"), "trusted");
    assert.equal(await handshake(ctx, ca.certPem, "other.bhatti.test"), "ERR_TLS_CERT_ALTNAME_INVALID");
    const other = await testCa("ec");
    assert.equal(await handshake(ctx, other.certPem, "api.bhatti.test"), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });
}

test("contexts are cached per sandbox and name; the CA is fetched once per sandbox", async () => {
  const ca = await testCa("ec");
  const cache = new LeafCache();
  const b = brokerWith(ca);
  const [a1, a2] = await Promise.all([cache.context(b, "a.test"), cache.context(b, "a.test")]);
  assert.equal(a1, a2);
  const bb = await cache.context(b, "b.test");
  assert.notEqual(a1, bb);
  assert.equal(b.calls, 1);
  const b2 = brokerWith(ca, "sb2");
  assert.notEqual(await cache.context(b2, "a.test"), a1);
  cache.drop("sb1");
  assert.notEqual(await cache.context(b, "a.test"), a1);
});

test("a CA that cannot be used fails the mint and is not cached", async () => {
  const cache = new LeafCache();
  const bad = brokerWith({ certPem: "not a cert", keyPem: "nope" });
  await assert.rejects(cache.context(bad, "a.test"));
  await assert.rejects(cache.context(bad, "a.test"));
  assert.equal(bad.calls, 2);
});
