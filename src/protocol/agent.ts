// The host <-> lohar protocol. Both the daemon (src/engine/agent-client.ts) and
// lohar (src/agent) import this module; nothing else defines wire formats.
//
// Transport: any reliable byte stream (a unix socket for the ns engine, a
// virtio-serial port for the vm engine). It carries frames:
//
//   u32 BE  length of everything after this field (kind + stream + payload)
//   u8      kind   (FrameKind)
//   u32 BE  stream id (0 = the session itself; exec/file calls use 1, 2, ...)
//   bytes   payload
//
// Session: the host connects and sends AUTH (payload = the per-sandbox token,
// UTF-8). lohar answers a CONTROL {type:"hello"} on stream 0, or a CONTROL
// {type:"error"} and closes. Nothing else is accepted before AUTH. Streams are
// opened by the host with a CONTROL request on a fresh stream id; lohar answers
// on the same stream id. A stream ends with CONTROL {type:"exit"} (exec),
// {type:"result"} (file calls) or {type:"error"}.
//
// Flow control (version 2). One byte stream carries many exec/file streams, so
// socket backpressure alone would let one unread stream stall all the others.
// Each stream therefore has a credit window of STREAM_WINDOW bytes per
// direction: a side may have at most that many payload bytes (Stdout + Stderr
// of an exec, Data of a file_read; Stdin of an exec, Data of a file_write) sent
// on a stream and not yet granted back by the other side with CONTROL
// {type:"credit", bytes}. The host grants output credit as its consumer really
// takes the bytes (an HTTP response flushed, a WebSocket frame written); lohar
// grants input credit as a command's stdin pipe or the disk takes them. While
// out of credit lohar pauses the command's pipes (the command blocks on write)
// or stops reading the file. A host that sees a stream exceed its window drops
// that stream. {type:"cancel"} asks lohar to end a stream now (exec: SIGKILL
// to its process group; file calls: stop, drop a partial upload); lohar still
// ends the stream with its usual final message. file_read answers
// {type:"opened", stat} before its Data frames (the host can pick a status and
// a Content-Length); it sends at most stat.size bytes. A version 1 peer (a
// sandbox started by an older daemon) knows none of this: the host then sends
// no credit or cancel and enforces no window.

export const PROTOCOL_VERSION = 2;
/** Per-stream, per-direction flow-control window (bytes). */
export const STREAM_WINDOW = 512 * 1024;
export const MAX_FRAME = 1 << 20; // 1 MiB payload ceiling per frame
export const HEADER_BYTES = 9; // 4 length + 1 kind + 4 stream

export enum FrameKind {
  Auth = 1,
  Control = 2, // JSON payload: HostMessage or AgentMessage
  Stdin = 3,
  Stdout = 4,
  Stderr = 5,
  Data = 6, // file contents, either direction
}

// ---- host -> agent control messages ----

export interface ExecStart {
  type: "exec";
  cmd: string[];
  env?: Record<string, string>; // per-command env (WebSocket exec only); wins over everything
  cwd?: string;
  tty?: boolean;
  rows?: number;
  cols?: number;
  timeout_ms?: number; // kill the process group with SIGKILL after this
  stdin?: boolean; // true: host will send Stdin frames then "eof"; false: stdin is /dev/null
}
export interface StdinEof { type: "eof" }
export interface Resize { type: "resize"; rows: number; cols: number }
export interface SignalMsg { type: "signal"; signal: string }
export interface FileRead { type: "file_read"; path: string }
// file_write: Data frames with the content follow on the same stream, then {type:"eof"}.
export interface FileWrite { type: "file_write"; path: string; mode?: number }
export interface FileStat { type: "file_stat"; path: string }
export interface FileList { type: "file_list"; path: string }
export interface Ping { type: "ping" }
/** Both directions: the sender took `bytes` more of the stream's payload; the peer may send that many more. */
export interface Credit { type: "credit"; bytes: number }
/** host -> agent: end this stream now (exec: SIGKILL its process group; file calls: stop, drop a partial upload). */
export interface Cancel { type: "cancel" }

