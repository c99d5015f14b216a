// Binding rules (pure): hosts as network policy's allow_hosts, header a
// token that is not hop-by-hop, and how a change applies to a stored binding.
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyBinding, bindingChange, validateHeader, validateHosts, MAX_BOUND_HOSTS } from "./binding.js";

test("hosts: normalized like allow_hosts, deduplicated, at most 16, messages name the position", () => {
  assert.deepEqual(validateHosts(["API.Example.com.", "*.example.org", "api.example.com"]), ["api.example.com", "*.example.org"]);
  assert.deepEqual(validateHosts([]), []);
  assert.equal(MAX_BOUND_HOSTS, 16);
  assert.throws(() => validateHosts(Array.from({ length: 17 }, (_, i) => `h${i}.example.com`)), /at most 16/);
  for (const bad of ["*", "*.com", "a.*.com", "http://a.com", "a.com:1", "a.com/x", "-a.com", "a..com", "x".repeat(64) + ".com", "localhost"]) {
    assert.throws(() => validateHosts(["ok.example.com", bad]), /hosts\[1\] is not a host name/, bad);
  }
  assert.throws(() => validateHosts("a.com"), /must be an array/);
  assert.throws(() => validateHosts([1]), /hosts\[0\] must be a string/);
});

test("header: an HTTP token, lower-cased; hop-by-hop, host and content-length refused", () => {
  assert.equal(validateHeader("Authorization"), "authorization");
  assert.equal(validateHeader("X-Api-Key"), "x-api-key");
  assert.equal(validateHeader(null), null);
  for (const h of ["Connection", "keep-alive", "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length"]) assert.throws(() => validateHeader(h), /must not be/, h);
  for (const h of ["", "a b", "a:b", "ä", "x".repeat(65), 5]) assert.throws(() => validateHeader(h), /HTTP header name/, String(h));
});

test("changes: keep, bind (replaces whole), amend (bound only), unbind (explicit)", () => {
  const b = { hosts: ["a.example.com"], header: "authorization", in_body: true };
  assert.deepEqual(bindingChange({}), { kind: "keep" });
  assert.equal(applyBinding(b, bindingChange({})), b, "a rotation keeps the binding");
  assert.equal(applyBinding(null, bindingChange({})), null);
  assert.deepEqual(applyBinding(b, bindingChange({ hosts: ["c.example.com"] })), { hosts: ["c.example.com"], header: null, in_body: false }, "given hosts replace the whole binding");
  assert.deepEqual(applyBinding(b, bindingChange({ header: "x-key" })), { hosts: ["a.example.com"], header: "x-key", in_body: true });
  assert.deepEqual(applyBinding(b, bindingChange({ header: null, in_body: false })), { hosts: ["a.example.com"], header: null, in_body: false });
  assert.throws(() => applyBinding(null, bindingChange({ in_body: true })), /need hosts/);
  assert.equal(applyBinding(b, bindingChange({ hosts: [] })), null);
  assert.throws(() => bindingChange({ hosts: [], in_body: true }), /takes no header or in_body/);
  assert.throws(() => bindingChange({ hosts: ["a.example.com"], in_body: 1 }), /in_body must be true or false/);
  assert.deepEqual(bindingChange({ hosts: null }), { kind: "keep" });
});
