// The native X25519 recipient must produce files that both age implementations
// read: age-encryption's own Decrypter and the standard (Debian) `age` tool.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as age from "age-encryption";
import { spawnSync } from "node:child_process";
import { bech32 } from "@scure/base";
import { NativeX25519Identity, NativeX25519Recipient } from "./x25519.js";
import { ageDecrypt } from "../testing/harness.js";

test("native X25519 recipient: output decrypts with age-encryption and the age tool", async () => {
  const identity = await age.generateX25519Identity();
  const recipient = await age.identityToRecipient(identity);
  const dir = mkdtempSync(join(tmpdir(), "bhatti-x25519-"));
  try {
    const keyFile = join(dir, "key.txt");
    writeFileSync(keyFile, identity + "\n", { mode: 0o600 });
    const d = new age.Decrypter();
    d.addIdentity(identity);
    const values = ["x", "sk-" + "a".repeat(48), "multi\nline\u00e9\u{1f511}", "v".repeat(64 * 1024)];
    const shares = new Set<string>();
    for (const v of values) {
      const e = new age.Encrypter();
      e.addRecipient(new NativeX25519Recipient(recipient));
      const blob = Buffer.from(await e.encrypt(v));
      shares.add(blob.toString("latin1").split("\n")[1]); // "-> X25519 <share>"
      assert.equal(await d.decrypt(blob, "text"), v);
      const r = ageDecrypt(keyFile, blob);
      assert.ok(r.ok, r.err);
      assert.equal(r.out, v);
    }
    assert.equal(shares.size, values.length, "every encryption uses a fresh ephemeral key");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("native X25519 recipient: a file for another key does not decrypt", async () => {
  const mine = await age.generateX25519Identity();
  const other = await age.generateX25519Identity();
  const e = new age.Encrypter();
  e.addRecipient(new NativeX25519Recipient(await age.identityToRecipient(other)));
  const blob = await e.encrypt("value");
  const d = new age.Decrypter();
  d.addIdentity(mine);
  await assert.rejects(d.decrypt(blob, "text"));
});

test("native X25519 recipient: malformed recipients are refused", () => {
  for (const bad of ["", "age1", "AGE-SECRET-KEY-1QQQQ", "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"]) {
    assert.throws(() => new NativeX25519Recipient(bad));
  }
});

const rawKey = (identity: string) => bech32.decodeToBytes(identity.toLowerCase(), false).bytes;

test("native X25519 identity: reads files from age-encryption and from the age tool, refuses others", async () => {
  const identity = await age.generateX25519Identity();
  const recipient = await age.identityToRecipient(identity);
  const d = new age.Decrypter();
  d.addIdentity(new NativeX25519Identity(rawKey(identity)));

  const e = new age.Encrypter();
  e.addRecipient(recipient); // age-encryption's built-in recipient
  assert.equal(await d.decrypt(await e.encrypt("from age-encryption"), "text"), "from age-encryption");

  const tool = spawnSync("age", ["-e", "-r", recipient], { input: "from the age tool" });
  assert.equal(tool.status, 0, tool.stderr.toString());
  assert.equal(await d.decrypt(tool.stdout, "text"), "from the age tool");

  // Two recipients: the identity finds its own stanza whichever comes first.
  const other = await age.generateX25519Identity();
  const two = new age.Encrypter();
  two.addRecipient(new NativeX25519Recipient(await age.identityToRecipient(other)));
  two.addRecipient(new NativeX25519Recipient(recipient));
  assert.equal(await d.decrypt(await two.encrypt("second stanza"), "text"), "second stanza");

  const foreign = new age.Encrypter();
  foreign.addRecipient(await age.identityToRecipient(other));
  await assert.rejects(d.decrypt(await foreign.encrypt("not mine"), "text"));
});
