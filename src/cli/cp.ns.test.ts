// `bhatti cp` and `file write --parents` through the real CLI, a real daemon
// and a real runc sandbox: trees both ways with modes, uid 1000 inside, new
// names, hostile archives refused by the sandbox's extractor, and uploads over
// the limit refused before they start.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, truncateSync, writeFileSync, existsSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import * as tar from "tar-stream";
import { api, cleanup, cli, createUser, startDaemon, tempDir, type Daemon } from "../testing/harness.js";
import { IMAGES_DIR, sh } from "../testing/sandbox-api.js";

let d: Daemon;
let key: string;
let env: Record<string, string>;
let local: string;
const run = (args: string[], input?: string) => cli(args, { env, input });

before(async () => {
  d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  key = createUser(d.dataDir, "cp");
  env = { BHATTI_URL: d.url, BHATTI_TOKEN: key, HOME: d.dataDir };
  local = tempDir("bhatti-cp-");
  assert.equal(run(["create", "--name", "box"]).code, 0);
});
after(async () => { run(["destroy", "box"]); await d.stop(); cleanup(d.dataDir); cleanup(local); });

test("cp LOCAL_DIR SB:EXISTING_DIR puts the tree inside it, modes kept, owned by uid 1000", async () => {
  const src = join(local, "proj");
  mkdirSync(join(src, "bin"), { recursive: true });
  writeFileSync(join(src, "bin/run"), "#!/bin/sh\necho run\n", { mode: 0o750 });
  writeFileSync(join(src, "data.bin"), Buffer.alloc(1_500_000, 3), { mode: 0o600 });
  symlinkSync("bin/run", join(src, "go"));
  const r = run(["cp", src, "box:/home/lohar"]);
  assert.equal(r.code, 0, r.stderr);
  const s = await sh(d, key, "box", "cd /home/lohar/proj && stat -c '%a %u %g %n' bin bin/run data.bin && readlink go && ./go && wc -c < data.bin");
  assert.equal(s.exit_code, 0, s.stderr);
  const lines = s.stdout.trim().split("\n");
  assert.match(lines[0], /^\d+ 1000 1000 bin$/);
  assert.equal(lines[1], "750 1000 1000 bin/run");
  assert.equal(lines[2], "600 1000 1000 data.bin");
  assert.deepEqual(lines.slice(3).map((l) => l.trim()), ["bin/run", "run", "1500000"]);
});

test("cp to a new name, cp of a file, and back out to the local disk", async () => {
  const f = join(local, "note.txt");
  writeFileSync(f, "hello note", { mode: 0o640 });
  assert.equal(run(["cp", f, "box:/tmp/renamed.txt"]).code, 0);
  assert.equal((await sh(d, key, "box", "cat /tmp/renamed.txt; stat -c ' %a %u' /tmp/renamed.txt")).stdout, "hello note 640 1000\n");
  // SB -> local: a tree to a new name, a file into an existing directory.
  const back = join(local, "back");
  const r = run(["cp", "box:/home/lohar/proj", back]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(back, "bin/run"), "utf8"), "#!/bin/sh\necho run\n");
  assert.equal(statSync(join(back, "bin/run")).mode & 0o777, 0o750);
  assert.deepEqual(readFileSync(join(back, "data.bin")), Buffer.alloc(1_500_000, 3));
  assert.equal(readlinkSync(join(back, "go")), "bin/run");
  const into = join(local, "into");
  mkdirSync(into);
  assert.equal(run(["cp", "box:/tmp/renamed.txt", into]).code, 0);
  assert.equal(readFileSync(join(into, "renamed.txt"), "utf8"), "hello note");
  // "-": the tar stream itself on stdout; --json: what was copied
  const raw = run(["cp", "box:/tmp/renamed.txt", "-"]);
  assert.equal(raw.code, 0, raw.stderr);
  assert.match(raw.stdout, /^renamed\.txt\0/);
  assert.match(raw.stdout, /hello note/);
  const j = JSON.parse(run(["cp", "box:/tmp/renamed.txt", join(local, "j.txt"), "--json"]).stdout);
  assert.deepEqual(j, { from: "box:/tmp/renamed.txt", to: join(local, "j.txt"), entries: 1, bytes: 10 });
  // a missing source is a clear error
  const missing = run(["cp", "box:/nope", into]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /ENOENT/);
  assert.equal(run(["cp", "a", "b"]).code, 2, "neither side is in a sandbox");
  assert.equal(run(["cp", "box:rel", "b"]).code, 2, "sandbox paths are absolute");
});

