// Hostile volume attachments are refused with the rule named.
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateGuestPath, validateSize, validateVolumeMounts } from "./validate.js";

test("volume paths: absolute, no . or .., not over the system's or bhatti's own mounts", () => {
  assert.equal(validateGuestPath("/data"), "/data");
  assert.equal(validateGuestPath("/home/lohar//vol/"), "/home/lohar/vol");
  for (const [p, re] of [
    ["/", /absolute path of letters/], ["//", /may not be \//], ["data", /absolute/], ["/a/../b", /\.\. components/], ["/./a", /\. or \.\./],
    ["/proc", /under \/proc/], ["/sys/x", /under \/sys/], ["/dev", /under \/dev/], ["/run/bhatti/agent", /under \/run/],
    ["/opt/bhatti", /under \/opt\/bhatti/], ["/etc/passwd", /under \/etc/], ["/a b", /absolute path of letters/],
    ["/a\u0000b", /absolute path/], ["/" + "a".repeat(300), /at most 256/], [5, /absolute path/],
  ] as const) assert.throws(() => validateGuestPath(p), re, String(p));
});

test("volume mounts: strings and objects, no duplicates, no overlapping paths, at most 8", () => {
  assert.deepEqual(validateVolumeMounts(["a:/x", "b:/y:ro", { name: "c", path: "/z", ro: true }]), [
    { name: "a", path: "/x", ro: false }, { name: "b", path: "/y", ro: true }, { name: "c", path: "/z", ro: true },
  ]);
  assert.deepEqual(validateVolumeMounts(undefined), []);
  assert.throws(() => validateVolumeMounts("a:/x"), /must be an array/);
  assert.throws(() => validateVolumeMounts(["a:/x", "a:/y"]), /listed twice/);
  assert.throws(() => validateVolumeMounts(["a:/x", "b:/x/y"]), /overlap/);
  assert.throws(() => validateVolumeMounts(["a:/x:rx"]), /NAME:\/path or NAME:\/path:ro/);
  assert.throws(() => validateVolumeMounts([{ name: "a", path: "/x", ro: "yes" }]), /ro must be a boolean/);
  assert.throws(() => validateVolumeMounts(Array.from({ length: 9 }, (_, i) => `v${i}:/p${i}`)), /at most 8/);
  assert.throws(() => validateSize(15), /between 16 and 65536/);
  assert.throws(() => validateSize(1.5), /integer/);
});