export type HostMessage =
  | ExecStart | StdinEof | Resize | SignalMsg
  | FileRead | FileWrite | FileStat | FileList | Ping | Credit | Cancel
  | ArchiveWrite | ArchiveRead
  | SessionHostMessage;

// ---- cli (issue 8): archives for `bhatti cp` ----
// archive_write: like file_write (Data frames against lohar's credit, then
// {type:"eof"}), but the bytes are a tar stream that lohar extracts, as the
// sandbox user, under the directory `path` (created with its parents). Entries
// that are absolute, have a .. component, go through a symbolic link, or are
// not a file, directory or symlink are refused (src/archive/rules.ts); the
// stream then ends with {type:"error"} whose message starts "archive: ".
// `rename` replaces the first component of every entry name. Answer: result.
export interface ArchiveWrite { type: "archive_write"; path: string; rename?: string }
// archive_read: like file_read ("opened" with the stat of `path`, Data frames
// against the host's credit, then "result"), but the Data is a tar stream of
// `path` (a file, or a directory tree; symlinks stored, not followed; nothing
// under /proc or /sys). Its size is not known ahead: stat.size does not bound it.
export interface ArchiveRead { type: "archive_read"; path: string }

// ---- agent -> host control messages ----

export interface Hello {
  type: "hello";
  version: number;
  sandbox_id: string;
  hostname: string;
  config: "consumed"; // the config drive was read, applied and unmounted
  boot_ms?: number; // lohar's own start-to-ready time
}
export interface ExecExit {
  type: "exit";
  exit_code: number; // 128+signal when killed by a signal
  signal?: string;
  timed_out?: boolean;
}
/** Machine-readable reasons the host maps to HTTP statuses. */
export type ErrorCode =
  | "not_regular_file" // file_read of a FIFO, device, socket or directory
  | "forbidden_path" // any file call on a path under /proc or /sys
  | "cancelled" // the host cancelled the stream
  // api (issue 8): every error carries a code; the host maps code -> HTTP status
  // from a table (src/sandboxes/agent-errors.ts), never from the message.
  | ErrnoCode
  | "bad_request" // the request broke a rule (relative path, bad mode, NUL in an argument...)
  | "io_error" // any other failure
  | "no_session" // sessions: no session with that id in this sandbox
  | "too_many_sessions"; // sessions: MAX_SESSIONS reached

/** Errors of a system call inside the guest, by errno name in lower case. */
export const ERRNO_CODES = ["enoent", "eacces", "eperm", "erofs", "eexist", "enotempty", "eisdir", "enotdir", "eloop", "enametoolong", "einval", "enospc", "edquot", "efbig", "ebusy", "etxtbsy", "enoexec"] as const;
export type ErrnoCode = typeof ERRNO_CODES[number];
/** The protocol code of a Node.js error inside the guest: its errno name if known, else io_error. */
export function errnoCode(e: unknown): ErrorCode {
  const c = String((e as NodeJS.ErrnoException | undefined)?.code ?? "").toLowerCase();
  return (ERRNO_CODES as readonly string[]).includes(c) ? (c as ErrnoCode) : "io_error";
}
export interface ErrorMsg { type: "error"; message: string; code?: ErrorCode }
export interface StatInfo {
  name: string;
  type: "file" | "dir" | "symlink" | "other";
  size: number;
  mode: number; // permission bits
  uid: number;
  gid: number;
  mtime: string; // ISO-8601
}
// file_read: opened, Data frames, then result. file_write: result. stat: result with stat. list: result with entries.
export interface FileResult { type: "result"; stat?: StatInfo; entries?: StatInfo[] }
/** file_read: the file is open and is a regular file; at most stat.size bytes of Data follow. */
export interface FileOpened { type: "opened"; stat: StatInfo }
export interface Pong { type: "pong" }

export type AgentMessage = Hello | ExecExit | ErrorMsg | FileResult | FileOpened | Pong | Credit | SessionAgentMessage;

