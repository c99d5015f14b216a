// Sessions from the CLI (issue 12): `shell`, `ps`, `logs`, `kill`, and the
// `exec --detach` path. A shell is a raw terminal on a session over the
// WebSocket of src/server/session-ws.ts: SIGWINCH sends a resize, Ctrl-\
// detaches (and says how to reattach), a lost connection prints the session
// id and the command to reattach: the session runs on in the sandbox.
import type { Command } from "commander";
import type WebSocket from "ws";
import { clientOptions, repeatable, run, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";
import { killSession, listSessions, sessionLogs, sessionWebSocket, startDetached, type SessionInfo } from "../../client/sessions.js";
import { parseEnv } from "./sandbox.js";

type ClientOpts = { url?: string; token?: string; json?: boolean };
const DETACH_KEY = 0x1c; // Ctrl-\

export function parseIdle(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v.trim()) || !(n > 0) || n > 30 * 86400) throw new UsageError(`--idle-timeout must be a number of seconds greater than 0 and at most ${30 * 86400} (got ${JSON.stringify(v)})`);
  return n;
}

const reattach = (ref: string, id: string) => `bhatti shell ${ref} --session ${id}`;

export function registerShell(cmd: Command): void {
  clientOptions(cmd
    .argument("<sandbox>", "sandbox name or id")
    .argument("[command...]", "run this instead of a login shell (after --)")
    .option("--new", "start a new session (the default unless --session)")
    .option("--session <id>", "reattach to this session: its scrollback is replayed first")
    .option("--keep", "never end this session for idleness once detached")
    .option("--idle-timeout <sec>", "end the session after this long detached (default 3600)")
    .addOption(repeatable("--env <K=V>", "environment variable for the session (repeatable)")))
    .addHelpText("after", "\nCtrl-\\ detaches; the session runs on. Examples:\n  bhatti shell box\n  bhatti shell box --session s1a2b3c4\n  bhatti shell box -- top")
    .action(run(async (ref: string, argv: string[], o: ClientOpts & { new?: boolean; session?: string; keep?: boolean; idleTimeout?: string; env?: string[] }) => {
      if (o.new && o.session) throw new UsageError("--new and --session exclude each other");
      if (o.session && (argv.length || o.env || o.keep || o.idleTimeout)) throw new UsageError("a command, --env, --keep and --idle-timeout are for a new session; drop them with --session");
      const idle = parseIdle(o.idleTimeout);
      const size = { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 };
      const ws = await sessionWebSocket(clientFrom(o), ref, {
        ...size, ...(argv.length ? { cmd: argv } : {}), ...(o.env ? { env: parseEnv(o.env) } : {}),
        ...(o.keep ? { keep: true } : {}), ...(idle ? { idle_timeout_sec: idle } : {}),
      }, o.session);
      return terminal(ws, ref);
    }));
}

/** The raw terminal: keys to the session, its output to stdout, until exit, detach or a lost connection. */
function terminal(ws: WebSocket, ref: string): Promise<number> {
  const stdin = process.stdin;
  const raw = !!stdin.isTTY;
  let id = "";
  let done = false;
  return new Promise<number>((resolve) => {
    const finish = (code: number, note?: string) => {
      if (done) return;
      done = true;
      if (raw) stdin.setRawMode(false);
      stdin.off("data", onStdin);
      stdin.pause();
      process.stdout.off("resize", onResize);
      process.stdout.write("", () => {
        if (note) process.stderr.write(`\r\n${note}\n`);
        resolve(code);
      });
    };
    const control = (m: unknown) => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m)); };
    const onStdin = (d: Buffer) => {
      const at = d.indexOf(DETACH_KEY);
      if (at >= 0) {
        if (at > 0) ws.send(d.subarray(0, at));
        control({ type: "detach" });
        return;
      }
      stdin.pause(); // one chunk in flight: a slow sandbox slows the reader
      ws.send(d, () => { if (!done) stdin.resume(); });
    };
    const onResize = () => control({ type: "resize", rows: process.stdout.rows, cols: process.stdout.columns });
    if (raw) stdin.setRawMode(true);
    stdin.on("data", onStdin);
    stdin.on("error", () => {});
    process.stdout.on("resize", onResize);
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) { process.stdout.write(data); return; }
      let m: { type?: string; session?: SessionInfo; exit_code?: number; message?: string; session_id?: string };
      try { m = JSON.parse(data.toString()); } catch { return; }
      if (m.type === "session" && m.session) id = m.session.id;
      else if (m.type === "exit") finish(typeof m.exit_code === "number" ? m.exit_code : 1);
      else if (m.type === "detached") finish(0, `bhatti: detached from session ${id}; reattach with: ${reattach(ref, id)}`);
      else if (m.type === "error") finish(1, `bhatti: ${m.message}${id ? `; session ${id} runs on: ${reattach(ref, id)}` : ""}`);
    });
    ws.on("error", () => { /* 'close' follows */ });
    ws.on("close", () => finish(1, id
      ? `bhatti: the connection was lost; session ${id} runs on in the sandbox. Reattach with: ${reattach(ref, id)}`
      : "bhatti: the connection to the daemon closed"));
  });
}

