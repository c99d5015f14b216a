// The native age format (age-native.ts) through the Keyring: its files must be
// read by age-encryption and the standard `age` tool, it must read theirs, it
// must refuse every tampered byte, and anything not canonical falls back.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import * as age from "age-encryption";
import { Keyring, generateIdentity } from "./keyring.js";
import { ageDecrypt } from "../testing/harness.js";

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const SIZES = [0, 1, 37, 65535, 65536, 65537, 2 * 65536, 200_000];
const text = (n: number) => Array.from({ length: n }, (_, i) => "abcdefghé"[i % 9]).join("").slice(0, n);

async function setup() {
  const identity = await generateIdentity();
  const kr = await Keyring.fromIdentity(identity);
  const dir = mkdtempSync(join(tmpdir(), "bhatti-age-native-"));
  dirs.push(dir); // a test key pair: never left in /tmp
  const keyFile = join(dir, "key.txt");
  writeFileSync(keyFile, identity + "\n", { mode: 0o600 });
  const d = new age.Decrypter();
  d.addIdentity(identity);
  return { identity, kr, dir, keyFile, d };
}

test("native files decrypt with age-encryption and with the age tool, at every chunk boundary", async () => {
  const { kr, dir, keyFile, d } = await setup();
  try {
    for (const n of SIZES) {
      const v = text(n);
      const blob = await kr.encrypt(v);
      assert.equal(await d.decrypt(blob, "text"), v, `age-encryption, ${n} chars`);
      const r = ageDecrypt(keyFile, blob);
      assert.ok(r.ok, `age tool, ${n} chars: ${r.err}`);
      assert.equal(r.out, v);
      assert.equal(await kr.decrypt(blob), v, `native round trip, ${n} chars`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("files written by age-encryption and by the age tool decrypt; multi-recipient files take the fallback (age-encryption)", async () => {
  const { identity, kr, dir, keyFile } = await setup();
  try {
    const recipient = await age.identityToRecipient(identity);
    for (const n of SIZES) {
      const v = text(n);
      const e = new age.Encrypter();
      e.addRecipient(recipient);
      assert.equal(await kr.decrypt(await e.encrypt(v)), v, `age-encryption file, ${n}`);
      const other = await age.identityToRecipient(await age.generateX25519Identity());
      for (const args of [["-r", recipient], ["-r", other, "-r", recipient]]) {
        const r = spawnSync("age", ["-e", ...args], { input: v });
        assert.equal(r.status, 0, r.stderr.toString());
        assert.equal(await kr.decrypt(r.stdout), v, `age ${args.join(" ")}, ${n}`);
      }
    }
    assert.ok(keyFile);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("every tampered byte (header, MAC, nonce, payload, tag) and every truncation is refused", async () => {
  const { kr } = await setup();
  const blob = await kr.encrypt("secret-value-0123456789");
  const ok = async (b: Buffer) => { try { await kr.decrypt(b); return true; } catch { return false; } };
  for (let i = 0; i < blob.length; i++) {
    const t = Buffer.from(blob);
    t[i] ^= 0x01;
    // Flipping a bit of the base64 alphabet may give another valid character of the same value only in no position: every flip must fail.
    assert.equal(await ok(t), false, `flipped byte ${i} of ${blob.length} was accepted`);
  }
  for (const n of [0, 10, 22, blob.length - 40, blob.length - 17, blob.length - 1]) assert.equal(await ok(blob.subarray(0, n)), false, `truncated to ${n}`);
  assert.equal(await ok(Buffer.concat([blob, Buffer.from("x")])), false, "trailing byte");
  // Another key's file.
  const other = await Keyring.fromIdentity(await generateIdentity());
  await assert.rejects(other.decrypt(blob), /no identity matched/);
});

test("each file has a fresh file key, nonce and ephemeral share", async () => {
  const { kr } = await setup();
  const a = await kr.encrypt("same");
  const b = await kr.encrypt("same");
  assert.notDeepEqual(a, b);
  assert.notEqual(a.toString("latin1").split("\n")[1], b.toString("latin1").split("\n")[1]);
});

test("hkdf32 equals node:crypto's hkdfSync (empty and given salt)", async () => {
  const { hkdf32 } = await import("./hkdf.js");
  const { hkdfSync, randomBytes } = await import("node:crypto");
  for (const salt of [Buffer.alloc(0), randomBytes(16), randomBytes(64)]) {
    const ikm = randomBytes(32);
    assert.deepEqual(hkdf32(ikm, salt, "payload"), Buffer.from(hkdfSync("sha256", ikm, salt, "payload", 32)));
  }
});
