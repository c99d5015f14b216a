// The typed client against real daemons: retries of idempotent calls after
// 429 (rate limit) and 503 (connection cap) honouring Retry-After, no retry
// of POSTs that are not idempotent, bounded retries, typed errors with the
// API's code, and exec buffered, streamed (NDJSON) and over a WebSocket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { startDaemon, createUser, cleanup, type Daemon } from "../testing/harness.js";
import { IMAGES_DIR } from "../testing/sandbox-api.js";
import { BhattiClient, BhattiError, ApiError } from "./index.js";
import { RetryBudget } from "./retry.js";
import { parseRetryAfter } from "./errors.js";

/** Watches the client's real requests (the daemon answers them): when each went out and what came back. */
function watchFetch(): { log: { at: number; method: string; path: string; status: number; doneAt: number }[]; restore: () => void } {
  const real = globalThis.fetch;
  const log: { at: number; method: string; path: string; status: number; doneAt: number }[] = [];
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const at = Date.now();
    const res = await real(input, init);
    log.push({ at, method: init?.method ?? "GET", path: new URL(String(input)).pathname, status: res.status, doneAt: Date.now() });
    return res;
  }) as typeof fetch;
  return { log, restore: () => { globalThis.fetch = real; } };
}

async function withDaemon(args: string[], f: (d: Daemon, key: string) => Promise<void>): Promise<void> {
  const d = await startDaemon({ args: ["--engine", "ns", ...args], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  try {
    await f(d, createUser(d.dataDir, "alice"));
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
}

test("retry budget: bounded attempts and total wait; Retry-After as seconds or a date", () => {
  const b = new RetryBudget({ attempts: 3, maxWaitMs: 5000, backoffMs: 100 });
  assert.deepEqual([b.next(1), b.next(undefined), b.next(1)], [1000, 200, undefined], "3 attempts: 2 waits");
  assert.equal(new RetryBudget({ maxWaitMs: 2000 }).next(30), undefined, "a Retry-After past the budget ends the retries at once");
  assert.equal(new RetryBudget({ attempts: 1 }).next(0), undefined);
  assert.equal(parseRetryAfter("7"), 7);
  assert.equal(parseRetryAfter(new Date(10_000 + 3000).toUTCString(), 10_000), 3);
  assert.equal(parseRetryAfter("soon"), undefined);
});

test("429: idempotent calls wait Retry-After and succeed; POSTs that are not idempotent are not retried; a small budget gives up", async () => {
  await withDaemon(["--rate-limit", "1"], async (d, key) => {
    const w = watchFetch();
    try {
      const client = new BhattiClient({ url: d.url, token: key, retry: { attempts: 5, maxWaitMs: 20_000 } });
      for (let i = 0; i < 4; i++) assert.ok(Array.isArray(await client.listSecrets()));
      const limited = w.log.filter((r) => r.status === 429);
      assert.ok(limited.length >= 1, `the bucket ran dry: ${JSON.stringify(w.log.map((r) => r.status))}`);
      for (const r of limited) {
        const next = w.log[w.log.indexOf(r) + 1];
        assert.ok(next.at - r.doneAt >= 990, `waited ${next.at - r.doneAt} ms after a 429 with Retry-After >= 1`);
      }
      // Not idempotent: one request, a typed error.
      w.log.length = 0;
      const fast = new BhattiClient({ url: d.url, token: key, retry: { attempts: 5, maxWaitMs: 20_000 } });
      let err: unknown;
      for (let i = 0; i < 5 && !err; i++) await fast.createTemplate({ name: `t${i}` }).catch((e) => { err = e; });
      assert.ok(err instanceof BhattiError && err instanceof ApiError, String(err));
      assert.deepEqual([err.status, err.code, err.message], [429, "rate_limited", "rate limit exceeded"]);
      assert.ok((err.retryAfter ?? 0) >= 1);
      assert.equal(w.log.filter((r) => r.method === "POST").length, w.log.filter((r) => r.method === "POST" && r.status !== 429).length + 1, "the 429'd POST was sent once");
      // A budget smaller than Retry-After: the first 429 is the answer, at once.
      const impatient = new BhattiClient({ url: d.url, token: key, retry: { attempts: 5, maxWaitMs: 100 } });
      const t0 = Date.now();
      const e2 = await (async () => { for (;;) await impatient.listSecrets(); })().catch((e) => e);
      assert.equal((e2 as BhattiError).code, "rate_limited");
      assert.ok(Date.now() - t0 < 900, "no wait beyond the budget");
    } finally {
      w.restore();
    }
  });
});

function heldConnection(url: string, key: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname);
    s.on("error", reject);
    s.once("data", (b: Buffer) => (b.toString("latin1").startsWith("HTTP/1.1 200") ? resolve(s) : reject(new Error(b.toString()))));
    s.write(`GET /secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n\r\n`);
  });
}

