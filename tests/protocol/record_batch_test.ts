import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
// kafkajs's own RecordBatch v2 encoder and decoder (used by its producer and consumer).
import { RecordBatch as kafkajsRecordBatch } from "kafkajs/src/protocol/recordBatch/v0/index.js";
import kafkajsRecord from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
import kafkajsBatchDecoder from "kafkajs/src/protocol/recordBatch/v0/decoder.js";
import KafkajsDecoder from "kafkajs/src/protocol/decoder.js";
import KafkajsLong from "kafkajs/src/utils/long.js";
import { crc32c } from "../../src/protocol/crc32c.ts";
import { RillError } from "../../src/protocol/errors.ts";
import {
  BATCH_HEADER_SIZE,
  decodeBatch,
  encodeBatch,
  nextOffsetOf,
  POS,
  readBatchHeader,
  type RecordInput,
  setBaseOffset,
  setPartitionLeaderEpoch,
  splitBatches,
  validateBatch,
} from "../../src/protocol/record_batch.ts";

const enc = new TextEncoder();

const recordArb: fc.Arbitrary<RecordInput> = fc.record({
  key: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
  value: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
  headers: fc.array(
    fc.record({
      key: fc.string({ unit: "grapheme", maxLength: 12 }),
      value: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }),
    }),
    { maxLength: 3 },
  ),
  timestamp: fc.option(fc.integer({ min: 0, max: 2 ** 45 }), { nil: undefined }),
});

function expectCorrupt(batch: Uint8Array, message: RegExp): void {
  assert.throws(() => validateBatch(batch), (e) => {
    assert.ok(e instanceof RillError, String(e));
    assert.equal(e.code, "CORRUPT_MESSAGE");
    assert.match(e.message, message);
    return true;
  });
}

/** Recomputes the CRC after an edit, so that validation looks past it. */
function reseal(batch: Uint8Array): Uint8Array {
  new DataView(batch.buffer, batch.byteOffset).setUint32(
    POS.crc,
    crc32c(batch.subarray(POS.attributes)),
  );
  return batch;
}

