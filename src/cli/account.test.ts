// Through the real CLI against a real daemon: secret set at a terminal (no
// echo), created vs replaced, the argv warning; whoami; user update; user
// create refusing a data dir the daemon does not use; the serve banner;
// template inspect and the missing-secret warning.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { api, cleanup, cli, createUser, startDaemon, tempDir, type Daemon } from "../testing/harness.js";
import { onTty } from "../testing/tty.js";
import { readSecretForTest } from "../testing/store-peek.js";

let d: Daemon;
let key: string;
let env: Record<string, string>;
before(async () => {
  d = await startDaemon();
  key = createUser(d.dataDir, "acct");
  env = { BHATTI_URL: d.url, BHATTI_TOKEN: key, HOME: d.dataDir };
});
after(async () => { await d.stop(); cleanup(d.dataDir); });

test("secret set at a terminal: prompts, does not echo, ends at Enter, says created then replaced", async () => {
  const value = "hunter2-tty-" + process.pid;
  const first = await onTty(["secret", "set", "TTY_V"], { env, waitFor: /hidden; Enter ends/, input: `${value}\r` });
  assert.equal(first.code, 0, first.output);
  assert.ok(!first.output.includes(value), "the value was not echoed");
  assert.match(first.output, /secret TTY_V created/);
  assert.equal(await readSecretForTest(d.dataDir, "acct", "TTY_V"), value);
  // Backspace edits what was typed, and the second set replaces.
  const second = await onTty(["secret", "set", "TTY_V"], { env, waitFor: /hidden; Enter ends/, input: "abX\x7fc\r" });
  assert.equal(second.code, 0, second.output);
  assert.match(second.output, /secret TTY_V replaced/);
  assert.equal(await readSecretForTest(d.dataDir, "acct", "TTY_V"), "abc");
  // Ctrl-C at the prompt: exit 130, nothing stored or changed.
  const aborted = await onTty(["secret", "set", "TTY_V"], { env, waitFor: /hidden; Enter ends/, input: "zzz\x03" });
  assert.equal(aborted.code, 130, aborted.output);
  assert.equal(await readSecretForTest(d.dataDir, "acct", "TTY_V"), "abc");
});

test("secret set: --json says created true/false; a value in argv works but warns on stderr", () => {
  const a = cli(["secret", "set", "ARGV_V", "v1", "--json"], { env });
  assert.equal(a.code, 0, a.stderr);
  assert.equal(JSON.parse(a.stdout).created, true);
  assert.match(a.stderr, /^warning: a value given as an argument is visible to other processes/);
  const b = cli(["secret", "set", "ARGV_V", "--json"], { env, input: "v2\n" });
  assert.equal(b.code, 0, b.stderr);
  assert.equal(JSON.parse(b.stdout).created, false);
  assert.equal(b.stderr, "", "no warning from a pipe");
  const plain = cli(["secret", "set", "ARGV_V"], { env, input: "v3" });
  assert.match(plain.stdout, /^secret ARGV_V replaced/);
});

