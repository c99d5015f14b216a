// Boot against a real mounted config drive (tmpfs stands in for the ext4 image):
// lohar must unmount it and remove the mount point before serving, and must
// refuse to serve when it cannot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLohar, config, run } from "./testkit.js";
import { boot } from "./boot.js";
import { parseArgs } from "./args.js";

function mounted(path: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === path);
}

test("lohar unmounts the config drive and removes the mount point before serving", async () => {
  const base = mkdtempSync(join(tmpdir(), "lohar-drive-"));
  const drive = join(base, "config");
  mkdirSync(drive);
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", drive]);
  try {
    const cfg = config({ env: { K: "v" } });
    const l = await startLohar(cfg, { configDir: drive, extraArgs: [] });
    try {
      const c = await l.connect();
      assert.equal(c.hello.config, "consumed");
      assert.equal(mounted(drive), false);
      assert.equal(existsSync(drive), false);
      assert.equal((await run(c, ["/bin/sh", "-c", "echo $K"])).stdout.toString(), "v\n");
      c.close();
    } finally {
      await l.stop();
    }
  } finally {
    if (mounted(drive)) execFileSync("umount", [drive]);
    rmSync(base, { recursive: true, force: true });
  }
});

test("lohar refuses to serve when the drive cannot be unmounted", async () => {
  // Not a mount point: umount fails, lohar must exit non-zero without ever
  // answering. Its socket may already listen (it does while the drive's umount
  // runs), but no connection is authenticated or told hello before the boot is done.
  const cfg = config();
  let l: Awaited<ReturnType<typeof startLohar>> | undefined;
  try {
    l = await startLohar(cfg, { extraArgs: [] });
  } catch (e) {
    assert.match((e as Error).message, /lohar exited 1/);
    assert.match((e as Error).message, /config drive not removed, refusing to serve/);
    return;
  }
  try {
    await assert.rejects(l.connect(), "no hello from a lohar whose drive is still there");
    await new Promise<void>((r) => (l!.proc.exitCode !== null ? r() : l!.proc.once("exit", () => r())));
    assert.equal(l.proc.exitCode, 1);
    assert.match(l.stderr(), /config drive not removed, refusing to serve/);
  } finally {
    await l.stop();
  }
});

test("boot keeps env and token out of process.env", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lohar-boot-"));
  try {
    const secret = "boot-secret-" + Math.random().toString(36).slice(2);
    writeFileSync(join(dir, "config.json"), JSON.stringify(config({ token: "tok-" + secret, env: { API_KEY: secret } })));
    const before = JSON.stringify(process.env);
    const sb = await boot(parseArgs(["--config-dir", dir, "--no-unmount", "--no-hostname"]));
    assert.equal(sb.env.API_KEY, secret);
    assert.equal(JSON.stringify(process.env), before);
    assert.ok(!JSON.stringify(process.env).includes(secret));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad config: invalid JSON is reported without quoting its content", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lohar-boot-"));
  try {
    writeFileSync(join(dir, "config.json"), '{"token": "sekrit-xyz", broken');
    await assert.rejects(boot(parseArgs(["--config-dir", dir, "--no-unmount", "--no-hostname"])), (e: Error) => {
      assert.equal(e.message, "config.json is not valid JSON");
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