/** `exec --detach`: start the command as a background session, print its id. */
export async function execDetached(o: ClientOpts, ref: string, argv: string[], opts: { cwd?: string; tty?: boolean; keep?: boolean; idle?: number }): Promise<number> {
  const s = await startDetached(clientFrom(o), ref, {
    cmd: argv, ...(opts.cwd ? { cwd: opts.cwd } : {}), ...(opts.tty ? { tty: true } : {}),
    ...(opts.keep ? { keep: true } : {}), ...(opts.idle ? { idle_timeout_sec: opts.idle } : {}),
  });
  if (o.json) printJson(s);
  else process.stdout.write(`${s.id}\n`);
  return 0;
}

function age(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

export function registerPs(cmd: Command): void {
  clientOptions(cmd.argument("<sandbox>", "sandbox name or id"))
    .action(run(async (ref: string, o: ClientOpts) => {
      const list = await listSessions(clientFrom(o), ref);
      if (o.json) { printJson(list); return 0; }
      printTable(["ID", "STATE", "EXIT", "AGE", "TTY", "VIEWERS", "COMMAND"], list.map((s) => [
        s.id, s.state + (s.idle_killed ? " (idle)" : ""), s.state === "exited" ? String(s.signal ?? s.exit_code ?? "") : "",
        age(s.started_at), s.tty ? "yes" : "no", s.viewers, s.cmd.join(" ").slice(0, 60),
      ]));
      return 0;
    }));
}

export function registerLogs(cmd: Command): void {
  clientOptions(cmd
    .argument("<sandbox>", "sandbox name or id")
    .argument("<session>", "session id (bhatti ps)")
    .option("-f, --follow", "keep printing output until the session's command exits"))
    .action(run(async (ref: string, id: string, o: ClientOpts & { follow?: boolean }) => {
      const body = await sessionLogs(clientFrom(o), ref, id, !!o.follow);
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once("drain", r));
      }
      return 0;
    }));
}

export function registerKill(cmd: Command): void {
  clientOptions(cmd
    .argument("<sandbox>", "sandbox name or id")
    .argument("<session>", "session id (bhatti ps)")
    .option("--signal <name>", "signal to send to the session's process group", "SIGTERM"))
    .action(run(async (ref: string, id: string, o: ClientOpts & { signal: string }) => {
      let sig = o.signal.toUpperCase();
      if (!sig.startsWith("SIG")) sig = "SIG" + sig;
      if (!/^SIG[A-Z0-9]{2,8}$/.test(sig)) throw new UsageError(`--signal must be a signal name such as TERM or SIGKILL (got ${JSON.stringify(o.signal)})`);
      const s = await killSession(clientFrom(o), ref, id, sig);
      if (o.json) printJson(s);
      else process.stdout.write(`sent ${sig} to session ${s.id}\n`);
      return 0;
    }));
}

export function registerShare(cmd: Command): void {
  clientOptions(cmd
    .argument("<sandbox>", "sandbox name or id")
    .option("--revoke", "revoke the sandbox's share links and close the terminals they opened")
    .option("--ttl <sec>", "how long the link stays valid (default 900, at most 86400)"))
    .addHelpText("after", "\nThe link opens one shell in a browser, once; its token is in the URL fragment, never sent in a request line.")
    .action(run(async (ref: string, o: ClientOpts & { revoke?: boolean; ttl?: string }) => {
      const c = clientFrom(o);
      const path = `/sandboxes/${encodeURIComponent(ref)}/share`;
      if (o.revoke) {
        if (o.ttl) throw new UsageError("--ttl is for a new link; drop it with --revoke");
        const r = await c.request<{ sandbox: string; tokens: number; terminals: number }>("DELETE", path);
        if (o.json) printJson(r);
        else process.stdout.write(`revoked ${r.tokens} link(s) and closed ${r.terminals} terminal(s) of ${r.sandbox}\n`);
        return 0;
      }
      let ttl: number | undefined;
      if (o.ttl !== undefined) {
        ttl = Number(o.ttl);
        if (!/^\d+(\.\d+)?$/.test(o.ttl.trim()) || !(ttl > 0) || ttl > 86400) throw new UsageError(`--ttl must be a number of seconds greater than 0 and at most 86400 (got ${JSON.stringify(o.ttl)})`);
      }
      const r = await c.request<{ path: string; expires_at: string }>("POST", path, ttl ? { ttl_sec: ttl } : {});
      const url = c.url + r.path;
      if (o.json) printJson({ url, expires_at: r.expires_at });
      else process.stdout.write(`${url}\n(one use; expires ${r.expires_at}; revoke with: bhatti share ${ref} --revoke)\n`);
      return 0;
    }));
}
