import assert from "node:assert/strict";
import { RillError } from "../../src/protocol/errors.ts";
import { resolveRetry, retryDelay, withRetry } from "../../src/client/retry.ts";

Deno.test("retryDelay grows exponentially within the jitter band and stops at maxRetryTime", () => {
  const o = resolveRetry({ initialRetryTime: 100, maxRetryTime: 1000, factor: 0.2 });
  for (const r of [0, 0.5, 0.999]) {
    for (let a = 0; a < 8; a++) {
      const base = Math.min(1000, 100 * 2 ** a);
      const d = retryDelay(a, o, () => r);
      assert.ok(d >= base * 0.8 - 1e-9 && d <= Math.min(1000, base * 1.2), `attempt ${a}: ${d}`);
    }
  }
  assert.equal(retryDelay(0, o, () => 0.5), 100);
  assert.equal(retryDelay(3, o, () => 0.5), 800);
  assert.equal(retryDelay(20, o, () => 0.999), 1000);
  // Jitter: two clients retrying together get different delays.
  assert.notEqual(retryDelay(2, o, () => 0.1), retryDelay(2, o, () => 0.9));
});

Deno.test("withRetry retries retriable errors, then gives up with the last error", async () => {
  const o = resolveRetry({ retries: 3 });
  const slept: number[] = [];
  const sleep = (ms: number) => {
    slept.push(ms);
    return Promise.resolve();
  };
  let calls = 0;
  const ok = await withRetry(
    () => {
      if (++calls < 3) throw new RillError("NOT_LEADER_OR_FOLLOWER", "moved");
      return Promise.resolve("done");
    },
    o,
    { sleep },
  );
  assert.equal(ok, "done");
  assert.equal(calls, 3);
  assert.equal(slept.length, 2);

  calls = 0;
  await assert.rejects(
    withRetry(
      () => {
        calls++;
        throw new RillError("REQUEST_TIMED_OUT", "slow");
      },
      o,
      { sleep },
    ),
    (e: unknown) => e instanceof RillError && e.code === "REQUEST_TIMED_OUT",
  );
  assert.equal(calls, 4, "one try and three retries");
});

Deno.test("withRetry does not retry an error that is not retriable", async () => {
  let calls = 0;
  await assert.rejects(
    withRetry(
      () => {
        calls++;
        throw new RillError("TOPIC_ALREADY_EXISTS", "exists");
      },
      resolveRetry(),
      { sleep: () => Promise.resolve() },
    ),
    /exists/,
  );
  assert.equal(calls, 1);
});

Deno.test("resolveRetry rejects nonsense", () => {
  assert.throws(() => resolveRetry({ retries: -1 }), RangeError);
  assert.throws(() => resolveRetry({ retries: 1.5 }), RangeError);
  assert.throws(() => resolveRetry({ initialRetryTime: NaN }), RangeError);
});
