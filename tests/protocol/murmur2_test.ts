import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import kafkajs from "kafkajs";
import { murmur2, partitionForKey } from "../../src/protocol/murmur2.ts";

const enc = new TextEncoder();

Deno.test("murmur2() agrees with Kafka's known vectors", () => {
  const vectors: [string, number][] = [
    ["21", -973932308],
    ["foobar", -790332482],
    ["a-little-bit-long-string", -985981536],
    ["a-little-bit-longer-string", -1486304829],
    ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
    ["abc", 479470107],
  ];
  for (const [key, hash] of vectors) assert.equal(murmur2(enc.encode(key)), hash, key);
});

Deno.test("partitionForKey() picks the partition kafkajs's DefaultPartitioner picks", () => {
  const partitioner = kafkajs.Partitioners.DefaultPartitioner();
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 64 }),
      fc.integer({ min: 1, max: 200 }),
      (key, partitions) => {
        const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({
          partitionId: i,
          leader: 0,
          partitionErrorCode: 0,
          replicas: [0],
          isr: [0],
        }));
        const theirs = partitioner({
          topic: "t",
          partitionMetadata,
          message: { key: Buffer.from(key), value: null },
        });
        assert.equal(partitionForKey(key, partitions), theirs);
      },
    ),
    { numRuns: 500 },
  );
  assert.equal(partitionForKey("user-1", 12), partitionForKey(enc.encode("user-1"), 12));
});

Deno.test("partitionForKey() rejects a partition count that is not a positive integer", () => {
  for (const bad of [0, -1, 1.5, NaN]) assert.throws(() => partitionForKey("k", bad), RangeError);
});
