// An interactive exec over a WebSocket: write stdin, resize, signal, and read
// output as an async iterator. The socket is paused while the consumer has
// more than a few chunks unread, so a slow consumer slows the command
// (the daemon holds it under lohar's credit) instead of growing memory here.
import type WebSocket from "ws";
import type { RawData } from "ws";
import { BhattiError } from "./errors.js";

export interface ExecChunk { stream: "stdout" | "stderr"; data: Buffer }
export interface ExecExit { exit_code: number; signal?: string; timed_out?: boolean }

const HIGH_WATER = 16; // chunks buffered before the socket is paused

export class ExecSocket implements AsyncIterable<ExecChunk> {
  /** Resolves with the command's exit; rejects with a BhattiError if the daemon reports an error or the socket closes without an exit. */
  readonly exit: Promise<ExecExit>;
  private readonly queue: ExecChunk[] = [];
  private wake?: () => void;
  private ended = false;
  private failure?: BhattiError;

  constructor(readonly ws: WebSocket) {
    let settle!: (e: ExecExit) => void;
    let fail!: (e: BhattiError) => void;
    this.exit = new Promise<ExecExit>((res, rej) => { settle = res; fail = rej; });
    this.exit.catch(() => {}); // observed through the iterator or by the caller
    let exit: ExecExit | undefined;
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      if (isBinary) {
        if (buf.length < 1) return;
        this.queue.push({ stream: buf[0] === 2 ? "stderr" : "stdout", data: buf.subarray(1) });
        if (this.queue.length >= HIGH_WATER) ws.pause();
        this.wake?.();
        return;
      }
      let m: { type?: string; exit_code?: number; signal?: string; timed_out?: boolean; message?: string; code?: string };
      try { m = JSON.parse(buf.toString("utf8")); } catch { return; }
      if (m.type === "exit" && typeof m.exit_code === "number") exit = { exit_code: m.exit_code, ...(m.signal ? { signal: m.signal } : {}), ...(m.timed_out ? { timed_out: true } : {}) };
      else if (m.type === "error") this.failure = new BhattiError(0, m.message ?? "exec failed", new Headers(), (m.code as never) ?? "agent_error");
    });
    ws.on("error", () => { /* 'close' follows */ });
    ws.on("close", (code: number) => {
      this.ended = true;
      this.wake?.();
      if (exit) settle(exit);
      else fail(this.failure ?? new BhattiError(0, `the exec's WebSocket closed (${code}) without an exit status`, new Headers(), "unreachable"));
    });
  }

  /** Sends stdin bytes; resolves once they left for the socket. */
  write(data: Uint8Array | string): Promise<void> {
    return new Promise((res, rej) => this.ws.send(typeof data === "string" ? Buffer.from(data) : data, { binary: true }, (e) => (e ? rej(e) : res())));
  }
  /** Ends stdin. */
  end(): void { this.control({ type: "eof" }); }
  resize(rows: number, cols: number): void { this.control({ type: "resize", rows, cols }); }
  signal(signal: string): void { this.control({ type: "signal", signal }); }
  /** Ends the exec (the daemon kills the command). */
  close(): void { this.ws.close(); }

  private control(m: Record<string, unknown>): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(m));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ExecChunk> {
    for (;;) {
      const c = this.queue.shift();
      if (c) {
        if (this.queue.length < HIGH_WATER / 2 && this.ws.isPaused) this.ws.resume();
        yield c;
        continue;
      }
      if (this.ended) break;
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = undefined;
    }
  }
}
