// What the HTTP layer may do inside a running sandbox: exec and files. The
// routes get a SandboxHandle from SandboxService.open() and never hold the
// engine-level agent connection; agent failures come back as API errors
// (agent-errors.ts), by lohar's code.
import { AgentError, type AgentClient, type ExecOptions, type ExecSession, type FileStream } from "../engine/agent-client.js";
import type { ExecStart, StatInfo } from "../protocol/agent.js";
import { UserError } from "../util/errors.js";
import { AGENT_ERRORS, agentCall } from "./agent-errors.js";

export type ExecSpec = Omit<ExecStart, "type">;

/** The API error for a command lohar could not start: the request's problem (a cwd that does not exist, a NUL...), a 400. */
export function execFailure(e: unknown): UserError {
  if (e instanceof UserError) return e;
  const code = e instanceof AgentError && e.agentCode ? AGENT_ERRORS[e.agentCode] : undefined;
  return new UserError(400, (e as Error).message, {}, code && code.status < 500 ? code.code : "invalid_request");
}

export class SandboxHandle {
  constructor(private readonly agent: AgentClient) {}

  /** Starts a command. If lohar cannot start it, `done` rejects: execFailure() gives the API error. */
  exec(spec: ExecSpec, opts: ExecOptions = {}): ExecSession {
    return this.agent.exec(spec, opts);
  }

  list(path: string): Promise<StatInfo[]> { return agentCall(() => this.agent.list(path)); }
  stat(path: string): Promise<StatInfo> { return agentCall(() => this.agent.stat(path)); }
  openFile(path: string): Promise<FileStream> { return agentCall(() => this.agent.openFile(path)); }
  writeFile(path: string, data: Buffer | AsyncIterable<Buffer>, mode?: number): Promise<void> { return agentCall(() => this.agent.writeFile(path, data, mode)); }
}