test("503 (connection cap): an idempotent call and the WebSocket handshake wait Retry-After and go through once a connection is free", async () => {
  await withDaemon(["--max-connections-per-user", "1"], async (d, key) => {
    const held = await heldConnection(d.url, key);
    const w = watchFetch();
    try {
      // With retries off the 503 is a typed error (the daemon closes that connection).
      const e = await new BhattiClient({ url: d.url, token: key, retry: { attempts: 1 } }).listSecrets().catch((x) => x);
      assert.deepEqual([e.status, e.code, e.retryAfter], [503, "daemon_busy", 1]);
      // The WebSocket handshake is retried too: a 503, a wait, then the daemon's real answer (no such sandbox).
      setTimeout(() => held.destroy(), 300).unref();
      const client = new BhattiClient({ url: d.url, token: key, retry: { attempts: 3, maxWaitMs: 10_000 } });
      const t0 = Date.now();
      const ws = await client.execInteractive("nosuch", { cmd: ["true"] }).catch((x) => x);
      assert.deepEqual([ws.status, ws.code], [404, "sandbox_not_found"], String(ws));
      assert.ok(Date.now() - t0 >= 990, "the handshake waited Retry-After before trying again");
      // A GET: 503, the wait, 200.
      const held2 = await heldConnection(d.url, key);
      setTimeout(() => held2.destroy(), 300).unref();
      w.log.length = 0;
      assert.deepEqual(await client.listSecrets(), []);
      assert.deepEqual(w.log.map((r) => r.status), [503, 200]);
      assert.ok(w.log[1].at - w.log[0].doneAt >= 990, `waited ${w.log[1].at - w.log[0].doneAt} ms (Retry-After: 1)`);
    } finally {
      w.restore();
      held.destroy();
    }
  });
});

test("typed errors, and exec buffered, streamed and over a WebSocket; 503 at admission is not retried (POST)", async () => {
  await withDaemon(["--max-sandboxes", "1"], async (d, key) => {
    const client = new BhattiClient({ url: d.url, token: key });
    const missing = await client.deleteSecret("NOPE").catch((e) => e);
    assert.ok(missing instanceof BhattiError);
    assert.deepEqual([missing.status, missing.code, missing.message], [404, "secret_not_found", 'secret "NOPE" not found']);
    assert.equal((await client.getSandbox("nope").catch((e) => e)).code, "sandbox_not_found");
    assert.equal((await new BhattiClient({ url: d.url, token: "bht_wrong" }).listSecrets().catch((e) => e)).code, "unauthorized");
    assert.equal((await new BhattiClient({ url: "http://127.0.0.1:9" }).health().catch((e) => e)).code, "unreachable");

    await client.setSecret("TOKEN", "s3cret-value");
    const sb = await client.createSandbox({ name: "c1", secrets: ["TOKEN"] });
    assert.equal(sb.status, "running");
    const w = watchFetch();
    try {
      const full = await client.createSandbox({ name: "c2" }).catch((e) => e);
      assert.deepEqual([full.status, full.code, full.retryAfter], [503, "daemon_busy", 30]);
      assert.equal(w.log.length, 1, "a POST /sandboxes is never sent twice");
    } finally {
      w.restore();
    }

    const r = await client.exec("c1", ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert.deepEqual([r.exit_code, r.stdout, r.stderr], [3, "out\n", "err\n"]);

    const events = [];
    for await (const e of client.execStream("c1", ["/bin/sh", "-c", "printf a; sleep 0.2; printf b"])) events.push(e);
    assert.equal(events.filter((e) => e.type === "stdout").map((e) => ("data" in e ? e.data : "")).join(""), "ab");
    assert.deepEqual(events.at(-1), { type: "exit", exit_code: 0 });

    const x = await client.execInteractive("c1", { cmd: ["/bin/sh", "-c", "tr a-z A-Z; echo \"$TOKEN\" | wc -c"] });
    await x.write("hello\n");
    x.end();
    let out = "";
    for await (const c of x) if (c.stream === "stdout") out += c.data.toString();
    assert.deepEqual(await x.exit, { exit_code: 0 });
    assert.equal(out, "HELLO\n13\n");

    await client.writeFile("c1", "/tmp/f.txt", Buffer.from("data"), 0o600);
    assert.equal((await client.readFile("c1", "/tmp/f.txt")).toString(), "data");
    const st = await client.statFile("c1", "/tmp/f.txt");
    assert.deepEqual([st.type, st.size, st.mode, st.uid], ["file", 4, 0o600, 1000]);
    assert.ok((await client.listFiles("c1", "/tmp")).some((f) => f.name === "f.txt"));
    assert.equal((await client.readFile("c1", "/tmp/nope").catch((e) => e)).code, "file_not_found");

    const t = await client.createTemplate({ name: "tpl", cpus: 1 });
    assert.equal((await client.getTemplate("tpl")).id, t.id);
    assert.ok((await client.listImages()).images.some((i) => i.name === "minimal"));
    assert.equal((await client.openapi()).openapi, "3.1.0");
    await client.destroySandbox("c1");
  });
});
