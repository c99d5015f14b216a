// Sandbox behaviour through the real daemon API, for either engine. The ns
// run is full; the vm run (seconds per boot under TCG) keeps the cases that
// matter: a whole lifecycle with secrets, env precedence on both exec paths,
// the config drive gone, uid 1000, and nothing left after destroy.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { startDaemon, createUser, api, cleanup, cli, type Daemon } from "../testing/harness.js";
import { exec, sh, wsExec, envOf, IMAGES_DIR, waitForOutput } from "../testing/sandbox-api.js";
import { scanTree, scanText } from "../testing/scan.js";
import { runtimeDirFor } from "../util/paths.js";
import { defaultDiskMb } from "../image/names.js";

export function sandboxApiSuite(engine: "ns" | "vm", opts: { full: boolean; image?: string; prepare?: () => Promise<unknown> }): void {
  let d: Daemon;
  let alice: string;
  let bob: string;
  const rt = () => runtimeDirFor(d.dataDir);
  const secretVal = "sv-" + randomBytes(10).toString("hex");
  const overriddenVal = "ov-" + randomBytes(10).toString("hex");
  const bobVal = "bob-" + randomBytes(10).toString("hex");
  const outputs: string[] = [];
  // Every (re)start gets the same flags: a restart without --image would run the rest of the suite on another image.
  const daemonArgs = ["--engine", engine, "--rate-limit", "0", ...(opts.image ? ["--image", opts.image] : [])];

  before(async () => {
    await opts.prepare?.();
    d = await startDaemon({ args: daemonArgs, env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
    alice = createUser(d.dataDir, "alice", ["--max-sandboxes", "6", "--max-cpus", "8", "--max-memory", "8192", "--max-disk", "100000"]);
    bob = createUser(d.dataDir, "bob");
    for (const [k, name, value] of [[alice, "API_KEY", secretVal], [alice, "SHARED", overriddenVal], [alice, "LANG", "secret-lang"], [bob, "BOB_ONLY", bobVal]]) {
      assert.equal((await api(d, "POST", "/secrets", { key: k, body: { name, value } })).status, 201);
    }
  });
  after(async () => {
    if (!d) return;
    // Sandboxes outlive their daemon by design: a test that failed half way must not leave any running.
    for (const k of [alice, bob]) {
      for (const sb of (await api(d, "GET", "/sandboxes", { key: k })).json ?? []) await api(d, "DELETE", `/sandboxes/${sb.id}`, { key: k });
    }
    outputs.push(d.output());
    assert.equal(await d.stop(), 0);
    // After the whole lifecycle, no plaintext anywhere: data dir, daemon output, runtime dir.
    for (const v of [secretVal, overriddenVal, bobVal]) {
      assert.deepEqual(scanTree(d.dataDir, v), [], "data dir holds no plaintext");
      for (const o of outputs) assert.ok(!scanText(o, v), "daemon output holds no plaintext");
      assert.deepEqual(scanTree(rt(), v), [], "runtime dir holds no plaintext");
    }
    cleanup(d.dataDir);
  });

  test(`[${engine}] lifecycle: create with secrets, env precedence on POST and WebSocket exec, uid 1000, config drive gone, destroy leaves nothing`, async () => {
    const create = await api(d, "POST", "/sandboxes", { key: alice, body: {
      name: `life-${engine}`, secrets: ["API_KEY", "SHARED", "LANG"], env: { SHARED: "from-env", PLAIN: "p" },
      files: [{ path: "/home/lohar/cfg/app.conf", content: Buffer.from("conf-body\n").toString("base64"), mode: 0o640 }],
    } });
    assert.equal(create.status, 201, create.text);
    const sb = create.json;
    assert.equal(sb.engine, engine);
    assert.equal(sb.status, "running");
    assert.deepEqual(sb.secrets, ["API_KEY", "SHARED", "LANG"]);
    assert.deepEqual(sb.warnings, []);
    assert.ok(!create.text.includes(secretVal), "no value in the response");

    // POST exec: defaults < secrets < sandbox env. An env field in the request is ignored.
    const r = await exec(d, alice, sb.name, ["/usr/bin/env"], { env: { API_KEY: "from-post-exec", INJECTED: "x" } });
    const env = envOf(r.stdout);
    assert.equal(env.API_KEY, secretVal, "secret injected");
    assert.equal(env.SHARED, "from-env", "sandbox env beats secret");
    assert.equal(env.LANG, "secret-lang", "secret beats default");
    assert.equal(env.PLAIN, "p");
    assert.equal(env.HOME, "/home/lohar");
    assert.ok(env.PATH && env.TERM, "defaults present");
    assert.equal(env.INJECTED, undefined, "POST exec ignores env");
    for (const k of Object.keys(process.env)) {
      if (!["PATH", "HOME", "TERM", "LANG", "PWD", "SHLVL"].includes(k)) assert.equal(env[k], undefined, `host variable ${k} must not leak in`);
    }

    // WebSocket exec: its env wins over everything.
    const w = await wsExec(d, alice, sb.name, { cmd: ["/usr/bin/env"], env: { SHARED: "from-ws", API_KEY: "from-ws-key", NEW: "n" } });
    assert.equal(w.exit, 0, w.error);
    const wenv = envOf(w.stdout.toString());
    assert.equal(wenv.SHARED, "from-ws");
    assert.equal(wenv.API_KEY, "from-ws-key");
    assert.equal(wenv.NEW, "n");
    assert.equal(wenv.LANG, "secret-lang");
    // ...for that command only.
    assert.equal(envOf((await exec(d, alice, sb.name, ["/usr/bin/env"])).stdout).SHARED, "from-env");

    const id = await sh(d, alice, sb.name, "id -u; id -g; id -G; grep CapEff /proc/self/status; hostname");
    assert.deepEqual(id.stdout.trim().split("\n"), ["1000", "1000", "1000", "CapEff:\t0000000000000000", `life-${engine}`]);

    // Its own network: loopback only, and the daemon listening on the host's loopback is out of reach.
    const port = new URL(d.url).port;
    const net = await sh(d, alice, sb.name, `ls /sys/class/net; wget -q -T 2 -O- http://127.0.0.1:${port}/health && echo REACHED || echo unreachable`);
    assert.match(net.stdout, /^lo\n/);
    assert.match(net.stdout, /unreachable\n$/);

    const f = await sh(d, alice, sb.name, "stat -c '%a %u %g' /home/lohar/cfg/app.conf; cat /home/lohar/cfg/app.conf");
    assert.equal(f.stdout, "640 1000 1000\nconf-body\n");

    // The config drive is gone: not mounted, mount point removed, no block device holding it, nothing readable.
    const gone = await sh(d, alice, sb.name, "grep -c bhatti/config /proc/self/mountinfo; ls -d /run/bhatti/config 2>&1; ls /dev/vdb 2>&1; cat /proc/1/environ 2>&1 | head -c 200; grep -rl " + secretVal + " /run /tmp /home /etc 2>/dev/null | head -3");
    assert.match(gone.stdout, /^0\n/, "not in the mount table");
    assert.match(gone.stdout, /\/run\/bhatti\/config'?: No such file or directory/);
    assert.match(gone.stdout, /\/dev\/vdb'?: No such file or directory/);
    assert.ok(!gone.stdout.includes(secretVal), "value not on the sandbox's disk or in PID 1's environ");
    assert.equal(readdirSync(`${rt()}/sb/${sb.id}`).filter((n) => n.includes("config")).length, 0, "host config.ext4 deleted");

    const before = readdirSync(`${rt()}/sb`);
    assert.ok(before.includes(sb.id));
    const del = await api(d, "DELETE", `/sandboxes/${sb.name}`, { key: alice });
    assert.equal(del.status, 204);
    assert.ok(!existsSync(`${rt()}/sb/${sb.id}`), "runtime dir removed");
    assert.ok(!existsSync(`${d.dataDir}/sandboxes/${sb.id}`) || readdirSync(`${d.dataDir}/sandboxes/${sb.id}`).length === 0, "sandbox dir removed");
    const procs = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
      try { return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(sb.id); } catch { return false; }
    });
    assert.deepEqual(procs, [], "no process of the sandbox is left");
    assert.equal((await api(d, "GET", `/sandboxes/${sb.name}`, { key: alice })).status, 404);
  });

  test(`[${engine}] an unknown secret — missing or another user's — is the same 400, and nothing starts`, async () => {
    const sbBefore = existsSync(`${rt()}/sb`) ? readdirSync(`${rt()}/sb`).length : 0;
    const other = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "x1", secrets: ["BOB_ONLY"] } });
    const missing = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "x1", secrets: ["NOPE_MISSING"] } });
    assert.equal(other.status, 400);
    assert.equal(other.text, '{"error":"secret \\"BOB_ONLY\\" not found","code":"secret_not_found"}');
    assert.equal(missing.status, 400);
    assert.equal(missing.text.replace("NOPE_MISSING", "BOB_ONLY"), other.text);
    assert.equal((await api(d, "GET", "/sandboxes", { key: alice })).json.length, 0);
    assert.equal(existsSync(`${rt()}/sb`) ? readdirSync(`${rt()}/sb`).length : 0, sbBefore, "no sandbox was started");
  });

  test(`[${engine}] a sandbox whose owner was deleted while no daemon ran is removed at the next start`, async () => {
    const k = createUser(d.dataDir, "gone");
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "left" } })).status, 201);
    const id = (await api(d, "GET", "/sandboxes/left", { key: k })).json.id;
    outputs.push(d.output());
    assert.equal(await d.stop(), 0);
    assert.ok(existsSync(`${rt()}/sb/${id}`), "sandboxes outlive their daemon");
    assert.equal(cli(["user", "delete", "gone", "--force", "--data-dir", d.dataDir]).code, 0);
    d = await startDaemon({ dataDir: d.dataDir, args: daemonArgs, env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
    await waitForOutput(d, /recovered sandboxes: \d+ reattached, 0 unreachable, 0 dead, 0 interrupted creates rolled back, 0 interrupted deletes finished, 1 orphans removed/);
    assert.ok(!existsSync(`${rt()}/sb/${id}`), "runtime dir gone");
    assert.ok(!existsSync(`${d.dataDir}/sandboxes/${id}`), "writable layer gone");
    const procs = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
      try { return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(id); } catch { return false; }
    });
    assert.deepEqual(procs, [], "no process of the sandbox is left (QEMU included)");
  });

  if (!opts.full) return;

  test(`[${engine}] templates: template env and secrets, request env on top, request secrets and files dropped with warnings`, async () => {
    const t = await api(d, "POST", "/templates", { key: alice, body: { name: "tpl", env: { T_ENV: "t", SHARED: "tpl-env" }, secrets: ["API_KEY"], cpus: 1, memory_mb: 256 } });
    assert.equal(t.status, 201, t.text);
    assert.equal((await api(d, "POST", "/templates", { key: alice, body: { name: "tpl" } })).status, 409);
    assert.ok((await api(d, "GET", "/templates", { key: bob })).json.length === 0, "templates are per user");
    assert.equal((await api(d, "POST", "/sandboxes", { key: bob, body: { name: "b1", template: "tpl" } })).status, 400, "another user's template is not found");
    const c = await api(d, "POST", "/sandboxes", { key: alice, body: {
      name: "from-tpl", template: "tpl", env: { SHARED: "req-env" }, secrets: ["LANG"],
      files: [{ path: "/home/lohar/dropped", content: "eA==", mode: 420 }],
    } });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.json.memory_mb, 256);
    assert.equal(c.json.template_id, t.json.id);
    assert.deepEqual(c.json.secrets, ["API_KEY"]);
    assert.equal(c.json.warnings.length, 2);
    assert.match(c.json.warnings[0], /secrets were dropped \(LANG\)/);
    assert.match(c.json.warnings[1], /files were dropped \(1 file\)/);
    const env = envOf((await exec(d, alice, "from-tpl", ["/usr/bin/env"])).stdout);
    assert.equal(env.API_KEY, secretVal, "template secret resolved in alice's store");
    assert.equal(env.T_ENV, "t");
    assert.equal(env.SHARED, "req-env", "request env on top of template env");
    assert.notEqual(env.LANG, "secret-lang", "request secret dropped");
    assert.equal((await sh(d, alice, "from-tpl", "test -e /home/lohar/dropped")).exit_code, 1, "request file dropped");
    // The CLI prints the warnings on stderr.
    const r = cli(["create", "--name", "from-tpl-cli", "--template", "tpl", "--secret", "LANG", "--url", d.url, "--token", alice]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warning: template tpl: the request's secrets were dropped \(LANG\)/m);
    // A template whose secret the user doesn't have fails at create, like any unknown secret.
    await api(d, "POST", "/templates", { key: bob, body: { name: "bobtpl", secrets: ["API_KEY"] } });
    const bt = await api(d, "POST", "/sandboxes", { key: bob, body: { name: "b2", template: "bobtpl" } });
    assert.deepEqual([bt.status, bt.json], [400, { error: 'secret "API_KEY" not found', code: "secret_not_found" }]);
    for (const n of ["from-tpl", "from-tpl-cli"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key: alice })).status, 204);
    assert.equal((await api(d, "DELETE", "/templates/tpl", { key: alice })).status, 204);
  });

  test(`[${engine}] validation, duplicates, quotas and other users' sandboxes`, async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ name: "-bad" }, /\^\[a-zA-Z0-9\]/], [{ name: "a".repeat(64) }, /1-63 characters/], [{ name: "ok", cpus: 0 }, /cpus must be between/],
      [{ name: "ok", env: { "1X": "v" } }, /valid environment variable name/], [{ name: "ok", env: { X: 1 } }, /env X must be a string/],
      [{ name: "ok", secrets: "API_KEY" }, /secrets must be an array/], [{ name: "ok", files: [{ path: "rel", content: "" }] }, /absolute path/],
      [{ name: "ok", files: [{ path: "/a", content: "!!" }] }, /base64/], [{ name: "ok", engine: "docker" }, /engine must be "ns" or "vm"/],
      [{ name: "ok", template: "nope" }, /template "nope" not found/],
    ];
    for (const [body, re] of bad) {
      const r = await api(d, "POST", "/sandboxes", { key: alice, body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.json.error, re);
    }
    assert.equal((await api(d, "POST", "/sandboxes", { key: alice, body: { name: "dup" } })).status, 201);
    const dup = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "dup" } });
    assert.deepEqual([dup.status, dup.json], [409, { error: 'sandbox "dup" already exists', code: "name_taken" }]);
    for (const [m, p] of [["GET", "/sandboxes/dup"], ["DELETE", "/sandboxes/dup"], ["POST", "/sandboxes/dup/exec"], ["GET", "/sandboxes/dup/files?path=/etc/passwd"]]) {
      const r = await api(d, m, p, { key: bob, body: m === "POST" ? { cmd: ["true"] } : undefined });
      assert.deepEqual([r.status, r.json], [404, { error: 'sandbox "dup" not found', code: "sandbox_not_found" }], `${m} ${p} as bob`);
    }
    const bobQuota = [];
    for (let i = 0; i < 3; i++) bobQuota.push((await api(d, "POST", "/sandboxes", { key: bob, body: { name: `q${i}`, cpus: 2 } })).status);
    assert.deepEqual(bobQuota, [201, 201, 403], "bob's 4-cpu cap");
    for (const n of ["q0", "q1"]) await api(d, "DELETE", `/sandboxes/${n}`, { key: bob });
    const big = await api(d, "POST", "/sandboxes", { key: bob, body: { name: "big", memory_mb: 8192 } });
    assert.equal(big.status, 403);
    assert.match(big.json.error, /quota exceeded: at most 4096 MiB/);
    await api(d, "DELETE", "/sandboxes/dup", { key: alice });
  });

  test(`[${engine}] disk: the image's default size, ENOSPC past disk_mb, the per-user disk quota`, async () => {
    const image = opts.image ?? "minimal";
    const dflt = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "dk" } });
    assert.equal(dflt.status, 201, dflt.text);
    assert.equal(dflt.json.disk_mb, defaultDiskMb(image), "no disk_mb: the image's default");
    const imgs = (await api(d, "GET", "/images", { key: alice })).json.images as { name: string; default_disk_mb: number }[];
    assert.equal(imgs.find((i) => i.name === image)?.default_disk_mb, defaultDiskMb(image), "GET /images shows the default");
    // The writable layer is a filesystem of that size: df inside sees it (within ext4's overhead).
    const df = (await sh(d, alice, "dk", "df -k / | tail -1")).stdout.trim().split(/\s+/);
    const totalMb = Number(df[1]) / 1024;
    assert.ok(totalMb <= defaultDiskMb(image) && totalMb > defaultDiskMb(image) * 0.9, `df sees ${totalMb} MiB`);
    const small = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "dk2", disk_mb: 32 } });
    assert.equal(small.json.disk_mb, 32);
    const full = await sh(d, alice, "dk2", "dd if=/dev/zero of=/home/lohar/big bs=1M count=64 2>&1; echo rc=$?");
    assert.match(full.stdout, /No space left on device/);
    assert.match(full.stdout, /rc=1/);
    assert.equal((await sh(d, alice, "dk2", "rm /home/lohar/big && echo again > /home/lohar/x && cat /home/lohar/x")).stdout, "again\n", "freeing space works");
    for (const n of ["dk", "dk2"]) assert.equal((await api(d, "DELETE", `/sandboxes/${n}`, { key: alice })).status, 204);
    const tiny = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "dk3", disk_mb: 1 } });
    assert.deepEqual([tiny.status, tiny.json.error], [400, "disk_mb must be between 16 and 262144"]);
    // bob has the default quota: 20480 MiB of disk over all his sandboxes.
    const over = await api(d, "POST", "/sandboxes", { key: bob, body: { name: "huge", disk_mb: 30000 } });
    assert.equal(over.status, 403);
    assert.equal(over.json.error, "quota exceeded: at most 20480 MiB of disk in total (0 in use, 30000 requested)");
    assert.equal((await api(d, "GET", "/sandboxes", { key: bob })).json.length, 0, "nothing was made");
  });

  test(`[${engine}] exec: exit codes, binary output, stdin, timeouts kill the process group, NDJSON`, async () => {
    assert.equal((await api(d, "POST", "/sandboxes", { key: alice, body: { name: "ex" } })).status, 201);
    assert.equal((await sh(d, alice, "ex", "exit 42")).exit_code, 42);
    const bin = await sh(d, alice, "ex", "printf '\\377\\000\\001'");
    assert.equal(bin.stdout_base64, Buffer.from([255, 0, 1]).toString("base64"), "non-UTF-8 output comes as base64");
    const sep = await sh(d, alice, "ex", "echo out; echo err >&2");
    assert.deepEqual([sep.stdout, sep.stderr], ["out\n", "err\n"]);
    assert.equal((await exec(d, alice, "ex", ["/bin/cat"], { stdin: "piped in" })).stdout, "piped in");
    const t0 = Date.now();
    const to = await exec(d, alice, "ex", ["/bin/sh", "-c", "sleep 30 & sleep 30; echo never"], { timeout_sec: 1 });
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(to.timed_out, true);
    assert.match(to.message!, /timed out after 1 s; its process group was killed/);
    assert.equal(to.exit_code, 137);
    assert.equal((await sh(d, alice, "ex", "ps -o pid,args | grep -c '[s]leep 30'")).stdout.trim(), "0", "the background child died with the group");
    const nd = await fetch(`${d.url}/sandboxes/ex/exec`, { method: "POST", headers: { Authorization: `Bearer ${alice}`, Accept: "application/x-ndjson" }, body: JSON.stringify({ cmd: ["/bin/sh", "-c", "echo a; echo b >&2; exit 3"] }) });
    assert.equal(nd.headers.get("content-type"), "application/x-ndjson");
    const lines = (await nd.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.at(-1), { type: "exit", exit_code: 3 });
    assert.ok(lines.some((l) => l.type === "stdout" && l.data === "a\n"));
    assert.ok(lines.some((l) => l.type === "stderr" && l.data === "b\n"));
    // WebSocket: stdin streamed up, binary-safe output down, exit code.
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const w = await wsExec(d, alice, "ex", { cmd: ["/bin/cat"] }, all);
    assert.deepEqual([w.exit, w.stdout.equals(all)], [0, true]);
    // A tty: the command sees a terminal of the requested size.
    const t = await wsExec(d, alice, "ex", { cmd: ["/bin/sh", "-c", "tty; stty size"], tty: true, rows: 33, cols: 101 });
    assert.equal(t.exit, 0, t.error);
    assert.match(t.stdout.toString(), /\/dev\/pts\/\d+\r?\n33 101/);
    // The real CLI: streams, pipes stdin (-i, as in Docker), forwards the exit code.
    const c = cli(["exec", "-i", "ex", "--url", d.url, "--token", alice, "--", "/bin/sh", "-c", "cat; exit 7"], { input: "via-cli" });
    assert.deepEqual([c.code, c.stdout], [7, "via-cli"]);
  });

  test(`[${engine}] WebSocket exec refuses bad upgrades and bad first messages`, async () => {
    const { default: WebSocket } = await import("ws");
    const url = d.url.replace(/^http/, "ws") + "/sandboxes/ex/exec/ws";
    const status = (headers: Record<string, string>, u = url) => new Promise<number>((resolve) => {
      const ws = new WebSocket(u, { headers });
      ws.on("unexpected-response", (_q, res) => resolve(res.statusCode ?? 0));
      ws.on("open", () => { ws.close(); resolve(101); });
      ws.on("error", () => resolve(-1));
    });
    assert.equal(await status({}), 401, "no key");
    assert.equal(await status({}, `${url}?token=${alice}`), 401, "key in the query string");
    assert.equal(await status({ Authorization: `Bearer ${bob}` }), 404, "another user's sandbox");
    assert.equal(await status({ Authorization: `Bearer ${alice}` }, d.url.replace(/^http/, "ws") + "/nope/ws"), 404);
    for (const first of [Buffer.from([1, 2, 3]), "not json", JSON.stringify({ cmd: [] }), JSON.stringify({ cmd: ["true"], env: { "1BAD": "x" } })]) {
      const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${alice}` } });
      await new Promise((r) => ws.once("open", r));
      ws.send(first);
      const msgs: string[] = [];
      ws.on("message", (m: Buffer, binary: boolean) => { if (!binary) msgs.push(m.toString()); });
      await new Promise((r) => ws.once("close", r));
      assert.equal(msgs.length, 1);
      assert.equal(JSON.parse(msgs[0]).type, "error", String(first));
    }
  });

  test(`[${engine}] files: write atomically with mode as uid 1000, read, stat, list; permissions apply`, async () => {
    const put = await api(d, "PUT", "/sandboxes/ex/files?path=/home/lohar/f.bin&mode=0600", { key: alice, raw: Buffer.from([0, 1, 2, 255]) });
    assert.equal(put.status, 200, put.text);
    const get = await fetch(`${d.url}/sandboxes/ex/files?path=/home/lohar/f.bin`, { headers: { Authorization: `Bearer ${alice}` } });
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), Buffer.from([0, 1, 2, 255]));
    const head = await api(d, "HEAD", "/sandboxes/ex/files?path=/home/lohar/f.bin", { key: alice });
    assert.deepEqual([head.status, head.headers.get("x-file-mode"), head.headers.get("x-file-uid"), head.headers.get("content-length")], [200, "600", "1000", "4"]);
    const ls = await api(d, "GET", "/sandboxes/ex/files?path=/home/lohar&ls=true", { key: alice });
    assert.ok(ls.json.some((e: { name: string; uid: number }) => e.name === "f.bin" && e.uid === 1000));
    assert.equal((await api(d, "PUT", "/sandboxes/ex/files?path=/etc/passwd", { key: alice, raw: "x" })).status, 403, "uid 1000 cannot write root's files");
    assert.equal((await api(d, "GET", "/sandboxes/ex/files?path=/nope", { key: alice })).status, 404);
    assert.equal((await api(d, "GET", "/sandboxes/ex/files?path=rel", { key: alice })).status, 400);
    const r = cli(["file", "read", "ex", "/home/lohar/f.bin", "--json", "--url", d.url, "--token", alice]);
    assert.equal(JSON.parse(r.stdout).content_base64, Buffer.from([0, 1, 2, 255]).toString("base64"));
  });

  test(`[${engine}] a daemon restart reattaches live sandboxes; one that died meanwhile is marked dead`, async () => {
    assert.equal((await api(d, "POST", "/sandboxes", { key: alice, body: { name: "dies" } })).status, 201);
    const dies = (await api(d, "GET", "/sandboxes/dies", { key: alice })).json;
    const marker = await sh(d, alice, "ex", "echo alive > /tmp/marker; echo ok");
    assert.equal(marker.stdout, "ok\n");
    outputs.push(d.output());
    assert.equal(await d.stop(), 0);
    // Kill the "dies" sandbox's processes while no daemon runs.
    for (const p of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
      try {
        const cg = readFileSync(`/proc/${p}/cgroup`, "utf8");
        if (cg.includes(dies.id)) process.kill(Number(p), "SIGKILL");
      } catch { /* gone */ }
    }
    d = await startDaemon({ dataDir: d.dataDir, args: daemonArgs, env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
    await waitForOutput(d, /recovered sandboxes: 1 reattached, 0 unreachable, 1 dead, 0 interrupted creates rolled back, 0 interrupted deletes finished, 0 orphans removed/);
    assert.equal((await sh(d, alice, "ex", "cat /tmp/marker")).stdout, "alive\n", "same sandbox, state kept");
    assert.equal((await api(d, "GET", "/sandboxes/dies", { key: alice })).json.status, "dead");
    assert.equal((await api(d, "POST", "/sandboxes/dies/exec", { key: alice, body: { cmd: ["true"] } })).status, 409);
    assert.equal((await api(d, "DELETE", "/sandboxes/dies", { key: alice })).status, 204);
    assert.equal((await api(d, "DELETE", "/sandboxes/ex", { key: alice })).status, 204);
  });

  test(`[${engine}] deleting a user with --force while the daemon runs destroys their sandboxes`, async () => {
    const k = createUser(d.dataDir, "temp");
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "orphan" } })).status, 201);
    const id = (await api(d, "GET", "/sandboxes/orphan", { key: k })).json.id;
    const refuse = cli(["user", "delete", "temp", "--data-dir", d.dataDir]);
    assert.match(refuse.stderr, /still owns 0 secret\(s\), 1 sandbox\(es\), 0 volume\(s\) and 0 snapshot\(s\)/);
    assert.equal(cli(["user", "delete", "temp", "--force", "--data-dir", d.dataDir]).code, 0);
    const deadline = Date.now() + 15_000;
    while (existsSync(`${rt()}/sb/${id}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.ok(!existsSync(`${rt()}/sb/${id}`), "the orphaned sandbox was destroyed");
  });
}
