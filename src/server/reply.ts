/** A handler's answer with a status other than 200, or with headers. Plain values are sent as 200 JSON. */
export class Reply {
  constructor(readonly status: number, readonly body?: unknown, readonly headers: Record<string, string> = {}) {}
}
/** Returned by handlers that wrote the response themselves (streams). */
export const HANDLED = Symbol("handled");
/** A body that is already serialized JSON (e.g. built by SQLite), sent as is. */
export class RawJson {
  constructor(readonly text: string) {}
}
