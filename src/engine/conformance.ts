// Engine-level conformance suite, shared by the ns and vm engines. Every test
// runs against a real sandbox created through the Engine interface. Engine
// specific host checks (loop devices, mounts, cgroups, ...) come in through
// a HostInspector so the suite itself stays engine-agnostic.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { ConfigDrive, ExecExit, ExecStart } from "../protocol/agent.js";
import { GUEST } from "../protocol/agent.js";
import type { CreateSpec, Engine, RunningSandbox } from "./types.js";

export interface HostInspector {
  /** Host-side traces of a sandbox's config drive that must be gone once create() resolved (image file, loop device, mount). */
  configDriveTraces(id: string): Promise<string[]>;
  /** Everything of a sandbox still on the host (processes, mounts, loops, cgroups, dirs, id slots). Empty after destroy. */
  traces(id: string): Promise<string[]>;
  /** Host-wide counters that must not grow over create/destroy cycles (mounts, loop devices, cgroup dirs, ...). */
  counts(): Promise<Record<string, number>>;
}

export interface ConformanceOptions {
  full: boolean; // false: a subset for slow engines (one sandbox, no cycles, no resource stress)
  inspector?: HostInspector;
  cycles?: number; // create/destroy cycles in the leak test (full only), default 100
  image?: string; // default "minimal"
}

export interface ExecResult { exit: ExecExit; stdout: Buffer; stderr: Buffer; ms: number }

export async function execIn(sb: RunningSandbox, cmd: string[], more: Omit<ExecStart, "type" | "cmd"> = {}): Promise<ExecResult> {
  const t = performance.now();
  const s = sb.agent.exec({ cmd, ...more });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  s.on("stdout", (d: Buffer) => out.push(d));
  s.on("stderr", (d: Buffer) => err.push(d));
  const exit = await s.done;
  return { exit, stdout: Buffer.concat(out), stderr: Buffer.concat(err), ms: performance.now() - t };
}

export async function sh(sb: RunningSandbox, script: string, more: Omit<ExecStart, "type" | "cmd"> = {}): Promise<ExecResult> {
  return execIn(sb, ["/bin/sh", "-c", script], more);
}

let seq = 0;
export function newId(prefix = "cf"): string {
  return `${prefix}${process.pid.toString(36)}${Date.now().toString(36)}${(seq++).toString(36)}`;
}

export function specFor(id: string, config: Partial<ConfigDrive> = {}, more: Partial<CreateSpec> = {}): CreateSpec {
  const name = more.name ?? `box-${id.slice(-6)}`;
  return {
    id,
    name,
    image: more.image ?? "minimal",
    cpus: more.cpus ?? 1,
    memoryMb: more.memoryMb ?? 256,
    ...(more.diskMb ? { diskMb: more.diskMb } : {}),
    config: {
      sandbox_id: id,
      hostname: name,
      token: randomBytes(16).toString("hex"),
      env: {},
      files: [],
      ...config,
    },
  };
}

const HOST_MARKER = "BHATTI_CONFORMANCE_HOST_MARKER";