// ---- sessions (issue 12: shells, background commands, web terminal) ----
//
// A session is a command lohar keeps running after the stream that started it
// is gone: a process group on a pty (under `script`) or on pipes, with a
// bounded scrollback (SESSION_SCROLLBACK bytes) of its output. Sessions belong
// to the sandbox, not to a host connection: a reconnecting daemon finds them.
//
// session_start on a fresh stream starts one. With attach: false lohar answers
// {type:"session"} and the stream ends (a background command). With attach:
// true (and for session_attach) the stream becomes a viewer: lohar answers
// {type:"session"}, then (replay) the scrollback, then live output, as Stdout
// frames under the usual credit window; the host's Stdin frames, "resize" and
// "signal" go to the session. A viewer ends with {type:"exit"} when the
// session's command ended, or {type:"detached"} after the host sent
// {type:"detach"} (or "cancel": a viewer never kills its session) or, for
// follow: false, once the scrollback was sent. While any viewer is out of
// credit the session's output pipe is paused (the command blocks); with no
// viewer its output only goes to the scrollback. A detached session with no
// viewer ends (SIGHUP, then SIGKILL) after idle_timeout_ms unless keep.

/** Most sessions (running or kept after exit) one sandbox holds. */
export const MAX_SESSIONS = 32;
/** Scrollback kept per session (bytes). */
export const SESSION_SCROLLBACK = 64 * 1024;
/** Idle timeout of a detached session unless set (ms). */
export const SESSION_IDLE_MS = 60 * 60 * 1000;

export interface SessionStart {
  type: "session_start";
  cmd?: string[]; // default: a login shell
  env?: Record<string, string>;
  cwd?: string;
  tty?: boolean;
  rows?: number;
  cols?: number;
  keep?: boolean; // never ended for idleness
  idle_timeout_ms?: number;
  attach?: boolean;
}
export interface SessionAttach { type: "session_attach"; id: string; replay?: boolean; follow?: boolean }
export interface SessionDetach { type: "detach" }
export interface SessionList { type: "session_list" }
export interface SessionKill { type: "session_kill"; id: string; signal: string }
export type SessionHostMessage = SessionStart | SessionAttach | SessionDetach | SessionList | SessionKill;

export interface SessionInfo {
  id: string;
  cmd: string[];
  tty: boolean;
  started_at: string; // ISO-8601
  state: "running" | "exited";
  exit_code?: number;
  signal?: string;
  ended_at?: string;
  keep: boolean;
  idle_timeout_ms: number;
  viewers: number;
  idle_killed?: boolean;
}
export interface SessionMsg { type: "session"; session: SessionInfo }
export interface SessionsMsg { type: "sessions"; sessions: SessionInfo[] }
export interface SessionDetached { type: "detached" }
export type SessionAgentMessage = SessionMsg | SessionsMsg | SessionDetached;

// ---- the config drive (config.json on config.ext4) ----

export interface ConfigFile {
  path: string; // absolute path in the guest
  content: string; // base64
  mode: number; // e.g. 0o644
}

export interface ConfigDrive {
  sandbox_id: string;
  hostname: string;
  token: string; // AUTH token for this sandbox
  env: Record<string, string>; // secrets, then sandbox env on top (already merged by the host)
  files: ConfigFile[];
  init?: string; // optional boot command, run once as uid 1000 via /bin/sh -c
  secret_files?: SecretFileConfig[]; // secret files (below)
  // life (issue 14), vm engine only: volumes (virtio-blk disks, found by their serial) lohar mounts at boot.
  volumes?: ConfigVolume[];
  // brokerstore (issue 11): the sandbox's own CA certificate (PEM, public), see GUEST_TRUST below.
  ca_cert?: string;
  // netvm (issue 10), vm engine only: the guest's network, set up by lohar at boot (below).
  net?: ConfigNet;
}

// ---- guest network (netvm, issue 10) ----
// vm engine: the sandbox's virtio-net NIC. lohar gives the interface whose MAC
// is `mac` the name eth0, the address and a default route via the gateway (the
// host's tap), and bind-mounts a resolv.conf naming `nameserver` (the daemon's
// DNS on the gateway) read-only over /etc/resolv.conf. The host's rules match
// the tap and this address: another address gets nothing.
export interface ConfigNet {
  mac: string; // aa:bb:cc:dd:ee:ff
  address: string; // IPv4
  prefix: number; // 1..32
  gateway: string; // IPv4
  nameserver: string; // IPv4
}

