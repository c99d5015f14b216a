// The typed client of the bhatti HTTP API. The CLI uses it; so can any
// program: `import { BhattiClient } from "bhatti/client"` (docs/client.md).
// Types come from the API contract (src/api/); errors are BhattiError with
// the API's stable `code`; idempotent calls are retried after 429/503 as
// Retry-After says (retry.ts). Imports of src/api are types only, so the
// client loads no schema library.
import WebSocket from "ws";
import { BhattiError, errorFrom } from "./errors.js";
import { RETRY_STATUSES, RetryBudget, sleep, type RetryOptions } from "./retry.js";
import { ndjsonLines } from "./ndjson.js";
import { ExecSocket } from "./ws-exec.js";
import type { SecretMeta } from "../api/secrets.js";
import type { CreateSandboxRequest, CreatedSandbox, Sandbox } from "../api/sandboxes.js";
import type { CreateTemplateRequest, Template } from "../api/templates.js";
import type { ImageDetail, ImageList, ImageSummary, Health } from "../api/images.js";
import type { ExecEvent, ExecRequest, ExecResult, WsExecRequest } from "../api/exec.js";
import type { FileEntry, FileWritten } from "../api/files.js";
import type { ErrorCode } from "../api/codes.js";

export type { SecretMeta, Sandbox, CreatedSandbox, Template, ImageSummary, ImageDetail, ImageList, Health, ExecEvent, ExecResult, FileEntry, FileWritten, ErrorCode };
/** `engine` is "ns" or "vm" (a string here so that a user's flag passes through; the daemon checks it). */
export type CreateSandbox = Omit<CreateSandboxRequest, "engine"> & { engine?: string | null };
export type CreateTemplate = CreateTemplateRequest;
export type WsExecSpec = WsExecRequest;
export type ExecOptions = Omit<ExecRequest, "cmd" | "env">;
export { BhattiError, parseRetryAfter, type ClientErrorCode } from "./errors.js";
export { ExecSocket, type ExecChunk, type ExecExit } from "./ws-exec.js";
export type { RetryOptions } from "./retry.js";
/** The former name of BhattiError. */
export { BhattiError as ApiError } from "./errors.js";
/** issue 14: persistent per-user storage. */
export interface Volume { name: string; size_mb: number; attached_to: string | null; created_at: string }
/** issue 14: a filesystem snapshot. */
export interface Snapshot { name: string; sandbox: string; engine: string; image: string; cpus: number; memory_mb: number; created_at: string }
/** A sandbox's egress policy (docs/networking.md). */
export interface NetworkSpec { egress?: "public" | "deny" | "none"; allow_hosts?: string[]; allow_cidrs?: string[] }

export interface ClientOptions {
  url: string;
  token?: string;
  /** Retries of idempotent calls after 429/503 (default: 4 attempts, at most 30 s of waiting in all). */
  retry?: RetryOptions;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Whether the call may be sent again after a 429/503. Default: every method but POST. */
  idempotent?: boolean;
  signal?: AbortSignal;
}

/** GET /me: the caller, its quotas and usage. */
/** One audit event (GET /events). */
export interface AuditEvent {
  id: number; at: string; actor: string; action: string; object: string | null; user: string | null; result: string;
  detail: Record<string, unknown> | null;
}
export interface EventQuery { since?: string; type?: string; limit?: number; cursor?: number }
/**
 * A secret's binding to hosts (issue 11: brokered secrets). hosts: bind (the
 * whole binding is replaced); []: unbind; omitted: a replace keeps the binding.
 */
export interface SecretBinding { hosts?: string[]; header?: string | null; in_body?: boolean }

/** A secret for a sandbox or template: a name (an env variable) or a file on a tmpfs in the sandbox. */
export type SecretRef = string | { name: string; path: string; mode?: number | string };

export interface Me {
  name: string; created_at: string;
  quotas: { max_sandboxes: number; max_cpus: number; max_memory_mb: number; max_disk_mb: number; max_egress: "public" | "deny" | "none" };
  usage: { sandboxes: number; cpus: number; memory_mb: number; disk_mb: number; secrets: number; templates: number };
}

export interface FileStat { type: string; size: number; mode: number; uid: number; gid: number; mtime: string }

const enc = encodeURIComponent;

export class BhattiClient {
  readonly url: string;
  private readonly token?: string;
  private readonly retry: RetryOptions;

  constructor(opts: ClientOptions) {
    this.url = opts.url.replace(/\/+$/, "");
    this.token = opts.token;
    this.retry = opts.retry ?? {};
  }

