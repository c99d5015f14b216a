// Typed client of the bhatti HTTP API. The CLI uses it; so can other programs:
//   import { BhattiClient } from "bhatti/dist/src/client/index.js"
import WebSocket from "ws";

export interface SecretMeta { name: string; created_at: string; updated_at: string }
export interface Sandbox {
  id: string; name: string; engine: string; image: string; cpus: number; memory_mb: number; status: string;
  env: string[]; secrets: string[]; template_id: string | null; created_at: string; warnings?: string[];
}
export interface CreateSandbox {
  name: string; cpus?: number; memory_mb?: number; env?: Record<string, string>; secrets?: string[];
  files?: { path: string; content: string; mode?: number }[]; template?: string; init?: string; engine?: string;
  image?: string; // default "minimal"; a template's image wins
  disk_mb?: number; // size limit of the writable layer, MiB
  network?: NetworkSpec;
}
/** A sandbox's egress policy (docs/networking.md). */
export interface NetworkSpec { egress?: "public" | "deny" | "none"; allow_hosts?: string[]; allow_cidrs?: string[] }
export interface ImageSummary {
  name: string; aliases: string[]; default: boolean; built_at: string; build_ms: number; inputs_hash: string;
  engines: string[]; size_bytes: number; rootfs: { files: number; bytes: number }; packages: number;
}
export interface Template {
  id: string; name: string; image: string; cpus: number; memory_mb: number; env: Record<string, string>; secrets: string[]; created_at: string;
  network?: NetworkSpec | null;
}
export interface ExecResult {
  exit_code: number; stdout?: string; stderr?: string; stdout_base64?: string; stderr_base64?: string;
  signal?: string; timed_out?: boolean; message?: string;
  /** Output past max_output_bytes (default 16 MiB each) was dropped; the command ran on. */
  stdout_truncated?: boolean; stderr_truncated?: boolean;
}
export interface FileEntry { name: string; type: string; size: number; mode: number; uid: number; gid: number; mtime: string }
export interface WsExecSpec { cmd: string[]; env?: Record<string, string>; cwd?: string; tty?: boolean; rows?: number; cols?: number }
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

  createSandbox(spec: CreateSandbox): Promise<Sandbox> { return this.request("POST", "/sandboxes", spec); }
  setNetwork(ref: string, network: NetworkSpec): Promise<Sandbox> { return this.request("PATCH", `/sandboxes/${encodeURIComponent(ref)}`, { network }); }
  listPorts(ref: string): Promise<{ port: number; address: string; family: 4 | 6 }[]> { return this.request("GET", `/sandboxes/${encodeURIComponent(ref)}/ports`); }
  listSandboxes(): Promise<Sandbox[]> { return this.request("GET", "/sandboxes"); }
  getSandbox(ref: string): Promise<Sandbox> { return this.request("GET", `/sandboxes/${encodeURIComponent(ref)}`); }
  destroySandbox(ref: string): Promise<void> { return this.request("DELETE", `/sandboxes/${encodeURIComponent(ref)}`); }

  exec(ref: string, cmd: string[], opts: { cwd?: string; timeout_sec?: number; stdin?: string; max_output_bytes?: number } = {}): Promise<ExecResult> {
    return this.request("POST", `/sandboxes/${encodeURIComponent(ref)}/exec`, { cmd, ...opts });
  }

  /** Opens an interactive exec. The socket speaks the protocol described in src/server/ws.ts. */
  execWebSocket(ref: string, spec: WsExecSpec): Promise<WebSocket> {
    const url = this.url.replace(/^http/, "ws") + `/sandboxes/${encodeURIComponent(ref)}/exec/ws`;
    const ws = new WebSocket(url, { headers: this.authHeader, perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      ws.once("open", () => { ws.send(JSON.stringify(spec)); resolve(ws); });
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d: Buffer) => { body += d; });
        res.on("end", () => {
          let msg = `HTTP ${res.statusCode}`;
          try { msg = JSON.parse(body).error ?? msg; } catch { /* not JSON */ }
          reject(new ApiError(res.statusCode ?? 0, msg, new Headers()));
        });
      });
      ws.once("error", (e) => reject(new ApiError(0, `cannot reach the bhatti daemon at ${this.url} (${(e as NodeJS.ErrnoException).code ?? e.message})`, new Headers())));
    });
  }

  async readFile(ref: string, path: string): Promise<Buffer> {
    const res = await this.raw("GET", `/sandboxes/${encodeURIComponent(ref)}/files?path=${encodeURIComponent(path)}`);
    return Buffer.from(await res.arrayBuffer());
  }
  writeFile(ref: string, path: string, data: Uint8Array, mode?: number): Promise<{ path: string; size: number }> {
    const q = `path=${encodeURIComponent(path)}${mode === undefined ? "" : `&mode=${mode.toString(8).padStart(4, "0")}`}`;
    return this.request("PUT", `/sandboxes/${encodeURIComponent(ref)}/files?${q}`, data, { "Content-Type": "application/octet-stream" });
  }
  listFiles(ref: string, path: string): Promise<FileEntry[]> {
    return this.request("GET", `/sandboxes/${encodeURIComponent(ref)}/files?path=${encodeURIComponent(path)}&ls=true`);
  }

  createTemplate(spec: Omit<CreateSandbox, "files" | "template" | "init"> & { image?: string }): Promise<Template> { return this.request("POST", "/templates", spec); }
  listImages(): Promise<{ images: ImageSummary[] }> { return this.request("GET", "/images"); }
  getImage(name: string): Promise<ImageSummary & Record<string, unknown>> { return this.request("GET", `/images/${encodeURIComponent(name)}`); }
  listTemplates(): Promise<Template[]> { return this.request("GET", "/templates"); }
  deleteTemplate(ref: string): Promise<void> { return this.request("DELETE", `/templates/${encodeURIComponent(ref)}`); }
}
