// No plaintext on the host: after set, replace, delete and key rotation, a
// value's bytes (raw, base64, hex, JSON-escaped) appear nowhere under the data
// dir, the temp dir, or the daemon's output.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { randomBytes } from "node:crypto";
import { startDaemon, createUser, api, cleanup, cli } from "../testing/harness.js";
import { scanTree, scanText } from "../testing/scan.js";

test("a value never reaches the data dir, TMPDIR or daemon output in plaintext", async () => {
  const since = Date.now() - 1000;
  const v1 = "plain1-" + randomBytes(12).toString("hex");
  const v2 = "plain2-" + randomBytes(12).toString("hex");
  const v3 = "plain3-" + randomBytes(12).toString("hex") + "\n\"quoted\" ünïcödé";
  let d = await startDaemon();
  const dir = d.dataDir;
  const k = createUser(dir, "scan");
  const out: string[] = [];
  assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: "A", value: v1 } })).status, 201);
  assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name: "A", value: v2 } })).status, 200);
  // The CLI path too: argv (short-lived, visible to root only here) and stdin.
  assert.equal(cli(["secret", "set", "B", "--url", d.url, "--token", k], { input: v3 }).code, 0);
  // Bad requests that carry a value must not echo it either.
  const bad = await api(d, "POST", "/secrets", { key: k, raw: `{"name":"1bad","value":"${v1}"}` });
  assert.equal(bad.status, 400);
  assert.ok(!scanText(bad.text, v1));
  const broken = await api(d, "POST", "/secrets", { key: k, raw: `{"name":"C","value":"${v1}"` });
  assert.ok(!scanText(broken.text, v1));
  assert.equal((await api(d, "DELETE", "/secrets/A", { key: k })).status, 204);
  out.push(d.output());
  await d.stop();
  const rot = cli(["key", "rotate", "--data-dir", dir]);
  assert.equal(rot.code, 0, rot.stderr);
  out.push(rot.stdout, rot.stderr);
  d = await startDaemon({ dataDir: dir });
  out.push(d.output());
  await d.stop();
  for (const v of [v1, v2, v3]) {
    assert.deepEqual(scanTree(dir, v), [], "data dir (state.db, WAL, key, everything)");
    assert.deepEqual(scanTree(tmpdir(), v, { since }), [], "temp dir");
    for (const o of out) assert.ok(!scanText(o, v), "daemon/CLI output");
  }
  // The scan itself can find things: plant a value and see it found.
  const { writeFileSync } = await import("node:fs");
  writeFileSync(`${dir}/planted`, Buffer.from(v3).toString("base64"));
  assert.equal(scanTree(dir, v3).length, 1);
  cleanup(dir);
});
