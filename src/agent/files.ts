// File requests, performed with the sandbox user's permissions (see creds.ts):
// the permission check happens when the path is opened/looked up as uid 1000;
// reads and writes on the already-open descriptor need no switch.
import { openSync, closeSync, readSync, writeSync, fsyncSync, fchmodSync, fstatSync, renameSync, rmSync, lstatSync, readdirSync, type Stats } from "node:fs";
import { dirname, basename, join, isAbsolute } from "node:path";
import { FrameKind, encodeFrame, encodeControl, type StatInfo, type AgentMessage } from "../protocol/agent.js";
import type { Out } from "./out.js";
import { asUser } from "./creds.js";
import { errText } from "./log.js";
import { tempName } from "./util.js";

const DATA_CHUNK = 256 * 1024;

function checkPath(op: string, path: unknown): string {
  if (typeof path !== "string" || !isAbsolute(path) || path.includes("\0")) {
    throw new Error(`${op}: path must be absolute`);
  }
  return path;
}

function describe(op: string, path: string, e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ? `${op} ${path}: ${errText(e)}` : (e as Error).message;
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
    const st = asUser(() => lstatSync(path));
    send(out, id, { type: "result", stat: statInfo(basename(path) || "/", st) });
  } catch (e) {
    send(out, id, { type: "error", message: describe("stat", path, e) });
  }
}

export function fileList(out: Out, id: number, rawPath: unknown): void {
  let path = "";
  try {
    path = checkPath("list", rawPath);
    const entries = asUser(() => {
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
    send(out, id, { type: "error", message: describe("list", path, e) });
  }
}

export async function fileRead(out: Out, id: number, rawPath: unknown): Promise<void> {
  let path = "";
  let fd = -1;
  try {
    path = checkPath("read", rawPath);
    fd = asUser(() => openSync(path, "r"));
    if (fstatSync(fd).isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
    const buf = Buffer.allocUnsafe(DATA_CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, DATA_CHUNK, null);
      if (n === 0) break;
      if (!out.open) return;
      out.send(encodeFrame(FrameKind.Data, id, Buffer.from(buf.subarray(0, n))));
      await out.drained();
    }
    send(out, id, { type: "result" });
  } catch (e) {
    send(out, id, { type: "error", message: describe("read", path, e) });
  } finally {
    if (fd >= 0) closeSync(fd);
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
      if (mode !== undefined) {
        if (typeof mode !== "number" || !Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new Error("write: mode must be an integer 0..0o7777");
        this.mode = mode;
      }
      this.tmp = join(dirname(this.path), tempName(basename(this.path)));
      this.fd = asUser(() => openSync(this.tmp, "wx", 0o600));
    } catch (e) {
      this.fail(e);
    }
  }

  data(chunk: Buffer): void {
    if (this.failed || this.done) return;
    try {
      for (let off = 0; off < chunk.length; ) off += writeSync(this.fd, chunk, off);
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

  private fail(e: unknown): void {
    this.failed = true;
    this.done = true;
    this.cleanup();
    send(this.out, this.id, { type: "error", message: describe("write", this.path, e) });
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
