// Rate limits against a real daemon, plus the token bucket's arithmetic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RateLimiter } from "./ratelimit.js";
import { startDaemon, createUser, api, cleanup } from "../testing/harness.js";

test("token bucket: burst, then refill at the rate", () => {
  const rl = new RateLimiter(2, 3);
  assert.deepEqual([rl.take(1, 0), rl.take(1, 0), rl.take(1, 0)], [0, 0, 0]);
  assert.equal(rl.take(1, 0), 1, "empty bucket: retry after a second");
  assert.equal(rl.take(2, 0), 0, "buckets are per user");
  assert.equal(rl.take(1, 500), 0, "half a second refills one token at 2/s");
  assert.ok(rl.take(1, 500) > 0);
  assert.equal(new RateLimiter(0, 0).take(1), 0, "rate 0 disables limiting");
});

test("the daemon answers 429 with Retry-After once a user's bucket is empty, and only for that user", async () => {
  const d = await startDaemon({ args: ["--rate-limit", "2"] });
  try {
    const a = createUser(d.dataDir, "a");
    const b = createUser(d.dataDir, "b");
    const statuses: number[] = [];
    let retry: string | null = null;
    for (let i = 0; i < 8; i++) {
      const r = await api(d, "GET", "/secrets", { key: a });
      statuses.push(r.status);
      if (r.status === 429) { retry = r.headers.get("retry-after"); assert.deepEqual(r.json, { error: "rate limit exceeded", code: "rate_limited" }); }
    }
    assert.ok(statuses.includes(429), `got ${statuses}`);
    assert.ok(Number(retry) >= 1);
    assert.equal((await api(d, "GET", "/secrets", { key: b })).status, 200, "other users are unaffected");
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
});
