// File requests, performed with the sandbox user's permissions (see creds.ts):
// the permission check happens when the path is opened/looked up as uid 1000;
// reads and writes on the already-open descriptor need no switch.
//
// Rules (every file call): nothing under /proc or /sys is served (lohar's own
// /proc/self would otherwise be reachable), checked on the path as given and
// on the path with its symlinks resolved. Reads: only regular files, checked
// on the opened descriptor (a symlink's target counts), opened O_NONBLOCK and
// read asynchronously so a FIFO or a device can never stall lohar; at most the
// size seen at open is sent, and only against the host's credit.
import {
  openSync, closeSync, writeSync, fsyncSync, fchmodSync, fstatSync, renameSync, rmSync, lstatSync, statSync,
  readdirSync, realpathSync, readlinkSync, read, constants as fsc, type Stats,
} from "node:fs";
import { dirname, basename, join, isAbsolute, posix } from "node:path";
import { FrameKind, STREAM_WINDOW, encodeFrame, encodeControl, errnoCode, type StatInfo, type AgentMessage, type ErrorCode } from "../protocol/agent.js";
import type { Out } from "./out.js";
import { asUser } from "./creds.js";
import { errText } from "./log.js";
import { tempName } from "./util.js";

const DATA_CHUNK = 256 * 1024;
const FORBIDDEN_ROOTS = ["/proc", "/sys"];

/** An error whose message is safe to send and that carries a protocol error code. */
class RuleError extends Error {
  constructor(message: string, readonly rule: ErrorCode) {
    super(message);
  }
}

export function checkPath(op: string, path: unknown): string {
  if (typeof path !== "string" || !isAbsolute(path) || path.includes("\0")) {
    throw new RuleError(`${op}: path must be absolute`, "bad_request");
  }
  refuseForbidden(op, path, posix.normalize(path));
  return path;
}

export function underForbidden(p: string): boolean {
  return FORBIDDEN_ROOTS.some((r) => p === r || p.startsWith(r + "/"));
}

function refuseForbidden(op: string, path: string, resolved: string): void {
  if (underForbidden(resolved)) throw new RuleError(`${op} ${path}: paths under /proc and /sys are not served by the files API`, "forbidden_path");
}

/**
 * `target` with every symlink resolved, as uid 1000 sees it; refused when that
 * lands under /proc or /sys. Returns the resolved path (or `target` itself when
 * it does not resolve: the call then fails with the real reason).
 */
function refuseResolved(op: string, path: string, target: string): string {
  let real: string;
  try {
    real = asUser(() => realpathSync.native(target));
  } catch {
    return target;
  }
  refuseForbidden(op, path, real);
  return real;
}

/** What an open descriptor really is (its /proc/self/fd link), checked against the rule. */
function refuseOpened(op: string, path: string, fd: number): void {
  let real: string;
  try {
    real = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return; // no /proc: nothing under it to reach either
  }
  refuseForbidden(op, path, real);
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return "is a directory";
  if (st.isFIFO()) return "is a FIFO";
  if (st.isCharacterDevice()) return "is a character device";
  if (st.isBlockDevice()) return "is a block device";
  if (st.isSocket()) return "is a socket";
  return "is not a regular file";
}

function refuseNonRegular(path: string, st: Stats): void {
  if (!st.isFile()) throw new RuleError(`read ${path}: ${kindOf(st)}; the files API reads only regular files`, "not_regular_file");
}

function describe(op: string, path: string, e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ? `${op} ${path}: ${errText(e)}` : (e as Error).message;
}

function errorMsg(op: string, path: string, e: unknown): AgentMessage {
  const msg: AgentMessage = { type: "error", message: describe(op, path, e) };
  msg.code = e instanceof RuleError ? e.rule : errnoCode(e);
  return msg;
}

function send(out: Out, id: number, msg: AgentMessage): void {
  if (out.open) out.send(encodeControl(id, msg));
}

export function statInfo(name: string, st: Stats): StatInfo {
  return {
    name,
    type: st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "other",
    size: st.size,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: st.mtime.toISOString(),
  };
}

export function fileStat(out: Out, id: number, rawPath: unknown): void {
  let path = "";
  try {
    path = checkPath("stat", rawPath);
    refuseResolved("stat", path, dirname(path)); // lstat: the last component itself is not followed
    const st = asUser(() => lstatSync(path));
    send(out, id, { type: "result", stat: statInfo(basename(path) || "/", st) });
  } catch (e) {
    send(out, id, errorMsg("stat", path, e));
  }
}

export function fileList(out: Out, id: number, rawPath: unknown): void {
  let path = "";
  try {
    path = checkPath("list", rawPath);
    refuseResolved("list", path, path);
    const entries = asUser(() => {
      // `ls FILE` lists that file, as ls(1) does (a symlink to a directory is listed through).
      const st = statSync(path);
      if (!st.isDirectory()) return [statInfo(basename(path), lstatSync(path))];
      const names = readdirSync(path).sort();
      const list: StatInfo[] = [];
      for (const n of names) {
        try {
          list.push(statInfo(n, lstatSync(join(path, n))));
        } catch {
          // vanished meanwhile
        }
      }
      return list;
    });
    send(out, id, { type: "result", entries });
  } catch (e) {
    send(out, id, errorMsg("list", path, e));
  }
}

