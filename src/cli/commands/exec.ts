// `bhatti exec SANDBOX [--env K=V]... [--cwd DIR] [-t] -- CMD...`: streams over the
// WebSocket exec, pipes stdin, and exits with the command's exit code.
// With --json it uses the buffered POST exec and prints the result.
import { parse, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { clientFrom } from "../client.js";
import { parseEnv } from "./sandbox.js";

const USAGE = "bhatti exec SANDBOX [--env K=V]... [--cwd DIR] [--tty] [--timeout SEC] [--redact] -- CMD [ARG...]";

export async function execCommand(argv: string[]): Promise<number> {
  const dash = argv.indexOf("--");
  if (dash < 0 || dash === argv.length - 1) throw new UsageError(`give the command after --\nusage: ${USAGE}`);
  const cmd = argv.slice(dash + 1);
  const { values, positionals } = parse(argv.slice(0, dash), {
    env: { type: "string", multiple: true }, cwd: { type: "string" }, tty: { type: "boolean", short: "t" }, timeout: { type: "string" }, redact: { type: "boolean" },
  }, { usage: USAGE, positionals: [1, 1] });
  const client = clientFrom(values);
  const ref = positionals[0];
  if (values.json) {
    if (values.env) throw new UsageError("--env is only for streaming exec (the buffered API ignores env); drop --json");
    const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
    const res = await client.exec(ref, cmd, { ...(values.cwd ? { cwd: values.cwd } : {}), ...(timeout ? { timeout_sec: timeout } : {}), ...(values.redact ? { redact: true } : {}) });
    printJson(res);
    return res.exit_code;
  }
  const tty = !!values.tty;
  const ws = await client.execWebSocket(ref, {
    cmd, ...(values.env ? { env: parseEnv(values.env, USAGE) } : {}), ...(values.cwd ? { cwd: values.cwd } : {}),
    ...(tty ? { tty: true, rows: process.stdout.rows ?? 24, cols: process.stdout.columns ?? 80 } : {}),
  }, { redact: !!values.redact });
  if (tty && process.stdin.isTTY) process.stdin.setRawMode(true);
  const onStdin = (d: Buffer) => ws.send(d);
  process.stdin.on("data", onStdin);
  process.stdin.once("end", () => ws.send(JSON.stringify({ type: "eof" })));
  if (tty) process.stdout.on("resize", () => ws.send(JSON.stringify({ type: "resize", rows: process.stdout.rows, cols: process.stdout.columns })));
  const forward = (sig: NodeJS.Signals) => ws.send(JSON.stringify({ type: "signal", signal: sig }));
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  return new Promise<number>((resolve) => {
    let code = 1;
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        (data[0] === 2 ? process.stderr : process.stdout).write(data.subarray(1));
        return;
      }
      const msg = JSON.parse(data.toString());
      if (msg.type === "exit") code = msg.exit_code;
      else if (msg.type === "error") { process.stderr.write(`bhatti: ${msg.message}\n`); code = 1; }
    });
    ws.on("close", () => {
      process.stdin.off("data", onStdin);
      process.stdin.pause();
      if (tty && process.stdin.isTTY) process.stdin.setRawMode(false);
      process.stdin.destroy();
      resolve(code);
    });
  });
}
