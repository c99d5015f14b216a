// The web terminal in a real browser: Debian's chromium driven by
// playwright-core, against a real daemon and an ns sandbox. A share link
// opens a shell once; typed commands run and show on the screen; a used,
// expired or revoked token gets nothing; revoking closes open terminals; the
// token never reaches the daemon's log, and the page runs under a strict CSP.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import WebSocket from "ws";
import Database from "better-sqlite3";
import { join } from "node:path";
import { startDaemon, createUser, api, cleanup, type Daemon } from "../testing/harness.js";
import { IMAGES_DIR } from "../testing/sandbox-api.js";
import { ShareTokens } from "./share.js";

const CHROMIUM = "/usr/bin/chromium"; // Debian's chromium (scripts/install)
let d: Daemon;
let alice: string;
let bob: string;
let browser: Browser;
const SB = "webterm";
const issued: string[] = [];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

before(async () => {
  assert.ok(existsSync(CHROMIUM), "chromium is installed by scripts/install");
  d = await startDaemon({ args: ["--engine", "ns", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  alice = createUser(d.dataDir, "alice");
  bob = createUser(d.dataDir, "bob");
  assert.equal((await api(d, "POST", "/sandboxes", { key: alice, body: { name: SB } })).status, 201);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
after(async () => {
  await browser?.close();
  if (!d) return;
  await api(d, "DELETE", `/sandboxes/${SB}`, { key: alice });
  const out = d.output();
  assert.equal(await d.stop(), 0);
  for (const t of issued) assert.ok(!out.includes(t), "no share token in the daemon's output");
  cleanup(d.dataDir);
});

async function share(body: unknown = {}): Promise<string> {
  const r = await api(d, "POST", `/sandboxes/${SB}/share`, { key: alice, body });
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.path, /^\/share\/#bshr_/);
  issued.push(r.json.token);
  return d.url + r.json.path;
}

async function open(url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(url);
  return { page, problems };
}
/** Waits until the page's status line matches. */
async function waitStatus(p: Page, re: RegExp, timeout: number): Promise<void> {
  // Functions, not strings: the page's CSP forbids eval, which string predicates need.
  await p.waitForFunction((src) => new RegExp(src).test((globalThis as any).document.getElementById("status").textContent ?? ""), re.source, { timeout });
}
const status = (p: Page) => p.locator("#status").textContent();
const screen = (p: Page) => p.locator(".xterm-rows").textContent();

test("share: the page opens a shell; typed commands run and show on the screen; the token leaves the address bar", async () => {
  const url = await share();
  const res = await fetch(d.url + "/share/");
  const csp = res.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self';/);
  assert.ok(!/unsafe-eval/.test(csp) && !/script-src[^;]*unsafe-inline/.test(csp), "no inline or eval'd script");
  for (const a of ["/share/xterm.js", "/share/app.js", "/share/xterm.css"]) assert.equal((await fetch(d.url + a)).status, 200, a);

  const { page, problems } = await open(url);
  await waitStatus(page, /^session s/, 20_000);
  assert.equal(await page.evaluate(() => (globalThis as any).location.hash), "", "the token is gone from the URL");
  await page.locator(".xterm").click();
  await page.keyboard.type("echo web-$((6*7)) $TERM; stty size");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /web-42 xterm-256color\s*\d+ \d+/.test((globalThis as any).document.querySelector(".xterm-rows")?.textContent ?? ""), undefined, { timeout: 20_000 });
  const text = await screen(page);
  assert.match(text ?? "", /web-42 xterm-256color\s*\d+ \d+/);
  // The page's terminal size reached the pty: stty printed as many rows as xterm.js shows.
  const rows = await page.evaluate(() => (globalThis as any).document.querySelector(".xterm-rows").children.length);
  assert.match(text ?? "", new RegExp(`web-42 xterm-256color\\s*${rows} \\d+`));
  assert.deepEqual(problems.filter((p) => /Content Security Policy|Refused/.test(p)), [], "nothing of the page blocked by its CSP");
  // And the CSP holds: an injected inline script does not run.
  const ran = await page.evaluate(() => {
    const g = globalThis as any;
    const s = g.document.createElement("script");
    s.textContent = "window.injected = 1";
    g.document.body.appendChild(s);
    return g.injected;
  });
  assert.equal(ran, undefined, "inline script is refused");
  assert.ok(problems.some((p) => /Content Security Policy/.test(p)), "the browser reported the refusal");
  await page.close();

  // The same link again: nothing.
  const again = await open(url);
  await waitStatus(again.page, /error/, 10_000);
  assert.match((await status(again.page)) ?? "", /invalid, used, expired or revoked/);
  assert.equal(((await screen(again.page)) ?? "").trim(), "");
  await again.page.close();
});

test("share: an expired or revoked token gets nothing; revoking closes open terminals; only the owner can share", async () => {
  const short = await share({ ttl_sec: 0.3 });
  await sleep(800);
  const exp = await open(short);
  await waitStatus(exp.page, /error/, 10_000);
  assert.equal(((await screen(exp.page)) ?? "").trim(), "");
  await exp.page.close();

  const live = await open(await share());
  await waitStatus(live.page, /^session s/, 20_000);
  const revokedUrl = await share();
  const rv = await api(d, "DELETE", `/sandboxes/${SB}/share`, { key: alice });
  assert.equal(rv.status, 200);
  assert.equal(rv.json.terminals, 1);
  assert.ok(rv.json.tokens >= 1);
  await waitStatus(live.page, /revoked/, 10_000);
  await live.page.close();
  const rev = await open(revokedUrl);
  await waitStatus(rev.page, /error/, 10_000);
  assert.equal(((await screen(rev.page)) ?? "").trim(), "");
  await rev.page.close();

  assert.equal((await api(d, "POST", `/sandboxes/${SB}/share`, { key: bob, body: {} })).status, 404);
  assert.equal((await api(d, "DELETE", `/sandboxes/${SB}/share`, { key: bob })).status, 404);
  assert.equal((await api(d, "POST", `/sandboxes/${SB}/share`, { key: alice, body: { ttl_sec: -1 } })).status, 400);
  // The audit trail names the shares, never their tokens.
  const events = new Database(join(d.dataDir, "state.db"), { readonly: true })
    .prepare("SELECT type, subject, detail FROM events WHERE type LIKE 'sandbox.share%'").all() as { type: string; subject: string; detail: string }[];
  assert.ok(events.filter((e) => e.type === "sandbox.shared").length >= 3);
  assert.ok(events.some((e) => e.type === "sandbox.share_revoked" && JSON.parse(e.detail).terminals === 1));
  for (const t of issued) assert.ok(!JSON.stringify(events).includes(t), "no token in the events");
  // A guessed token over the socket: the same answer as a used one.
  const ws = new WebSocket(d.url.replace("http", "ws") + "/share/ws");
  const msg = await new Promise<string>((resolve) => {
    ws.on("open", () => ws.send(JSON.stringify({ token: "bshr_" + "A".repeat(32) })));
    ws.on("message", (data: Buffer) => resolve(data.toString()));
  });
  assert.equal(JSON.parse(msg).code, "share_token_invalid");
  ws.close();
});

test("share tokens: one use, expiry, revoke (unit)", () => {
  let now = 1000;
  const t = new ShareTokens(() => now);
  const u = { id: 1 } as never;
  const a = t.issue(u, "sb1", 10);
  assert.ok(t.redeem(a.token));
  assert.equal(t.redeem(a.token), null, "one use");
  const b = t.issue(u, "sb1", 10);
  now += 11_000;
  assert.equal(t.redeem(b.token), null, "expired");
  const c = t.issue(u, "sb1", 10);
  let closed = 0;
  t.track("sb1", () => closed++);
  assert.deepEqual(t.revoke("sb1"), { tokens: 1, terminals: 1 });
  assert.equal(closed, 1);
  assert.equal(t.redeem(c.token), null, "revoked");
  assert.equal(t.redeem(123), null);
});

test("share: a paused sandbox is woken for the viewer, like exec", async () => {
  const r = await api(d, "POST", `/sandboxes/${SB}/share`, { key: alice, body: {} });
  assert.equal(r.status, 201, r.text);
  issued.push(r.json.token);
  // Paused after the link was made: the viewer's connection is what must wake it.
  assert.equal((await api(d, "POST", `/sandboxes/${SB}/pause`, { key: alice })).status, 200);
  assert.equal((await api(d, "GET", `/sandboxes/${SB}`, { key: alice })).json.status, "paused");
  const ws = new WebSocket(d.url.replace("http", "ws") + "/share/ws");
  ws.on("error", () => {});
  const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no message within 20 s")), 20_000);
    ws.on("open", () => ws.send(JSON.stringify({ token: r.json.token })));
    ws.on("message", (data: Buffer, binary: boolean) => {
      if (binary) return;
      clearTimeout(t);
      resolve(JSON.parse(data.toString()));
    });
  });
  ws.close();
  assert.equal(first.type, "session", JSON.stringify(first));
  assert.equal((await api(d, "GET", `/sandboxes/${SB}`, { key: alice })).json.status, "running");
});
