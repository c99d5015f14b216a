// Errors whose message is safe to show a user. Anything else is reported as
// "internal error" so no internal detail (or value) ever reaches a response.
export class UserError extends Error {
  constructor(public readonly status: number, message: string, public readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export const badRequest = (msg: string) => new UserError(400, msg);
export const notFound = (msg: string) => new UserError(404, msg);
export const conflict = (msg: string) => new UserError(409, msg);
