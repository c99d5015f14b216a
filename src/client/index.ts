// Typed client of the bhatti HTTP API. The CLI uses it; so can other programs:
//   import { BhattiClient } from "bhatti/dist/src/client/index.js"
export interface SecretMeta { name: string; created_at: string; updated_at: string }
export interface Health { status: string; version: string; [k: string]: unknown }

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Headers) {
    super(message);
  }
}

export interface ClientOptions { url: string; token?: string }

export class BhattiClient {
  readonly url: string;
  private readonly token?: string;

  constructor(opts: ClientOptions) {
    this.url = opts.url.replace(/\/+$/, "");
    this.token = opts.token;
  }

  get authHeader(): Record<string, string> {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  /** Sends a request and returns the parsed JSON body (undefined for 204). Non-2xx becomes ApiError. */
  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await this.raw(method, path, body, headers);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    let res: Response;
    const isBytes = body instanceof Uint8Array;
    try {
      res = await fetch(this.url + path, {
        method,
        headers: { ...this.authHeader, ...(body !== undefined && !isBytes ? { "Content-Type": "application/json" } : {}), ...headers },
        body: body === undefined ? undefined : isBytes ? body : JSON.stringify(body),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      throw new ApiError(0, `cannot reach the bhatti daemon at ${this.url}${cause ? ` (${cause})` : ""}`, new Headers());
    }
    if (!res.ok) {
      let msg = `HTTP ${res.status}`;
      try { msg = ((await res.json()) as { error?: string }).error ?? msg; } catch { /* not JSON */ }
      throw new ApiError(res.status, msg, res.headers);
    }
    return res;
  }

  health(): Promise<Health> { return this.request("GET", "/health"); }

  setSecret(name: string, value: string): Promise<SecretMeta> { return this.request("POST", "/secrets", { name, value }); }
  listSecrets(): Promise<SecretMeta[]> { return this.request("GET", "/secrets"); }
  deleteSecret(name: string): Promise<void> { return this.request("DELETE", `/secrets/${encodeURIComponent(name)}`); }
}
