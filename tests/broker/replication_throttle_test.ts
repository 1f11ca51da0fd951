import assert from "node:assert/strict";
import { ReplicationThrottle } from "../../src/broker/replication_throttle.ts";

Deno.test("the replication throttle holds copies to its rate, without an initial burst", () => {
  let now = 0;
  const t = new ReplicationThrottle(1_000_000, () => now);
  assert.equal(t.fetchBytes(8 << 20), 250_000, "a quarter second per fetch");
  assert.equal(t.fetchBytes(100), 65_536, "never below 64 KiB");
  // 2 MB copied as fast as the waits allow take 2 s (no free first second)
  let copied = 0;
  while (copied < 2_000_000) {
    const wait = t.take(250_000);
    copied += 250_000;
    now += wait;
  }
  assert.ok(now >= 1_750 && now <= 2_000, `took ${now} ms`);
  // idle for a minute: at most a quarter second of credit, not a minute's
  now += 60_000;
  assert.equal(t.take(250_000), 0);
  assert.ok(t.take(250_000) >= 250, "the next fetch waits again");
  assert.throws(() => new ReplicationThrottle(0), RangeError);
});

Deno.test("a leader's sending bucket: a fetch waits for the debt, and not at all once paid", async () => {
  let now = 0;
  const t = new ReplicationThrottle(1_000_000, () => now);
  assert.equal(t.debtMs(), 0);
  t.take(500_000);
  assert.equal(t.debtMs(), 500, "half a second of bytes owed");
  now += 200;
  assert.equal(t.debtMs(), 300);
  now += 300;
  assert.equal(t.debtMs(), 0);
  await t.ready(); // paid: resolves at once
  t.take(10_000_000);
  const abort = new AbortController();
  abort.abort();
  await t.ready(abort.signal); // an aborted wait gives up at once
  assert.equal(t.debtMs(), 10_000, "still owed");
});
