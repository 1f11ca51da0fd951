import assert from "node:assert/strict";
import { FetchWaiters } from "../../src/broker/fetch_waiters.ts";

Deno.test("FetchWaiters wakes a waiter once enough bytes were committed", async () => {
  const waiters = new FetchWaiters();
  const small = waiters.wait(1, 60_000);
  const big = waiters.wait(100, 60_000);
  assert.equal(waiters.size, 2);
  waiters.notify(60);
  assert.equal(await small, "data");
  assert.equal(waiters.size, 1, "60 of 100 bytes: still waiting");
  waiters.notify(40);
  assert.equal(await big, "data");
  assert.equal(waiters.size, 0);
});

Deno.test("FetchWaiters ends waits on timeout, abort and close", async () => {
  const waiters = new FetchWaiters();
  assert.equal(await waiters.wait(1, 5), "timeout");
  assert.equal(await waiters.wait(1, 0), "timeout", "no wait asked: answered at once");
  const ac = new AbortController();
  const aborted = waiters.wait(1, 60_000, ac.signal);
  ac.abort();
  assert.equal(await aborted, "aborted");
  const closed = waiters.wait(1, 60_000);
  waiters.close();
  assert.equal(await closed, "closed");
  assert.equal(await waiters.wait(1, 60_000), "closed", "a closed partition takes no new waits");
  assert.equal(waiters.size, 0);
});

Deno.test("FetchWaiters.wakeAll wakes everyone but keeps taking waits", async () => {
  const waiters = new FetchWaiters();
  const a = waiters.wait(1, 60_000);
  waiters.wakeAll();
  assert.equal(await a, "closed");
  const b = waiters.wait(1, 60_000);
  waiters.notify(1);
  assert.equal(await b, "data");
});

Deno.test("FetchWaiters: many waits on one signal, one after the other, end on its abort", async () => {
  const waiters = new FetchWaiters();
  const abort = new AbortController();
  // Waits that ended (data) before the abort are not told of it.
  for (let i = 0; i < 5; i++) {
    const w = waiters.wait(1, 60_000, abort.signal);
    waiters.notify(1);
    assert.equal(await w, "data");
  }
  const pending = Array.from({ length: 3 }, () => waiters.wait(1, 60_000, abort.signal));
  assert.equal(waiters.size, 3);
  abort.abort();
  assert.deepEqual(await Promise.all(pending), ["aborted", "aborted", "aborted"]);
  assert.equal(waiters.size, 0);
  assert.equal(await waiters.wait(1, 60_000, abort.signal), "aborted");
});
