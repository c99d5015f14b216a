// Host side of lohar sessions (protocol: src/protocol/agent.ts, "sessions").
// A SessionViewer is an exec-like stream (output under credit, stdin, resize,
// signal) that ends with "exit" when the session's command ended, or
// "detached" when it stopped watching; the session itself lives on in lohar.
import { AgentClient, AgentError, Exec, type ExecOptions } from "./agent-client.js";
import type { AgentMessage, SessionInfo, SessionStart } from "../protocol/agent.js";

const ID_RE = /^[a-z0-9]{1,32}$/;

/** A session id as lohar makes them; anything else cannot name a session. */
export function validSessionId(id: string): boolean {
  return ID_RE.test(id);
}

/** lohar's answers are checked like any input from a sandbox: only known fields, of known types, go on. */
export function cleanInfo(x: unknown): SessionInfo {
  const o = x as Record<string, unknown>;
  const str = (v: unknown, max = 4096) => typeof v === "string" && v.length <= max;
  if (!o || typeof o !== "object" || !str(o.id, 32) || !validSessionId(o.id as string) || !Array.isArray(o.cmd) || !o.cmd.every((a) => str(a)) ||
      !str(o.started_at, 40) || (o.state !== "running" && o.state !== "exited")) {
    throw new Error("bad session info from the agent");
  }
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
  const info: SessionInfo = {
    id: o.id as string,
    cmd: (o.cmd as string[]).slice(0, 256),
    tty: o.tty === true,
    started_at: o.started_at as string,
    state: o.state,
    keep: o.keep === true,
    idle_timeout_ms: num(o.idle_timeout_ms) ?? 0,
    viewers: num(o.viewers) ?? 0,
  };
  if (num(o.exit_code) !== undefined) info.exit_code = o.exit_code as number;
  if (str(o.signal, 16)) info.signal = o.signal as string;
  if (str(o.ended_at, 40)) info.ended_at = o.ended_at as string;
  if (o.idle_killed === true) info.idle_killed = true;
  return info;
}

/**
 * A stream watching a session. Events: "session" (SessionInfo, first),
 * "stdout" (bytes), "exit" (ExecExit: the command ended), "detached" (this
 * stream stopped watching; the session runs on), "error".
 */
export class SessionViewer extends Exec {
  info: SessionInfo | null = null;

  protected override onControl(msg: AgentMessage): void {
    if (msg.type === "session") {
      try {
        this.info = cleanInfo(msg.session);
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      this.emit("session", this.info);
    } else if (msg.type === "detached") {
      this.release();
      if (this.settled) return;
      this.settled = true;
      this.emit("detached");
    }
  }

  /** Stop watching; the session keeps running. */
  detach(): void {
    this.control({ type: "detach" });
  }
}

/** Starts a session and watches it (a shell). */
export function startSession(agent: AgentClient, spec: Omit<SessionStart, "type" | "attach">, opts: ExecOptions = {}): SessionViewer {
  return agent.openStream((id) => new SessionViewer(agent, id, !!opts.manualAck), { type: "session_start", ...spec, attach: true });
}

/** Watches an existing session: its scrollback first (replay), then (follow) its live output. */
export function attachSession(agent: AgentClient, id: string, how: { replay?: boolean; follow?: boolean } = {}, opts: ExecOptions = {}): SessionViewer {
  return agent.openStream((sid) => new SessionViewer(agent, sid, !!opts.manualAck), { type: "session_attach", id, replay: how.replay !== false, follow: how.follow !== false });
}

function expect(msg: AgentMessage, type: "session"): SessionInfo {
  if (msg.type !== type) throw new Error("bad answer from the agent");
  return cleanInfo(msg.session);
}

/** Starts a session nobody watches (a background command). */
export async function startDetached(agent: AgentClient, spec: Omit<SessionStart, "type" | "attach">): Promise<SessionInfo> {
  return expect(await agent.request({ type: "session_start", ...spec, attach: false }), "session");
}

export async function listSessions(agent: AgentClient): Promise<SessionInfo[]> {
  const r = await agent.request({ type: "session_list" });
  if (r.type !== "sessions" || !Array.isArray(r.sessions)) throw new Error("bad answer from the agent");
  return r.sessions.slice(0, 1024).map(cleanInfo);
}

export async function killSession(agent: AgentClient, id: string, signal: string): Promise<SessionInfo> {
  return expect(await agent.request({ type: "session_kill", id, signal }), "session");
}

export function isNoSession(e: unknown): boolean {
  return e instanceof AgentError && e.agentCode === "no_session";
}
