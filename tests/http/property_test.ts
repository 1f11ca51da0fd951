/**
 * Random sequences of produce (JSON and raw batches), fetch and list-offsets requests
 * against the broker's routes agree with a simple in-memory model of the partitions.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeBatch, partitionForKey } from "../../src/protocol/mod.ts";
import { openTestBroker, type TestBroker } from "./_app.ts";

const PARTITIONS = 3;
const enc = new TextEncoder();

interface ModelRecord {
  key: string | null;
  value: string | null;
  timestamp: number;
}
type Model = ModelRecord[][];

const recordArb = fc.record({
  key: fc.option(fc.string({ maxLength: 8 }), { nil: null }),
  value: fc.option(fc.string({ maxLength: 40 }), { nil: null }),
  timestamp: fc.integer({ min: 1, max: 1000 }),
  partition: fc.option(fc.integer({ min: 0, max: PARTITIONS - 1 }), { nil: undefined }),
});

const opArb = fc.oneof(
  fc.record({
    kind: fc.constant("json" as const),
    records: fc.array(recordArb, { minLength: 1, maxLength: 6 }),
  }),
  fc.record({
    kind: fc.constant("batch" as const),
    partition: fc.integer({ min: 0, max: PARTITIONS - 1 }),
    records: fc.array(recordArb, { minLength: 1, maxLength: 6 }),
  }),
  fc.record({
    kind: fc.constant("fetch" as const),
    partition: fc.integer({ min: 0, max: PARTITIONS - 1 }),
    delta: fc.integer({ min: -3, max: 12 }),
    maxBytes: fc.integer({ min: 1, max: 2000 }),
  }),
  fc.record({
    kind: fc.constant("offsets" as const),
    partition: fc.integer({ min: 0, max: PARTITIONS - 1 }),
    at: fc.oneof(fc.constant("earliest"), fc.constant("latest"), fc.integer({ min: 0, max: 1100 })),
  }),
);

type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

async function apply(t: TestBroker, model: Model, op: Op): Promise<void> {
  if (op.kind === "json") {
    const res = await t.call("POST", "/v1/topics/p/records?acks=1", { records: op.records });
    assert.equal(res.status, 200);
    op.records.forEach((r, i) => {
      const o = res.body.offsets[i];
      if (r.partition !== undefined) assert.equal(o.partition, r.partition);
      else if (r.key !== null) assert.equal(o.partition, partitionForKey(r.key, PARTITIONS));
      assert.equal(o.offset, model[o.partition].length, "offsets are dense per partition");
      assert.equal(o.timestamp, r.timestamp);
      model[o.partition].push({ key: r.key, value: r.value, timestamp: r.timestamp });
    });
  } else if (op.kind === "batch") {
    const batch = encodeBatch(op.records.map((r) => ({
      key: r.key === null ? null : enc.encode(r.key),
      value: r.value === null ? null : enc.encode(r.value),
      timestamp: r.timestamp,
    })));
    const res = await t.call("POST", `/v1/topics/p/records?partition=${op.partition}`, batch, {
      "content-type": "application/vnd.rill.batch",
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.baseOffset, model[op.partition].length);
    assert.equal(res.body.lastOffset, model[op.partition].length + op.records.length - 1);
    for (const r of op.records) {
      model[op.partition].push({ key: r.key, value: r.value, timestamp: r.timestamp });
    }
  } else if (op.kind === "fetch") {
    const log = model[op.partition];
    const offset = log.length - op.delta;
    const res = await t.call(
      "GET",
      `/v1/topics/p/partitions/${op.partition}/records?offset=${offset}&maxBytes=${op.maxBytes}`,
    );
    if (offset < 0 || offset > log.length) {
      assert.equal(res.status, 416);
      assert.equal(res.body.error.code, "OFFSET_OUT_OF_RANGE");
      assert.equal(res.body.error.logStartOffset, 0);
      assert.equal(res.body.error.highWatermark, log.length);
      return;
    }
    assert.equal(res.status, 200);
    assert.equal(res.body.highWatermark, log.length);
    assert.equal(res.body.logStartOffset, 0);
    const records = res.body.records;
    if (offset < log.length) {
      assert.ok(records.length > 0, "a fetch below the high watermark returns records");
    }
    assert.equal(res.body.nextOffset, offset + records.length);
    records.forEach((r: ModelRecord & { offset: number }, i: number) => {
      const m = log[offset + i];
      assert.equal(r.offset, offset + i);
      assert.equal(r.key, m.key);
      assert.equal(r.value, m.value);
      assert.equal(r.timestamp, m.timestamp);
    });
  } else {
    const log = model[op.partition];
    const res = await t.call("GET", `/v1/topics/p/partitions/${op.partition}/offsets?at=${op.at}`);
    assert.equal(res.status, 200);
    let expected: number;
    if (op.at === "earliest") expected = 0;
    else if (op.at === "latest") expected = log.length;
    else {
      const i = log.findIndex((r) => r.timestamp >= (op.at as number));
      expected = i < 0 ? log.length : i;
    }
    assert.equal(res.body.offset, expected, `offsets at=${op.at}`);
  }
}

Deno.test("property: produce/fetch/list-offsets sequences agree with an in-memory model", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
      await using t = await openTestBroker();
      await t.call("POST", "/v1/topics", { name: "p", partitions: PARTITIONS });
      const model: Model = Array.from({ length: PARTITIONS }, () => []);
      for (const op of ops) await apply(t, model, op);
    }),
    { numRuns: 40 },
  );
});
