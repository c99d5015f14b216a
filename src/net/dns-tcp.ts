// DNS over TCP on a sandbox's gateway (RFC 7766 framing: a two-byte length
// before each message), answered exactly like UDP (DnsServer.handle). Every
// part is bounded: a message over MAX_MESSAGE closes the connection, at most
// MAX_CONNS_PER_SANDBOX connections per sandbox, at most MAX_INFLIGHT
// queries of one connection answered at a time (reading pauses meanwhile),
// and a connection idle for IDLE_MS is closed. A client that does not read
// its answers stops being read (backpressure), so daemon memory never grows.
import { createServer, type Server, type Socket } from "node:net";

export const MAX_MESSAGE = 4096; // queries are small; a larger one is not a query a sandbox needs
export const MAX_CONNS_PER_SANDBOX = 16;
export const MAX_INFLIGHT = 8;
export const IDLE_MS = 10_000;

export type Answer = (msg: Buffer, from: string) => Promise<Buffer | null>;

export class DnsTcp {
  private readonly conns = new Map<string, number>();
  private readonly sockets = new Set<Socket>();

  constructor(private readonly answer: Answer, private readonly known: (ip: string) => boolean, private readonly warn: (line: string) => void) {}

  async listen(gateway: string): Promise<Server> {
    const srv = createServer((s) => this.serve(s));
    srv.maxConnections = MAX_CONNS_PER_SANDBOX * 2; // one sandbox per gateway; a backstop on top of the per-sandbox count
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen({ port: 53, host: gateway, exclusive: true }, () => { srv.off("error", reject); resolve(); });
    });
    srv.on("error", (e) => this.warn(`DNS over TCP on ${gateway}: ${e.message}`));
    return srv;
  }

  /** Ends the open connections to one gateway (its sandbox's network is going away). */
  closeFor(gateway: string): void {
    for (const s of this.sockets) if ((s.localAddress ?? "").replace(/^::ffff:/, "") === gateway) s.destroy();
  }

  /** Ends every open connection (the listeners are closed by their owner). */
  closeAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private serve(s: Socket): void {
    s.on("error", () => {});
    const from = (s.remoteAddress ?? "").replace(/^::ffff:/, "");
    const n = this.conns.get(from) ?? 0;
    if (!this.known(from) || n >= MAX_CONNS_PER_SANDBOX) return void s.destroy();
    this.conns.set(from, n + 1);
    this.sockets.add(s);
    s.once("close", () => {
      this.sockets.delete(s);
      const left = (this.conns.get(from) ?? 1) - 1;
      if (left <= 0) this.conns.delete(from);
      else this.conns.set(from, left);
    });
    s.setTimeout(IDLE_MS, () => s.destroy());
    let buf: Buffer = Buffer.alloc(0);
    let inflight = 0;
    const pump = () => {
      while (buf.length >= 2 && inflight < MAX_INFLIGHT) {
        const len = buf.readUInt16BE(0);
        if (len === 0 || len > MAX_MESSAGE) return void s.destroy(); // not a query we answer: cut, never buffered
        if (buf.length < 2 + len) break;
        const msg = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        inflight++;
        this.answer(msg, from)
          .then((out) => {
            if (!out || s.destroyed) return;
            const head = Buffer.alloc(2);
            head.writeUInt16BE(out.length);
            // A client that does not read: stop reading its queries until it has taken the answers.
            if (!s.write(Buffer.concat([head, out]))) { s.pause(); s.once("drain", () => s.resume()); }
          })
          .catch((e: Error) => this.warn(`DNS over TCP: answering ${from} failed: ${e.message}`))
          .finally(() => {
            inflight--;
            if (inflight < MAX_INFLIGHT && s.isPaused() && s.writableLength === 0) s.resume();
            pump();
          });
      }
      if (inflight >= MAX_INFLIGHT) s.pause();
    };
    s.on("data", (b: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, b]) : b;
      if (buf.length > 2 + MAX_MESSAGE + MAX_INFLIGHT * (2 + MAX_MESSAGE)) return void s.destroy(); // bounded even if a client floods
      pump();
    });
  }
}
