import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import type { ConfigDrive } from "../protocol/agent.js";
import { buildConfigDrive, CHILD_DRIVE_PATH, configImagePath, configMountPath, destroyConfigDrive, mountConfigDrive } from "./configdrive.js";
import { ensureRuntimeDir, isMounted, loopBackingFiles, loopDevicesUnder, RUN_BHATTI } from "./runtime.js";
import { scanTree } from "../testing/scan.js";

const SECRET = "s3cr3t-value-\u00e9-" + Math.random().toString(36).slice(2);

function config(): ConfigDrive {
  return {
    sandbox_id: "cdtest",
    hostname: "cd-test",
    token: "tok",
    env: { API_KEY: SECRET, MULTI: "a\nb" },
    files: [{ path: "/home/lohar/x", content: Buffer.from("hi").toString("base64"), mode: 0o600 }],
  };
}

// Per process, so parallel runs don't share it; removed when the file is done.
const rt = join(RUN_BHATTI, `cdtest-${process.pid}`);
test.after(() => rmSync(rt, { recursive: true, force: true }));

async function tmpDir(): Promise<string> {
  await ensureRuntimeDir(rt);
  const d = mkdtempSync(join(rt, "d"));
  return d;
}

test("config drive holds exactly config.json, 0400, owned as asked; it never has a name; nothing left mounted or attached", async () => {
  const dir = await tmpDir();
  const drive = await buildConfigDrive(dir, config(), { owner: 1234567 });
  assert.ok(statSync(`/proc/self/fd/${drive.fd}`).isFile());
  assert.deepEqual(loopDevicesUnder(dir), [], "no loop device after build");
  assert.deepEqual(readdirSync(dir), [], "the image has no name: no file in the dir at all");
  assert.deepEqual(scanTree(dir, SECRET), [], "no file under the dir holds the value");

  const mnt = await mountConfigDrive(dir, drive);
  assert.equal(mnt, configMountPath(dir));
  assert.ok(isMounted(mnt));
  const st = statSync(join(mnt, "config.json"));
  assert.equal(st.mode & 0o777, 0o400);
  assert.equal(st.uid, 1234567);
  assert.equal(statSync(mnt).uid, 1234567);
  assert.equal(statSync(mnt).mode & 0o777, 0o700);
  assert.deepEqual(JSON.parse(readFileSync(join(mnt, "config.json"), "utf8")), config());
  assert.deepEqual(readdirSync(mnt).sort(), ["config.json", "lost+found"]);
  assert.equal(loopDevicesUnder(dir).length, 1);

  await destroyConfigDrive(dir);
  drive.discard();
  assert.ok(!isMounted(mnt));
  assert.ok(!existsSync(mnt));
  assert.ok(!loopBackingFiles().some((f) => f.startsWith(dir)), "loop device detached");
  await destroyConfigDrive(dir); // idempotent
  rmSync(dir, { recursive: true });
});

test("a large config (written through a build mount): read-only when mounted, right owner, one loop device; nothing named, nothing left", async () => {
  const dir = await tmpDir();
  const big = { ...config(), env: { ...config().env, BIG: "x".repeat(3 * 1024 * 1024) } };
  const drive = await buildConfigDrive(dir, big, { owner: 4242 });
  assert.deepEqual(readdirSync(dir), [], "the build mount is gone and the image has no name");
  assert.deepEqual(loopDevicesUnder(dir), [], "the build mount's loop device detached itself");
  const mnt = await mountConfigDrive(dir, drive);
  assert.equal(mnt, configMountPath(dir));
  const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === mnt);
  assert.ok(line, "mounted");
  assert.match(line.split(" ")[5], /^ro,nosuid,nodev,noexec/);
  assert.equal(statSync(join(mnt, "config.json")).uid, 4242);
  assert.deepEqual(JSON.parse(readFileSync(join(mnt, "config.json"), "utf8")), big);
  assert.equal(loopDevicesUnder(dir).length, 1);
  assert.deepEqual(readdirSync(dir), ["config.mnt"], "only the mount point: the image itself has no name");
  assert.deepEqual(scanTree(dir, SECRET).filter((f) => !f.startsWith(mnt + "/")), [], "no file outside the mounted drive holds the value");
  await destroyConfigDrive(dir);
  drive.discard();
  assert.ok(!isMounted(mnt));
  assert.ok(!loopBackingFiles().some((f) => f.startsWith(dir)));
  assert.deepEqual(readdirSync(dir), []);
  rmSync(dir, { recursive: true });
});

test("refuses a directory that is not on tmpfs, and the value is not in the error", async () => {
  const dir = mkdtempSync("/var/tmp/bhatti-cd-");
  try {
    await assert.rejects(buildConfigDrive(dir, config()), (e: Error) => {
      assert.match(e.message, /not on tmpfs/);
      assert.ok(!e.message.includes(SECRET));
      return true;
    });
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("a failed build cleans up and names the step, not the value", async () => {
  const dir = await tmpDir();
  // Large configs (written through a build mount): a directory where the build mount point goes.
  mkdirSync(join(dir, "config.build"));
  const big = { ...config(), env: { ...config().env, BIG: "x".repeat(2 * 1024 * 1024) } };
  await assert.rejects(buildConfigDrive(dir, big), (e: Error) => {
    assert.ok(!e.message.includes(SECRET));
    return true;
  });
  assert.deepEqual(readdirSync(dir).filter((n) => !n.startsWith("config.")), []);
  assert.ok(!existsSync(configImagePath(dir)));
  assert.ok(!loopBackingFiles().some((f) => f.startsWith(dir)));
  rmSync(dir, { recursive: true });
});

test("every config size reads back exactly (prepared images across capacities, and the mount path beyond)", async () => {
  const dir = await tmpDir();
  for (const n of [0, 1, 4000, 4096 - 200, 70_000, 300_000, 1024 * 1024 - 300, 1024 * 1024 + 10]) {
    const c = { ...config(), env: { ...config().env, PAD: "\u00e9".repeat(n >> 1) } };
    const drive = await buildConfigDrive(dir, c, { owner: 4343 });
    const mnt = await mountConfigDrive(dir, drive);
    try {
      assert.deepEqual(JSON.parse(readFileSync(join(mnt, "config.json"), "utf8")), c, `size ${n}`);
      assert.equal(statSync(join(mnt, "config.json")).uid, 4343);
      assert.equal(statSync(join(mnt, "config.json")).mode & 0o777, 0o400);
      assert.equal(statSync(mnt).uid, 4343);
      assert.equal(statSync(mnt).mode & 0o777, 0o700);
    } finally {
      await destroyConfigDrive(dir);
      drive.discard();
    }
  }
  const drive = await buildConfigDrive(dir, config(), { owner: 4343 });
  const fsck = spawnSync("fsck.ext4", ["-n", "-f", CHILD_DRIVE_PATH], { encoding: "utf8", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }, stdio: ["ignore", "pipe", "pipe", drive.fd] });
  assert.equal(fsck.status, 0, `fsck: ${fsck.stdout}${fsck.stderr}`);
  drive.discard();
  await destroyConfigDrive(dir);
  rmSync(dir, { recursive: true });
});
