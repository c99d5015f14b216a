// Sandbox roots over per-id-range ownership layers: real overlay mounts of a
// small image. Needs root (mount, chown), like the engine itself.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureRuntimeDir, isMounted, mountPoints, RUN_BHATTI } from "../runtime.js";
import { dropStaleLayers, metacopyInUse, prepareRootfs, releaseRootfs } from "./rootfs.js";

const BASE = 1_000_000 + 4000 * 65536; // an id range no real slot of this test uses
const rt = join(RUN_BHATTI, `rootfstest-${process.pid}`);
const layers = join(rt, "layers");
const data = mkdtempSync("/var/tmp/bhatti-rootfstest-");
const image = join(data, "images/img/rootfs");

/** A tiny image: root-owned tree, a uid-1000 home, a symlink, an id beyond the range. */
function makeImage(): void {
  mkdirSync(join(image, "bin"), { recursive: true });
  mkdirSync(join(image, "etc"));
  mkdirSync(join(image, "home/lohar"), { recursive: true });
  writeFileSync(join(image, "bin/tool"), "#!/bin/sh\necho tool\n", { mode: 0o755 });
  writeFileSync(join(image, "etc/hostname"), "image\n", { mode: 0o644 });
  writeFileSync(join(image, "etc/shadow"), "secret-ish\n", { mode: 0o600 });
  writeFileSync(join(image, "home/lohar/.profile"), "# hi\n", { mode: 0o644 });
  chownSync(join(image, "home/lohar"), 1000, 1000);
  chownSync(join(image, "home/lohar/.profile"), 1000, 1000);
  writeFileSync(join(image, "etc/odd"), "x", { mode: 0o644 });
  chownSync(join(image, "etc/odd"), 70000, 70000);
  symlinkSync("tool", join(image, "bin/alias"));
  chmodSync(image, 0o755);
}

let n = 0;
function paths() {
  const i = n++;
  return { lower: image, upper: join(data, `sb${i}/upper`), work: join(data, `sb${i}/work`), merged: join(rt, `m${i}`) };
}

function owners(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const st = lstatSync(join(root, rel));
    out[rel || "/"] = `${st.uid}:${st.gid}:${(st.mode & 0o7777).toString(8)}`;
    if (st.isDirectory()) for (const c of readdirSync(join(root, rel))) walk(rel ? `${rel}/${c}` : c);
  };
  walk("");
  return out;
}

describe("ns rootfs over ownership layers", () => {
  before(async () => {
    await ensureRuntimeDir(rt);
    makeImage();
  });
  after(async () => {
    for (const m of mountPoints()) if (m.startsWith(`${rt}/`)) await releaseRootfs(m);
    rmSync(rt, { recursive: true, force: true });
    rmSync(data, { recursive: true, force: true });
  });

  test("every entry appears owned by base+uid, modes kept, the image untouched", async () => {
    const before = owners(image);
    const p = paths();
    await prepareRootfs(p, BASE, layers);
    try {
      assert.equal(metacopyInUse(), true, "this host supports metacopy (the fast path under test)");
      const seen = owners(p.merged);
      assert.deepEqual(Object.keys(seen).sort(), Object.keys(before).sort());
      for (const [rel, o] of Object.entries(before)) {
        const [uid, gid] = o.split(":").map(Number);
        const mode = o.split(":")[2];
        const map = (id: number) => BASE + (id < 65536 ? id : 65534);
        if (rel === "bin/alias") {
          assert.equal(seen[rel].split(":").slice(0, 2).join(":"), `${map(uid)}:${map(gid)}`);
          continue;
        }
        assert.equal(seen[rel], `${map(uid)}:${map(gid)}:${mode}`, rel);
      }
      assert.equal(readFileSync(join(p.merged, "bin/tool"), "utf8"), "#!/bin/sh\necho tool\n");
      assert.deepEqual(owners(image), before, "the image is unchanged");
      // Layers are root-only, on tmpfs.
      const st = statSync(layers);
      assert.equal(st.uid, 0);
      assert.equal(st.mode & 0o777, 0o700);
    } finally {
      await releaseRootfs(p.merged);
    }
  });

  test("what one sandbox changes never reaches the next sandbox of the same id range", async () => {
    const a = paths();
    await prepareRootfs(a, BASE, layers);
    const layerBefore = owners(layers);
    chmodSync(join(a.merged, "bin/tool"), 0o777);
    writeFileSync(join(a.merged, "bin/tool"), "planted\n");
    writeFileSync(join(a.merged, "etc/hostname"), "changed\n");
    writeFileSync(join(a.merged, "bin/new"), "new\n");
    chownSync(join(a.merged, "etc/shadow"), BASE + 5, BASE + 5);
    unlinkSync(join(a.merged, "home/lohar/.profile"));
    await releaseRootfs(a.merged);
    assert.deepEqual(owners(layers), layerBefore, "the ownership layer is unchanged");

    const b = paths();
    await prepareRootfs(b, BASE, layers);
    try {
      assert.equal(readFileSync(join(b.merged, "bin/tool"), "utf8"), "#!/bin/sh\necho tool\n");
      assert.equal(statSync(join(b.merged, "bin/tool")).mode & 0o777, 0o755);
      assert.equal(readFileSync(join(b.merged, "etc/hostname"), "utf8"), "image\n");
      assert.ok(!existsSync(join(b.merged, "bin/new")));
      assert.equal(statSync(join(b.merged, "etc/shadow")).uid, BASE);
      assert.ok(existsSync(join(b.merged, "home/lohar/.profile")));
      assert.equal(readFileSync(join(image, "bin/tool"), "utf8"), "#!/bin/sh\necho tool\n");
    } finally {
      await releaseRootfs(b.merged);
    }
  });

  test("a rebuilt image gets fresh layers; stale ones are dropped", async () => {
    const keysBefore = readdirSync(layers);
    assert.equal(keysBefore.length, 1);
    // An image rebuild swaps in a new directory.
    const next = `${image}.next`;
    mkdirSync(next);
    for (const e of readdirSync(image)) renameSync(join(image, e), join(next, e));
    rmSync(image, { recursive: true });
    renameSync(next, image);
    writeFileSync(join(image, "etc/hostname"), "rebuilt\n");
    const p = paths();
    await prepareRootfs(p, BASE, layers);
    try {
      assert.equal(readFileSync(join(p.merged, "etc/hostname"), "utf8"), "rebuilt\n");
      assert.equal(readdirSync(layers).length, 2);
      dropStaleLayers(layers, BASE);
      assert.deepEqual(readdirSync(layers).filter((k) => keysBefore.includes(k)), [], "the old image's layer is gone");
      assert.equal(readdirSync(layers).length, 1, "the current one stays");
      assert.equal(readFileSync(join(p.merged, "bin/tool"), "utf8"), "#!/bin/sh\necho tool\n");
    } finally {
      await releaseRootfs(p.merged);
    }
    assert.ok(!isMounted(p.merged));
    assert.deepEqual(readdirSync(join(layers, readdirSync(layers)[0])).filter((x) => x.startsWith(".build-")), []);
  });
});
