import assert from "node:assert/strict";
import { openTestBroker } from "./_app.ts";

async function waitForWaiters(count: () => number, n: number): Promise<void> {
  // The waiter registers after the fetch's first read; a few turns of the event loop.
  for (let i = 0; i < 1000 && count() !== n; i++) await new Promise((r) => setTimeout(r, 1));
  assert.equal(count(), n, "the fetch is waiting");
}

Deno.test("long poll: a waiting fetch is answered by the append itself", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t" });
  const replica = await t.broker.replica("t", 0);
  const pending = t.call("GET", "/v1/topics/t/partitions/0/records?offset=0&maxWaitMs=60000");
  await waitForWaiters(() => replica.waiters.size, 1);

  const produced = await t.call("POST", "/v1/topics/t/records?acks=1", {
    records: [{ key: "k", value: "now" }],
  });
  assert.equal(produced.status, 200);
  // Woken synchronously by the append, not by its 60 s deadline.
  assert.equal(replica.waiters.size, 0);
  const res = await pending;
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.records.map((r: { value: string }) => r.value), ["now"]);
  assert.equal(res.body.nextOffset, 1);
  assert.equal(res.body.highWatermark, 1);
});

Deno.test("long poll: minBytes holds the answer until enough bytes arrive", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t" });
  const replica = await t.broker.replica("t", 0);
  const pending = t.call(
    "GET",
    "/v1/topics/t/partitions/0/records?offset=0&maxWaitMs=60000&minBytes=1000",
  );
  await waitForWaiters(() => replica.waiters.size, 1);
  await t.call("POST", "/v1/topics/t/records", { records: [{ value: "small" }] });
  assert.equal(replica.waiters.size, 1, "100 bytes are not enough");
  await t.call("POST", "/v1/topics/t/records", { records: [{ value: "x".repeat(1000) }] });
  assert.equal(replica.waiters.size, 0);
  const res = await pending;
  assert.deepEqual(res.body.records.map((r: { value: string }) => r.value.length), [5, 1000]);
});

Deno.test("long poll: maxWaitMs ends an idle wait with no records", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t" });
  const res = await t.call("GET", "/v1/topics/t/partitions/0/records?offset=0&maxWaitMs=20");
  assert.deepEqual(res.body, { records: [], nextOffset: 0, highWatermark: 0, logStartOffset: 0 });
});

Deno.test("long poll: a broker shutting down answers waiting fetches at once", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t" });
  const replica = await t.broker.replica("t", 0);
  const pending = t.call("GET", "/v1/topics/t/partitions/0/records?offset=0&maxWaitMs=60000");
  await waitForWaiters(() => replica.waiters.size, 1);
  t.broker.beginShutdown();
  const res = await pending;
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.records, []);
  // And produce is refused while draining, with a retriable error.
  const refused = await t.call("POST", "/v1/topics/t/records", { records: [{ value: "x" }] });
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error.code, "BROKER_NOT_AVAILABLE");
  assert.equal(refused.body.error.retriable, true);
});
