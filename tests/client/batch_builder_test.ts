import assert from "node:assert/strict";
import fc from "fast-check";
import { BatchBuilder, keyBytes } from "../../src/client/batch_builder.ts";
import { decodeBatch, encodeBatch, validateBatch } from "../../src/protocol/record_batch.ts";

const enc = new TextEncoder();
const bytesLike = fc.oneof(
  fc.constant(null),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }),
);
const toBytes = (v: string | Uint8Array | null) => typeof v === "string" ? enc.encode(v) : v;

Deno.test("BatchBuilder writes batches that decode to the records appended", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          ts: fc.integer({ min: 1_600_000_000_000, max: 1_800_000_000_000 }),
          key: bytesLike,
          value: bytesLike,
          // undefined headers with byte keys and values take the builder's one-pass path
          headers: fc.option(
            fc.array(fc.record({ key: fc.string({ maxLength: 20 }), value: bytesLike }), {
              maxLength: 3,
            }),
            { nil: undefined },
          ),
        }),
        { maxLength: 40 },
      ),
      (records) => {
        const b = new BatchBuilder(64);
        for (const r of records) {
          b.append(
            r.ts,
            r.key,
            r.value,
            r.headers?.map((h) => ({ key: h.key, value: toBytes(h.value) })),
          );
        }
        const batch = b.build();
        validateBatch(batch);
        const { header, records: out } = decodeBatch(batch, true);
        assert.equal(header.recordCount, records.length);
        out.forEach((o, i) => {
          const r = records[i];
          assert.equal(o.offset, i);
          assert.equal(o.timestamp, r.ts);
          assert.deepEqual(o.key, toBytes(r.key));
          assert.deepEqual(o.value, toBytes(r.value));
          assert.deepEqual(o.headers.map((h) => h.key), (r.headers ?? []).map((h) => h.key));
        });
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("BatchBuilder matches encodeBatch byte for byte when timestamps ascend", () => {
  const recs = [
    { timestamp: 1000, key: enc.encode("k"), value: enc.encode("v".repeat(200)) },
    { timestamp: 1001, key: null, value: null },
    {
      timestamp: 1005,
      key: enc.encode("é"),
      value: enc.encode("x"),
      headers: [{ key: "h", value: enc.encode("1") }],
    },
  ];
  const b = new BatchBuilder();
  b.append(1000, "k", "v".repeat(200), undefined);
  b.append(1001, null, null, undefined);
  b.append(1005, "é", enc.encode("x"), [{ key: "h", value: enc.encode("1") }]);
  assert.deepEqual(b.build(), encodeBatch(recs));
});

Deno.test("BatchBuilder matches encodeBatch for byte keys and values of every length class", () => {
  const lengths = [0, 1, 63, 64, 127, 128, 1024, 8191, 8192, 70_000];
  const recs = lengths.map((n, i) => ({
    timestamp: 5000 + i,
    key: i % 3 === 0 ? null : Uint8Array.from({ length: i }, (_, j) => j),
    value: Uint8Array.from({ length: n }, (_, j) => (j * 7) & 0xff),
  }));
  const b = new BatchBuilder(64);
  for (const r of recs) b.append(r.timestamp, r.key, r.value, undefined);
  assert.deepEqual(b.build(), encodeBatch(recs));
});

Deno.test("keyBytes encodes a string key into reusable scratch space", () => {
  const scratch = { buf: new Uint8Array(4) };
  assert.deepEqual(keyBytes("user-1", scratch), enc.encode("user-1"));
  const raw = new Uint8Array([1, 2]);
  assert.equal(keyBytes(raw, scratch), raw);
});
