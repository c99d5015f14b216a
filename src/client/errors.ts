// Errors of the client: every failed call is a BhattiError with the HTTP
// status (0: the daemon could not be reached), the API's stable `code`
// (src/api/codes.ts) and its message.
import type { ErrorCode } from "../api/codes.js";

export type ClientErrorCode = ErrorCode | "unreachable" | "bad_response";

export class BhattiError extends Error {
  override readonly name = "BhattiError";
  readonly code: ClientErrorCode;
  constructor(readonly status: number, message: string, readonly headers: Headers = new Headers(), code?: ClientErrorCode) {
    super(message);
    this.code = code ?? (status === 0 ? "unreachable" : "internal_error");
  }

  /** Seconds the daemon asked to wait before a retry (Retry-After), if it said. */
  get retryAfter(): number | undefined {
    return parseRetryAfter(this.headers.get("retry-after"));
  }
}

/** The error of a non-2xx answer whose body is (usually) {error, code}. */
export function errorFrom(status: number, text: string, headers: Headers): BhattiError {
  let message = `HTTP ${status}`;
  let code: ClientErrorCode | undefined;
  try {
    const j = JSON.parse(text) as { error?: unknown; code?: unknown };
    if (typeof j.error === "string") message = j.error;
    if (typeof j.code === "string") code = j.code as ClientErrorCode;
  } catch { /* not JSON: a proxy's page, say */ }
  return new BhattiError(status, message, headers, code ?? (status === 0 ? "unreachable" : "bad_response"));
}

/** Retry-After as seconds: a number of seconds or an HTTP date. */
export function parseRetryAfter(v: string | null | undefined, now = Date.now()): number | undefined {
  if (v === null || v === undefined || v.trim() === "") return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - now) / 1000));
}
