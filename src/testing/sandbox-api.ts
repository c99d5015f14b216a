// Test-only helpers for sandbox tests through the daemon's API.
import { BhattiClient } from "../client/index.js";
import { api, type Daemon } from "./harness.js";

export const IMAGES_DIR = process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images";

export async function exec(d: Daemon, key: string, sb: string, cmd: string[], extra: Record<string, unknown> = {}) {
  const r = await api(d, "POST", `/sandboxes/${sb}/exec`, { key, body: { cmd, ...extra } });
  if (r.status !== 200) throw new Error(`exec ${cmd.join(" ")}: ${r.status} ${r.text}`);
  return r.json as { exit_code: number; stdout: string; stderr: string; stdout_base64?: string; timed_out?: boolean; message?: string };
}

export const sh = (d: Daemon, key: string, sb: string, script: string) => exec(d, key, sb, ["/bin/sh", "-c", script]);

export interface WsResult { stdout: Buffer; stderr: Buffer; exit?: number; error?: string }

/** Runs a command over the WebSocket exec; `stdin` is sent then EOF. */
export async function wsExec(d: Daemon, key: string, sb: string, spec: { cmd: string[]; env?: Record<string, string>; cwd?: string; tty?: boolean; rows?: number; cols?: number }, stdin?: Buffer): Promise<WsResult> {
  const ws = await new BhattiClient({ url: d.url, token: key }).execWebSocket(sb, spec);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const res: WsResult = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  if (stdin) ws.send(stdin);
  ws.send(JSON.stringify({ type: "eof" }));
  await new Promise<void>((resolve) => {
    ws.on("message", (data: Buffer, binary: boolean) => {
      if (binary) (data[0] === 1 ? out : err).push(data.subarray(1));
      else {
        const m = JSON.parse(data.toString());
        if (m.type === "exit") res.exit = m.exit_code;
        if (m.type === "error") res.error = m.message;
      }
    });
    ws.on("close", () => resolve());
  });
  res.stdout = Buffer.concat(out);
  res.stderr = Buffer.concat(err);
  return res;
}

/** Parses `env -0` / `env` output into a map. */
export function envOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** Waits until the daemon's output matches re (e.g. the background recovery's summary line); returns the match. */
export async function waitForOutput(d: Daemon, re: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(d.output());
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`daemon output did not match ${re} within ${timeoutMs} ms:\n${d.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The recovery report a daemon logs once its background reattach is done. */
export const RECOVERED = /recovered sandboxes: (\d+) reattached, (\d+) unreachable, (\d+) dead, (\d+) interrupted creates rolled back, (\d+) interrupted deletes finished, (\d+) orphans removed, (\d+) lost/;

/**
 * After a crash test (passed or failed half way): sandboxes outlive their
 * daemon, so one more start on the data dir removes what is left, then the
 * data dir goes. Best effort: it never hides the test's own failure.
 */
export async function removeLeftovers(start: (dataDir: string) => Promise<Daemon>, dataDir: string, key: string, cleanup: (dir: string) => void): Promise<void> {
  try {
    const last = await start(dataDir);
    await waitForOutput(last, RECOVERED, 120_000).catch(() => null);
    for (const r of (await api(last, "GET", "/sandboxes", { key })).json ?? []) await api(last, "DELETE", `/sandboxes/${r.id}`, { key });
    await last.stop();
  } catch { /* best effort */ }
  cleanup(dataDir);
}