function readAt(fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * A stream that sends Data frames to the host only against its credit
 * (file_read, archive_read): grants add credit up to the window, cancel
 * stops it, and ready() waits for credit and for the connection to drain.
 */
export abstract class CreditedSender {
  protected credit = STREAM_WINDOW;
  protected cancelled = false;
  private wake: (() => void) | null = null;

  constructor(protected readonly id: number, protected readonly out: Out) {}

  grant(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) return;
    this.credit = Math.min(this.credit + bytes, STREAM_WINDOW);
    this.wake?.();
  }

  cancel(): void {
    this.cancelled = true;
    this.wake?.();
  }

  /** Until there is credit and the connection can take more (or the stream is cancelled). */
  protected async ready(): Promise<void> {
    while (!this.cancelled && this.out.open && this.credit <= 0) {
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
    await this.out.drained();
  }
}

/** file_read: "opened", then Data frames sent against the host's credit, then "result". */
export class FileReader extends CreditedSender {
  async start(rawPath: unknown): Promise<void> {
    let path = "";
    let fd = -1;
    try {
      path = checkPath("read", rawPath);
      // The resolved path is what gets opened: no magic link (/dev/fd/N) is followed on the way.
      const real = refuseResolved("read", path, path);
      // Look before opening: opening a device or a FIFO can itself have effects.
      refuseNonRegular(path, asUser(() => statSync(real)));
      fd = asUser(() => openSync(real, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY));
      // ...and check what was really opened (the path may have changed meanwhile).
      const st = fstatSync(fd);
      refuseNonRegular(path, st);
      refuseOpened("read", path, fd);
      send(this.out, this.id, { type: "opened", stat: statInfo(basename(path) || "/", st) });
      const buf = Buffer.allocUnsafe(DATA_CHUNK);
      let pos = 0;
      while (pos < st.size) {
        await this.ready();
        if (this.cancelled) throw new RuleError(`read ${path}: cancelled`, "cancelled");
        if (!this.out.open) return;
        const n = await readAt(fd, buf, Math.min(DATA_CHUNK, st.size - pos, this.credit), pos);
        if (n === 0) break; // the file shrank: the host sees fewer bytes than stat.size
        if (this.cancelled) throw new RuleError(`read ${path}: cancelled`, "cancelled");
        pos += n;
        this.credit -= n;
        this.out.send(encodeFrame(FrameKind.Data, this.id, Buffer.from(buf.subarray(0, n))));
      }
      send(this.out, this.id, { type: "result" });
    } catch (e) {
      send(this.out, this.id, errorMsg("read", path, e));
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }
}

/** file_write: data arrives in pieces; the file appears atomically on eof. */
export class FileWriter {
  private fd = -1;
  private tmp = "";
  private path = "";
  private mode = 0o644;
  private failed = false;
  done = false;

  constructor(private readonly id: number, private readonly out: Out) {}

  start(rawPath: unknown, mode: unknown): void {
    try {
      this.path = checkPath("write", rawPath);
      refuseResolved("write", this.path, dirname(this.path));
      if (mode !== undefined) {
        if (typeof mode !== "number" || !Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new RuleError("write: mode must be an integer 0..0o7777", "bad_request");
        this.mode = mode;
      }
      this.tmp = join(dirname(this.path), tempName(basename(this.path)));
      this.fd = asUser(() => openSync(this.tmp, "wx", 0o600));
    } catch (e) {
      this.fail(e);
    }
  }

  /** A piece of the content: written to disk, then granted back to the host. */
  data(chunk: Buffer): void {
    if (this.failed || this.done) return;
    try {
      for (let off = 0; off < chunk.length; ) off += writeSync(this.fd, chunk, off);
      send(this.out, this.id, { type: "credit", bytes: chunk.length });
    } catch (e) {
      this.fail(e);
    }
  }

  eof(): void {
    if (this.failed || this.done) return;
    try {
      fsyncSync(this.fd);
      fchmodSync(this.fd, this.mode);
      closeSync(this.fd);
      this.fd = -1;
      asUser(() => renameSync(this.tmp, this.path));
      this.done = true;
      send(this.out, this.id, { type: "result" });
    } catch (e) {
      this.fail(e);
    }
  }

  /** The session ended before eof: drop the partial file. */
  abort(): void {
    if (this.done || this.failed) return;
    this.failed = true;
    this.cleanup();
  }

  /** The host gave up (its client went away, or the body was too large): drop the partial file, say so. */
  cancel(): void {
    if (this.done || this.failed) return;
    this.fail(new RuleError(`write ${this.path}: cancelled`, "cancelled"));
  }

  private fail(e: unknown): void {
    this.failed = true;
    this.done = true;
    this.cleanup();
    send(this.out, this.id, errorMsg("write", this.path, e));
  }

  private cleanup(): void {
    if (this.fd >= 0) {
      try { closeSync(this.fd); } catch { /* already closed */ }
      this.fd = -1;
    }
    if (this.tmp) {
      const tmp = this.tmp;
      this.tmp = "";
      try { asUser(() => rmSync(tmp, { force: true })); } catch { /* nothing to remove */ }
    }
  }
}