export function conformanceSuite(makeEngine: () => Promise<Engine>, opts: ConformanceOptions): void {
  const secret = `sk-${randomBytes(12).toString("hex")}`;
  const fileBody = Buffer.from("line one\nsecond line \u00e9\n", "utf8");
  let engine: Engine;
  let sb: RunningSandbox;
  let spec: CreateSpec;

  describe(`engine conformance (${opts.full ? "full" : "subset"}${opts.image ? `, image ${opts.image}` : ""})`, () => {
    before(async () => {
      process.env[HOST_MARKER] = "host-env-must-not-leak";
      engine = await makeEngine();
      const avail = await engine.available();
      assert.ok(avail.ok, `engine unavailable: ${avail.reason}`);
      const id = newId();
      spec = specFor(id, {
        env: { API_KEY: secret, LANG: "C", BOTH: "from-config", SPACES: "a b\tc" },
        files: [
          { path: "/home/lohar/notes.txt", content: fileBody.toString("base64"), mode: 0o640 },
          { path: "/home/lohar/.config/app/key.json", content: Buffer.from('{"k":1}').toString("base64"), mode: 0o600 },
        ],
      }, { name: "conformance-box", ...(opts.image ? { image: opts.image } : {}) });
      sb = await engine.create(spec);
    });

    after(async () => {
      delete process.env[HOST_MARKER];
      if (sb) await engine.destroy(sb.id, sb.state);
    });

    test("env: defaults < config env < exec env", async () => {
      const r = await execIn(sb, ["/usr/bin/env"], { env: { BOTH: "from-exec" } });
      assert.equal(r.exit.exit_code, 0, r.stderr.toString());
      const env = parseEnv(r.stdout.toString());
      assert.equal(env.API_KEY, secret);
      assert.equal(env.LANG, "C", "config env wins over defaults");
      assert.equal(env.BOTH, "from-exec", "exec env wins over config env");
      assert.equal(env.SPACES, "a b\tc");
      assert.equal(env.PATH, GUEST.defaultEnv.PATH);
      assert.equal(env.HOME, GUEST.defaultEnv.HOME);
      assert.equal(env.TERM, GUEST.defaultEnv.TERM);
      const plain = parseEnv((await execIn(sb, ["/usr/bin/env"])).stdout.toString());
      assert.equal(plain.BOTH, "from-config", "exec env applies to that command only");
    });

    test("nothing of the host's environment is inside", async () => {
      const env = parseEnv((await execIn(sb, ["/usr/bin/env"])).stdout.toString());
      assert.equal(env[HOST_MARKER], undefined);
      const allowed = new Set([...Object.keys(GUEST.defaultEnv), ...Object.keys(spec.config.env), "PWD", "SHLVL", "_", "OLDPWD"]);
      const extra = Object.keys(env).filter((k) => !allowed.has(k));
      assert.deepEqual(extra, [], `unexpected variables: ${extra.join(", ")}`);
    });

    test("commands run as uid 1000 with no capabilities", async () => {
      const r = await sh(sb, "id -u; id -g; grep -E '^Cap(Eff|Prm|Amb):' /proc/self/status");
      const lines = r.stdout.toString().trim().split("\n");
      assert.equal(lines[0], "1000");
      assert.equal(lines[1], "1000");
      for (const l of lines.slice(2)) assert.match(l, /:\s+0{16}$/, l);
    });

    test("hostname is the sandbox name", async () => {
      const r = await execIn(sb, ["/bin/hostname"]);
      assert.equal(r.stdout.toString().trim(), spec.name);
    });

    test("config files arrive with content, mode and owner 1000", async () => {
      const r = await sh(sb, "stat -c '%a %u %g' /home/lohar/notes.txt /home/lohar/.config/app/key.json; cat /home/lohar/notes.txt");
      assert.equal(r.exit.exit_code, 0, r.stderr.toString());
      const out = r.stdout.toString();
      const [a, b] = out.split("\n");
      assert.equal(a, "640 1000 1000");
      assert.equal(b, "600 1000 1000");
      assert.ok(out.endsWith(fileBody.toString("utf8")));
      assert.deepEqual(await sb.agent.readFile("/home/lohar/notes.txt"), fileBody);
    });

    test("PID 1 and lohar are invisible to uid 1000", async () => {
      const r = await sh(sb, "cat /proc/1/environ; echo rc=$?; cat /proc/1/cmdline; echo rc=$?; ls /proc | grep -x 1; echo rc=$?");
      const out = r.stdout.toString();
      assert.ok(!out.includes(secret));
      assert.deepEqual(out.match(/rc=\d+/g), ["rc=1", "rc=1", "rc=1"], out);
      const ps = await sh(sb, "for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done");
      assert.ok(!/lohar\.js|tini/.test(ps.stdout.toString()), ps.stdout.toString());
    });

    test("the config drive is gone, inside and on the host", async () => {
      const r = await sh(sb, `grep -c '${GUEST.configDir}' /proc/self/mountinfo; test -e ${GUEST.configDir}; echo exists=$?; grep -rl '${secret}' /run /tmp /home /etc 2>/dev/null; echo done`);
      const out = r.stdout.toString();
      assert.match(out, /^0\n/, "not in mountinfo");
      assert.match(out, /exists=1/, `${GUEST.configDir} removed`);
      assert.ok(!out.includes("/"), `secret found in a file: ${out}`);
      if (opts.inspector) assert.deepEqual(await opts.inspector.configDriveTraces(sb.id), []);
    });

    test("uid 1000 cannot create namespaces or mount", async () => {
      const r = await sh(sb, "unshare -U true; echo u=$?; unshare -r true; echo r=$?; mkdir -p /tmp/m; mount -t tmpfs x /tmp/m; echo m=$?");
      const out = r.stdout.toString();
      assert.match(out, /u=[1-9]/, out);
      assert.match(out, /r=[1-9]/, out);
      assert.match(out, /m=[1-9]/, out);
    });

    test("a timeout kills the whole process group", async () => {
      const t = performance.now();
      const r = await sh(sb, "sleep 61 & sleep 62 & sleep 63", { timeout_ms: 300 });
      assert.equal(r.exit.timed_out, true);
      assert.ok(performance.now() - t < 5000);
      await new Promise((res) => setTimeout(res, 200));
      const ps = await sh(sb, "for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done");
      assert.ok(!/sleep 6[123]/.test(ps.stdout.toString()), ps.stdout.toString());
    });

    test("output is binary-safe", async () => {
      const data = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(300_000)]);
      await sb.agent.writeFile("/tmp/blob", data);
      const r = await execIn(sb, ["/bin/cat", "/tmp/blob"]);
      assert.equal(r.exit.exit_code, 0);
      assert.ok(r.stdout.equals(data), `got ${r.stdout.length} bytes, want ${data.length}`);
      const e = await sh(sb, "cat /tmp/blob >&2");
      assert.ok(e.stderr.equals(data));
    });

    test("exit codes and signals come through", async () => {
      assert.equal((await sh(sb, "exit 42")).exit.exit_code, 42);
      const k = await sh(sb, "kill -9 $$");
      assert.equal(k.exit.exit_code, 137);
    });

    test("reattach after dropping the agent connection", async () => {
      sb.agent.close();
      const fresh = await makeEngine(); // a restarted daemon has a new engine object
      const again = await fresh.reattach(sb.id, sb.state, spec.config.token);
      assert.ok(again, "sandbox is still alive");
      sb = again;
      const r = await execIn(sb, ["/usr/bin/env"]);
      assert.equal(parseEnv(r.stdout.toString()).API_KEY, secret, "env survives (kept in lohar's memory)");
    });

    if (opts.full) {
      test("memory limit is enforced (a hog is killed, the sandbox lives on)", async () => {
        const r = await execIn(sb, ["/opt/bhatti/node", "-e", "const a=[];for(;;)a.push(Buffer.alloc(1<<20,1))"], { timeout_ms: 30_000 });
        assert.notEqual(r.exit.exit_code, 0);
        assert.equal(r.exit.timed_out ?? false, false);
        assert.equal((await sh(sb, "echo alive")).stdout.toString(), "alive\n");
      });

      test("a fork bomb is contained", async () => {
        await sh(sb, "n=0; while [ $n -lt 3000 ]; do sleep 20 & n=$((n+1)); done 2>/dev/null; echo started", { timeout_ms: 15_000 });
        const count = await sh(sb, "ls -d /proc/[0-9]* | wc -l");
        const n = Number(count.stdout.toString().trim());
        assert.ok(n <= 1100, `${n} processes: the pids limit did not hold`);
        await sh(sb, "kill -9 -1; true");
        assert.equal((await sh(sb, "echo alive")).stdout.toString(), "alive\n");
      });

      test("destroyed sandbox: reattach says dead, destroy is idempotent", async () => {
        const s = await engine.create(specFor(newId()));
        await engine.destroy(s.id, s.state);
        await engine.destroy(s.id, s.state);
        assert.equal(await engine.reattach(s.id, s.state, "x"), null);
        if (opts.inspector) assert.deepEqual(await opts.inspector.traces(s.id), []);
      });

      test("a failed create (unknown image) leaves nothing", async () => {
        const id = newId();
        await assert.rejects(engine.create(specFor(id, {}, { image: "no-such-image" })));
        if (opts.inspector) assert.deepEqual(await opts.inspector.traces(id), []);
      });

      test(`${opts.cycles ?? 100} create/destroy cycles leak nothing`, { timeout: 600_000 }, async () => {
        const before = opts.inspector ? await opts.inspector.counts() : {};
        const n = opts.cycles ?? 100;
        for (let i = 0; i < n; i++) {
          const s = await engine.create(specFor(newId("cy"), { env: { K: secret } }));
          const r = await execIn(s, ["/bin/true"]);
          assert.equal(r.exit.exit_code, 0);
          await engine.destroy(s.id, s.state);
          if (opts.inspector && i % 25 === 0) assert.deepEqual(await opts.inspector.traces(s.id), []);
        }
        if (opts.inspector) assert.deepEqual(await opts.inspector.counts(), before);
      });
    }

    test("destroy leaves nothing behind", async () => {
      const s = await engine.create(specFor(newId()));
      await engine.destroy(s.id, s.state);
      if (opts.inspector) assert.deepEqual(await opts.inspector.traces(s.id), []);
      assert.ok(s.agent.closed || (await s.agent.ping().then(() => false, () => true)), "agent connection is dead");
    });
  });
}

export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  let key: string | null = null;
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) {
      key = m[1];
      env[key] = m[2];
    } else if (key !== null && line !== "") env[key] += `\n${line}`;
  }
  return env;
}
