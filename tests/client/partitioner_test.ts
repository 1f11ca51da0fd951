import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { Partitioners } from "kafkajs";
import { Partitioner } from "../../src/client/partitioner.ts";

const kafkajs = Partitioners.DefaultPartitioner();
const meta = (n: number) =>
  Array.from(
    { length: n },
    (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }),
  );

Deno.test("Partitioner puts a keyed record where kafkajs's DefaultPartitioner does", () => {
  const p = new Partitioner();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 64 }), (key, n) => {
      const expected = kafkajs({
        topic: "t",
        partitionMetadata: meta(n),
        message: { key: Buffer.from(key), value: "v" },
      });
      assert.equal(p.partition("t", key, n), expected);
    }),
    { numRuns: 500 },
  );
  const enc = new TextEncoder();
  for (const key of ["user-1", "a", "", "Καλημέρα", "order-123456789"]) {
    const expected = kafkajs({
      topic: "t",
      partitionMetadata: meta(12),
      message: { key, value: "v" },
    });
    assert.equal(p.partition("t", enc.encode(key), 12), expected, `key "${key}"`);
  }
});

Deno.test("Partitioner sticks keyless records to one partition until its batch closes", () => {
  const p = new Partitioner();
  const first = p.partition("t", null, 8);
  for (let i = 0; i < 100; i++) assert.equal(p.partition("t", null, 8), first);
  // A closed batch of another partition does not move it.
  p.batchClosed("t", (first + 1) % 8, 8);
  assert.equal(p.partition("t", null, 8), first);
  p.batchClosed("t", first, 8);
  const second = p.partition("t", null, 8);
  assert.notEqual(second, first);
  // Topics stick independently.
  assert.equal(p.partition("t", null, 8), second);
});

Deno.test("Partitioner spreads keyless batches over every partition", () => {
  const p = new Partitioner();
  const seen = new Set<number>();
  for (let i = 0; i < 500 && seen.size < 4; i++) {
    const q = p.partition("t", null, 4);
    seen.add(q);
    p.batchClosed("t", q, 4);
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
});

Deno.test("Partitioner re-picks when the partition count shrinks below the sticky one", () => {
  let r = 0.99;
  const p = new Partitioner(() => r);
  assert.equal(p.partition("t", null, 10), 9);
  r = 0;
  assert.equal(p.partition("t", null, 3), 0);
});
