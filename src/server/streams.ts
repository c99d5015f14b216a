// Long-lived responses (exec streams, file transfers) that a stopping daemon
// must end itself: the HTTP server only waits for them. Each registers how to
// stop politely (a final message saying the daemon is stopping, then end) and
// how to cut it (destroy its socket) when the grace period runs out.

export interface OpenStream {
  /** Say the daemon is stopping, end the command behind the stream, end the response. */
  stop(): void;
  /** Grace is over: destroy the connection. */
  kill(): void;
}

/** How long stopped streams get to flush their final message before they are cut. */
export const STOP_GRACE_MS = 1000;

export class OpenStreams {
  private readonly open = new Set<OpenStream>();
  private stopping = false;

  get size(): number {
    return this.open.size;
  }

  /** Registers a stream; the returned function unregisters it (call it when the stream ends for any reason). */
  add(s: OpenStream): () => void {
    this.open.add(s);
    if (this.stopping) queueMicrotask(() => s.stop());
    return () => { this.open.delete(s); };
  }

  /** Stops every open stream; after `graceMs` cuts those still open. Resolves with how many there were. */
  async stopAll(graceMs = STOP_GRACE_MS): Promise<number> {
    this.stopping = true;
    const n = this.open.size;
    for (const s of [...this.open]) {
      try { s.stop(); } catch { s.kill(); }
    }
    const deadline = Date.now() + graceMs;
    while (this.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const s of [...this.open]) {
      try { s.kill(); } catch { /* already gone */ }
      this.open.delete(s);
    }
    return n;
  }
}
