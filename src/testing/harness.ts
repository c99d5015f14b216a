// Test harness: a real daemon process on a free port with a temp data dir, and
// the real CLI binary. Used by the test suites; not part of the product.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { responseProblems } from "./contract-check.js";

export const REPO = resolve(fileURLToPath(import.meta.url), "../../../..");
export const BIN = join(REPO, "bin", "bhatti");

export interface Daemon {
  dataDir: string;
  url: string;
  proc: ChildProcess;
  output: () => string; // everything the daemon printed so far (stdout + stderr)
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

const tempDirs = new Set<string>();
// Scratch dirs go with the test process (a test's own cleanup may run first;
// data dirs whose sandboxes still run are removed by cleanup(), not here).
process.once("exit", () => {
  for (const d of tempDirs) try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
});

export function tempDir(prefix = "bhatti-test-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  if (prefix !== "bhatti-test-") tempDirs.add(d);
  return d;
}

/** Environment for child processes: the test's own, plus overrides; HOME isolated unless given. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, BHATTI_URL: undefined, BHATTI_TOKEN: undefined, BHATTI_DATA_DIR: undefined, ...extra };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return env;
}

export async function startDaemon(opts: { dataDir?: string; args?: string[]; env?: Record<string, string>; productDefaults?: boolean } = {}): Promise<Daemon> {
  const dataDir = opts.dataDir ?? tempDir();
  // Test daemons run the small `minimal` image unless a test names one (the
  // product's default is `debian`; its own suites ask for it with --image).
  const image = opts.productDefaults || (opts.args ?? []).includes("--image") ? [] : ["--image", "minimal"];
  // ...and loopback-only sandboxes unless a test names a default egress (the product's is public; networking tests build their own internet).
  if (!opts.productDefaults && !(opts.args ?? []).includes("--default-egress")) image.push("--default-egress", "none");
  const proc = spawn(BIN, ["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", ...image, ...(opts.args ?? [])], {
    env: childEnv({ HOME: dataDir, ...opts.env }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  // A failed assertion must not leave the test file waiting on a live daemon:
  // the child does not hold the event loop open, and is killed when the test process exits.
  proc.unref();
  (proc.stdout as unknown as { unref(): void }).unref();
  (proc.stderr as unknown as { unref(): void }).unref();
  const kill = () => { try { proc.kill("SIGKILL"); } catch { /* gone */ } };
  process.once("exit", kill);
  proc.once("exit", () => process.off("exit", kill));
  let out = "";
  proc.stdout!.on("data", (d) => { out += d; });
  proc.stderr!.on("data", (d) => { out += d; });
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start in 30 s:\n${out}`)), 30_000);
    const check = () => {
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) { clearTimeout(timer); resolveUrl(m[1]); }
    };
    proc.stdout!.on("data", check);
    exited.then((code) => { clearTimeout(timer); reject(new Error(`daemon exited with ${code} before listening:\n${out}`)); });
  });
  return {
    dataDir, url, proc,
    output: () => out,
    stop: async (signal = "SIGTERM") => {
      proc.ref(); // hold the event loop until the daemon has really exited
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** Runs the real CLI. `input` is fed on stdin. */
export function cli(args: string[], opts: { env?: Record<string, string | undefined>; input?: string | Buffer } = {}): CliResult {
  const r = spawnSync(BIN, args, { env: childEnv(opts.env), input: opts.input ?? "", encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Creates a user through the real CLI and returns its API key. */
export function createUser(dataDir: string, name: string, extra: string[] = []): string {
  const r = cli(["user", "create", "--name", name, "--data-dir", dataDir, "--json", ...extra]);
  if (r.code !== 0) throw new Error(`user create failed: ${r.stderr}`);
  return JSON.parse(r.stdout).api_key;
}

export async function api(d: { url: string }, method: string, path: string, opts: { key?: string; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(opts.key ? { Authorization: `Bearer ${opts.key}` } : {}), ...opts.headers };
  let body: string | Buffer | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) { body = JSON.stringify(opts.body); headers["Content-Type"] = "application/json"; }
  const res = await fetch(d.url + path, { method, headers, body });
  const text = await res.text();
  // Every response the suites receive is checked against the API contract.
  const problems = responseProblems(method, path, res.status, res.headers.get("content-type"), text);
  if (problems.length) throw new Error(`response breaks the API contract: ${problems.join("; ")}`);
  let json: unknown;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json: json as any };
}

export function cleanup(dir: string): void {
  // A test that failed half way can leave a sandbox's disk mounted in its data
  // dir: detach such mounts (deepest first) so that the removal itself works.
  const prefix = resolve(dir) + "/";
  let mounts: string[] = [];
  try {
    mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4]).filter((m): m is string => !!m && m.startsWith(prefix));
  } catch { /* no /proc: nothing to detach */ }
  for (const m of mounts.sort((a, b) => b.length - a.length)) spawnSync("umount", ["-l", m]);
  rmSync(dir, { recursive: true, force: true });
}

/** Decrypts with the standard Debian `age` tool. */
export function ageDecrypt(keyFile: string, blob: Buffer): { ok: boolean; out: string; err: string } {
  const r = spawnSync("age", ["-d", "-i", keyFile], { input: blob });
  return { ok: r.status === 0, out: r.stdout.toString(), err: r.stderr.toString() };
}