  get authHeader(): Record<string, string> {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  /** Sends a request and returns the parsed JSON body (undefined for 204). A non-2xx answer is a BhattiError. */
  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, opts: Omit<RequestOptions, "headers"> = {}): Promise<T> {
    const res = await this.raw(method, path, body, headers, opts);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch {
      throw new BhattiError(res.status, "the daemon's answer is not JSON", res.headers, "bad_response");
    }
  }

  /** The Response of a request (2xx only), after retries of an idempotent call on 429/503. */
  async raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, opts: Omit<RequestOptions, "headers"> = {}): Promise<Response> {
    const isBytes = body instanceof Uint8Array;
    const payload = body === undefined ? undefined : isBytes ? body : JSON.stringify(body);
    const idempotent = opts.idempotent ?? method !== "POST";
    const budget = new RetryBudget(idempotent ? this.retry : { attempts: 1 });
    for (;;) {
      let res: Response;
      try {
        res = await fetch(this.url + path, {
          method,
          headers: { ...this.authHeader, ...(payload !== undefined && !isBytes ? { "Content-Type": "application/json" } : {}), ...headers },
          body: payload,
          signal: opts.signal,
        });
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        const cause = (e as { cause?: { code?: string } }).cause?.code;
        throw new BhattiError(0, `cannot reach the bhatti daemon at ${this.url}${cause ? ` (${cause})` : ""}`, new Headers(), "unreachable");
      }
      if (res.ok) return res;
      const err = errorFrom(res.status, await res.text().catch(() => ""), res.headers);
      const wait = RETRY_STATUSES.has(res.status) ? budget.next(err.retryAfter) : undefined;
      if (wait === undefined) throw err;
      await sleep(wait, opts.signal);
    }
  }

  health(): Promise<Health> { return this.request("GET", "/health"); }
  /** The caller: name, quotas and usage. */
  me(): Promise<Me> { return this.request("GET", "/me"); }
  /** The API's OpenAPI 3.1 document. */
  openapi(): Promise<Record<string, unknown>> { return this.request("GET", "/openapi.json"); }

  // ---- secrets (write-only: no call returns a value) ----
  /** Creates or replaces a secret. Safe to retry: setting the same value twice is one change. */
  setSecret(name: string, value: string, binding: SecretBinding = {}): Promise<SecretMeta> { return this.request("POST", "/secrets", { name, value, ...binding }, {}, { idempotent: true }); }
  /**
   * Like setSecret, and says whether the secret was new (201 Created) or replaced (200).
   * value undefined: only the binding of an existing secret changes (binding must say something).
   */
  async setSecretReporting(name: string, value: string | undefined, binding: SecretBinding = {}): Promise<SecretMeta & { created: boolean }> {
    const res = await this.raw("POST", "/secrets", { name, ...(value !== undefined ? { value } : {}), ...binding }, {}, { idempotent: true });
    return { ...((await res.json()) as SecretMeta), created: res.status === 201 };
  }
  listSecrets(): Promise<SecretMeta[]> { return this.request("GET", "/secrets"); }
  deleteSecret(name: string): Promise<void> { return this.request("DELETE", `/secrets/${enc(name)}`); }

  // ---- sandboxes ----
  createSandbox(spec: CreateSandbox): Promise<CreatedSandbox> { return this.request("POST", "/sandboxes", spec); }
  setNetwork(ref: string, network: NetworkSpec): Promise<Sandbox> { return this.request("PATCH", `/sandboxes/${encodeURIComponent(ref)}`, { network }); }
  listPorts(ref: string): Promise<{ port: number; address: string; family: 4 | 6 }[]> { return this.request("GET", `/sandboxes/${encodeURIComponent(ref)}/ports`); }
  listSandboxes(): Promise<Sandbox[]> { return this.request("GET", "/sandboxes"); }
  getSandbox(ref: string): Promise<Sandbox> { return this.request("GET", `/sandboxes/${encodeURIComponent(ref)}`); }
  destroySandbox(ref: string): Promise<void> { return this.request("DELETE", `/sandboxes/${encodeURIComponent(ref)}`); }
  /** stop/start/pause/resume (issue 14); answers with the sandbox's new view. */
  lifecycle(ref: string, op: "stop" | "start" | "pause" | "resume"): Promise<Sandbox> { return this.request("POST", `/sandboxes/${encodeURIComponent(ref)}/${op}`); }
  createVolume(name: string, sizeMb: number): Promise<Volume> { return this.request("POST", "/volumes", { name, size_mb: sizeMb }); }
  listVolumes(): Promise<Volume[]> { return this.request("GET", "/volumes"); }
  deleteVolume(name: string): Promise<void> { return this.request("DELETE", `/volumes/${encodeURIComponent(name)}`); }
  createSnapshot(ref: string, name?: string): Promise<Snapshot> { return this.request("POST", `/sandboxes/${encodeURIComponent(ref)}/snapshots`, name ? { name } : {}); }
  listSnapshots(): Promise<Snapshot[]> { return this.request("GET", "/snapshots"); }
  deleteSnapshot(name: string): Promise<void> { return this.request("DELETE", `/snapshots/${encodeURIComponent(name)}`); }
  setKeepHot(ref: string, keepHot: boolean): Promise<Sandbox> { return this.request("PUT", `/sandboxes/${encodeURIComponent(ref)}/keep-hot`, { keep_hot: keepHot }); }

  // ---- exec ----
  /** Runs a command and returns its whole output (each stream capped at max_output_bytes, default 16 MiB). Not retried. */
  exec(ref: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return this.request("POST", `/sandboxes/${enc(ref)}/exec`, { cmd, ...opts });
  }

  /**
   * Runs a command and yields its output as it comes ({type: stdout|stderr, data | data_base64}),
   * then {type: "exit", exit_code} (or {type: "error"}). Stopping the iteration early ends the command.
   */
  async *execStream(ref: string, cmd: string[], opts: Omit<ExecOptions, "max_output_bytes"> & { signal?: AbortSignal } = {}): AsyncGenerator<ExecEvent> {
    const { signal, ...rest } = opts;
    const res = await this.raw("POST", `/sandboxes/${enc(ref)}/exec`, { cmd, ...rest }, { Accept: "application/x-ndjson" }, { signal });
    if (!res.body) return;
    yield* ndjsonLines<ExecEvent>(res.body);
  }

  /** Opens an interactive exec over a WebSocket: write stdin, read output, await `exit`. */
  async execInteractive(ref: string, spec: WsExecSpec, opts: { redact?: boolean } = {}): Promise<ExecSocket> {
    return new ExecSocket(await this.execWebSocket(ref, spec, opts));
  }

  /** Opens an interactive exec and returns the raw socket (protocol: src/server/ws.ts). The handshake is retried on 429/503. */
  async execWebSocket(ref: string, spec: WsExecSpec, opts: { redact?: boolean } = {}): Promise<WebSocket> {
    const budget = new RetryBudget(this.retry);
    for (;;) {
      try {
        return await this.openWebSocket(ref, spec, opts);
      } catch (e) {
        const wait = e instanceof BhattiError && RETRY_STATUSES.has(e.status) ? budget.next(e.retryAfter) : undefined;
        if (wait === undefined) throw e;
        await sleep(wait);
      }
    }
  }

  private openWebSocket(ref: string, spec: WsExecSpec, opts: { redact?: boolean }): Promise<WebSocket> {
    const url = this.url.replace(/^http/, "ws") + `/sandboxes/${enc(ref)}/exec/ws${opts.redact ? "?redact=1" : ""}`;

    const ws = new WebSocket(url, { headers: this.authHeader, perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      ws.once("open", () => { ws.send(JSON.stringify(spec)); resolve(ws); });
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d: Buffer) => { if (body.length < 65536) body += d; });
        res.on("error", () => {});
        res.on("end", () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") h.set(k, v);
          reject(errorFrom(res.statusCode ?? 0, body, h));
        });
      });
      ws.once("error", (e) => reject(new BhattiError(0, `cannot reach the bhatti daemon at ${this.url} (${(e as NodeJS.ErrnoException).code ?? e.message})`, new Headers(), "unreachable")));
    });
  }

  // ---- files ----
  async readFile(ref: string, path: string): Promise<Buffer> {
    const res = await this.raw("GET", `/sandboxes/${enc(ref)}/files?path=${enc(path)}`);
    return Buffer.from(await res.arrayBuffer());
  }
  /** Writes a file (at most 64 MiB). A PUT of the same bytes is idempotent: retried on 429/503. */
  writeFile(ref: string, path: string, data: Uint8Array, mode?: number): Promise<FileWritten> {
    const q = `path=${enc(path)}${mode === undefined ? "" : `&mode=${mode.toString(8).padStart(4, "0")}`}`;
    return this.request("PUT", `/sandboxes/${enc(ref)}/files?${q}`, data, { "Content-Type": "application/octet-stream" });
  }
  listFiles(ref: string, path: string): Promise<FileEntry[]> {
    return this.request("GET", `/sandboxes/${enc(ref)}/files?path=${enc(path)}&ls=true`);
  }
  /** A file's type, size, mode, owner and mtime (HEAD, no content). */
  async statFile(ref: string, path: string): Promise<FileStat> {
    const res = await this.raw("HEAD", `/sandboxes/${enc(ref)}/files?path=${enc(path)}`);
    const h = res.headers;
    return {
      type: h.get("x-file-type") ?? "other", size: Number(h.get("content-length") ?? 0), mode: parseInt(h.get("x-file-mode") ?? "0", 8),
      uid: Number(h.get("x-file-uid")), gid: Number(h.get("x-file-gid")), mtime: new Date(h.get("last-modified") ?? 0).toISOString(),
    };
  }

  /** What is at `path` in the sandbox (HEAD /files), or null when nothing is. */
  async statPath(ref: string, path: string): Promise<{ type: string; size: number; mode: number } | null> {
    try {
      const res = await this.raw("HEAD", `/sandboxes/${encodeURIComponent(ref)}/files?path=${encodeURIComponent(path)}`);
      return { type: res.headers.get("x-file-type") ?? "other", size: Number(res.headers.get("content-length") ?? 0), mode: parseInt(res.headers.get("x-file-mode") ?? "0", 8) };
    } catch (e) {
      if (e instanceof BhattiError && e.status === 404) return null;
      throw e;
    }
  }
  /** A tar stream of `path` (a file or a directory tree) in the sandbox. */
  async getArchive(ref: string, path: string): Promise<ReadableStream<Uint8Array>> {
    const res = await this.raw("GET", `/sandboxes/${encodeURIComponent(ref)}/archive?path=${encodeURIComponent(path)}`);
    return res.body!;
  }
  /** Extracts a tar stream under the directory `path` in the sandbox; `rename` replaces the first component of every entry. */
  async putArchive(ref: string, path: string, tar: AsyncIterable<Uint8Array>, rename?: string): Promise<{ path: string; size: number }> {
    const q = `path=${encodeURIComponent(path)}${rename === undefined ? "" : `&rename=${encodeURIComponent(rename)}`}`;
    let res: Response;
    try {
      res = await fetch(`${this.url}/sandboxes/${encodeURIComponent(ref)}/archive?${q}`, {
        method: "PUT", headers: { ...this.authHeader, "Content-Type": "application/x-tar" }, body: tar as unknown as RequestInit["body"], duplex: "half",
      } as RequestInit & { duplex: "half" });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new BhattiError(0, cause?.code ? `cannot reach the bhatti daemon at ${this.url} (${cause.code})` : `upload failed: ${cause?.message ?? (e as Error).message}`, new Headers());
    }
    const text = await res.text();
    let body: { error?: unknown; code?: unknown; path?: string; size?: number } = {};
    try { body = text ? JSON.parse(text) : {}; } catch { /* not JSON */ }
    if (!res.ok) throw errorFrom(res.status, text, res.headers);
    return body as { path: string; size: number };
  }
  /** The caller's audit events, oldest first, and the cursor to ask for the next ones. */
  events(q: EventQuery = {}): Promise<{ events: AuditEvent[]; next_cursor: number | null }> {
    return this.request("GET", `/events${eventQueryString(q)}`);
  }
  /** ?follow=1: the response body is JSON lines, one event each, until it is closed. */
  followEvents(q: EventQuery = {}): Promise<Response> {
    const qs = eventQueryString(q);
    return this.raw("GET", `/events${qs}${qs ? "&" : "?"}follow=1`);
  }

  // ---- templates and images ----
  createTemplate(spec: CreateTemplate): Promise<Template> { return this.request("POST", "/templates", spec); }

  listTemplates(): Promise<Template[]> { return this.request("GET", "/templates"); }
  getTemplate(ref: string): Promise<Template> { return this.request("GET", `/templates/${enc(ref)}`); }
  deleteTemplate(ref: string): Promise<void> { return this.request("DELETE", `/templates/${enc(ref)}`); }
  listImages(): Promise<ImageList> { return this.request("GET", "/images"); }
  getImage(name: string): Promise<ImageDetail> { return this.request("GET", `/images/${enc(name)}`); }
}

function eventQueryString(q: EventQuery): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}
