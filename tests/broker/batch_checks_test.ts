import assert from "node:assert/strict";
import fc from "fast-check";
import { checkProducedBatches, stampLogAppendTime } from "../../src/broker/batch_checks.ts";
import { crc32c } from "../../src/protocol/crc32c.ts";
import { decodeBatch, encodeBatch, POS, RillError, validateBatch } from "../../src/protocol/mod.ts";

const enc = new TextEncoder();

/** Rewrites the CRC so a tampered batch fails only on what was tampered. */
function reseal(batch: Uint8Array): Uint8Array {
  new DataView(batch.buffer, batch.byteOffset).setUint32(
    POS.crc,
    crc32c(batch.subarray(POS.attributes)),
  );
  return batch;
}

function rejects(body: Uint8Array, code: string, pattern: RegExp): void {
  assert.throws(
    () => checkProducedBatches(body, 1 << 20),
    (e) => e instanceof RillError && e.code === code && pattern.test(e.message),
  );
}

Deno.test("checkProducedBatches accepts whatever encodeBatch writes, as validateBatch does", () => {
  const recordArb = fc.record({
    key: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }),
    value: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
    headers: fc.array(
      fc.record({
        key: fc.string({ maxLength: 10 }),
        value: fc.option(fc.uint8Array({ maxLength: 10 }), { nil: null }),
      }),
      { maxLength: 3 },
    ),
    timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
  });
  fc.assert(
    fc.property(
      fc.array(fc.array(recordArb, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }),
      (lists) => {
        const batches = lists.map((l) => encodeBatch(l));
        const body = new Uint8Array(batches.reduce((n, b) => n + b.length, 0));
        let pos = 0;
        for (const b of batches) {
          validateBatch(b);
          body.set(b, pos);
          pos += b.length;
        }
        const checked = checkProducedBatches(body, 1 << 20);
        assert.equal(checked.batches.length, lists.length);
        assert.equal(checked.recordCount, lists.reduce((n, l) => n + l.length, 0));
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("checkProducedBatches rejects malformed records even under a valid CRC", () => {
  const good = encodeBatch([{ key: enc.encode("k"), value: enc.encode("v") }, {
    value: enc.encode("w"),
  }]);
  // Record 1's offset delta is its 4th byte: length, attributes, timestamp delta, offset delta.
  const firstLen = good[POS.records] / 2; // a small zig-zag varint
  const second = POS.records + 1 + firstLen;
  const delta = good.slice();
  delta[second + 3] = 2 * 5; // offset delta 5
  rejects(reseal(delta), "CORRUPT_MESSAGE", /record 1 has offset delta 5/);

  const overrun = good.slice();
  overrun[POS.records] = 2 * 60; // record 0 claims 60 bytes
  rejects(reseal(overrun), "CORRUPT_MESSAGE", /record 0 runs past the end/);

  const count = good.slice();
  new DataView(count.buffer).setInt32(POS.recordCount, 3);
  new DataView(count.buffer).setInt32(POS.lastOffsetDelta, 2);
  rejects(reseal(count), "CORRUPT_MESSAGE", /record 2/);

  const lastDelta = good.slice();
  new DataView(lastDelta.buffer).setInt32(POS.lastOffsetDelta, 7);
  rejects(reseal(lastDelta), "CORRUPT_MESSAGE", /lastOffsetDelta 7/);

  const magic = good.slice();
  magic[POS.magic] = 1;
  rejects(magic, "CORRUPT_MESSAGE", /magic 1/);

  const badName = encodeBatch([{ value: null, headers: [{ key: "ab", value: null }] }]);
  const at = badName.length - 3; // the header name "ab", then its value length (-1)
  assert.equal(badName[at], 0x61);
  badName[at] = 0xff;
  rejects(reseal(badName), "CORRUPT_MESSAGE", /header 0 name is not UTF-8/);

  const flipped = good.slice();
  flipped[flipped.length - 1] ^= 1;
  rejects(flipped, "CORRUPT_MESSAGE", /CRC/);
  rejects(encodeBatch([]), "INVALID_RECORD", /no records/);
  assert.throws(
    () => checkProducedBatches(good, good.length - 1),
    (e) => e instanceof RillError && e.code === "MESSAGE_TOO_LARGE",
  );
});

Deno.test("stampLogAppendTime sets the time on every record and keeps the batch valid", () => {
  const batch = encodeBatch([{ value: enc.encode("a"), timestamp: 5 }, {
    value: enc.encode("b"),
    timestamp: 9,
  }]);
  stampLogAppendTime(batch, 1_700_000_000_000);
  const decoded = decodeBatch(batch, true);
  assert.deepEqual(decoded.records.map((r) => r.timestamp), [1_700_000_000_000, 1_700_000_000_000]);
});
