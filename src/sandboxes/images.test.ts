// Named images through the real daemon and CLI: GET /images, `image` on
// sandbox create and templates (a template's image wins), unknown images as
// 400s naming them, and `image delete` refused while a sandbox or template
// uses the image. The daemon gets its own images dir holding hard-linked
// copies of the test images, so deleting them touches nothing shared.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ensureDebianTestImage, ensureTestImage } from "../engine/ns/test-image.js";
import { api, cleanup, cli, createUser, startDaemon, type Daemon } from "../testing/harness.js";
import { exec } from "../testing/sandbox-api.js";

let d: Daemon;
let alice: string;
let bob: string;
let images: string;

before(async () => {
  const shared = await ensureTestImage();
  await ensureDebianTestImage();
  images = mkdtempSync(join(shared, "..", "images-apitest-"));
  for (const n of ["minimal", "debian"]) {
    const r = spawnSync("cp", ["-al", join(shared, n), join(images, n)], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: images } });
  alice = createUser(d.dataDir, "alice", ["--max-sandboxes", "6", "--max-disk", "100000"]);
  bob = createUser(d.dataDir, "bob");
});

after(async () => {
  if (d) {
    for (const k of [alice, bob]) for (const sb of (await api(d, "GET", "/sandboxes", { key: k })).json ?? []) await api(d, "DELETE", `/sandboxes/${sb.id}`, { key: k });
    assert.equal(await d.stop(), 0);
    cleanup(d.dataDir);
  }
  if (images) rmSync(images, { recursive: true, force: true });
});

const imageCli = (...args: string[]) => cli(["image", ...args, "--data-dir", d.dataDir, "--images-dir", images]);

test("GET /images lists the built images with the default and aliases; GET /images/NAME is the manifest", async () => {
  const r = await api(d, "GET", "/images", { key: bob });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.default, "minimal");
  const byName = Object.fromEntries(r.json.images.map((i: { name: string }) => [i.name, i]));
  assert.deepEqual(Object.keys(byName).sort(), ["debian", "minimal"]);
  assert.deepEqual(byName.minimal.aliases, ["base"]);
  assert.equal(byName.minimal.default, true);
  assert.equal(byName.debian.default, false);
  assert.ok(byName.debian.packages > 100, "debian lists its packages");
  assert.deepEqual(byName.debian.engines, ["ns", "vm"]);

  const one = await api(d, "GET", "/images/debian", { key: bob });
  assert.equal(one.status, 200);
  for (const p of ["bash", "git", "python3", "curl", "ca-certificates", "tini"]) assert.ok(one.json.package_list[p], `${p} in the package list`);
  assert.equal(one.json.inputs.recipe, "debian");
  assert.equal((await api(d, "GET", "/images/base", { key: bob })).json.name, "minimal");
  const missing = await api(d, "GET", "/images/ubuntu", { key: bob });
  assert.equal(missing.status, 404);
  assert.match(missing.json.error, /image "ubuntu" not found/);
  assert.equal((await api(d, "GET", "/images/Bad.Name", { key: bob })).status, 400);
  assert.equal((await api(d, "GET", "/images")).status, 401, "needs a key like every other route");
});

test("create --image: debian and the base alias; an unknown or malformed image is a 400 naming the image, and nothing starts", async () => {
  for (const [image, re] of [["ubuntu", /image "ubuntu" not found/], ["../etc", /image must be an image name/], [7, /image must be an image name/], ["", /image must be an image name/]] as const) {
    const r = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "nope", image } });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error, re);
  }
  assert.deepEqual((await api(d, "GET", "/sandboxes", { key: alice })).json, [], "nothing was created");

  const c = cli(["create", "--name", "deb", "--image", "debian", "--json"], { env: { BHATTI_URL: d.url, BHATTI_TOKEN: alice } });
  assert.equal(c.code, 0, c.stderr);
  assert.equal(JSON.parse(c.stdout).image, "debian");
  const r = await exec(d, alice, "deb", ["bash", "-lc", 'echo "$SHELL|$(id -un)|$HOME|$(git --version | cut -d" " -f1)"; getent passwd lohar | cut -d: -f7']);
  assert.equal(r.exit_code, 0, r.stderr);
  assert.equal(r.stdout, "/bin/bash|lohar|/home/lohar|git\n/bin/bash\n"); // bash sets SHELL from passwd

  const b = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "old", image: "base" } });
  assert.equal(b.status, 201, b.text);
  assert.equal(b.json.image, "minimal", "the alias is stored as the image's name");
  const bb = await exec(d, alice, "old", ["/bin/sh", "-c", "readlink /bin/sh; test -e /usr/bin/git || echo no-git"]);
  assert.equal(bb.stdout, "/bin/busybox\nno-git\n");
});

