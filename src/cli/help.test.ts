// The CLI's shape, through the real binary: --version, help for every command
// with a description per flag, did-you-mean, completion, --json errors, and
// --help that starts and changes nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { BIN, REPO, api, cleanup, cli, createUser, startDaemon, tempDir, type Daemon } from "../testing/harness.js";
import { COMMANDS } from "./registry.js";

let d: Daemon;
let key: string;
before(async () => { d = await startDaemon(); key = createUser(d.dataDir, "helpme"); });
after(async () => { await d.stop(); cleanup(d.dataDir); });

test("--version prints the package version and exits 0", () => {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
  for (const flag of ["--version", "-V"]) {
    const r = cli([flag]);
    assert.deepEqual([r.code, r.stdout.trim()], [0, pkg.version]);
  }
});

test("no arguments: the overview on stderr, exit 2; --help: on stdout, exit 0", () => {
  const none = cli([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /Commands:/);
  const help = cli(["--help"]);
  assert.equal(help.code, 0);
  for (const c of COMMANDS) assert.match(help.stdout, new RegExp(`\\n  ${c.name}\\b`), c.name);
});

/** Every "  --flag …" line of a help text, with its description (wrapped lines are joined). */
function optionLines(help: string): string[] {
  const section = help.split(/\nOptions:\n/)[1]?.split(/\n\n/)[0] ?? "";
  return section.split("\n").filter((l) => /^  -/.test(l));
}

test("every command and subcommand has help with a description for each flag; `help CMD` is `CMD --help`", () => {
  for (const c of COMMANDS) {
    const h = cli([c.name, "--help"]);
    assert.equal(h.code, 0, `${c.name}: ${h.stderr}`);
    assert.equal(cli(["help", c.name]).stdout, h.stdout, `help ${c.name}`);
    const subs = [...(h.stdout.split("\nCommands:\n")[1] ?? "").matchAll(/^  ([a-z][a-z-]*) (?:\[options\]|<|\[)/gm)].map((m) => m[1]).filter((s) => s !== "help");
    for (const words of [[c.name], ...subs.map((s) => [c.name, s])]) {
      const text = cli([...words, "--help"]).stdout;
      const lines = optionLines(text);
      assert.ok(lines.length > 0, `${words.join(" ")} lists its flags`);
      for (const l of lines) assert.match(l, /^  \S.*\S {2,}\S/, `${words.join(" ")}: a flag without a description: ${l}`);
    }
  }
});

test("--help starts nothing: `serve --help` opens no port and creates no data dir", () => {
  const home = tempDir("bhatti-home-");
  const dataDir = join(home, "never");
  const r = spawnSync(BIN, ["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--help"], { env: { ...process.env, HOME: home }, encoding: "utf8", timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /--listen <host:port>/);
  assert.doesNotMatch(r.stdout + r.stderr, /listening/);
  assert.ok(!existsSync(dataDir), "no data dir was created");
  cleanup(home);
});

test("--help changes nothing: `create --help` and `secret set X v --help` create nothing", async () => {
  const env = { BHATTI_URL: d.url, BHATTI_TOKEN: key };
  const c = cli(["create", "--name", "nope", "--help"], { env });
  assert.equal(c.code, 0);
  assert.match(c.stdout, /--name <name>/);
  const s = cli(["secret", "set", "NOPE", "v", "--help"], { env });
  assert.equal(s.code, 0);
  assert.deepEqual((await api(d, "GET", "/sandboxes", { key })).json, []);
  assert.deepEqual((await api(d, "GET", "/secrets", { key })).json, []);
});

test("a typo gets a suggestion and exit 2; so does an unknown flag", () => {
  const r = cli(["creat", "--name", "x"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command 'creat'/);
  assert.match(r.stderr, /Did you mean create\?/);
  const sub = cli(["secret", "lst"]);
  assert.equal(sub.code, 2);
  assert.match(sub.stderr, /Did you mean list\?/);
  const execFlags = cli(["exec", "box", "ls", "-la"]);
  assert.equal(execFlags.code, 2);
  assert.match(execFlags.stderr, /put the command after --/);
  const flag = cli(["list", "--jsn"]);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /unknown option '--jsn'[\s\S]*Did you mean --json\?/);
});

test("--json: errors are one JSON object on stderr with error and code, same exit codes", () => {
  const unreachable = cli(["list", "--json", "--url", "http://127.0.0.1:1", "--token", key]);
  assert.equal(unreachable.code, 1);
  assert.equal(unreachable.stdout, "");
  assert.deepEqual(JSON.parse(unreachable.stderr), { error: "cannot reach the bhatti daemon at http://127.0.0.1:1", code: "unreachable" });
  const usage = cli(["exec", "sb", "--json", "--timeout", "abc", "--", "true"]);
  assert.equal(usage.code, 2);
  const u = JSON.parse(usage.stderr);
  assert.equal(u.code, "usage");
  assert.match(u.error, /--timeout must be a number of seconds/);
  const missing = cli(["secret", "delete", "NOPE", "--json"], { env: { BHATTI_URL: d.url, BHATTI_TOKEN: key } });
  assert.equal(missing.code, 1);
  const m = JSON.parse(missing.stderr);
  assert.match(m.error, /secret "NOPE" not found/);
  assert.match(m.code, /^[a-z][a-z0-9_]*$/, "the API's code, or http_<status> when it gives none");
  const typo = cli(["lst", "--json"]);
  assert.equal(typo.code, 2);
  assert.deepEqual(JSON.parse(typo.stderr), { error: "unknown command 'lst' (Did you mean list?)", code: "usage" });
  // Without --json the same failure is one plain line.
  const plain = cli(["list", "--url", "http://127.0.0.1:1", "--token", key]);
  assert.equal(plain.stderr, "bhatti: cannot reach the bhatti daemon at http://127.0.0.1:1\n");
});

test("completion: bash and zsh scripts that complete commands, subcommands and flags", () => {
  const bash = cli(["completion", "bash"]);
  assert.equal(bash.code, 0);
  const dir = tempDir("bhatti-comp-");
  const file = join(dir, "bhatti.bash");
  writeFileSync(file, bash.stdout);
  const complete = (words: string[]) => {
    const script = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _bhatti; echo "\${COMPREPLY[*]}"`;
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim().split(/\s+/);
  };
  assert.deepEqual(complete(["bhatti", "sec"]), ["secret"]);
  assert.deepEqual(complete(["bhatti", "secret", "d"]), ["delete"]);
  assert.ok(complete(["bhatti", "exec", "--ti"]).includes("--timeout"));
  assert.ok(complete(["bhatti", "user", "update", "--max-c"]).includes("--max-cpus"));
  const zsh = cli(["completion", "zsh"]);
  assert.equal(zsh.code, 0);
  assert.match(zsh.stdout, /bashcompinit/);
  assert.match(zsh.stdout, /complete -o default -F _bhatti bhatti/);
  assert.equal(cli(["completion", "fish"]).code, 2);
  cleanup(dir);
});
