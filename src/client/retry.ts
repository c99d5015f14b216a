// When the client sends an idempotent call again: after a 429 (rate limited)
// or a 503 (host at capacity, too many connections, sandbox reattaching),
// waiting what Retry-After says (else a doubling backoff), within a bounded
// number of attempts and a bounded total wait. Calls that are not idempotent
// (POST /sandboxes, POST exec...) are never sent twice.

export interface RetryOptions {
  /** Attempts in all, the first included (default 4; 1 disables retries). */
  attempts?: number;
  /** Most total time spent waiting between attempts, ms (default 30 000). A Retry-After beyond it ends the retries at once. */
  maxWaitMs?: number;
  /** Wait without a Retry-After header: this, doubled each time (default 500 ms). */
  backoffMs?: number;
}

export const RETRY_STATUSES = new Set([429, 503]);

export class RetryBudget {
  private attempt = 1;
  private waited = 0;
  private readonly attempts: number;
  private readonly maxWaitMs: number;
  private readonly backoffMs: number;

  constructor(opts: RetryOptions = {}) {
    this.attempts = Math.max(1, opts.attempts ?? 4);
    this.maxWaitMs = Math.max(0, opts.maxWaitMs ?? 30_000);
    this.backoffMs = Math.max(0, opts.backoffMs ?? 500);
  }

  /** The wait before the next attempt, or undefined when none is left (attempts or total wait used up). */
  next(retryAfterSec: number | undefined): number | undefined {
    if (this.attempt >= this.attempts) return undefined;
    const wait = retryAfterSec !== undefined ? retryAfterSec * 1000 : this.backoffMs * 2 ** (this.attempt - 1);
    if (this.waited + wait > this.maxWaitMs) return undefined;
    this.attempt++;
    this.waited += wait;
    return wait;
  }
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve, reject) => {
  if (signal?.aborted) { reject(signal.reason); return; }
  const t = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
  const onAbort = () => { clearTimeout(t); reject(signal!.reason); };
  signal?.addEventListener("abort", onAbort, { once: true });
});