test("templates take an image and it wins over the request's, with a warning; an unknown one is refused", async () => {
  const bad = await api(d, "POST", "/templates", { key: alice, body: { name: "t-bad", image: "ubuntu" } });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error, /image "ubuntu" not found/);
  const t = await api(d, "POST", "/templates", { key: alice, body: { name: "t-deb", image: "debian" } });
  assert.equal(t.status, 201, t.text);
  assert.equal(t.json.image, "debian");
  const plain = await api(d, "POST", "/templates", { key: alice, body: { name: "t-plain" } });
  assert.equal(plain.json.image, "minimal", "the daemon's default image");
  await api(d, "DELETE", "/templates/t-plain", { key: alice });

  const s = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "from-t", template: "t-deb", image: "minimal" } });
  assert.equal(s.status, 201, s.text);
  assert.equal(s.json.image, "debian");
  assert.equal(s.json.warnings.length, 1);
  assert.match(s.json.warnings[0], /template t-deb: the request's image was dropped; the template's image debian is used/);
  assert.equal((await exec(d, alice, "from-t", ["/bin/bash", "-c", "echo ok"])).stdout, "ok\n");
});

test("create --disk MB: the root's writable layer is a filesystem of that size; bad sizes are a 400", async () => {
  for (const disk_mb of [8, 0, -1, 1.5, "64", 10_000_000]) {
    const r = await api(d, "POST", "/sandboxes", { key: bob, body: { name: "dsk", disk_mb } });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error, /disk_mb must be/);
  }
  const c = cli(["create", "--name", "dsk", "--image", "debian", "--disk", "48", "--json"], { env: { BHATTI_URL: d.url, BHATTI_TOKEN: bob } });
  assert.equal(c.code, 0, c.stderr);
  const r = await exec(d, bob, "dsk", ["bash", "-c", "df -k / | tail -1 | awk '{print $2}'; head -c 60000000 /dev/zero > ~/fill; echo rc=$?"]);
  const [kb] = r.stdout.trim().split("\n");
  assert.ok(Number(kb) > 30_000 && Number(kb) <= 48 * 1024, `root is ${kb} KiB`);
  assert.match(r.stdout + r.stderr, /No space left on device/);
  assert.equal((await api(d, "DELETE", "/sandboxes/dsk", { key: bob })).status, 204);
});

test("image list/inspect on the CLI; image delete is refused while a sandbox or template uses the image, then works", async () => {
  const list = imageCli("list", "--json");
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout).map((i: { name: string }) => i.name), ["debian", "minimal"]);
  const insp = imageCli("inspect", "debian");
  assert.equal(insp.code, 0, insp.stderr);
  assert.ok(JSON.parse(insp.stdout).package_list.python3);

  const refused = imageCli("delete", "debian");
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /image debian is in use by sandbox alice\/deb, sandbox alice\/from-t, template alice\/t-deb; delete those first/);
  assert.ok(existsSync(join(images, "debian", "manifest.json")));

  for (const sb of ["deb", "from-t"]) assert.equal((await api(d, "DELETE", `/sandboxes/${sb}`, { key: alice })).status, 204);
  const stillTemplate = imageCli("delete", "debian");
  assert.match(stillTemplate.stderr, /in use by template alice\/t-deb/);
  await api(d, "DELETE", "/templates/t-deb", { key: alice });
  const ok = imageCli("delete", "debian");
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(readdirSync(images).filter((n) => n.startsWith("debian")), [], "nothing of it left");
  const after = await api(d, "GET", "/images", { key: alice });
  assert.deepEqual(after.json.images.map((i: { name: string }) => i.name), ["minimal"]);
  const gone = await api(d, "POST", "/sandboxes", { key: alice, body: { name: "late", image: "debian" } });
  assert.equal(gone.status, 400);
  assert.match(imageCli("delete", "base").stderr, /image minimal is in use by sandbox alice\/old/, "the alias names the same image");
});

test("without --image the daemon's default image is debian", async () => {
  // The shared test images (the earlier tests deleted debian from their copy).
  const p = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: await ensureDebianTestImage() }, productDefaults: true });
  try {
    const key = createUser(p.dataDir, "carol");
    assert.equal((await api(p, "GET", "/images", { key })).json.default, "debian");
    const c = await api(p, "POST", "/sandboxes", { key, body: { name: "plain" } });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.json.image, "debian");
    const r = await exec(p, key, "plain", ["bash", "-lc", "echo $BASH_VERSION"]);
    assert.equal(r.exit_code, 0, r.stderr);
    assert.match(r.stdout, /^5\./);
    await api(p, "DELETE", "/sandboxes/plain", { key });
  } finally {
    assert.equal(await p.stop(), 0);
    cleanup(p.dataDir);
  }
});
