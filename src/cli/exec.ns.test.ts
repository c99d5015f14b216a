// The real CLI against real runc sandboxes: exec's exit codes (forwarded, 127,
// 126, 124), --timeout in both modes, -i/-t/-it, --json with stdin, a second
// Ctrl-C, file ls of a file, EPIPE into head, and progress only on a terminal.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { BIN, childEnv, cleanup, cli, createUser, startDaemon, type Daemon } from "../testing/harness.js";
import { IMAGES_DIR } from "../testing/sandbox-api.js";
import { onTty } from "../testing/tty.js";

let d: Daemon;
let env: Record<string, string>;
const run = (args: string[], input?: string) => cli(args, { env, input });

before(async () => {
  d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  env = { BHATTI_URL: d.url, BHATTI_TOKEN: createUser(d.dataDir, "ex"), HOME: d.dataDir };
  const c = run(["create", "--name", "box"]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stderr, "", "no progress output when stderr is not a terminal");
});
after(async () => { run(["destroy", "box"]); await d.stop(); cleanup(d.dataDir); });

test("exec forwards the exit code; 127 when the command does not exist, 126 when it cannot be run", () => {
  assert.equal(run(["exec", "box", "--", "/bin/sh", "-c", "exit 7"]).code, 7);
  const nf = run(["exec", "box", "--", "no-such-command", "x"]);
  assert.equal(nf.code, 127);
  assert.match(nf.stderr, /command not found/);
  assert.equal(run(["file", "write", "box", "/tmp/notexec", "--mode", "0644"], "#!/bin/sh\necho hi\n").code, 0);
  const ne = run(["exec", "box", "--", "/tmp/notexec"]);
  assert.equal(ne.code, 126, ne.stderr);
  assert.match(ne.stderr, /cannot be run/);
  // The same through the buffered API (--json).
  const j = run(["exec", "box", "--json", "--", "no-such-command"]);
  assert.equal(j.code, 127);
  assert.equal(JSON.parse(j.stdout).exit_code, 127);
});

test("--timeout is honoured when streaming and with --json (exit 124), and validated", () => {
  for (const extra of [[], ["--json"]]) {
    const t0 = Date.now();
    const r = run(["exec", "box", "--timeout", "1", ...extra, "--", "/bin/sleep", "20"]);
    assert.equal(r.code, 124, `${extra}: ${r.stderr}`);
    assert.ok(Date.now() - t0 < 10_000, `${extra}: ended after the timeout, not the command`);
    if (extra.length) assert.equal(JSON.parse(r.stdout).timed_out, true);
    else assert.match(r.stderr, /timed out after 1 s/);
  }
  for (const bad of ["abc", "-1", "0", "1e9", ""]) {
    const r = run(["exec", "box", "--timeout", bad, "--", "true"]);
    assert.equal(r.code, 2, `--timeout ${JSON.stringify(bad)}: ${r.stderr}`);
    assert.match(r.stderr, /--timeout must be a number of seconds/);
  }
  assert.equal(run(["exec", "box", "--timeout", "30", "--", "true"]).code, 0, "a command that ends in time is not killed");
});

test("-i forwards stdin; without it the command sees end of input at once (as in Docker)", () => {
  const withI = run(["exec", "-i", "box", "--", "/bin/cat"], "piped in");
  assert.deepEqual([withI.code, withI.stdout], [0, "piped in"]);
  const without = run(["exec", "box", "--", "/bin/cat"], "piped in");
  assert.deepEqual([without.code, without.stdout], [0, ""]);
  // --json with -i: the input goes in the one request.
  const j = run(["exec", "--json", "-i", "box", "--", "/bin/cat"], "json in");
  assert.equal(j.code, 0, j.stderr);
  assert.equal(JSON.parse(j.stdout).stdout, "json in");
  const bin = cli(["exec", "--json", "-i", "box", "--", "/bin/cat"], { env, input: Buffer.from([0xff, 0xfe]) });
  assert.equal(bin.code, 2);
  assert.match(bin.stderr, /stdin must be UTF-8/);
  const tty = run(["exec", "--json", "-t", "box", "--", "true"]);
  assert.equal(tty.code, 2);
  assert.match(tty.stderr, /drop -t or --json/);
});

test("-it on a terminal: the command gets a terminal and our keystrokes", async () => {
  const r = await onTty(["exec", "-it", "box", "--", "/bin/sh", "-c", "tty; read -r line; echo got:$line"], { env, waitFor: /\/dev\/pts\/\d+/, input: "typed\r" });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /got:typed/);
});

test("Ctrl-C: the first is forwarded to the command, a second one exits 130 even if the command ignores it", async () => {
  const p = spawn(BIN, ["exec", "box", "--", "/bin/sh", "-c", "trap '' INT; echo ready; sleep 60"], { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((r) => p.stdout.on("data", (b: Buffer) => { if (b.toString().includes("ready")) r(); }));
  p.kill("SIGINT");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(p.exitCode, null, "the first Ctrl-C did not end the CLI (the command ignores it)");
  const t0 = Date.now();
  p.kill("SIGINT");
  const code = await new Promise<number | null>((r) => p.on("exit", (c) => r(c)));
  assert.equal(code, 130);
  assert.ok(Date.now() - t0 < 3000);
  // and a command that does not ignore it ends with 130 from the first one
  const q = spawn(BIN, ["exec", "box", "--", "/bin/sh", "-c", "echo ready; sleep 60"], { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((r) => q.stdout.on("data", (b: Buffer) => { if (b.toString().includes("ready")) r(); }));
  q.kill("SIGINT");
  assert.equal(await new Promise<number | null>((r) => q.on("exit", (c) => r(c))), 130);
});

test("file ls of a file lists that file; a directory lists its entries", () => {
  run(["file", "write", "box", "/tmp/one.txt"], "12345");
  const f = JSON.parse(run(["file", "ls", "box", "/tmp/one.txt", "--json"]).stdout);
  assert.equal(f.length, 1);
  assert.deepEqual([f[0].name, f[0].type, f[0].size], ["one.txt", "file", 5]);
  const dir = JSON.parse(run(["file", "ls", "box", "/tmp", "--json"]).stdout);
  assert.ok(dir.some((e: { name: string }) => e.name === "one.txt"));
});

test("EPIPE: `bhatti file read … | head -c 10` ends quietly with 141", () => {
  assert.equal(run(["exec", "box", "--", "/bin/sh", "-c", "head -c 4000000 /dev/zero | tr '\\0' x > /tmp/big"]).code, 0);
  const r = spawnSync("bash", ["-c", `"${BIN}" file read box /tmp/big | head -c 10; echo " status=\${PIPESTATUS[0]}"`], { env: childEnv(env), encoding: "utf8" });
  assert.equal(r.stdout, "xxxxxxxxxx status=141\n");
  assert.equal(r.stderr, "", "no stack trace");
});

test("image build: no progress lines when stderr is not a terminal, just the result", () => {
  const r = cli(["image", "build", "minimal", "--images-dir", IMAGES_DIR, "--data-dir", d.dataDir]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.match(r.stdout, /^image minimal (up to date|built) in [\d.]+ s: /);
});

test("progress on a terminal only: create under a tty shows it, and the result line is still printed", async () => {
  const r = await onTty(["create", "--name", "ttybox"], { env });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /creating sandbox ttybox \d+s/);
  assert.match(r.output, /created sandbox ttybox/);
  assert.equal(run(["destroy", "ttybox"]).code, 0);
});
