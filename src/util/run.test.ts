// Host tools die with the process that started them: a real Node process runs
// tools through run(), is killed, and the tools (and, with `tree`, what they
// started) must be gone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ORPHANED_EXIT, run, tiedScript, tiedToParent, TOOL_ENV } from "./run.js";
import { describe, descendants, gone, running, until } from "../testing/procs.js";

const work = mkdtempSync(join(tmpdir(), "bhatti-run-test-"));
test.after(() => rmSync(work, { recursive: true, force: true }));

// Started from a timer and from a promise callback: Node runs both on its main
// thread, the thread the parent-death signal is bound to.
const CHILD = `
import { run } from ${JSON.stringify(new URL("./run.js", import.meta.url).href)};
setTimeout(() => {
  run("sleep", ["300"]).catch(() => {});
  Promise.resolve().then(() => run("sh", ["-c", "sleep 301 & exec sleep 302"], { tree: true })).catch(() => {});
  setTimeout(() => process.stdout.write("ready\\n"), 300);
}, 10);
setInterval(() => {}, 1000);
`;

for (const signal of ["SIGKILL", "SIGTERM"] as const) {
  test(`tools started through run() die when their parent gets ${signal}, and live as long as it does`, { timeout: 20_000 }, async () => {
    const script = join(work, `child-${signal}.mjs`);
    writeFileSync(script, CHILD);
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (b) => { out += b; });
    await until("the child to start its tools", 10_000, () => out.includes("ready"));
    const sleeps = () => descendants(child.pid!).filter((p) => p.comm === "sleep");
    const tools = await until("three sleeps", 5_000, () => sleeps().length === 3 && sleeps());
    assert.deepEqual(tools.map((p) => p.argv[1]).sort(), ["300", "301", "302"]);
    await sleep(500);
    assert.equal(tools.filter(running).length, 3, "tools run while their parent lives");
    const all = descendants(child.pid!);
    child.kill(signal);
    const left = await gone(all, 3_000);
    assert.deepEqual(left, [], `still running after the parent died:\n${describe(left)}`);
  });
}

test("a tool whose parent died before its parent-death signal was armed never starts", () => {
  const marker = join(work, "ran");
  const orphaned = spawnSync(...tiedToParent("sh", ["-c", `echo ran > ${marker}`], 1), { env: TOOL_ENV });
  assert.equal(orphaned.status, ORPHANED_EXIT);
  assert.equal(spawnSync("test", ["-e", marker]).status, 1, "the tool did not run");
  const normal = spawnSync(...tiedToParent("sh", ["-c", "echo ran"]), { env: TOOL_ENV, encoding: "utf8" });
  assert.equal(normal.status, 0);
  assert.equal(normal.stdout, "ran\n");
});

test("tiedScript: the same guard as the first line of the caller's script, which gets its args", () => {
  const marker = join(work, "ran-script");
  const orphaned = spawnSync(...tiedScript(`echo ran > ${marker}`, [], 1), { env: TOOL_ENV });
  assert.equal(orphaned.status, ORPHANED_EXIT);
  assert.equal(spawnSync("test", ["-e", marker]).status, 1, "the script did not run");
  const normal = spawnSync(...tiedScript('echo "$#:$1:$2"; exec "$@"', ["echo", "a b"]), { env: TOOL_ENV, encoding: "utf8" });
  assert.equal(normal.status, 0);
  assert.equal(normal.stdout, "2:echo:a b\na b\n");
});

test("run(): output, exit codes and a missing tool", async () => {
  assert.equal((await run("sh", ["-c", "echo out; echo err >&2"])).stdout, "out\n");
  assert.equal((await run("sh", ["-c", "exit 3"], { allowFail: true })).code, 3);
  assert.equal((await run("cat", [], { input: "in", tree: true })).stdout, "in");
  await assert.rejects(run("sh", ["-c", "echo nope >&2; exit 2"]), /sh -c echo nope >&2; exit 2 failed \(exit 2\): nope/);
  await assert.rejects(run("bhatti-no-such-tool", ["x"]), /bhatti-no-such-tool x failed \(exit 127\): .*not found/);
  const t = Date.now();
  await assert.rejects(run("sleep", ["30"], { timeoutMs: 200 }), /failed \(SIGTERM\)/);
  await assert.rejects(run("sleep", ["30"], { timeoutMs: 200, tree: true }), /failed \(SIGKILL\)/);
  assert.ok(Date.now() - t < 5_000);
});
