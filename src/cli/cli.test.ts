// The real CLI binary against a real daemon: setup and connection precedence,
// secret set from argv/stdin/file, list/delete, exit codes, --json.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { statSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { startDaemon, createUser, cli, cleanup, tempDir, api, type Daemon } from "../testing/harness.js";

let d: Daemon;
let key: string;
let home: string;

before(async () => {
  d = await startDaemon();
  key = createUser(d.dataDir, "cli");
  home = tempDir("bhatti-home-");
});
after(async () => { await d.stop(); cleanup(d.dataDir); cleanup(home); });

const run = (args: string[], input?: string | Buffer, env: Record<string, string | undefined> = {}) =>
  cli(args, { input, env: { HOME: home, BHATTI_URL: d.url, BHATTI_TOKEN: key, ...env } });

test("setup checks the connection, writes ~/.bhatti/config.yaml 0600, and later commands use it", () => {
  const h = tempDir("bhatti-home-");
  const bad = cli(["setup", "--url", d.url, "--token", "bht_" + "1".repeat(64)], { env: { HOME: h } });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid api key/);
  assert.throws(() => statSync(join(h, ".bhatti", "config.yaml")), "a bad key writes nothing");
  const ok = cli(["setup", "--url", d.url, "--token", key], { env: { HOME: h } });
  assert.equal(ok.code, 0, ok.stderr);
  const cfg = join(h, ".bhatti", "config.yaml");
  assert.equal(statSync(cfg).mode & 0o777, 0o600);
  assert.match(readFileSync(cfg, "utf8"), /url: http:\/\/127\.0\.0\.1:\d+/);
  const list = cli(["secret", "list", "--json"], { env: { HOME: h } });
  assert.equal(list.code, 0, list.stderr);
  assert.ok(Array.isArray(JSON.parse(list.stdout)));
  cleanup(h);
});

test("precedence: flag > env > config file > default", () => {
  const h = tempDir("bhatti-home-");
  mkdirSync(join(h, ".bhatti"));
  writeFileSync(join(h, ".bhatti", "config.yaml"), `url: ${d.url}\ntoken: bht_${"2".repeat(64)}\n`);
  const fileOnly = cli(["secret", "list"], { env: { HOME: h } });
  assert.match(fileOnly.stderr, /invalid api key/, "config file token used");
  const envWins = cli(["secret", "list"], { env: { HOME: h, BHATTI_TOKEN: key } });
  assert.equal(envWins.code, 0, "env beats config file");
  const flagWins = cli(["secret", "list", "--token", "bht_" + "3".repeat(64)], { env: { HOME: h, BHATTI_TOKEN: key } });
  assert.match(flagWins.stderr, /invalid api key/, "flag beats env");
  const urlFlag = cli(["secret", "list", "--url", "http://127.0.0.1:1"], { env: { HOME: h, BHATTI_TOKEN: key } });
  assert.equal(urlFlag.code, 1);
  assert.match(urlFlag.stderr, /cannot reach the bhatti daemon at http:\/\/127\.0\.0\.1:1/);
  const dflt = cli(["secret", "list"], { env: { HOME: tempDir("bhatti-home-"), BHATTI_TOKEN: key } });
  assert.match(dflt.stderr, /127\.0\.0\.1:8080/, "default url");
  cleanup(h);
});

test("secret set from stdin strips exactly one trailing newline; --from-file keeps the bytes exactly", async () => {
  const fromStdin = run(["secret", "set", "STDIN_V"], "value-line\n\n");
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  const file = join(home, "v.txt");
  writeFileSync(file, "exact\nbytes\n");
  assert.equal(run(["secret", "set", "FILE_V", "--from-file", file]).code, 0);
  // Values can't be read back through the API, so check them where they are decryptable: the store.
  const { readSecretForTest } = await import("../testing/store-peek.js");
  assert.equal(await readSecretForTest(d.dataDir, "cli", "STDIN_V"), "value-line\n");
  assert.equal(await readSecretForTest(d.dataDir, "cli", "FILE_V"), "exact\nbytes\n");
  assert.equal(run(["secret", "set", "ARG_V", "from-arg"]).code, 0);
  assert.equal(await readSecretForTest(d.dataDir, "cli", "ARG_V"), "from-arg");
});

test("secret list prints a NAME / CREATED / UPDATED table, or JSON with --json", () => {
  run(["secret", "set", "LISTED", "x"]);
  const t = run(["secret", "list"]);
  assert.equal(t.code, 0);
  const [head, ...rows] = t.stdout.trim().split("\n");
  assert.match(head, /^NAME\s+CREATED\s+UPDATED$/);
  assert.ok(rows.some((r) => /^LISTED\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+\d{4}-/.test(r)));
  const j = JSON.parse(run(["secret", "list", "--json"]).stdout);
  assert.ok(j.some((s: { name: string }) => s.name === "LISTED"));
});