Deno.test("encodeBatch() then decodeBatch() round-trips random keys, values, headers and null keys", () => {
  fc.assert(
    fc.property(
      fc.array(recordArb, { maxLength: 20 }),
      fc.integer({ min: 0, max: 2 ** 50 }),
      fc.integer({ min: 0, max: 2 ** 45 }),
      (records, baseOffset, now) => {
        const batch = encodeBatch(records, { baseOffset, now });
        const { header, records: decoded } = decodeBatch(batch, true);
        assert.equal(header.baseOffset, baseOffset);
        assert.equal(header.recordCount, records.length);
        assert.equal(header.magic, 2);
        assert.equal(header.batchLength + 12, batch.length);
        assert.equal(nextOffsetOf(header), baseOffset + Math.max(records.length, 1));
        assert.equal(decoded.length, records.length);
        decoded.forEach((r, i) => {
          const input = records[i];
          assert.equal(r.offset, baseOffset + i);
          assert.equal(r.timestamp, input.timestamp ?? now);
          assert.deepEqual(r.key, input.key ?? null);
          assert.deepEqual(r.value, input.value);
          assert.deepEqual(
            r.headers,
            (input.headers ?? []).map((h) => ({ key: h.key, value: h.value })),
          );
        });
        const stamps = records.map((r) => r.timestamp ?? now);
        if (stamps.length > 0) {
          assert.equal(header.baseTimestamp, Math.min(...stamps));
          assert.equal(header.maxTimestamp, Math.max(...stamps));
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("an empty batch encodes, validates and decodes to no records", () => {
  const batch = encodeBatch([], { now: 1234 });
  assert.equal(batch.length, BATCH_HEADER_SIZE);
  const header = validateBatch(batch);
  assert.equal(header.recordCount, 0);
  assert.equal(header.lastOffsetDelta, 0);
  assert.equal(header.maxTimestamp, 1234);
  assert.deepEqual(decodeBatch(batch).records, []);
});

Deno.test("setBaseOffset() and setPartitionLeaderEpoch() write outside the CRC", () => {
  const batch = encodeBatch([{ value: enc.encode("a") }, { value: enc.encode("b") }]);
  setBaseOffset(batch, 2 ** 40 + 5);
  setPartitionLeaderEpoch(batch, 17);
  const header = validateBatch(batch);
  assert.equal(header.baseOffset, 2 ** 40 + 5);
  assert.equal(header.partitionLeaderEpoch, 17);
  assert.deepEqual(decodeBatch(batch).records.map((r) => r.offset), [2 ** 40 + 5, 2 ** 40 + 6]);
});

Deno.test("validateBatch() names what is wrong", () => {
  const good = encodeBatch([{ key: enc.encode("k"), value: enc.encode("value") }, { value: null }]);
  expectCorrupt(good.subarray(0, 30), /shorter than the 61-byte header/);
  expectCorrupt(
    good.subarray(0, good.length - 1),
    /length field says \d+ bytes but \d+ were given/,
  );
  const magic = good.slice();
  magic[POS.magic] = 1;
  expectCorrupt(magic, /magic is 1/);
  const flipped = good.slice();
  flipped[flipped.length - 2] ^= 1;
  expectCorrupt(flipped, /CRC is 0x[0-9a-f]+ but its contents give 0x[0-9a-f]+/);
  const count = good.slice();
  new DataView(count.buffer).setInt32(POS.recordCount, -1);
  expectCorrupt(reseal(count), /record count is negative/);
  const delta = good.slice();
  new DataView(delta.buffer).setInt32(POS.lastOffsetDelta, 5);
  expectCorrupt(reseal(delta), /lastOffsetDelta is 5 but it holds 2 records/);
  const more = good.slice();
  new DataView(more.buffer).setInt32(POS.recordCount, 3);
  expectCorrupt(reseal(more), /malformed record|runs past/);
  const stray = new Uint8Array(good.length + 2);
  stray.set(good);
  new DataView(stray.buffer).setInt32(POS.batchLength, stray.length - 12);
  expectCorrupt(reseal(stray), /2 bytes after its last record/);
});

Deno.test("a batch labelled compressed whose records are not is refused as corrupt", () => {
  const batch = encodeBatch([{ value: enc.encode("x") }]);
  new DataView(batch.buffer).setInt16(POS.attributes, 2); // snappy
  reseal(batch);
  for (const read of [() => validateBatch(batch), () => decodeBatch(batch)]) {
    assert.throws(
      read,
      (e) => e instanceof RillError && e.code === "CORRUPT_MESSAGE" && /snappy/.test(e.message),
    );
  }
});

Deno.test("splitBatches() returns whole batches and stops before a torn tail", () => {
  const a = encodeBatch([{ value: enc.encode("a") }]);
  const b = encodeBatch([{ value: enc.encode("bb") }, { value: enc.encode("c") }]);
  const all = new Uint8Array(a.length + b.length);
  all.set(a);
  all.set(b, a.length);
  assert.deepEqual(splitBatches(all), [a, b]);
  assert.deepEqual(splitBatches(all.subarray(0, all.length - 1)), [a]);
  assert.deepEqual(splitBatches(new Uint8Array(0)), []);
  assert.equal(readBatchHeader(all, a.length).recordCount, 2);
});

// ---------------------------------------------------------------- kafkajs known answers

interface KafkajsMessage {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer>;
  timestamp: number;
}

/** Encodes messages exactly as kafkajs's producer does (produce request v3+). */
async function kafkajsEncode(messages: KafkajsMessage[], firstOffset: number): Promise<Uint8Array> {
  const firstTimestamp = Math.min(...messages.map((m) => m.timestamp));
  const maxTimestamp = Math.max(...messages.map((m) => m.timestamp));
  const records = messages.map((m, i) =>
    kafkajsRecord({
      key: m.key,
      value: m.value,
      headers: m.headers,
      offsetDelta: i,
      timestampDelta: m.timestamp - firstTimestamp,
    })
  );
  const encoder = await kafkajsRecordBatch({
    firstOffset: KafkajsLong.fromNumber(firstOffset),
    firstTimestamp,
    maxTimestamp,
    partitionLeaderEpoch: -1,
    producerId: KafkajsLong.fromInt(-1),
    producerEpoch: -1,
    firstSequence: -1,
    lastOffsetDelta: records.length - 1,
    records,
  });
  return new Uint8Array(encoder.buffer);
}

const sample: KafkajsMessage[] = [
  {
    key: Buffer.from("user-1"),
    value: Buffer.from("hello"),
    headers: {},
    timestamp: 1_700_000_000_000,
  },
  {
    key: null,
    value: Buffer.from("no key"),
    headers: { trace: Buffer.from("abc") },
    timestamp: 1_700_000_000_050,
  },
  {
    key: Buffer.from("user-2"),
    value: Buffer.from("é ünïcödé"),
    headers: { a: Buffer.from("1"), b: Buffer.from("") },
    timestamp: 1_700_000_000_010,
  },
];

Deno.test("a batch made by kafkajs decodes with our codec, and ours is byte-identical", async () => {
  const theirs = await kafkajsEncode(sample, 42);
  const { header, records } = decodeBatch(theirs, true); // checks length, magic, CRC
  assert.equal(header.baseOffset, 42);
  assert.equal(header.recordCount, 3);
  assert.deepEqual(records.map((r) => r.offset), [42, 43, 44]);
  assert.deepEqual(records.map((r) => r.timestamp), sample.map((m) => m.timestamp));
  assert.deepEqual(records[0].key, new Uint8Array(Buffer.from("user-1")));
  assert.equal(records[1].key, null);
  assert.equal(new TextDecoder().decode(records[2].value!), "é ünïcödé");
  assert.deepEqual(records[2].headers.map((h) => h.key), ["a", "b"]);
  assert.deepEqual(records[1].headers, [{
    key: "trace",
    value: new Uint8Array(Buffer.from("abc")),
  }]);

  const ours = encodeBatch(
    sample.map((m) => ({
      key: m.key === null ? null : new Uint8Array(m.key),
      value: m.value === null ? null : new Uint8Array(m.value),
      headers: Object.entries(m.headers).map(([key, value]) => ({
        key,
        value: new Uint8Array(value),
      })),
      timestamp: m.timestamp,
    })),
    { baseOffset: 42 },
  );
  assert.deepEqual(ours, theirs);
});

Deno.test("kafkajs's decoder reads batches we encode", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(recordArb, { minLength: 1, maxLength: 8 }), async (records) => {
      const ours = encodeBatch(records, { baseOffset: 7, now: 1_600_000_000_000 });
      const decoded = await kafkajsBatchDecoder(new KafkajsDecoder(Buffer.from(ours)));
      assert.equal(decoded.firstOffset, "7");
      assert.equal(decoded.records.length, records.length);
      decoded.records.forEach(
        (
          r: { offset: string; key: Buffer | null; value: Buffer | null; timestamp: string },
          i: number,
        ) => {
          assert.equal(r.offset, String(7 + i));
          assert.equal(r.timestamp, String(records[i].timestamp ?? 1_600_000_000_000));
          const key = records[i].key ?? null;
          assert.deepEqual(r.key === null ? null : new Uint8Array(r.key), key);
          const value = records[i].value;
          assert.deepEqual(r.value === null ? null : new Uint8Array(r.value), value);
        },
      );
    }),
    { numRuns: 50 },
  );
});
