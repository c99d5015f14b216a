// lohar's error codes (src/protocol/agent.ts ErrorCode) as API errors: one
// table from code to HTTP status and API code. The message is lohar's (it
// names the operation, the path the user gave and the errno; never content).
import type { ErrorCode as AgentCode } from "../protocol/agent.js";
import type { ErrorCode } from "../api/codes.js";
import { UserError } from "../util/errors.js";
import { AgentError } from "../engine/agent-client.js";

export const AGENT_ERRORS: Record<AgentCode, { status: number; code: ErrorCode }> = {
  enoent: { status: 404, code: "file_not_found" },
  eacces: { status: 403, code: "forbidden" },
  eperm: { status: 403, code: "forbidden" },
  erofs: { status: 403, code: "forbidden" },
  forbidden_path: { status: 403, code: "forbidden" },
  eexist: { status: 409, code: "file_conflict" },
  enotempty: { status: 409, code: "file_conflict" },
  ebusy: { status: 409, code: "file_conflict" },
  etxtbsy: { status: 409, code: "file_conflict" },
  eisdir: { status: 400, code: "invalid_request" },
  enotdir: { status: 400, code: "invalid_request" },
  eloop: { status: 400, code: "invalid_request" },
  enametoolong: { status: 400, code: "invalid_request" },
  einval: { status: 400, code: "invalid_request" },
  enoexec: { status: 400, code: "invalid_request" },
  not_regular_file: { status: 400, code: "invalid_request" },
  bad_request: { status: 400, code: "invalid_request" },
  enospc: { status: 507, code: "disk_full" },
  edquot: { status: 507, code: "disk_full" },
  efbig: { status: 413, code: "payload_too_large" },
  cancelled: { status: 502, code: "agent_error" },
  io_error: { status: 502, code: "agent_error" },
  no_session: { status: 404, code: "session_not_found" },
  too_many_sessions: { status: 409, code: "too_many_sessions" },
};

/**
 * The code of an error from a lohar older than the codes (a sandbox created
 * before an upgrade and reattached since): its message ends in ": ERRNO (reason)"
 * after the path. Only that last token counts: the path before it is the user's.
 */
function legacyCode(message: string): AgentCode | undefined {
  const errno = /: (E[A-Z0-9]+)(?: \([^()]*\))?$/.exec(message)?.[1]?.toLowerCase();
  if (errno && Object.hasOwn(AGENT_ERRORS, errno)) return errno as AgentCode;
  if (!errno && /: path must be absolute$|: mode must be an integer 0\.\.0o7777$/.test(message)) return "bad_request";
  return undefined;
}

/** The API error for a failed agent call, by lohar's code; an unknown failure (or the connection's) is a 502. */
export function agentFailure(e: unknown): UserError {
  if (e instanceof UserError) return e;
  const msg = (e as Error).message;
  const code = e instanceof AgentError ? e.agentCode ?? legacyCode(msg) : undefined;
  const mapped = code ? AGENT_ERRORS[code] : undefined;
  if (mapped && mapped.status !== 502) return new UserError(mapped.status, msg, {}, mapped.code);
  return new UserError(502, `sandbox agent: ${msg}`, {}, "agent_error");
}

/** Runs an agent call, turning its failure into an API error. */
export async function agentCall<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw agentFailure(e);
  }
}
