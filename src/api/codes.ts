// The stable, machine-readable `code` of every error body ({error, code}).
// Messages may be reworded; codes never change meaning. Clients branch on
// the code, people read the message. Documented in GET /openapi.json.

export const ERROR_CODES = {
  invalid_request: "The request broke a rule (the message names it); nothing was changed.",
  unauthorized: "No API key, a malformed Authorization header, or an unknown key.",
  forbidden: "The sandbox refused the file operation (permission denied, read-only, or /proc and /sys).",
  quota_exceeded: "The caller's quota (sandboxes, cpus or memory) would be exceeded.",
  route_not_found: "No route has this path.",
  not_found: "The object named in the path does not exist (the message names it; another user's objects are not found either).",
  method_not_allowed: "The path exists but not with this method (see the Allow header).",
  sandbox_not_found: "No sandbox of the caller's has this id or name (another user's sandboxes are not found either).",
  template_not_found: "No template of the caller's has this id or name.",
  secret_not_found: "No secret of the caller's has this name.",
  image_not_found: "No image has this name.",
  user_not_found: "No user has this name.",
  file_not_found: "The path does not exist inside the sandbox.",
  name_taken: "A sandbox, template or user of that name already exists.",
  not_running: "The sandbox is not running (its status says why).",
  file_conflict: "The path exists or a directory is not empty inside the sandbox.",
  conflict: "The request conflicts with the current state of the object.",
  egress_cap_exceeded: "The network policy asks for more egress than the caller's cap (max_egress: public > deny > none) allows; nothing was changed.",
  too_large_for_host: "The request asks for more than this host admits for all sandboxes together.",
  has_dependents: "The object still owns others; delete them first.",
  payload_too_large: "The request body is over its size limit.",
  rate_limited: "Too many requests: wait for Retry-After seconds.",
  daemon_busy: "The host is at capacity or the caller has too many connections: retry after Retry-After seconds.",
  reattaching: "The sandbox is being reattached after a daemon restart: retry after Retry-After seconds.",
  daemon_stopping: "The daemon is stopping; the command was killed.",
  sandbox_failed: "The sandbox failed to start (the daemon log has details).",
  disk_full: "The sandbox's disk (disk_mb) or a quota inside it is full.",
  agent_error: "The agent inside the sandbox failed the request.",
  upgrade_required: "This route speaks WebSocket only.",
  session_not_found: "No session with this id in the sandbox (another user's sessions are not found either).",
  too_many_sessions: "The sandbox has as many sessions as it may keep; end one first.",
  share_token_invalid: "The web terminal link is unknown, used, expired or revoked.",
  not_supported: "The engine cannot do this on this host (the message says why).",
  volume_not_found: "No volume of the caller's has this name.",
  snapshot_not_found: "No snapshot of the caller's has this name.",
  in_use: "The object is attached to or used by a sandbox; detach or destroy that first.",
  port_not_listening: "Nothing listens on that port inside the sandbox.",
  internal_error: "A bug or an unexpected failure in the daemon; nothing internal is disclosed.",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The code of an error thrown without one, from its status. */
export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return "invalid_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 426: return "upgrade_required";
    case 429: return "rate_limited";
    case 502: return "agent_error";
    case 503: return "daemon_busy";
    default: return "internal_error";
  }
}
