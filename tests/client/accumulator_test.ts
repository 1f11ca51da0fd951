import assert from "node:assert/strict";
import { RecordAccumulator, type RecordSink } from "../../src/client/accumulator.ts";
import { decodeBatch } from "../../src/protocol/record_batch.ts";

const sink: RecordSink = { done() {}, fail() {} };
const value = (n: number) => new Uint8Array(n);

function clock(start = 1000) {
  const c = { t: start, now: () => c.t };
  return c;
}

Deno.test("RecordAccumulator groups records of one partition into one batch", () => {
  const c = clock();
  const acc = new RecordAccumulator({ batchBytes: 10_000, lingerMs: 0, now: c.now });
  for (let i = 0; i < 10; i++) acc.append("t", 0, "1", 5, null, value(100), undefined, sink, i);
  acc.append("t", 1, "1", 5, "k", value(100), undefined, sink, 0);
  assert.equal(acc.pendingRecords, 11);
  const a = acc.drain(false)!;
  const b = acc.drain(false)!;
  assert.deepEqual([a.partition, a.builder.count], [0, 10]);
  assert.deepEqual(a.runs, [{ sink, firstIndex: 0, count: 10 }]);
  assert.equal(decodeBatch(a.builder.build(), true).records.length, 10);
  assert.deepEqual([b.partition, b.builder.count], [1, 1]);
  assert.equal(acc.drain(false), undefined);
  assert.equal(acc.pendingRecords, 0);
});

Deno.test("RecordAccumulator closes a batch at batchBytes and opens the next", () => {
  const acc = new RecordAccumulator({ batchBytes: 1000, lingerMs: 50, now: clock().now });
  let closed = 0;
  for (let i = 0; i < 25; i++) {
    if (acc.append("t", 0, "1", 5, null, value(100), undefined, sink, i)) closed++;
  }
  // 61 header bytes + 112 estimated per record: 8 fit in 1000.
  assert.equal(closed, 3);
  const first = acc.drain(false)!;
  assert.equal(first.builder.count, 8);
  assert.ok(first.builder.build().length <= 1000);
  // The partition is muted while its batch is in flight.
  assert.equal(acc.drain(false), undefined);
  acc.unmute("t", 0);
  const second = acc.drain(false)!;
  assert.equal(second.builder.count, 8);
  assert.deepEqual(second.runs, [{ sink, firstIndex: 8, count: 8 }]);
});

Deno.test("RecordAccumulator holds a batch for lingerMs unless it is full or flushed", () => {
  const c = clock();
  const acc = new RecordAccumulator({ batchBytes: 1 << 20, lingerMs: 20, now: c.now });
  acc.append("t", 0, "1", 5, null, "x", undefined, sink, 0);
  assert.equal(acc.drain(false), undefined);
  assert.equal(acc.nextLingerDeadline(), 1020);
  c.t = 1019;
  assert.equal(acc.drain(false), undefined);
  c.t = 1020;
  assert.equal(acc.drain(false)!.builder.count, 1);
  acc.unmute("t", 0);
  acc.append("t", 0, "1", 5, null, "y", undefined, sink, 0);
  assert.equal(acc.drain(true)!.builder.count, 1, "flushing ignores linger");
});

Deno.test("RecordAccumulator keeps acks apart and partitions take turns", () => {
  const acc = new RecordAccumulator({ batchBytes: 1 << 20, lingerMs: 0, now: clock().now });
  acc.append("t", 0, "1", 5, null, "a", undefined, sink, 0);
  acc.append("t", 0, "all", 5, null, "b", undefined, sink, 1);
  acc.append("u", 0, "1", 5, null, "c", undefined, sink, 0);
  const x = acc.drain(false)!;
  const y = acc.drain(false)!;
  assert.deepEqual([x.topic, x.acks], ["t", "1"]);
  assert.deepEqual([y.topic, y.acks], ["u", "1"]);
  acc.unmute("t", 0);
  assert.equal(acc.drain(false)!.acks, "all");
});
