// The real CLI binary against a real daemon and an ns sandbox: shell with the
// detach key and reattach, exec --detach, ps, logs [-f], kill, and a lost
// connection that names the session and how to reattach. The session even
// outlives the daemon: a restarted daemon finds it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { get } from "node:http";
import { startDaemon, createUser, api, cleanup, cli, childEnv, BIN, type Daemon } from "../../testing/harness.js";
import { IMAGES_DIR } from "../../testing/sandbox-api.js";

let d: Daemon;
let env: Record<string, string>;
const SB = "clisess";
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

before(async () => {
  d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  env = { BHATTI_URL: d.url, BHATTI_TOKEN: createUser(d.dataDir, "carol"), HOME: d.dataDir };
  assert.equal((await api(d, "POST", "/sandboxes", { key: env.BHATTI_TOKEN, body: { name: SB } })).status, 201);
});
after(async () => {
  if (!d) return;
  await api(d, "DELETE", `/sandboxes/${SB}`, { key: env.BHATTI_TOKEN });
  assert.equal(await d.stop(), 0);
  cleanup(d.dataDir);
});

/** `bhatti shell` with a pipe for stdin (no tty here: no raw mode, the keys still pass as bytes). */
function shell(args: string[]) {
  const p = spawn(BIN, ["shell", SB, ...args], { env: childEnv(env), stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  p.stdout.on("data", (b) => (out += b));
  p.stderr.on("data", (b) => (err += b));
  const code = new Promise<number | null>((r) => p.on("exit", (c) => r(c)));
  return {
    p, code,
    get out() { return out.replace(/\r/g, ""); },
    get err() { return err; },
    async until(re: RegExp) {
      const end = Date.now() + 20_000;
      while (!re.test(out.replace(/\r/g, ""))) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${re}: ${JSON.stringify(out.slice(-300))} ${err}`);
        await sleep(20);
      }
    },
  };
}

test("shell: Ctrl-\\ detaches and says how to reattach; ps lists it; logs shows it; --session reattaches with the scrollback; exit code forwarded", async () => {
  const s = shell([]);
  s.p.stdin.write("echo hi-$((1+2))\n");
  await s.until(/hi-3\n/);
  s.p.stdin.write(Buffer.from([0x1c]));
  assert.equal(await s.code, 0);
  const m = /detached from session (s[a-z0-9]+); reattach with: bhatti shell clisess --session (s[a-z0-9]+)/.exec(s.err);
  assert.ok(m, s.err);
  const id = m[1];
  assert.equal(m[2], id);

  const ps = cli(["ps", SB], { env });
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, new RegExp(`^${id}\\s+running\\s+.*yes\\s+0\\s+/bin/sh -l$`, "m"));
  const logs = cli(["logs", SB, id], { env });
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /hi-3/);

  const back = shell(["--session", id]);
  await back.until(/hi-3\n/);
  back.p.stdin.write("exit 5\n");
  assert.equal(await back.code, 5);
  const after = JSON.parse(cli(["ps", SB, "--json"], { env }).stdout).find((x: { id: string }) => x.id === id);
  assert.equal(after.state, "exited");
  assert.equal(after.exit_code, 5);

  const bad = cli(["shell", SB, "--session", "snosuch"], { env });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /no such session/);
  assert.equal(cli(["shell", SB, "--new", "--session", id], { env }).code, 2);
});

test("exec --detach prints a session id; logs -f follows it to its end; kill signals it", async () => {
  const r = cli(["exec", "--detach", SB, "--", "/bin/sh", "-c", "echo bg-start; sleep 1; echo bg-end"], { env });
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^s[a-z0-9]+$/);
  const f = cli(["logs", "-f", SB, id], { env });
  assert.equal(f.stdout, "bg-start\nbg-end\n");

  const long = cli(["exec", "-d", SB, "--", "sleep", "600"], { env }).stdout.trim();
  const k = cli(["kill", SB, long, "--signal", "KILL"], { env });
  assert.equal(k.code, 0, k.stderr);
  assert.match(k.stdout, new RegExp(`sent SIGKILL to session ${long}`));
  await sleep(300);
  const gone = JSON.parse(cli(["ps", SB, "--json"], { env }).stdout).find((x: { id: string }) => x.id === long);
  assert.equal(gone.signal, "SIGKILL");
  assert.equal(cli(["kill", SB, long, "--signal", "rm -rf"], { env }).code, 2);
  assert.match(cli(["logs", SB, "snosuch"], { env }).stderr, /no such session/);
});

test("share prints a one-use link with the token in the fragment; --revoke revokes it", async () => {
  const r = cli(["share", SB, "--ttl", "60"], { env });
  assert.equal(r.code, 0, r.stderr);
  const url = r.stdout.split("\n")[0];
  assert.ok(url.startsWith(`${d.url}/share/#bshr_`), url);
  // A fresh connection (no pooled keep-alive socket: the spawnSync calls above block this event loop past the daemon's keep-alive timeout).
  const status = await new Promise<number | undefined>((resolve, reject) => get(url, { agent: false }, (res) => { res.resume(); resolve(res.statusCode); }).on("error", reject));
  assert.equal(status, 200);
  const rv = cli(["share", SB, "--revoke"], { env });
  assert.equal(rv.code, 0, rv.stderr);
  assert.match(rv.stdout, /revoked 1 link\(s\) and closed 0 terminal\(s\) of clisess/);
  assert.equal(cli(["share", SB, "--ttl", "0"], { env }).code, 2);
});

test("a lost connection prints the session id and the command to reattach; a restarted daemon finds the session", async () => {
  const s = shell([]);
  s.p.stdin.write("echo before-restart\n");
  await s.until(/before-restart\n/);
  assert.equal(await d.stop(), 0);
  assert.equal(await s.code, 1);
  const m = /session (s[a-z0-9]+) runs on.*bhatti shell clisess --session (s[a-z0-9]+)/.exec(s.err);
  assert.ok(m, s.err);
  d = await startDaemon({ dataDir: d.dataDir, args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  env.BHATTI_URL = d.url;
  for (let i = 0; i < 100 && (await api(d, "GET", `/sandboxes/${SB}`, { key: env.BHATTI_TOKEN })).json?.status !== "running"; i++) await sleep(100);
  const back = shell(["--session", m[1]]);
  await back.until(/before-restart\n/);
  back.p.stdin.write("exit\n");
  assert.equal(await back.code, 0);
});
