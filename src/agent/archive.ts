// archive_write / archive_read (src/protocol/agent.ts): tar streams in and out
// of the sandbox for `bhatti cp`, as the sandbox user (uid 1000), with the same
// credit-based flow as file_write / file_read.
import { lstatSync, mkdirSync } from "node:fs";
import { basename } from "node:path";
import { FrameKind, encodeFrame, encodeControl, type AgentMessage } from "../protocol/agent.js";
import type { Out } from "./out.js";
import { asUser } from "./creds.js";
import { CreditedSender, checkPath, statInfo, underForbidden } from "./files.js";
import { errText } from "./log.js";
import { extractTar } from "../archive/extract.js";
import { packPath } from "../archive/pack.js";

const DATA_CHUNK = 256 * 1024;

function send(out: Out, id: number, msg: AgentMessage): void {
  if (out.open) out.send(encodeControl(id, msg));
}

function refuse(out: Out, id: number, e: unknown): void {
  const m = (e as NodeJS.ErrnoException)?.code ? errText(e) : (e as Error).message;
  send(out, id, { type: "error", message: `archive: ${m}` });
}

/** archive_write: Data frames (a tar stream) extracted under `path` as they arrive; credit goes back as entries reach the disk. */
export class ArchiveWriter {
  done = false;
  private readonly queue: Buffer[] = [];
  private ended = false;
  private stopped: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly id: number, private readonly out: Out) {}

  start(rawPath: unknown, rename: unknown): void {
    try {
      const path = checkPath("archive", rawPath);
      if (underForbidden(path)) throw new Error(`${path}: paths under /proc and /sys are not served by the files API`);
      if (rename !== undefined && (typeof rename !== "string" || rename === "" || rename === "." || rename === ".." || rename.includes("/") || rename.includes("\0"))) {
        throw new Error("rename must be a single path component");
      }
      asUser(() => mkdirSync(path, { recursive: true, mode: 0o755 }));
      extractTar(this.source(), { root: path, wrap: asUser, ...(rename ? { rename: rename as string } : {}) }).then(
        () => { this.finish(); send(this.out, this.id, { type: "result" }); },
        (e) => { const why = this.stopped ?? e; this.finish(); refuse(this.out, this.id, why); },
      );
    } catch (e) {
      this.done = true;
      refuse(this.out, this.id, e);
    }
  }

  /** Settled: drop what is queued and let the source end. */
  private finish(): void {
    this.done = true;
    this.queue.length = 0;
    this.stopped ??= new Error("finished");
    this.poke();
  }

  data(chunk: Buffer): void {
    if (this.done || this.ended) return;
    this.queue.push(chunk);
    this.poke();
  }

  eof(): void {
    this.ended = true;
    this.poke();
  }

  /** The host gave up: stop extracting (what was extracted stays), say so. */
  cancel(): void {
    this.stopped = new Error("cancelled");
    this.poke();
  }

  /** The session ended. */
  abort(): void {
    this.stopped = new Error("the session ended");
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async *source(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.stopped) throw this.stopped;
      const c = this.queue.shift();
      if (c) {
        yield c;
        // taken by the extractor: the host may send that much more
        send(this.out, this.id, { type: "credit", bytes: c.length });
      } else if (this.ended) return;
      else await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/** archive_read: "opened", then a tar stream of `path` as Data frames against the host's credit, then "result". */
export class ArchiveReader extends CreditedSender {
  async start(rawPath: unknown): Promise<void> {
    let pack: ReturnType<typeof packPath> | null = null;
    try {
      const path = checkPath("archive", rawPath);
      if (underForbidden(path)) throw new Error(`${path}: paths under /proc and /sys are not served by the files API`);
      const st = asUser(() => lstatSync(path));
      send(this.out, this.id, { type: "opened", stat: statInfo(basename(path) || "/", st) });
      pack = packPath(path, { wrap: asUser, skip: underForbidden });
      for await (const c of pack) {
        const chunk = c as Buffer;
        for (let off = 0; off < chunk.length; ) {
          await this.ready();
          if (this.cancelled) throw new Error("cancelled");
          if (!this.out.open) { pack.destroy(); return; }
          const n = Math.min(DATA_CHUNK, chunk.length - off, this.credit);
          this.out.send(encodeFrame(FrameKind.Data, this.id, chunk.subarray(off, off + n)));
          this.credit -= n;
          off += n;
        }
      }
      send(this.out, this.id, { type: "result" });
    } catch (e) {
      pack?.destroy();
      refuse(this.out, this.id, e);
    }
  }
}
