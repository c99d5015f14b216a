// `bhatti exec SANDBOX [-i] [-t] [--env K=V]... [--cwd DIR] [--timeout SEC] -- CMD...`
// As in Docker: -i forwards stdin, -t gives the command a terminal, -it both.
// Streams over the WebSocket exec and exits with the command's exit code
// (127: not found, 126: cannot be run, 124: --timeout expired). With --json it
// uses the buffered POST exec and prints the result as JSON.
import type { Command } from "commander";
import type WebSocket from "ws";
import { clientOptions, repeatable, run, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { clientFrom } from "../client.js";
import { parseEnv } from "./sandbox.js";

interface ExecOpts { detach?: boolean; keep?: boolean; idleTimeout?: string; interactive?: boolean; tty?: boolean; redact?: boolean; env?: string[]; cwd?: string; timeout?: string; url?: string; token?: string; json?: boolean }

const TIMED_OUT = 124; // what coreutils `timeout` exits with
const MAX_JSON_STDIN = 8 << 20;

export function register(cmd: Command): void {
  clientOptions(cmd
    .argument("<sandbox>", "sandbox name or id")
    .argument("<command...>", "the command and its arguments (put them after -- when they have flags)")
    .option("-i, --interactive", "forward this terminal's or pipe's stdin to the command")
    .option("-t, --tty", "run the command on a terminal (raw mode here when stdin is a terminal)")
    .addOption(repeatable("--env <K=V>", "environment variable for this command (repeatable)"))
    .option("--cwd <dir>", "working directory (absolute; default the user's home)")
    .option("--timeout <sec>", "kill the command's process group after this many seconds (exit 124)")
    .option("--redact", "replace the sandbox's secret values in this command's output with [REDACTED:NAME]")
    .option("-d, --detach", "run in the background as a session; print its id (see ps, logs, kill)")
    .option("--keep", "with --detach: never end the session for idleness")
    .option("--idle-timeout <sec>", "with --detach: end the session after this long with nobody attached (default 3600)"))
    .addHelpText("after", "\nExamples:\n  bhatti exec box -- ls -la /\n  echo hi | bhatti exec -i box -- cat\n  bhatti exec -it box -- sh\n  bhatti exec --detach box -- ./server.sh")
    .action(run(async (ref: string, argv: string[], o: ExecOpts) => {
      const timeout = parseTimeout(o.timeout);
      if (o.detach) {
        if (o.interactive || o.env || timeout) throw new UsageError("--detach runs the command without stdin, --env or --timeout; drop them");
        return (await import("./sessions.js")).execDetached(o, ref, argv, { cwd: o.cwd, tty: o.tty, keep: o.keep, idle: (await import("./sessions.js")).parseIdle(o.idleTimeout) });
      }
      if (o.keep || o.idleTimeout) throw new UsageError("--keep and --idle-timeout are for --detach");
      const client = clientFrom(o);
      if (o.json) return buffered(client, ref, argv, o, timeout);
      return streamed(await client.execWebSocket(ref, {
        cmd: argv, ...(o.env ? { env: parseEnv(o.env) } : {}), ...(o.cwd ? { cwd: o.cwd } : {}),
        ...(o.tty ? { tty: true, rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } : {}),
      }, { redact: !!o.redact }), o, timeout);
    }));
}

export function parseTimeout(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v.trim()) || !(n > 0) || n > 86400) throw new UsageError(`--timeout must be a number of seconds greater than 0 and at most 86400 (got ${JSON.stringify(v)})`);
  return n;
}

async function buffered(client: ReturnType<typeof clientFrom>, ref: string, argv: string[], o: ExecOpts, timeout?: number): Promise<number> {
  if (o.env) throw new UsageError("--env is only for streaming exec (the buffered API ignores env); drop --json");
  if (o.tty) throw new UsageError("--json runs the command without a terminal; drop -t or --json");
  let stdin: string | undefined;
  if (o.interactive) {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of process.stdin) {
      n += (c as Buffer).length;
      if (n > MAX_JSON_STDIN) throw new UsageError(`with --json, stdin is sent in one request and must be at most ${MAX_JSON_STDIN} bytes; drop --json to stream it`);
      chunks.push(c as Buffer);
    }
    try { stdin = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks)); }
    catch { throw new UsageError("with --json, stdin must be UTF-8 text; drop --json to stream binary input"); }
  }
  const res = await client.exec(ref, argv, { ...(o.cwd ? { cwd: o.cwd } : {}), ...(timeout ? { timeout_sec: timeout } : {}), ...(stdin !== undefined ? { stdin } : {}), ...(o.redact ? { redact: true } : {}) });
  printJson(res);
  return res.timed_out ? TIMED_OUT : res.exit_code;
}

function streamed(ws: WebSocket, o: ExecOpts, timeout?: number): Promise<number> {
  const raw = !!(o.tty && o.interactive && process.stdin.isTTY);
  const stdin = process.stdin;
  let code = 1;
  let ended = false;
  let interrupts = 0;
  let timer: NodeJS.Timeout | undefined;
  return new Promise<number>((resolve) => {
    const finish = (c: number) => {
      if (ended) return;
      ended = true;
      if (timer) clearTimeout(timer);
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      stdin.off("data", onStdin);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      stdin.destroy();
      resolve(c);
    };
    const control = (m: unknown) => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m)); };
    // Stdin: one chunk in flight at a time, so a slow sandbox slows the reader, never grows memory.
    const onStdin = (d: Buffer) => {
      stdin.pause();
      ws.send(d, () => { if (!ended) stdin.resume(); });
    };
    // Ctrl-C: the first is forwarded to the command; a second one leaves at once even if the sandbox does not answer.
    const onInt = () => {
      if (++interrupts > 1) { ws.terminate(); finish(130); return; }
      control({ type: "signal", signal: "SIGINT" });
    };
    const onTerm = () => control({ type: "signal", signal: "SIGTERM" });
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    if (o.interactive) {
      if (raw) stdin.setRawMode(true);
      stdin.on("data", onStdin);
      stdin.once("end", () => control({ type: "eof" }));
      stdin.on("error", () => control({ type: "eof" }));
    } else {
      control({ type: "eof" });
    }
    if (o.tty) process.stdout.on("resize", () => control({ type: "resize", rows: process.stdout.rows, cols: process.stdout.columns }));
    if (timeout) {
      timer = setTimeout(() => {
        control({ type: "signal", signal: "SIGKILL" });
        process.stderr.write(`bhatti: the command timed out after ${timeout} s; its process group was killed\n`);
        code = TIMED_OUT;
        ws.close();
        setTimeout(() => { ws.terminate(); finish(TIMED_OUT); }, 2000).unref();
      }, timeout * 1000);
    }
    let exited = false;
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        (data[0] === 2 ? process.stderr : process.stdout).write(data.subarray(1));
        return;
      }
      let msg: { type?: string; exit_code?: number; message?: string };
      try { msg = JSON.parse(data.toString()); } catch { return; }
      if (msg.type === "exit" && code !== TIMED_OUT) { exited = true; code = typeof msg.exit_code === "number" ? msg.exit_code : 1; }
      else if (msg.type === "error") { process.stderr.write(`bhatti: ${msg.message}\n`); code = 1; exited = true; }
    });
    ws.on("error", () => { /* 'close' follows */ });
    ws.on("close", () => {
      if (!exited && code !== TIMED_OUT && !ended) process.stderr.write("bhatti: the connection to the daemon closed before the command exited\n");
      // stdout must be flushed before we exit with the command's code
      process.stdout.write("", () => finish(code));
    });
  });
}
