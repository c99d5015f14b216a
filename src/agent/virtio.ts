// vm engine transport: a virtio-serial port. There is one port, so one session
// at a time. A read of 0 bytes means the host side is not connected (the
// daemon went away): the session is dropped, processes keep running, and we
// poll until a new host connects and speaks.
import { EventEmitter } from "node:events";
import { openSync, readdirSync, readFileSync, read, write } from "node:fs";
import type { Sandbox } from "./boot.js";
import { Session, type Conn } from "./session.js";
import { GUEST } from "../protocol/agent.js";
import { log, errText } from "./log.js";

const POLL_MS = 20;
const HIGH_WATER = 1 << 20;

/** /dev/vportNpM of the port named GUEST.virtioPortName, waiting for it to appear. */
export async function findPort(timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      for (const p of readdirSync("/sys/class/virtio-ports")) {
        try {
          if (readFileSync(`/sys/class/virtio-ports/${p}/name`, "utf8").trim() === GUEST.virtioPortName) return `/dev/${p}`;
        } catch { /* no name */ }
      }
    } catch { /* no virtio-ports yet */ }
    if (Date.now() > deadline) throw new Error(`virtio port ${GUEST.virtioPortName} not found`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** The port as a Conn: writes are queued and issued one at a time from the threadpool. */
class PortConn extends EventEmitter implements Conn {
  private queue: Buffer[] = [];
  private queued = 0;
  private writing = false;
  private full = false;
  session: Session | null = null;

  constructor(private readonly fd: number) {
    super();
  }

  write(buf: Buffer): boolean {
    this.queue.push(buf);
    this.queued += buf.length;
    this.pump();
    if (this.queued >= HIGH_WATER) this.full = true;
    return !this.full;
  }

  /** Drop the session (its last frames still go out). */
  end(): void {
    this.session?.detach();
    this.session = null;
  }

  /** The host disconnected: drop the session and the output queued for it. */
  reset(): void {
    this.end();
    this.queue = [];
    this.queued = 0;
  }

  private pump(): void {
    if (this.writing || this.queue.length === 0) return;
    this.writing = true;
    const buf = this.queue[0];
    write(this.fd, buf, 0, buf.length, null, (err, n) => {
      this.writing = false;
      if (err) {
        log(`virtio write: ${errText(err)}`);
        this.queue = [];
        this.queued = 0;
      } else if (this.queue[0] === buf) {
        this.queued -= n;
        if (n >= buf.length) this.queue.shift();
        else this.queue[0] = buf.subarray(n);
      }
      if (this.full && this.queued < HIGH_WATER / 2) {
        this.full = false;
        this.emit("drain");
      }
      this.pump();
    });
  }
}

export async function serveVirtio(device: string | undefined, sandbox: Sandbox, bootMs: number): Promise<void> {
  const path = device ?? (await findPort());
  const fd = openSync(path, "r+");
  const conn = new PortConn(fd);
  const buf = Buffer.allocUnsafe(64 * 1024);
  let connected = false;
  const next = (): void => {
    read(fd, buf, 0, buf.length, null, (err, n) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") log(`virtio read: ${errText(err)}`);
        return void setTimeout(next, POLL_MS);
      }
      if (n === 0) {
        if (connected) {
          connected = false;
          conn.reset();
        }
        return void setTimeout(next, POLL_MS);
      }
      if (!conn.session) conn.session = new Session(conn, sandbox, bootMs);
      connected = true;
      conn.session.push(Buffer.from(buf.subarray(0, n)));
      next();
    });
  };
  next();
}