test("secret delete, and errors: one line on stderr, exit 1 for failures, 2 for usage", () => {
  assert.equal(run(["secret", "set", "DEL_ME", "x"]).code, 0);
  const del = run(["secret", "delete", "DEL_ME", "--json"]);
  assert.equal(del.code, 0);
  assert.deepEqual(JSON.parse(del.stdout), { name: "DEL_ME", deleted: true });
  const again = run(["secret", "delete", "DEL_ME"]);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, 'bhatti: secret "DEL_ME" not found\n');
  const invalid = run(["secret", "set", "1BAD", "v"]);
  assert.equal(invalid.code, 1);
  // the argv warning, then the error: one line
  const [warn, ...err] = invalid.stderr.trim().split("\n");
  assert.match(warn, /^warning: a value given as an argument is visible to other processes/);
  assert.equal(err.length, 1);
  assert.match(err[0], /^bhatti: name must be a valid environment variable name/);
  assert.equal(run(["secret"]).code, 2);
  assert.equal(run(["secret", "set"]).code, 2);
  assert.equal(run(["secret", "list", "--bogus"]).code, 2);
  assert.equal(run(["nonsense"]).code, 2);
  const both = run(["secret", "set", "X", "v", "--from-file", "/etc/hostname"]);
  assert.equal(both.code, 2);
});

test("user commands: create prints the key once, list, rotate-key invalidates the old key, delete refuses then --force", async () => {
  const dir = d.dataDir;
  const created = cli(["user", "create", "--name", "carol", "--max-sandboxes", "2", "--data-dir", dir]);
  assert.equal(created.code, 0);
  const k1 = /(bht_[0-9a-f]{64})/.exec(created.stdout)![1];
  assert.equal((await api(d, "POST", "/secrets", { key: k1, body: { name: "C", value: "v" } })).status, 201);
  const list = JSON.parse(cli(["user", "list", "--json", "--data-dir", dir]).stdout);
  const carol = list.find((u: { name: string }) => u.name === "carol");
  assert.equal(carol.max_sandboxes, 2);
  assert.equal(carol.secrets, 1);
  assert.ok(!JSON.stringify(list).includes(k1), "keys are never listed");
  assert.ok(!JSON.stringify(list).includes("sha256"));
  const dup = cli(["user", "create", "--name", "carol", "--data-dir", dir]);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /already exists/);
  const badName = cli(["user", "create", "--name", "Carol!", "--data-dir", dir]);
  assert.equal(badName.code, 1);
  assert.match(badName.stderr, /\^\[a-z\]\[a-z0-9_-\]\{0,31\}\$/);
  const rot = cli(["user", "rotate-key", "carol", "--json", "--data-dir", dir]);
  const k2 = JSON.parse(rot.stdout).api_key;
  assert.notEqual(k1, k2);
  assert.equal((await api(d, "GET", "/secrets", { key: k1 })).status, 401, "old key fails on the next request");
  assert.equal((await api(d, "GET", "/secrets", { key: k2 })).status, 200);
  const refuse = cli(["user", "delete", "carol", "--data-dir", dir]);
  assert.equal(refuse.code, 1);
  assert.match(refuse.stderr, /still owns 1 secret/);
  assert.equal(cli(["user", "delete", "carol", "--force", "--data-dir", dir]).code, 0);
  assert.equal((await api(d, "GET", "/secrets", { key: k2 })).status, 401);
  assert.equal(cli(["user", "delete", "carol", "--data-dir", dir]).code, 1);
});

test("the daemon finishes in-flight requests on SIGTERM and exits 0", async () => {
  const d2 = await startDaemon();
  const k = createUser(d2.dataDir, "x");
  const inflight = Array.from({ length: 20 }, (_, i) => api(d2, "POST", "/secrets", { key: k, body: { name: `F${i}`, value: "v" } }));
  await new Promise((r) => setTimeout(r, 5));
  const code = d2.stop("SIGTERM");
  const results = await Promise.allSettled(inflight);
  assert.equal(await code, 0);
  const ok = results.filter((r) => r.status === "fulfilled" && r.value.status === 201).length;
  const refused = results.filter((r) => r.status === "rejected").length;
  assert.equal(ok + refused, 20, "every request either completed or was never accepted");
  assert.match(d2.output(), /stopped/);
  cleanup(d2.dataDir);
});

test("a second daemon on the same data dir refuses to start and says who holds it", async () => {
  await assert.rejects(startDaemon({ dataDir: d.dataDir }), (e: Error) => {
    assert.match(e.message, /exited with 1/);
    assert.match(e.message, /another bhatti daemon \(pid \d+\) is already running on this data dir/);
    return true;
  });
  assert.equal((await api(d, "GET", "/health")).status, 200, "the first one is unaffected");
});
