// Secret files, versions and their audit events through the real daemon, for
// either engine (the vm run keeps the case that needs the vm: delivery, tmpfs,
// nothing on the host's disk, gone after destroy).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startDaemon, createUser, api, cleanup, cli, type Daemon } from "../testing/harness.js";
import { sh, IMAGES_DIR } from "../testing/sandbox-api.js";
import { scanTree, scanText } from "../testing/scan.js";
import { runtimeDirFor } from "../util/paths.js";

export function secretFilesSuite(engine: "ns" | "vm", opts: { full: boolean }): void {
  let d: Daemon;
  let alice: string;
  const sshKey = "-----BEGIN KEY-----\nsf-" + randomBytes(12).toString("hex") + "\n-----END KEY-----\n";
  const kube = "kube-" + randomBytes(12).toString("hex");
  const apiKey = "ak-" + randomBytes(12).toString("hex");
  const sshKey2 = "sf2-" + randomBytes(12).toString("hex");
  const values = [sshKey, kube, apiKey, sshKey2];

  before(async () => {
    d = await startDaemon({ args: ["--engine", engine, "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
    alice = createUser(d.dataDir, "alice", ["--max-sandboxes", "6", "--max-cpus", "8", "--max-memory", "8192"]);
    for (const [name, value] of [["SSH_KEY", sshKey], ["KUBE", kube], ["API_KEY", apiKey]]) {
      assert.equal((await api(d, "POST", "/secrets", { key: alice, body: { name, value } })).status, 201);
    }
  });
  after(async () => {
    if (!d) return;
    for (const sb of (await api(d, "GET", "/sandboxes", { key: alice })).json ?? []) await api(d, "DELETE", `/sandboxes/${sb.id}`, { key: alice });
    const out = d.output();
    assert.equal(await d.stop(), 0);
    for (const v of values) {
      assert.deepEqual(scanTree(d.dataDir, v), [], "data dir holds no plaintext");
      assert.deepEqual(scanTree(runtimeDirFor(d.dataDir), v), [], "runtime dir holds no plaintext");
      assert.ok(!scanText(out, v), "daemon output holds no plaintext");
    }
    cleanup(d.dataDir);
  });

  test(`[${engine}] secret files: content, mode, owner uid 1000, on a tmpfs, not on the host's disk, not in env, gone after destroy`, async () => {
    const create = await api(d, "POST", "/sandboxes", { key: alice, body: {
      name: `files-${engine}`,
      secrets: ["API_KEY", { name: "SSH_KEY", path: "/home/lohar/.ssh/id_ed25519" }, { name: "KUBE", path: "/etc/kube/config", mode: 0o440 }],
    } });
    assert.equal(create.status, 201, create.text);
    const sb = create.json;
    assert.deepEqual(sb.secrets, ["API_KEY"]);
    assert.deepEqual(sb.secret_files, [{ name: "SSH_KEY", path: "/home/lohar/.ssh/id_ed25519", mode: 0o400 }, { name: "KUBE", path: "/etc/kube/config", mode: 0o440 }]);
    assert.deepEqual(sb.secret_versions, { API_KEY: 1, SSH_KEY: 1, KUBE: 1 });
    assert.ok(!values.some((v) => create.text.includes(v)));

    const cat = await sh(d, alice, sb.name, "cat /home/lohar/.ssh/id_ed25519; printf '|'; cat /etc/kube/config");
    assert.equal(cat.exit_code, 0, cat.stderr);
    assert.equal(cat.stdout, `${sshKey}|${kube}`);
    const st = await sh(d, alice, sb.name, "stat -L -c '%a %u %g' /home/lohar/.ssh/id_ed25519 /etc/kube/config; id -u");
    assert.equal(st.stdout, "400 1000 1000\n440 1000 1000\n1000\n");
    // The value lives on a tmpfs: the path leads there, and that mount is a tmpfs.
    const where = await sh(d, alice, sb.name, "readlink /home/lohar/.ssh/id_ed25519; stat -f -L -c %T /home/lohar/.ssh/id_ed25519; grep ' /run/bhatti/secrets ' /proc/mounts | cut -d' ' -f3");
    assert.match(where.stdout, /^\/run\/bhatti\/secrets\/\d+\ntmpfs\ntmpfs\n$/);
    // Env holds the env secret only.
    const env = await sh(d, alice, sb.name, "env");
    assert.ok(env.stdout.includes(`API_KEY=${apiKey}`));
    assert.ok(!env.stdout.includes("SSH_KEY") && !env.stdout.includes(kube) && !env.stdout.includes(sshKey.trim().split("\n")[1]));
    // The sandbox user can read its file but not replace the tmpfs' contents from outside its own file.
    const w = await sh(d, alice, sb.name, "touch /run/bhatti/secrets/x 2>&1; echo rc=$?");
    assert.match(w.stdout, /rc=1/);
    // On the host, while it runs: the writable layer (under the data dir) and the runtime dir hold no value.
    for (const v of [sshKey, kube]) {
      assert.deepEqual(scanTree(d.dataDir, v), [], "the writable layer holds no secret file value");
      assert.deepEqual(scanTree(runtimeDirFor(d.dataDir), v), []);
    }
    // The injection is one audit event with names, versions and paths.
    const ev = (await api(d, "GET", "/events?type=secret.injected", { key: alice })).json.events;
    const mine = ev.filter((e: { object: string }) => e.object === sb.name);
    assert.equal(mine.length, 1);
    assert.deepEqual(mine[0].detail, { sandbox_id: sb.id, secrets: [
      { name: "API_KEY", version: 1, as: "env" },
      { name: "SSH_KEY", version: 1, as: "file", path: "/home/lohar/.ssh/id_ed25519" },
      { name: "KUBE", version: 1, as: "file", path: "/etc/kube/config" },
    ] });

    assert.equal((await api(d, "DELETE", `/sandboxes/${sb.id}`, { key: alice })).status, 204);
    for (const v of [sshKey, kube]) {
      assert.deepEqual(scanTree(d.dataDir, v), [], "gone after destroy");
      assert.deepEqual(scanTree(runtimeDirFor(d.dataDir), v), []);
    }
  });

  if (!opts.full) return;

  test(`[${engine}] versions: inspect shows which version each sandbox received; a replace does not change a running sandbox`, async () => {
    const a = (await api(d, "POST", "/sandboxes", { key: alice, body: { name: "ver-a", secrets: ["API_KEY", { name: "SSH_KEY", path: "/home/lohar/k" }] } })).json;
    assert.deepEqual(a.secret_versions, { API_KEY: 1, SSH_KEY: 1 });
    const set = await api(d, "POST", "/secrets", { key: alice, body: { name: "SSH_KEY", value: sshKey2 } });
    assert.equal(set.json.version, 2);
    const b = (await api(d, "POST", "/sandboxes", { key: alice, body: { name: "ver-b", secrets: [{ name: "SSH_KEY", path: "/home/lohar/k" }] } })).json;
    assert.deepEqual(b.secret_versions, { SSH_KEY: 2 });
    assert.deepEqual((await api(d, "GET", "/sandboxes/ver-a", { key: alice })).json.secret_versions, { API_KEY: 1, SSH_KEY: 1 }, "ver-a still runs version 1");
    assert.equal((await sh(d, alice, "ver-a", "cat /home/lohar/k")).stdout, sshKey);
    assert.equal((await sh(d, alice, "ver-b", "cat /home/lohar/k")).stdout, sshKey2);
    const list = (await api(d, "GET", "/secrets", { key: alice })).json;
    assert.equal(list.find((s: { name: string }) => s.name === "SSH_KEY").version, 2);
    for (const n of ["ver-a", "ver-b"]) await api(d, "DELETE", `/sandboxes/${n}`, { key: alice });
  });

  test(`[${engine}] templates carry secret files; a request's secret files are dropped with a warning; template use is an event`, async () => {
    const t = await api(d, "POST", "/templates", { key: alice, body: { name: "tpl-files", secrets: [{ name: "KUBE", path: "/home/lohar/.kube/config", mode: "0600" }] } });
    assert.equal(t.status, 201, t.text);
    assert.deepEqual(t.json.secret_files, [{ name: "KUBE", path: "/home/lohar/.kube/config", mode: 0o600 }]);
    const c = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "from-tpl", template: "tpl-files", secrets: ["API_KEY", { name: "SSH_KEY", path: "/home/lohar/k" }] } });
    assert.equal(c.status, 201, c.text);
    assert.match(c.json.warnings.join("\n"), /request's secrets were dropped \(API_KEY, SSH_KEY:\/home\/lohar\/k\)/);
    assert.deepEqual(c.json.secret_files, [{ name: "KUBE", path: "/home/lohar/.kube/config", mode: 0o600 }]);
    const r = await sh(d, alice, "from-tpl", "cat /home/lohar/.kube/config; stat -L -c %a /home/lohar/.kube/config; ls /home/lohar/k 2>&1; echo \"[$API_KEY]\"");
    assert.ok(r.stdout.startsWith(kube + "600\n"), r.stdout);
    assert.match(r.stdout, /No such file/);
    assert.match(r.stdout, /\[\]\n$/, "the request's env secret was dropped too");
    const ev = (await api(d, "GET", "/events?type=template.used", { key: alice })).json.events;
    assert.equal(ev.length, 1);
    assert.equal(ev[0].object, "tpl-files");
    assert.equal(ev[0].detail.sandbox, "from-tpl");
    await api(d, "DELETE", "/sandboxes/from-tpl", { key: alice });
  });

  test(`[${engine}] the CLI: --secret NAME:/path[:MODE] and --redact at create, inspect shows files, versions and redact, exec --redact`, async () => {
    const env = { BHATTI_URL: d.url, BHATTI_TOKEN: alice, HOME: d.dataDir };
    const c = cli(["create", "--name", "cli-files", "--secret", "API_KEY", "--secret", "KUBE:/home/lohar/.kube/config:0440", "--redact"], { env });
    assert.equal(c.code, 0, c.stderr);
    const i = cli(["inspect", "cli-files"], { env });
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, /^secret_files\s+KUBE:\/home\/lohar\/.kube\/config:0440$/m);
    assert.match(i.stdout, /^secret_versions\s+API_KEY=v1, KUBE=v1$/m);
    assert.match(i.stdout, /^redact\s+true$/m);
    const x = cli(["exec", "cli-files", "--", "/bin/sh", "-c", "cat /home/lohar/.kube/config; echo; echo $API_KEY"], { env });
    assert.equal(x.code, 0, x.stderr);
    assert.equal(x.stdout, "[REDACTED:KUBE]\n[REDACTED:API_KEY]\n");
    const bad = cli(["create", "--name", "cli-bad", "--secret", "KUBE:/etc/shadow"], { env });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /must not replace the system file \/etc\/shadow/);
    cli(["destroy", "cli-files"], { env });
  });

  test(`[${engine}] hostile secret file paths and modes are refused with the rule, and nothing is created or recorded`, async () => {
    const before = (await api(d, "GET", "/events", { key: alice })).json.next_cursor;
    const cases: [unknown, RegExp][] = [
      [{ name: "KUBE", path: "relative/p" }, /must be an absolute path/],
      [{ name: "KUBE", path: "/home/lohar/../../etc/shadow" }, /must not contain '\.\.'/],
      [{ name: "KUBE", path: "/proc/self/environ" }, /must not be under \/proc/],
      [{ name: "KUBE", path: "/sys/kernel/x" }, /must not be under \/sys/],
      [{ name: "KUBE", path: "/dev/null" }, /must not be under \/dev/],
      [{ name: "KUBE", path: "/etc/passwd" }, /must not replace the system file \/etc\/passwd/],
      [{ name: "KUBE", path: "/etc/sudoers.d/x" }, /must not be under \/etc\/sudoers\.d/],
      [{ name: "KUBE", path: "/usr/bin/sh" }, /must not be under \/usr/],
      [{ name: "KUBE", path: "/run/bhatti/agent/lohar.sock" }, /must not be under \/run\/bhatti/],
      [{ name: "KUBE", path: "/home" }, /must name a file, not the system directory \/home/],
      [{ name: "KUBE", path: "/home//lohar/x" }, /must be normalized/],
      [{ name: "KUBE", path: "/home/lohar/x/" }, /must be normalized/],
      [{ name: "KUBE", path: "/home/lohar/\u0000x" }, /NUL/],
      [{ name: "KUBE", path: "/" + "a".repeat(5000) }, /at most 4096 bytes/],
      [{ name: "KUBE", path: "/home/lohar/x", mode: 0o4755 }, /permission bits between 0 and 0777/],
      [{ name: "KUBE", path: "/home/lohar/x", mode: 0o200 }, /let the owner read/],
      [{ name: "KUBE", path: "/home/lohar/x", extra: 1 }, /unknown field/],
      [{ name: "1BAD", path: "/home/lohar/x" }, /valid environment variable name/],
      [42, /must be a secret name or an object/],
    ];
    for (const [ref, rule] of cases) {
      const r = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "hostile", secrets: [ref] } });
      assert.equal(r.status, 400, `${JSON.stringify(ref).slice(0, 80)}: ${r.text}`);
      assert.match(r.json.error, rule);
    }
    const dup = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "hostile", secrets: [{ name: "KUBE", path: "/home/lohar/x" }, { name: "SSH_KEY", path: "/home/lohar/x" }] } });
    assert.match(dup.json.error, /given twice/);
    const missing = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "hostile", secrets: [{ name: "NOPE", path: "/home/lohar/x" }] } });
    assert.equal(missing.status, 400);
    assert.match(missing.json.error, /secret "NOPE" not found/);
    assert.equal((await api(d, "GET", "/sandboxes/hostile", { key: alice })).status, 404);
    assert.deepEqual((await api(d, "GET", `/events?cursor=${before}`, { key: alice })).json.events, [], "no event for a refused create");
    const tpl = await api(d, "POST", "/templates", { key: alice, body: { name: "bad-tpl", secrets: [{ name: "KUBE", path: "/etc/shadow" }] } });
    assert.equal(tpl.status, 400);
  });

  test(`[${engine}] a secret file whose path is an existing directory fails the create (the sandbox never runs without its secrets)`, async () => {
    const before = (await api(d, "GET", "/events", { key: alice })).json.next_cursor;
    const r = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "dir-in-way", secrets: [{ name: "KUBE", path: "/home/lohar/.ssh2" }], files: [{ path: "/home/lohar/.ssh2/keep", content: "" }] } });
    assert.equal(r.status, 500);
    assert.match(r.json.error, /failed to start/);
    assert.equal((await api(d, "GET", "/sandboxes/dir-in-way", { key: alice })).status, 404);
    // The failed attempt is audited: one create and one injection, both with result "error".
    const ev = (await api(d, "GET", `/events?cursor=${before}`, { key: alice })).json.events;
    assert.deepEqual(ev.map((e: { action: string; result: string }) => [e.action, e.result]), [["sandbox.created", "error"], ["secret.injected", "error"]]);
    assert.match(d.output(), /secret file "\/home\/lohar\/.ssh2": a directory is in the way|failed to start/);
  });
}