// ---- brokered secrets (brokerstore, issue 11): the sandbox CA in the trust store ----
// A sandbox holding a brokered secret trusts its own CA (the egress proxy signs
// bound hosts' certificates with it). `bundle` is the system bundle (the image's
// own roots, if any, then the sandbox CA); `caCert` the sandbox CA alone
// (NODE_EXTRA_CA_CERTS). ns: the daemon bind-mounts both read-only; vm: lohar
// writes them at boot from ConfigDrive.ca_cert (the root is a tmpfs overlay).
export const GUEST_TRUST = {
  bundle: "/etc/ssl/certs/ca-certificates.crt",
  caCert: "/run/bhatti/sandbox-ca.pem",
} as const;

// ---- secret files (sec, issue 13) ----
// A secret delivered as a file: lohar writes the value into GUEST.secretsDir, a
// tmpfs (ns: mounted by runc; vm: mounted by lohar), owned by uid 1000 with
// `mode`, and puts a symlink to it at `path`. The value never touches the
// sandbox's writable layer, and is gone with the sandbox.
export interface SecretFileConfig {
  path: string; // absolute path in the guest (validated by the host: src/sandboxes/secret-files.ts)
  mode: number; // permission bits, default 0o400
  value: string; // the plaintext (UTF-8); like env secrets it exists only on the config drive and in memory
}
export const SECRETS_DIR = "/run/bhatti/secrets";

/** life (issue 14): a volume disk for lohar to mount (vm). serial: [a-z0-9-], path: absolute. */
export interface ConfigVolume { serial: string; path: string; ro: boolean }

// Where things live inside the guest.
export const GUEST = {
  configDir: "/run/bhatti/config", // config drive mount point (removed after boot)
  configFile: "/run/bhatti/config/config.json",
  agentDir: "/run/bhatti/agent", // ns engine: host bind-mounts a runtime dir here
  agentSocket: "/run/bhatti/agent/lohar.sock", // ns engine: lohar listens here
  virtioPortName: "bhatti.agent", // vm engine: /sys/class/virtio-ports/*/name
  user: { name: "lohar", uid: 1000, gid: 1000, home: "/home/lohar" },
  defaultEnv: {
    PATH: "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
    HOME: "/home/lohar",
    TERM: "xterm-256color",
    LANG: "C.UTF-8",
  } as Record<string, string>,
} as const;

// ---- frame codec ----

export function encodeFrame(kind: FrameKind, stream: number, payload: Uint8Array | string = new Uint8Array()): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  if (body.length > MAX_FRAME) throw new Error(`frame payload ${body.length} exceeds ${MAX_FRAME}`);
  const buf = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  buf.writeUInt32BE(5 + body.length, 0);
  buf.writeUInt8(kind, 4);
  buf.writeUInt32BE(stream >>> 0, 5);
  buf.set(body, HEADER_BYTES);
  return buf;
}

export function encodeControl(stream: number, msg: HostMessage | AgentMessage): Buffer {
  return encodeFrame(FrameKind.Control, stream, JSON.stringify(msg));
}

export interface Frame { kind: FrameKind; stream: number; payload: Buffer }

/** Incremental decoder: push() bytes as they arrive, get whole frames back. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len < 5 || len > MAX_FRAME + 5) throw new Error(`bad frame length ${len}`);
      if (this.buffered < 4 + len) break;
      const whole = this.take(4 + len);
      out.push({ kind: whole.readUInt8(4) as FrameKind, stream: whole.readUInt32BE(5), payload: whole.subarray(HEADER_BYTES) });
    }
    return out;
  }

  reset(): void {
    this.chunks = [];
    this.buffered = 0;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0];
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

export function parseControl<T extends HostMessage | AgentMessage>(payload: Buffer): T {
  return JSON.parse(payload.toString("utf8")) as T;
}
