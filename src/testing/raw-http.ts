// Raw HTTP and WebSocket bytes on a TCP socket, for tests that send what no
// well-behaved client would (fuzzing, half-open connections). Test-only.
import { connect, type Socket } from "node:net";

export interface RawAnswer {
  /** Status of the first final answer (1xx other than 101 skipped), or null if none came. */
  status: number | null;
  /** The daemon closed the connection (with or without an answer). */
  closed: boolean;
  /** Everything received up to the end of the answer's head (bounded). */
  head: string;
}

export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

function finalStatus(text: string): { status: number; end: number } | null {
  let at = 0;
  for (;;) {
    const end = text.indexOf("\r\n\r\n", at);
    if (end < 0) return null;
    const m = /^HTTP\/\d\.\d (\d{3})/.exec(text.slice(at));
    if (!m) return null;
    const status = Number(m[1]);
    if (status >= 200 || status === 101) return { status, end: end + 4 };
    at = end + 4; // 100 Continue and friends
  }
}

/**
 * Opens a TCP connection, writes `chunks`, and waits for the head of the
 * answer, the connection's end, or `waitMs`; then destroys the socket.
 */
export function rawExchange(url: string, chunks: Buffer[], waitMs: number): Promise<RawAnswer> {
  const { host, port } = hostPort(url);
  return new Promise((resolve) => {
    let got = "";
    let done = false;
    const s = connect(port, host);
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const st = finalStatus(got);
      s.destroy();
      resolve({ status: st?.status ?? (/^HTTP\/\d\.\d (\d{3})/.exec(got) ? Number(got.slice(9, 12)) : null), closed, head: got.slice(0, 4096) });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    s.on("error", () => finish(true));
    s.on("close", () => finish(true));
    s.on("data", (d: Buffer) => {
      if (got.length < 65536) got += d.toString("latin1");
      if (finalStatus(got)) finish(false);
    });
    s.on("connect", () => {
      for (const c of chunks) {
        if (s.destroyed) break;
        s.write(c);
      }
    });
  });
}

export interface Upgraded {
  status: number | null;
  socket: Socket;
  /** Bytes after the 101 head (frames the server already sent). */
  rest: Buffer;
}

/** A WebSocket handshake by hand; the socket is returned raw so the caller can write any bytes. */
export function wsHandshake(url: string, path: string, headers: Record<string, string>, waitMs = 5000): Promise<Upgraded> {
  const { host, port } = hostPort(url);
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    let done = false;
    const s = connect(port, host);
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const end = got.indexOf("\r\n\r\n");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got.toString("latin1", 0, 32));
      resolve({ status: m ? Number(m[1]) : null, socket: s, rest: end >= 0 ? got.subarray(end + 4) : Buffer.alloc(0) });
    };
    const timer = setTimeout(finish, waitMs);
    s.on("error", finish);
    s.on("close", finish);
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.indexOf("\r\n\r\n") >= 0) { s.off("data", onData); finish(); }
    };
    s.on("data", onData);
    const lines = [`GET ${path} HTTP/1.1`, `Host: ${host}:${port}`, "Upgrade: websocket", "Connection: Upgrade",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    s.write(lines.join("\r\n") + "\r\n\r\n");
  });
}

export interface FrameSpec {
  fin?: boolean;
  rsv?: number; // 0..7 (RSV1..3)
  opcode: number;
  payload?: Buffer;
  mask?: boolean; // default true (clients must mask)
  /** Length to declare instead of the payload's (sent with the 64-bit form). */
  declared?: bigint;
}

/** One WebSocket frame, as the client side writes it (or deliberately breaks it). */
export function wsFrame(f: FrameSpec): Buffer {
  const payload = f.payload ?? Buffer.alloc(0);
  const mask = f.mask ?? true;
  const b0 = ((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | (f.opcode & 0x0f);
  let len: Buffer;
  if (f.declared !== undefined) {
    len = Buffer.alloc(9);
    len[0] = 127;
    len.writeBigUInt64BE(f.declared, 1);
  } else if (payload.length < 126) {
    len = Buffer.from([payload.length]);
  } else if (payload.length < 65536) {
    len = Buffer.alloc(3);
    len[0] = 126;
    len.writeUInt16BE(payload.length, 1);
  } else {
    len = Buffer.alloc(9);
    len[0] = 127;
    len.writeBigUInt64BE(BigInt(payload.length), 1);
  }
  if (mask) len[0] |= 0x80;
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const body = mask ? Buffer.from(payload.map((b, i) => b ^ key[i % 4])) : payload;
  return Buffer.concat([Buffer.from([b0]), len, mask ? key : Buffer.alloc(0), body]);
}