test("a sandbox symlink pointing outside comes out as a link; nothing is written through it", async () => {
  assert.equal((await sh(d, key, "box", "mkdir -p /tmp/evil && ln -sf /etc /tmp/evil/etc && echo x > /tmp/evil/plain")).exit_code, 0);
  const out = join(local, "evil-out");
  assert.equal(run(["cp", "box:/tmp/evil", out]).code, 0);
  assert.equal(readlinkSync(join(out, "etc")), "/etc");
  assert.equal(readFileSync(join(out, "plain"), "utf8"), "x\n");
});

async function putTar(entries: (Partial<tar.Header> & { name: string; body?: string })[], path = "/home/lohar/up") {
  const p = tar.pack();
  for (const { body, ...h } of entries) p.entry(h, body ?? "");
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return api(d, "PUT", `/sandboxes/box/archive?path=${encodeURIComponent(path)}`, { key, raw: Buffer.concat(chunks) });
}

test("PUT /archive refuses hostile entries inside the sandbox (400), writing nothing outside", async () => {
  for (const [entries, re] of [
    [[{ name: "../../../tmp/escaped1", body: "x" }], /\.\. component/],
    [[{ name: "/tmp/escaped2", body: "x" }], /absolute/],
    [[{ name: "l", type: "symlink", linkname: "/tmp" }, { name: "l/escaped3", body: "x" }], /symbolic link/],
    [[{ name: "h", type: "link", linkname: "/etc/passwd" }], /hard link/],
  ] as const) {
    const r = await putTar([...entries]);
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error, re);
  }
  const s = await sh(d, key, "box", "ls /tmp/escaped1 /tmp/escaped2 /tmp/escaped3 2>&1; true");
  assert.equal((s.stdout.match(/No such file/g) ?? []).length, 3, s.stdout);
  const ok = await putTar([{ name: "fine.txt", body: "ok" }]);
  assert.equal(ok.status, 200, ok.text);
  const other = createUser(d.dataDir, "intruder");
  assert.equal((await api(d, "PUT", "/sandboxes/box/archive?path=/tmp", { key: other, raw: "x" })).status, 404, "another user's sandbox is not there");
  assert.equal((await api(d, "GET", "/sandboxes/box/archive?path=/tmp", { key: other })).status, 404);
  assert.equal((await api(d, "GET", "/sandboxes/box/archive?path=/proc/1", { key })).status, 400);
});

test("file write --parents creates the directories; uploads over the limit are refused before they start", async () => {
  const w = run(["file", "write", "--parents", "box", "/home/lohar/a/b/c.txt", "--mode", "0600"], "deep");
  assert.equal(w.code, 0, w.stderr);
  assert.equal((await sh(d, key, "box", "cat /home/lohar/a/b/c.txt; stat -c ' %a %u' /home/lohar/a/b /home/lohar/a/b/c.txt")).stdout, "deep 755 1000\n 600 1000\n");
  assert.equal(run(["file", "write", "box", "/home/lohar/x/y.txt"], "no parents").code, 1, "without --parents a missing directory is an error");
  // Sparse local files: their size is refused before a byte is read or sent.
  const big = join(local, "big.bin");
  closeSync(openSync(big, "w"));
  truncateSync(big, 65 << 20);
  const t0 = Date.now();
  const fw = run(["file", "write", "box", "/tmp/big.bin", big]);
  assert.equal(fw.code, 1);
  assert.match(fw.stderr, /at most 64 MiB/);
  const huge = join(local, "huge");
  mkdirSync(huge);
  closeSync(openSync(join(huge, "blob"), "w"));
  truncateSync(join(huge, "blob"), 300 << 20);
  const cp = run(["cp", huge, "box:/tmp/"]);
  assert.equal(cp.code, 1);
  assert.match(cp.stderr, /bhatti cp uploads at most 256 MiB/);
  assert.ok(Date.now() - t0 < 5000, "refused at once");
  assert.match((await sh(d, key, "box", "ls /tmp/big.bin /tmp/huge 2>&1; true")).stdout, /No such file[\s\S]*No such file/);
  assert.ok(!existsSync(join(local, "nothing")));
});
