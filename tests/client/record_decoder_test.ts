import assert from "node:assert/strict";
import fc from "fast-check";
import type { ConsumedMessage } from "../../src/client/message.ts";
import { decodeMessages } from "../../src/client/record_decoder.ts";
import { decodeBatches } from "../../src/client/fetcher.ts";
import { compressBatch, prepareCompression } from "../../src/protocol/compression.ts";
import { crc32c } from "../../src/protocol/crc32c.ts";
import { RillError } from "../../src/protocol/errors.ts";
import {
  ATTR,
  decodeBatch,
  encodeBatch,
  POS,
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

Deno.test("decodeBatches over an answer of several batches (plain, gzip, log-append time) agrees with decodeBatch", async () => {
  await prepareCompression("gzip");
  const batches: Uint8Array[] = [];
  let base = 5;
  for (let b = 0; b < 6; b++) {
    const records = Array.from({ length: 1 + (b % 3) }, (_, i) => ({
      key: i % 2 === 0 ? null : new TextEncoder().encode(`k${b}.${i}`),
      value: new TextEncoder().encode(`value ${b}.${i}`),
      timestamp: 1_700_000_000_000 + b * 10 + i,
      headers: [{ key: "h", value: new TextEncoder().encode(`${b}`) }],
    }));
    let batch = encodeBatch(records, { baseOffset: base });
    if (b === 2) batch = compressBatch(batch, "gzip");
    if (b === 4) {
      // Log-append time: every record takes the batch's maxTimestamp (CRC summed again).
      const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
      view.setInt16(POS.attributes, view.getInt16(POS.attributes) | ATTR.logAppendTime);
      view.setBigInt64(POS.maxTimestamp, 1_800_000_000_000n);
      view.setUint32(POS.crc, crc32c(batch.subarray(POS.attributes)));
    }
    batches.push(batch);
    base += records.length;
  }
  const answer = new Uint8Array(batches.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of batches) {
    answer.set(b, at);
    at += b.length;
  }
  for (const from of [5, 7, 10]) {
    const { messages, nextOffset } = decodeBatches(answer, "t", 1, from, true);
    const expected = batches.flatMap((b) => decodeBatch(b, true).records)
      .filter((r) => r.offset >= from);
    assert.equal(nextOffset, base);
    assert.deepEqual(
      messages.map((m) => [m.offset, m.timestamp, m.key, m.value, m.headerList]),
      expected.map((e) => [e.offset, e.timestamp, e.key, e.value, e.headers]),
    );
    assert.ok(messages.filter((m) => m.timestamp === 1_800_000_000_000).length > 0);
  }
  // A flipped byte in the third batch's records fails its CRC check: CORRUPT_MESSAGE.
  const damaged = answer.slice();
  damaged[batches[0].length + batches[1].length + 70] ^= 1;
  assert.throws(
    () => decodeBatches(damaged, "t", 1, 5, true),
    (e: unknown) => e instanceof RillError && e.code === "CORRUPT_MESSAGE",
  );
});
