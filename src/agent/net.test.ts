// lohar's check of the config drive's net field (netvm, issue 10): only well-formed values reach ip's argv.
import { test } from "node:test";
import assert from "node:assert/strict";
import { validNet } from "./net.js";
import { macFor } from "../net/tap.js";

const good = { mac: "02:62:c6:33:64:42", address: "198.51.100.66", prefix: 30, gateway: "198.51.100.65", nameserver: "198.51.100.65" };

test("validNet accepts the host's shape and refuses anything else", () => {
  assert.deepEqual(validNet(good), good);
  assert.equal(macFor(good.address), good.mac, "the MAC the host derives from the lease");
  for (const bad of [null, "x", {}, { ...good, mac: "02:62:c6:33:64" }, { ...good, address: "198.51.100.256" }, { ...good, gateway: "1.2.3.4 dev lo" },
    { ...good, nameserver: "::1" }, { ...good, prefix: 0 }, { ...good, prefix: 33 }, { ...good, prefix: "30" }, { ...good, address: "-1.2.3.4" }]) {
    assert.equal(validNet(bad), null, JSON.stringify(bad));
  }
});
