import assert from "node:assert/strict";
import fc from "fast-check";
import type { ConsumedMessage } from "../../src/client/message.ts";
import { decodeMessages } from "../../src/client/record_decoder.ts";
import { RillError } from "../../src/protocol/errors.ts";
import {
  decodeBatch,
  encodeBatch,
  readBatchHeader,
  setBaseOffset,
} from "../../src/protocol/record_batch.ts";

const bytes = fc.oneof(fc.constant(null), fc.uint8Array({ maxLength: 200 }));

Deno.test("decodeMessages agrees with decodeBatch and skips records below the start", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          key: bytes,
          value: bytes,
          timestamp: fc.integer({ min: 0, max: 2 ** 42 }),
          headers: fc.array(fc.record({ key: fc.string({ maxLength: 10 }), value: bytes }), {
            maxLength: 3,
          }),
        }),
        { minLength: 1, maxLength: 30 },
      ),
      fc.integer({ min: 0, max: 1000 }),
      fc.integer({ min: 0, max: 40 }),
      (records, base, skip) => {
        const batch = encodeBatch(records);
        setBaseOffset(batch, base);
        const out: ConsumedMessage[] = [];
        decodeMessages(batch, readBatchHeader(batch), "t", 3, base + skip, out);
        const expected = decodeBatch(batch, true).records.filter((r) => r.offset >= base + skip);
        assert.equal(out.length, expected.length);
        out.forEach((m, i) => {
          const e = expected[i];
          assert.deepEqual(
            [m.topic, m.partition, m.offset, m.timestamp, m.key, m.value, m.headerList],
            ["t", 3, e.offset, e.timestamp, e.key, e.value, e.headers],
          );
        });
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("decodeMessages refuses a record whose lengths run past the batch", () => {
  const batch = encodeBatch([{ key: null, value: new Uint8Array(10) }]);
  // The value length varint sits after length, attributes, two deltas and the null key.
  const damaged = batch.slice();
  damaged[61 + 5] = 0x7e; // value length 63: past the record
  assert.throws(
    () => decodeMessages(damaged, readBatchHeader(damaged), "t", 0, 0, []),
    (e: unknown) => e instanceof RillError && e.code === "CORRUPT_MESSAGE",
  );
});
