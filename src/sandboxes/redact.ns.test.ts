// Redaction of secret values in exec output, on every output path (buffered,
// NDJSON, WebSocket), against real ns sandboxes: values split across chunk
// boundaries (the command sleeps between the halves), base64 and URL-encoded.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startDaemon, createUser, api, cleanup, cli, type Daemon } from "../testing/harness.js";
import { exec, wsExec, IMAGES_DIR, waitForOutput, RECOVERED } from "../testing/sandbox-api.js";
import { scanText, scanTree } from "../testing/scan.js";
import { BhattiClient } from "../client/index.js";

let d: Daemon;
let alice: string;
const outputs: string[] = [];
const key = "rk-" + randomBytes(12).toString("hex");
const pass = "p@ss word/" + randomBytes(6).toString("hex") + "&x=1";
const enc = encodeURIComponent(pass);
// Prints: the key in two writes 300 ms apart (two chunks), its base64, the password URL-encoded (from plain env), and a file secret.
const SCRIPT = `printf 'k=%s' "$(echo -n "$API_KEY" | head -c 7)"; sleep 0.3; printf '%s\\n' "$(echo -n "$API_KEY" | tail -c +8)"; ` +
  `echo -n "$API_KEY" | base64; echo "q=$ENC"; cat /home/lohar/pw; echo; echo done >&2; echo -n "$API_KEY" >&2`;

before(async () => {
  d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  alice = createUser(d.dataDir, "alice");
  for (const [name, value] of [["API_KEY", key], ["PASS", pass]]) assert.equal((await api(d, "POST", "/secrets", { key: alice, body: { name, value } })).status, 201);
  for (const [name, redact] of [["red", true], ["plain", false]] as const) {
    const r = await api(d, "POST", "/sandboxes", { key: alice, body: { name, redact, secrets: ["API_KEY", { name: "PASS", path: "/home/lohar/pw" }], env: { ENC: enc } } });
    assert.equal(r.status, 201, r.text);
  }
});
after(async () => {
  for (const sb of (await api(d, "GET", "/sandboxes", { key: alice })).json ?? []) await api(d, "DELETE", `/sandboxes/${sb.id}`, { key: alice });
  outputs.push(d.output());
  await d.stop();
  for (const v of [key, pass]) {
    for (const out of outputs) assert.ok(!scanText(out, v), "daemon output holds no plaintext");
    assert.deepEqual(scanTree(d.dataDir, v), [], "data dir holds no plaintext");
  }
  cleanup(d.dataDir);
});

function assertRedacted(stdout: string, stderr: string): void {
  assert.equal(stdout, `k=[REDACTED:API_KEY]\n[REDACTED:API_KEY]\nq=[REDACTED:PASS]\n[REDACTED:PASS]\n`);
  assert.equal(stderr, "done\n[REDACTED:API_KEY]");
  for (const v of [key, pass]) assert.ok(!scanText(stdout + stderr, v));
  assert.ok(!stdout.includes(enc));
}

test("inspect shows redact; without redaction the same command prints the values (the control)", async () => {
  assert.equal((await api(d, "GET", "/sandboxes/red", { key: alice })).json.redact, true);
  assert.equal((await api(d, "GET", "/sandboxes/plain", { key: alice })).json.redact, false);
  const r = await exec(d, alice, "plain", ["/bin/sh", "-c", SCRIPT]);
  assert.equal(r.stdout, `k=${key}\n${Buffer.from(key).toString("base64")}\nq=${enc}\n${pass}\n`);
});

test("buffered exec: values, split across chunks, base64 and URL-encoded, are redacted on stdout and stderr", async () => {
  const r = await exec(d, alice, "red", ["/bin/sh", "-c", SCRIPT]);
  assertRedacted(r.stdout, r.stderr);
  // Per exec, on a sandbox created without redact.
  const p = await exec(d, alice, "plain", ["/bin/sh", "-c", SCRIPT], { redact: true });
  assertRedacted(p.stdout, p.stderr);
  const bad = await api(d, "POST", "/sandboxes/plain/exec", { key: alice, body: { cmd: ["true"], redact: "yes" } });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error, /redact must be true or false/);
});

test("NDJSON exec: redacted across chunk boundaries (the key arrives in two lines of output)", async () => {
  for (const [sb, extra] of [["red", {}], ["plain", { redact: true }]] as const) {
    const res = await fetch(`${d.url}/sandboxes/${sb}/exec`, {
      method: "POST", headers: { Authorization: `Bearer ${alice}`, "Content-Type": "application/json", Accept: "application/x-ndjson" },
      body: JSON.stringify({ cmd: ["/bin/sh", "-c", SCRIPT], ...extra }),
    });
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    const out = lines.filter((l) => l.type === "stdout").map((l) => l.data).join("");
    const err = lines.filter((l) => l.type === "stderr").map((l) => l.data).join("");
    assert.ok(lines.filter((l) => l.type === "stdout").length >= 2, "output came in several chunks");
    assertRedacted(out, err);
    assert.equal(lines.at(-1).type, "exit");
  }
});

test("WebSocket exec: redacted for a redact sandbox, and with ?redact=1 per exec", async () => {
  const w = await wsExec(d, alice, "red", { cmd: ["/bin/sh", "-c", SCRIPT] });
  assert.equal(w.exit, 0);
  assertRedacted(w.stdout.toString(), w.stderr.toString());
  const ws = await new BhattiClient({ url: d.url, token: alice }).execWebSocket("plain", { cmd: ["/bin/sh", "-c", SCRIPT] }, { redact: true });
  ws.send(JSON.stringify({ type: "eof" }));
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  await new Promise<void>((resolve) => {
    ws.on("message", (data: Buffer, binary: boolean) => { if (binary) (data[0] === 1 ? out : err).push(data.subarray(1)); });
    ws.on("close", () => resolve());
  });
  assertRedacted(Buffer.concat(out).toString(), Buffer.concat(err).toString());
});

test("a redact sandbox keeps redacting the values it received after its secret is replaced, across a daemon restart and a key rotation", async () => {
  await api(d, "POST", "/secrets", { key: alice, body: { name: "API_KEY", value: "rk-new-" + randomBytes(8).toString("hex") } });
  assertRedacted(...(await exec(d, alice, "red", ["/bin/sh", "-c", SCRIPT]).then((r) => [r.stdout, r.stderr] as [string, string])));
  outputs.push(d.output());
  assert.equal(await d.stop(), 0);
  const rot = cli(["key", "rotate", "--data-dir", d.dataDir]);
  assert.equal(rot.code, 0, rot.stderr);
  d = await startDaemon({ dataDir: d.dataDir, args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  await waitForOutput(d, RECOVERED, 60_000);
  assertRedacted(...(await exec(d, alice, "red", ["/bin/sh", "-c", SCRIPT]).then((r) => [r.stdout, r.stderr] as [string, string])));
  // The encrypted copy is in state.db; the plaintext is not.
  assert.deepEqual(scanTree(d.dataDir, key), []);
});
