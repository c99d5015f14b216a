// Web terminal share tokens (issue 12). `bhatti share SB` gets a one-time
// token, put in the URL's fragment (never sent in a request line, so never in
// a log); the page sends it as the first WebSocket message. A token opens one
// shell, once, before it expires; `--revoke` drops the sandbox's tokens and
// closes the terminals they opened. Only a SHA-256 of each token is held,
// in memory: a daemon restart revokes every share.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { User } from "../users/service.js";

export const DEFAULT_SHARE_SEC = 15 * 60;
export const MAX_SHARE_SEC = 24 * 3600;
const MAX_TOKENS = 1000; // per daemon: a client cannot grow this map without bound

interface Grant { user: User; sandboxId: string; expires: number }

const digest = (t: string) => createHash("sha256").update(t).digest();

export class ShareTokens {
  private readonly grants = new Map<string, Grant>(); // hex digest -> grant
  private readonly open = new Map<string, Set<() => void>>(); // sandbox id -> closers of terminals opened by a token

  constructor(private readonly now: () => number = Date.now) {}

  issue(user: User, sandboxId: string, ttlSec: number): { token: string; expires_at: string } {
    this.sweep();
    if (this.grants.size >= MAX_TOKENS) throw new Error("too many open share tokens; revoke some or wait for them to expire");
    const token = "bshr_" + randomBytes(24).toString("base64url");
    const expires = this.now() + ttlSec * 1000;
    this.grants.set(digest(token).toString("hex"), { user, sandboxId, expires });
    return { token, expires_at: new Date(expires).toISOString() };
  }

  /** Takes a token: its grant if it exists and has not expired; it cannot be used again. */
  redeem(token: unknown): Grant | null {
    if (typeof token !== "string" || token.length > 200) return null;
    const d = digest(token);
    for (const [k, g] of this.grants) {
      const kb = Buffer.from(k, "hex");
      if (kb.length === d.length && timingSafeEqual(kb, d)) {
        this.grants.delete(k);
        return g.expires > this.now() ? g : null;
      }
    }
    return null;
  }

  /** A terminal opened with a token of this sandbox; returns how to forget it. */
  track(sandboxId: string, close: () => void): () => void {
    let set = this.open.get(sandboxId);
    if (!set) this.open.set(sandboxId, (set = new Set()));
    set.add(close);
    return () => {
      set!.delete(close);
      if (set!.size === 0 && this.open.get(sandboxId) === set) this.open.delete(sandboxId);
    };
  }

  /** Drops every token of the sandbox and closes the terminals they opened; returns how many of each. */
  revoke(sandboxId: string): { tokens: number; terminals: number } {
    let tokens = 0;
    for (const [k, g] of this.grants) if (g.sandboxId === sandboxId) { this.grants.delete(k); tokens++; }
    const set = this.open.get(sandboxId);
    this.open.delete(sandboxId);
    for (const close of set ?? []) close();
    return { tokens, terminals: set?.size ?? 0 };
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, g] of this.grants) if (g.expires <= t) this.grants.delete(k);
  }
}
