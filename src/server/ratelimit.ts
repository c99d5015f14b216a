// Per-user token buckets: `rate` requests per second on average, bursts up to `burst`.
export class RateLimiter {
  private buckets = new Map<number, { tokens: number; at: number }>();

  constructor(private readonly rate: number, private readonly burst: number) {}

  get enabled(): boolean { return this.rate > 0; }

  /** 0 if the request may proceed, else the seconds to wait before retrying. */
  take(userId: number, now = performance.now()): number {
    if (!this.enabled) return 0;
    const b = this.buckets.get(userId) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    this.buckets.set(userId, b);
    if (b.tokens >= 1) { b.tokens -= 1; return 0; }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.rate));
  }
}
