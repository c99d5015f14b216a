// Daemon-wide connection limits, shared by the TCP and unix servers (HTTP
// keep-alive and WebSocket connections alike).
//
// - At most `max` connections in total. A connection that has not yet made an
//   authenticated request is cheap to drop: when the daemon is full, a new
//   connection evicts the oldest such one; only when every connection is
//   authenticated is the new one closed at once.
// - A connection that has not authenticated within `authTimeoutMs` (one that
//   sends nothing, too slowly, or only bad keys) is closed.
// - At most `perUser` connections authenticated as one user: the request that
//   would exceed it gets 503 with Retry-After and `Connection: close`.
import type { Server } from "node:http";
import type { Socket } from "node:net";
import { UserError } from "../util/errors.js";

export interface ConnectionLimits {
  max: number;
  perUser: number;
  authTimeoutMs: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = { max: 1024, perUser: 128, authTimeoutMs: 5000 };
export const RETRY_AFTER_SECONDS = 1;

export class ConnectionGate {
  /** Not yet authenticated, oldest first (a Map keeps insertion order): socket -> accepted at (ms). */
  private readonly pending = new Map<Socket, number>();
  /** Authenticated: socket -> user id. */
  private readonly owners = new Map<Socket, number>();
  private readonly perUserCount = new Map<number, number>();
  private readonly sweeper: NodeJS.Timeout;
  private lastWarn = 0;
  readonly counters = { evicted: 0, refused: 0, timedOut: 0, overUser: 0 };

  constructor(readonly limits: ConnectionLimits, private readonly log: (line: string) => void = () => {}) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(500, limits.authTimeoutMs / 4)));
    this.sweeper.unref();
  }

  get total(): number { return this.pending.size + this.owners.size; }

  /** Counts the connections `server` accepts (listener added after node:http's own). */
  attach(server: Server): void {
    server.on("connection", (s: Socket) => this.accept(s));
  }

  accept(socket: Socket): void {
    if (this.total >= this.limits.max) {
      const oldest = this.pending.keys().next();
      if (oldest.done) {
        this.counters.refused++;
        this.warn("connection limit reached with every connection authenticated: new connections are closed");
        socket.destroy();
        return;
      }
      this.counters.evicted++;
      this.warn("connection limit reached: dropping the oldest unauthenticated connections");
      this.drop(oldest.value);
    }
    this.pending.set(socket, Date.now());
    socket.once("close", () => this.forget(socket));
  }

  /**
   * Records that a request on `socket` authenticated as `userId`. Throws 503
   * when that user already holds `perUser` other connections.
   */
  claim(socket: Socket, userId: number): void {
    const owner = this.owners.get(socket);
    if (owner === userId) return;
    if (!this.pending.has(socket) && owner === undefined) return; // not counted (closed meanwhile)
    const n = this.perUserCount.get(userId) ?? 0;
    if (n >= this.limits.perUser) {
      this.counters.overUser++;
      throw new UserError(503, `too many open connections for this user (limit ${this.limits.perUser}); retry later`, {
        "Retry-After": String(RETRY_AFTER_SECONDS), Connection: "close",
      });
    }
    if (owner !== undefined) this.release(owner);
    this.pending.delete(socket);
    this.owners.set(socket, userId);
    this.perUserCount.set(userId, n + 1);
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const cutoff = Date.now() - this.limits.authTimeoutMs;
    for (const [s, at] of this.pending) {
      if (at > cutoff) break; // oldest first: the rest are younger
      this.counters.timedOut++;
      this.drop(s);
    }
  }

  private drop(socket: Socket): void {
    this.forget(socket);
    socket.destroy();
  }

  private forget(socket: Socket): void {
    this.pending.delete(socket);
    const owner = this.owners.get(socket);
    if (owner === undefined) return;
    this.owners.delete(socket);
    this.release(owner);
  }

  private release(userId: number): void {
    const n = (this.perUserCount.get(userId) ?? 1) - 1;
    if (n <= 0) this.perUserCount.delete(userId);
    else this.perUserCount.set(userId, n);
  }

  private warn(line: string): void {
    const now = Date.now();
    if (now - this.lastWarn < 10_000) return;
    this.lastWarn = now;
    this.log(`${line} (${JSON.stringify(this.counters)})`);
  }
}
