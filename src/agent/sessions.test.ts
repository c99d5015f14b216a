// lohar sessions end to end: the real lohar bundle on the host (as root),
// real ptys (under `script`), real processes, over a real unix socket.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startLohar, config, type Lohar } from "./testkit.js";
import type { AgentClient } from "../engine/agent-client.js";
import { attachSession, killSession, listSessions, startDetached, startSession, type SessionViewer } from "../engine/sessions.js";
import { MAX_SESSIONS, SESSION_SCROLLBACK } from "../protocol/agent.js";
import { Scrollback } from "./sessions.js";

const SECRET = "sess-secret-" + Math.random().toString(36).slice(2);
let l: Lohar;
let c: AgentClient;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

before(async () => {
  l = await startLohar(config({ env: { API_KEY: SECRET, FROM_SANDBOX: "sb" } }));
  c = await l.connect();
});
after(async () => {
  c?.close();
  await l?.stop();
});

/** Collects a viewer's output; `until(re)` waits for it to match. */
function collect(v: SessionViewer) {
  let text = "";
  v.on("stdout", (b: Buffer) => (text += b.toString("utf8")));
  const ended = new Promise<string>((resolve, reject) => {
    v.on("exit", () => resolve("exit"));
    v.on("detached", () => resolve("detached"));
    v.on("error", reject);
  });
  ended.catch(() => {}); // a test that drops the connection does not wait for it
  return {
    get text() { return text.replace(/\r/g, ""); },
    ended,
    async until(re: RegExp, ms = 10_000): Promise<string> {
      const end = Date.now() + ms;
      while (!re.test(text.replace(/\r/g, ""))) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${re}; got ${JSON.stringify(text.slice(-500))}`);
        await sleep(20);
      }
      return text.replace(/\r/g, "");
    },
  };
}

test("scrollback keeps exactly the last 64 KiB", () => {
  const s = new Scrollback(10);
  s.add(Buffer.from("abc"));
  s.add(Buffer.from("defghij"));
  assert.equal(s.bytes().toString(), "abcdefghij");
  s.add(Buffer.from("kl"));
  assert.equal(s.bytes().toString(), "cdefghijkl");
  s.add(Buffer.from("0123456789ABC"));
  assert.equal(s.bytes().toString(), "3456789ABC");
  assert.equal(SESSION_SCROLLBACK, 64 * 1024);
});

test("a pty session: exec's env and uid, TERM=xterm-256color, detach, reattach with the scrollback replayed first", async () => {
  const v = startSession(c, { cmd: ["/bin/sh"], tty: true, rows: 30, cols: 90, env: { FROM_WS: "ws" } });
  const out = collect(v);
  const info = await new Promise<{ id: string }>((r) => v.once("session", r));
  v.write(Buffer.from("echo \"u=$(id -u) t=$TERM k=${#API_KEY} s=$FROM_SANDBOX w=$FROM_WS\"; stty size\n"));
  await out.until(/u=1000 t=xterm-256color k=\d+ s=sb w=ws\n30 90\n/);
  assert.ok(out.text.includes(`k=${SECRET.length} `), "the secret reaches the session's env");
  v.detach();
  assert.equal(await out.ended, "detached");
  const listed = (await listSessions(c)).find((s) => s.id === info.id);
  assert.equal(listed?.state, "running");
  assert.equal(listed?.viewers, 0);

  const v2 = attachSession(c, info.id);
  const out2 = collect(v2);
  await out2.until(/s=sb w=ws\n30 90\n/); // the replay comes first
  v2.write(Buffer.from("echo again-$((40+2))\n"));
  await out2.until(/again-42\n/);
  assert.ok(out2.text.indexOf("30 90") < out2.text.indexOf("again-42"));
  v2.write(Buffer.from("exit 3\n"));
  assert.equal(await out2.ended, "exit");
  const exit = await v2.done;
  assert.equal(exit.exit_code, 3);
  assert.equal((await listSessions(c)).find((s) => s.id === info.id)?.state, "exited");
});

test("resize reaches the program: stty size and SIGWINCH", async () => {
  const v = startSession(c, { cmd: ["/bin/sh", "-c", "trap 'echo WINCH; stty size' WINCH; stty size; while :; do sleep 0.05; done"], tty: true, rows: 24, cols: 80 });
  const out = collect(v);
  await out.until(/24 80\n/);
  v.resize(50, 132);
  await out.until(/WINCH\n50 132\n/);
  v.resize(10, 40);
  await out.until(/WINCH\n10 40\n/);
  v.signal("SIGKILL");
  assert.equal(await out.ended, "exit");
});

test("a background command's output is kept after its client left; logs with and without follow", async () => {
  const info = await startDetached(c, { cmd: ["/bin/sh", "-c", "echo first; read x < /dev/null; sleep 0.5; echo second; sleep 0.3; exit 7"] });
  assert.equal(info.state, "running");
  assert.equal(info.tty, false);
  await sleep(200);
  const snap = collect(attachSession(c, info.id, { follow: false }));
  assert.equal(await snap.ended, "detached");
  assert.equal(snap.text, "first\n");
  const f = collect(attachSession(c, info.id));
  assert.equal(await f.ended, "exit");
  assert.equal(f.text, "first\nsecond\n");
  const done = (await listSessions(c)).find((s) => s.id === info.id)!;
  assert.equal(done.state, "exited");
  assert.equal(done.exit_code, 7);
  // An ended session's logs stay readable.
  const again = collect(attachSession(c, info.id, { follow: false }));
  assert.equal(await again.ended, "exit");
  assert.equal(again.text, "first\nsecond\n");
});

test("kill sends the signal to the session's process group; unknown ids and signals are refused", async () => {
  const info = await startDetached(c, { cmd: ["/bin/sh", "-c", "sleep 300 & sleep 300; echo never"] });
  const killed = await killSession(c, info.id, "SIGTERM");
  assert.equal(killed.id, info.id);
  const f = collect(attachSession(c, info.id));
  assert.equal(await f.ended, "exit");
  const s = (await listSessions(c)).find((x) => x.id === info.id)!;
  assert.equal(s.signal, "SIGTERM");
  assert.equal(s.exit_code, 143);
  await assert.rejects(killSession(c, "snosuchsession", "SIGTERM"), (e: Error & { agentCode?: string }) => e.agentCode === "no_session");
  await assert.rejects(killSession(c, info.id, "SIGNOPE"), /unknown signal/);
  await assert.rejects(new Promise((_, rej) => attachSession(c, "snosuch").on("error", rej)), /no session/);
});

test("a detached session nobody reattaches ends after its idle timeout; keep and a viewer hold it", async () => {
  const idle = await startDetached(c, { cmd: ["/bin/sh", "-c", "trap 'echo hup; exit 9' HUP; while :; do sleep 0.05; done"], idle_timeout_ms: 300 });
  const kept = await startDetached(c, { cmd: ["/bin/sh", "-c", "while :; do sleep 0.05; done"], idle_timeout_ms: 300, keep: true });
  const watched = startSession(c, { cmd: ["/bin/sh", "-c", "while :; do sleep 0.05; done"], idle_timeout_ms: 300 });
  const w = collect(watched);
  const watchedInfo = await new Promise<{ id: string }>((r) => watched.once("session", r));
  await sleep(1200);
  const all = await listSessions(c);
  const byId = (id: string) => all.find((s) => s.id === id)!;
  assert.equal(byId(idle.id).state, "exited");
  assert.equal(byId(idle.id).idle_killed, true);
  assert.equal(byId(idle.id).exit_code, 9);
  assert.equal(byId(kept.id).state, "running");
  assert.equal(byId(watchedInfo.id).state, "running");
  // The viewer leaves: the timer starts then.
  watched.detach();
  assert.equal(await w.ended, "detached");
  await sleep(1200);
  assert.equal((await listSessions(c)).find((s) => s.id === watchedInfo.id)!.state, "exited");
  await killSession(c, kept.id, "SIGKILL");
});

test("a viewer that stops reading stalls the session's output (bounded), and gets every byte later", async () => {
  const N = 3 * 1024 * 1024;
  const v = startSession(c, { cmd: ["/bin/sh", "-c", `head -c ${N} /dev/zero | tr '\\0' x; echo; echo END`] }, { manualAck: true });
  let got = 0;
  const chunks: Buffer[] = [];
  v.on("stdout", (b: Buffer) => { got += b.length; chunks.push(b); });
  await sleep(800);
  const stalled = got;
  assert.ok(stalled <= 512 * 1024 + 64 * 1024, `at most a window of output while unread: ${stalled}`);
  await sleep(300);
  assert.equal(got, stalled, "no more output while the viewer does not take it");
  // Now read: grant everything as it comes.
  v.consumed(got);
  v.on("stdout", (b: Buffer) => v.consumed(b.length));
  const exit = await v.done;
  assert.equal(exit.exit_code, 0);
  assert.equal(got, N + 5);
});

test("a lost host connection detaches its viewers; a new connection finds the session", async () => {
  const c2 = await l.connect();
  const v = startSession(c2, { cmd: ["/bin/sh"], tty: true });
  const out = collect(v);
  const info = await new Promise<{ id: string }>((r) => v.once("session", r));
  v.write(Buffer.from("echo before-drop\n"));
  await out.until(/before-drop\n/);
  c2.close();
  await sleep(200);
  const s = (await listSessions(c)).find((x) => x.id === info.id)!;
  assert.equal(s.state, "running");
  assert.equal(s.viewers, 0);
  const back = collect(attachSession(c, info.id));
  await back.until(/before-drop\n/);
  await killSession(c, info.id, "SIGKILL");
  assert.equal(await back.ended, "exit");
});

test("sessions per sandbox are bounded; ended ones make room", async () => {
  const running = (await listSessions(c)).filter((s) => s.state === "running").length;
  const started: string[] = [];
  let refused: Error | null = null;
  for (let i = 0; i < MAX_SESSIONS + 1 - running; i++) {
    try {
      started.push((await startDetached(c, { cmd: ["sleep", "60"] })).id);
    } catch (e) {
      refused = e as Error;
      break;
    }
  }
  assert.match(String(refused?.message), /too many sessions/);
  assert.equal((refused as Error & { agentCode?: string }).agentCode, "too_many_sessions");
  await killSession(c, started[0], "SIGKILL");
  await sleep(400);
  const more = await startDetached(c, { cmd: ["true"] });
  assert.equal((await listSessions(c)).length, MAX_SESSIONS);
  for (const id of [...started.slice(1), more.id]) await killSession(c, id, "SIGKILL").catch(() => {});
});
