// Sessions (issue 12) through the real daemon, real sandboxes and real
// WebSockets, for either engine. The vm run keeps what needs the vm: a pty
// shell with resize, detach and reattach, and a background command's logs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type WebSocket from "ws";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";
import { IMAGES_DIR } from "../testing/sandbox-api.js";
import { scanTree, scanText } from "../testing/scan.js";
import { BhattiClient, ApiError } from "../client/index.js";
import { sessionWebSocket, type SessionHello } from "../client/sessions.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A session socket and what came over it. */
export interface Term {
  ws: WebSocket;
  messages: Record<string, any>[];
  readonly text: string;
  until(re: RegExp, ms?: number): Promise<string>;
  next(type: string, ms?: number): Promise<Record<string, any>>;
  closed: Promise<void>;
  type(s: string): void;
}

export async function openTerm(url: string, key: string, sb: string, hello: SessionHello, session?: string): Promise<Term> {
  const ws = await sessionWebSocket(new BhattiClient({ url, token: key }), sb, hello, session);
  let raw = "";
  const messages: Record<string, any>[] = [];
  ws.on("message", (data: Buffer, binary: boolean) => {
    if (binary) raw += data.toString("utf8");
    else messages.push(JSON.parse(data.toString()));
  });
  const closed = new Promise<void>((r) => ws.on("close", () => r()));
  const wait = async (ok: () => boolean, what: string, ms: number) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; screen ${JSON.stringify(raw.slice(-400))}; messages ${JSON.stringify(messages)}`);
      await sleep(20);
    }
  };
  const t: Term = {
    ws, messages, closed,
    get text() { return raw.replace(/\r/g, ""); },
    async until(re, ms = 20_000) { await wait(() => re.test(raw.replace(/\r/g, "")), String(re), ms); return t.text; },
    async next(type, ms = 20_000) { await wait(() => messages.some((m) => m.type === type), type, ms); return messages.find((m) => m.type === type)!; },
    type(s) { ws.send(Buffer.from(s)); },
  };
  return t;
}

export function sessionsSuite(engine: "ns" | "vm", opts: { full: boolean; image?: string }): void {
  let d: Daemon;
  let alice: string;
  let bob: string;
  const SB = `sess-${engine}`;
  const secretVal = "ss-" + randomBytes(10).toString("hex");

  before(async () => {
    d = await startDaemon({ args: ["--engine", engine, "--rate-limit", "0", ...(opts.image ? ["--image", opts.image] : [])], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
    alice = createUser(d.dataDir, "alice");
    bob = createUser(d.dataDir, "bob");
    assert.equal((await api(d, "POST", "/secrets", { key: alice, body: { name: "API_KEY", value: secretVal } })).status, 201);
    assert.equal((await api(d, "POST", "/secrets", { key: alice, body: { name: "SHARED", value: "from-secret" } })).status, 201);
    const r = await api(d, "POST", "/sandboxes", { key: alice, body: { name: SB, secrets: ["API_KEY", "SHARED"], env: { SHARED: "from-env", PLAIN: "p" } } });
    assert.equal(r.status, 201, r.text);
  });
  after(async () => {
    if (!d) return;
    for (const k of [alice, bob]) {
      for (const sb of (await api(d, "GET", "/sandboxes", { key: k })).json ?? []) await api(d, "DELETE", `/sandboxes/${sb.id}`, { key: k });
    }
    const out = d.output();
    assert.equal(await d.stop(), 0);
    assert.ok(!scanText(out, secretVal), "daemon output holds no secret value");
    assert.deepEqual(scanTree(d.dataDir, secretVal), [], "data dir holds no plaintext");
    cleanup(d.dataDir);
  });

  test(`[${engine}] shell: exec's env and uid, TERM, the pty size and resize (stty size, SIGWINCH), detach, reattach with scrollback, exit`, async () => {
    const t = await openTerm(d.url, alice, SB, { rows: 31, cols: 97, env: { PLAIN: "from-ws", WSONLY: "w" } });
    const info = (await t.next("session")).session;
    assert.match(info.id, /^[a-z0-9]+$/);
    assert.deepEqual(info.cmd, [opts.image === "debian" ? "/bin/bash" : "/bin/sh", "-l"], "a login shell: bash when the image has it");
    assert.equal(info.tty, true);
    t.type(`trap 'echo got-winch' WINCH; echo "u=$(id -u) t=$TERM s=$SHARED p=$PLAIN w=$WSONLY k=\${#API_KEY}"; stty size\n`);
    await t.until(/u=1000 t=xterm-256color s=from-env p=from-ws w=w k=\d+\n(.*\n)*?31 97\n/);
    assert.ok(t.text.includes(`k=${secretVal.length}`), "the secret is in the session's env");
    t.ws.send(JSON.stringify({ type: "resize", rows: 44, cols: 120 }));
    await sleep(300);
    t.type("stty size\n");
    await t.until(/44 120\n/);
    if (opts.full) await t.until(/got-winch/); // bash/sh runs the trap when the window changes
    t.type("echo marker-$((6*7))\n");
    await t.until(/marker-42\n/);
    t.ws.send(JSON.stringify({ type: "detach" }));
    const det = await t.next("detached");
    assert.equal(det.session_id, info.id);
    await t.closed;

    const listed = await api(d, "GET", `/sandboxes/${SB}/sessions`, { key: alice });
    assert.equal(listed.status, 200);
    const s = listed.json.find((x: any) => x.id === info.id);
    assert.equal(s.state, "running");
    assert.equal(s.viewers, 0);

    const back = await openTerm(d.url, alice, SB, { rows: 20, cols: 70 }, info.id);
    await back.until(/marker-42\n/); // the scrollback comes first
    back.type("stty size; exit 4\n");
    await back.until(/20 70\n/);
    const exit = await back.next("exit");
    assert.equal(exit.exit_code, 4);
    await back.closed;
  });

  test(`[${engine}] a background command: exec --detach, its logs after the client left, follow, list`, async () => {
    const r = await api(d, "POST", `/sandboxes/${SB}/sessions`, { key: alice, body: { cmd: ["/bin/sh", "-c", "echo one; sleep 1; echo two-$PLAIN; exit 3"], env: { PLAIN: "ignored" } } });
    assert.equal(r.status, 201, r.text);
    const id = r.json.id;
    assert.equal(r.json.state, "running");
    await sleep(300);
    const snap = await api(d, "GET", `/sandboxes/${SB}/sessions/${id}/logs`, { key: alice });
    assert.equal(snap.status, 200);
    assert.equal(snap.text, "one\n");
    const f = await api(d, "GET", `/sandboxes/${SB}/sessions/${id}/logs?follow=true`, { key: alice });
    assert.equal(f.text, "one\ntwo-p\n", "POST ignores env, as POST exec does");
    const one = await api(d, "GET", `/sandboxes/${SB}/sessions/${id}`, { key: alice });
    assert.equal(one.json.state, "exited");
    assert.equal(one.json.exit_code, 3);
    const again = await api(d, "GET", `/sandboxes/${SB}/sessions/${id}/logs`, { key: alice });
    assert.equal(again.text, "one\ntwo-p\n");
  });

  if (!opts.full) return;

  test(`[${engine}] kill: DELETE sends the signal to the session's process group`, async () => {
    const r = await api(d, "POST", `/sandboxes/${SB}/sessions`, { key: alice, body: { cmd: ["/bin/sh", "-c", "trap 'echo term; exit 5' TERM; while :; do sleep 0.1; done"] } });
    const id = r.json.id;
    await sleep(300);
    const k = await api(d, "DELETE", `/sandboxes/${SB}/sessions/${id}?signal=SIGTERM`, { key: alice });
    assert.equal(k.status, 200, k.text);
    const logs = await api(d, "GET", `/sandboxes/${SB}/sessions/${id}/logs?follow=true`, { key: alice });
    assert.match(logs.text, /term\n$/);
    const s = await api(d, "GET", `/sandboxes/${SB}/sessions/${id}`, { key: alice });
    assert.equal(s.json.exit_code, 5);
    const sleeper = (await api(d, "POST", `/sandboxes/${SB}/sessions`, { key: alice, body: { cmd: ["sleep", "600"] } })).json.id;
    assert.equal((await api(d, "DELETE", `/sandboxes/${SB}/sessions/${sleeper}`, { key: alice })).status, 200);
    await sleep(300);
    const gone = await api(d, "GET", `/sandboxes/${SB}/sessions/${sleeper}`, { key: alice });
    assert.equal(gone.json.signal, "SIGKILL");
  });

  test(`[${engine}] a lost connection detaches: the session runs on and is found again`, async () => {
    const t = await openTerm(d.url, alice, SB, { cmd: ["/bin/sh"], rows: 24, cols: 80 });
    const id = (await t.next("session")).session.id;
    t.type("echo lost-$((1+1))\n");
    await t.until(/lost-2\n/);
    t.ws.terminate();
    await sleep(500);
    const s = (await api(d, "GET", `/sandboxes/${SB}/sessions/${id}`, { key: alice })).json;
    assert.equal(s.state, "running");
    assert.equal(s.viewers, 0);
    const back = await openTerm(d.url, alice, SB, {}, id);
    await back.until(/lost-2\n/);
    back.ws.send(JSON.stringify({ type: "signal", signal: "SIGKILL" }));
    assert.equal((await back.next("exit")).signal, "SIGKILL");
  });

  test(`[${engine}] idle timeout: a detached session nobody reattaches ends; keep holds it`, async () => {
    const idle = (await api(d, "POST", `/sandboxes/${SB}/sessions`, { key: alice, body: { cmd: ["sleep", "600"], idle_timeout_sec: 0.5 } })).json.id;
    const kept = (await api(d, "POST", `/sandboxes/${SB}/sessions`, { key: alice, body: { cmd: ["sleep", "600"], idle_timeout_sec: 0.5, keep: true } })).json.id;
    await sleep(1500);
    const a = (await api(d, "GET", `/sandboxes/${SB}/sessions/${idle}`, { key: alice })).json;
    assert.equal(a.state, "exited");
    assert.equal(a.idle_killed, true);
    assert.equal(a.signal, "SIGHUP");
    assert.equal((await api(d, "GET", `/sandboxes/${SB}/sessions/${kept}`, { key: alice })).json.state, "running");
    await api(d, "DELETE", `/sandboxes/${SB}/sessions/${kept}`, { key: alice });
  });

  test(`[${engine}] another user's session ids behave as missing; hostile input is refused naming the rule`, async () => {
    const mine = (await api(d, "POST", `/sandboxes/${SB}/sessions`, { key: alice, body: { cmd: ["sleep", "600"], keep: true } })).json.id;
    const bobSb = (await api(d, "POST", "/sandboxes", { key: bob, body: { name: "bobs" } })).json;
    const missing = (await api(d, "GET", `/sandboxes/bobs/sessions/snosuchsession`, { key: bob }));
    assert.equal(missing.status, 404);
    for (const [m, p] of [["GET", `/sandboxes/bobs/sessions/${mine}`], ["DELETE", `/sandboxes/bobs/sessions/${mine}`], ["GET", `/sandboxes/bobs/sessions/${mine}/logs`]]) {
      const r = await api(d, m, p, { key: bob });
      assert.equal(r.status, 404, `${m} ${p}`);
      assert.deepEqual(r.json, missing.json, "the same answer as for an id that never existed");
    }
    for (const [m, p] of [["GET", `/sandboxes/${SB}/sessions`], ["GET", `/sandboxes/${SB}/sessions/${mine}/logs`], ["DELETE", `/sandboxes/${SB}/sessions/${mine}`]]) {
      assert.equal((await api(d, m, p, { key: bob })).status, 404, `${m} ${p} of alice's sandbox`);
    }
    await assert.rejects(openTerm(d.url, bob, SB, {}, mine), (e: ApiError) => e.status === 404);
    await assert.rejects(openTerm(d.url, alice, SB, {}, "../../x"), (e: ApiError) => e.status === 404);
    // In bob's own sandbox, alice's id is answered exactly like an id that never existed.
    const theirs = await openTerm(d.url, bob, "bobs", {}, mine);
    const never = await openTerm(d.url, bob, "bobs", {}, "snosuchsession");
    assert.deepEqual(await theirs.next("error"), await never.next("error"));
    assert.equal((await never.next("error")).message, "no such session");
    assert.equal(theirs.text, "", "nothing of alice's session");
    assert.equal((await api(d, "GET", `/sandboxes/${SB}/sessions/${mine}`, { key: alice })).json.state, "running", "alice's session untouched");

    const bad = async (body: unknown, re: RegExp) => {
      const r = await api(d, "POST", `/sandboxes/${SB}/sessions`, { key: alice, body });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error, re);
    };
    await bad({}, /cmd must be/);
    await bad({ cmd: ["a\u0000b"] }, /cmd must be/);
    await bad({ cmd: ["true"], idle_timeout_sec: -1 }, /idle_timeout_sec/);
    await bad({ cmd: ["true"], keep: "yes" }, /keep must be/);
    await bad({ cmd: ["true"], rows: 1e9 }, /rows must be/);
    await bad({ cmd: ["true"], cwd: "relative" }, /cwd must be/);
    assert.equal((await api(d, "DELETE", `/sandboxes/${SB}/sessions/${mine}?signal=rm%20-rf`, { key: alice })).status, 400);
    assert.equal((await api(d, "DELETE", `/sandboxes/${SB}/sessions/${mine}?signal=SIGNOPE`, { key: alice })).status, 400);
    const ws = await openTerm(d.url, alice, SB, { rows: "x" } as unknown as SessionHello);
    assert.match((await ws.next("error")).message, /rows must be/);
    const ws2 = await openTerm(d.url, alice, SB, { env: { "A=B": "x" } });
    assert.match((await ws2.next("error")).message, /env name/);
    await api(d, "DELETE", `/sandboxes/${SB}/sessions/${mine}`, { key: alice });
    await api(d, "DELETE", `/sandboxes/${bobSb.id}`, { key: bob });
  });
}