test("whoami: name, quotas and usage from GET /me; user update changes the quotas for the next request", async () => {
  const other = createUser(d.dataDir, "other", ["--max-sandboxes", "2"]);
  cli(["secret", "set", "MINE"], { env, input: "x" });
  const me = JSON.parse(cli(["whoami", "--json"], { env }).stdout);
  assert.equal(me.name, "acct");
  assert.deepEqual(me.quotas, { max_sandboxes: 5, max_cpus: 4, max_memory_mb: 4096, max_disk_mb: 20480, max_egress: "public" });
  assert.equal(me.usage.sandboxes, 0);
  assert.ok(me.usage.secrets >= 1);
  const them = (await api(d, "GET", "/me", { key: other })).json;
  assert.deepEqual([them.name, them.quotas.max_sandboxes, them.usage.secrets], ["other", 2, 0], "each key sees only its own user");
  assert.equal((await api(d, "GET", "/me")).status, 401);
  const text = cli(["whoami"], { env });
  assert.match(text.stdout, /^user\s+acct\nsandboxes\s+0 of 5\ncpus\s+0 of 4\nmemory\s+0 of 4096 MiB\ndisk\s+0 of 20480 MiB\n/);

  const up = cli(["user", "update", "acct", "--max-cpus", "8", "--max-memory", "2048", "--max-disk", "1024", "--data-dir", d.dataDir, "--json"]);
  assert.equal(up.code, 0, up.stderr);
  assert.deepEqual(JSON.parse(cli(["whoami", "--json"], { env }).stdout).quotas, { max_sandboxes: 5, max_cpus: 8, max_memory_mb: 2048, max_disk_mb: 1024, max_egress: "public" });
  // Bad input: usage errors, and nothing changes.
  for (const bad of [["--max-cpus", "0"], ["--max-cpus", "-1"], ["--max-memory", "lots"], []]) {
    const r = cli(["user", "update", "acct", ...bad, "--data-dir", d.dataDir]);
    assert.equal(r.code, 2, `${bad.join(" ")}: ${r.stderr}`);
  }
  assert.deepEqual(JSON.parse(cli(["whoami", "--json"], { env }).stdout).quotas, { max_sandboxes: 5, max_cpus: 8, max_memory_mb: 2048, max_disk_mb: 1024, max_egress: "public" });
  const ghost = cli(["user", "update", "ghost", "--max-cpus", "2", "--data-dir", d.dataDir]);
  assert.equal(ghost.code, 1);
  assert.match(ghost.stderr, /user "ghost" not found/);
});

test("the serve banner names the exact --data-dir operator commands must use", () => {
  assert.ok(d.output().includes(`--data-dir ${realpathSync(d.dataDir)}`), d.output());
});

test("user create on a data dir with no database and no daemon refuses (nothing created) unless --init", () => {
  const home = tempDir("bhatti-home-");
  const dir = join(home, "elsewhere");
  const r = cli(["user", "create", "--name", "lost", "--data-dir", dir], { env: { HOME: home } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no bhatti database in .*elsewhere and no daemon running there/);
  assert.match(r.stderr, /--data-dir/);
  assert.match(r.stderr, /--init/);
  assert.ok(!existsSync(dir), "no data dir, no database created");
  // The default data dir (~/.bhatti) is treated the same.
  const dflt = cli(["user", "create", "--name", "lost"], { env: { HOME: home } });
  assert.equal(dflt.code, 1);
  assert.ok(!existsSync(join(home, ".bhatti")));
  const ok = cli(["user", "create", "--name", "found", "--data-dir", dir, "--init", "--json"], { env: { HOME: home } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(readdirSync(dir).includes("state.db"));
  cleanup(home);
});

test("template inspect; template create warns about secrets the caller does not have yet", () => {
  cli(["secret", "set", "HAVE_IT"], { env, input: "x" });
  const c = cli(["template", "create", "--name", "tpl", "--secret", "HAVE_IT", "--secret", "NOT_YET", "--env", "A=1"], { env });
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /^warning: you have no secret named NOT_YET yet/);
  assert.doesNotMatch(c.stderr, /HAVE_IT/);
  const quiet = cli(["template", "create", "--name", "tpl2", "--secret", "HAVE_IT"], { env });
  assert.equal(quiet.stderr, "");
  const j = JSON.parse(cli(["template", "inspect", "tpl", "--json"], { env }).stdout);
  assert.deepEqual([j.name, j.secrets, j.env], ["tpl", ["HAVE_IT", "NOT_YET"], { A: "1" }]);
  const t = cli(["template", "inspect", "tpl"], { env });
  assert.match(t.stdout, /^id\s+\S+\nname\s+tpl\n/m);
  assert.match(t.stdout, /secrets\s+HAVE_IT, NOT_YET/);
  const missing = cli(["template", "inspect", "nope"], { env });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /not found/);
});
