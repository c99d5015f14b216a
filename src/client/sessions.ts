// Sessions in the typed client (issue 12): shells over a WebSocket, background
// commands, list, logs, kill. The socket protocol is described in src/server/session-ws.ts.
import WebSocket from "ws";
import { ApiError, type BhattiClient } from "./index.js";

export interface SessionInfo {
  id: string; cmd: string[]; tty: boolean; started_at: string; state: "running" | "exited";
  exit_code?: number; signal?: string; ended_at?: string; keep: boolean; idle_timeout_ms: number; viewers: number; idle_killed?: boolean;
}
/** The first message of a session socket: a new session's spec, or for a reattach its terminal size. */
export interface SessionHello {
  rows?: number; cols?: number; cmd?: string[]; env?: Record<string, string>; cwd?: string; tty?: boolean; keep?: boolean; idle_timeout_sec?: number;
}
export interface DetachedSpec { cmd: string[]; cwd?: string; tty?: boolean; keep?: boolean; idle_timeout_sec?: number }

const sb = (ref: string) => `/sandboxes/${encodeURIComponent(ref)}`;

export function listSessions(c: BhattiClient, ref: string): Promise<SessionInfo[]> {
  return c.request("GET", `${sb(ref)}/sessions`);
}

/** A background command (`exec --detach`): its session id comes back at once. */
export function startDetached(c: BhattiClient, ref: string, spec: DetachedSpec): Promise<SessionInfo> {
  return c.request("POST", `${sb(ref)}/sessions`, spec);
}

export function killSession(c: BhattiClient, ref: string, id: string, signal = "SIGKILL"): Promise<SessionInfo> {
  return c.request("DELETE", `${sb(ref)}/sessions/${encodeURIComponent(id)}?signal=${encodeURIComponent(signal)}`);
}

/** The session's output: its scrollback, and with follow its live output until it exits. */
export async function sessionLogs(c: BhattiClient, ref: string, id: string, follow: boolean): Promise<ReadableStream<Uint8Array>> {
  const res = await c.raw("GET", `${sb(ref)}/sessions/${encodeURIComponent(id)}/logs?follow=${follow}`);
  if (!res.body) throw new ApiError(502, "no body", res.headers);
  return res.body;
}

/** Opens a session socket (new, or `session` to reattach) and sends its first message. */
export function sessionWebSocket(c: BhattiClient, ref: string, hello: SessionHello, session?: string): Promise<WebSocket> {
  const url = c.url.replace(/^http/, "ws") + `${sb(ref)}/ws${session ? `?session=${encodeURIComponent(session)}` : ""}`;
  const ws = new WebSocket(url, { headers: c.authHeader, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once("open", () => { ws.send(JSON.stringify(hello)); resolve(ws); });
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d: Buffer) => { body += d; });
      res.on("end", () => {
        let msg = `HTTP ${res.statusCode}`;
        try { msg = JSON.parse(body).error ?? msg; } catch { /* not JSON */ }
        reject(new ApiError(res.statusCode ?? 0, msg, new Headers()));
      });
    });
    ws.once("error", (e) => reject(new ApiError(0, `cannot reach the bhatti daemon at ${c.url} (${(e as NodeJS.ErrnoException).code ?? e.message})`, new Headers())));
  });
}
