// Errors whose message is safe to show a user. Anything else is reported as
// "internal error" so no internal detail (or value) ever reaches a response.
// `code` is the stable machine-readable reason (src/api/codes.ts); without one
// the status picks it.
import { codeForStatus, type ErrorCode } from "../api/codes.js";

export class UserError extends Error {
  readonly code: ErrorCode;
  constructor(public readonly status: number, message: string, public readonly headers: Record<string, string> = {}, code?: ErrorCode) {
    super(message);
    this.code = code ?? codeForStatus(status);
  }
}

export const badRequest = (msg: string) => new UserError(400, msg, {}, "invalid_request");
export const notFound = (msg: string, code: ErrorCode = "not_found") => new UserError(404, msg, {}, code);
export const conflict = (msg: string, code: ErrorCode = "conflict") => new UserError(409, msg, {}, code);
