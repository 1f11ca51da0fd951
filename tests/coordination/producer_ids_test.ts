/**
 * Producer id allocation in KV: fresh ids are unique under concurrency; a key keeps its id
 * and gets the next epoch each time; bad keys are refused.
 */
import assert from "node:assert/strict";
import { ProducerIdStore } from "../../src/coordination/producer_ids.ts";
import { RillError } from "../../src/protocol/errors.ts";

Deno.test("ProducerIdStore never hands out one id twice under concurrent allocation", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new ProducerIdStore(kv);
    const ids = await Promise.all(Array.from({ length: 20 }, () => store.allocate()));
    assert.equal(new Set(ids.map((i) => i.producerId)).size, 20);
    const keyed = await Promise.all(Array.from({ length: 5 }, () => store.allocate("k")));
    assert.equal(new Set(keyed.map((i) => i.producerId)).size, 1);
    assert.deepEqual(keyed.map((i) => i.producerEpoch).sort(), [0, 1, 2, 3, 4]);
  } finally {
    kv.close();
  }
});

Deno.test("ProducerIdStore refuses an empty or over-long key", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new ProducerIdStore(kv);
    for (const key of ["", "x".repeat(513)]) {
      await assert.rejects(
        store.allocate(key),
        (e) => e instanceof RillError && e.code === "INVALID_REQUEST",
      );
    }
  } finally {
    kv.close();
  }
});

Deno.test("two stores on one KV (two brokers) hand out disjoint ids from their own blocks", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const a = new ProducerIdStore(kv);
    const b = new ProducerIdStore(kv);
    const ids = await Promise.all(
      Array.from({ length: 2_500 }, (_, i) => (i % 2 === 0 ? a : b).allocate()),
    );
    assert.equal(new Set(ids.map((i) => i.producerId)).size, 2_500);
    // A keyed producer takes its id from the counter, never from a block handed out.
    const keyed = await a.allocate("k");
    assert.ok(!ids.some((i) => i.producerId === keyed.producerId));
    assert.ok(ids.every((i) => i.producerEpoch === 0));
  } finally {
    kv.close();
  }
});
