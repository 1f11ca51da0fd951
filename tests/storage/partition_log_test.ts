import assert from "node:assert/strict";
import { compressBatch } from "../../src/protocol/compression.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { encodeBatch, POS, splitBatches } from "../../src/protocol/record_batch.ts";
import { DEFAULT_LOG_CONFIG, PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { appendNumbered, batchOf, readAll, recordsOf, segmentFiles } from "./_fixtures.ts";

async function segmentSizes(dir: string): Promise<number[]> {
  const names = await segmentFiles(dir);
  return await Promise.all(names.map(async (n) => (await Deno.stat(`${dir}/${n}`)).size));
}

const SMALL = { segmentBytes: 1024, indexIntervalBytes: 128 };

function assertOutOfRange(e: unknown, start: number, end: number): true {
  assert.ok(e instanceof RillError);
  assert.equal(e.code, "OFFSET_OUT_OF_RANGE");
  assert.deepEqual(e.details, { logStartOffset: start, logEndOffset: end });
  return true;
}

Deno.test("PartitionLog.open() creates an empty log with Kafka's defaults", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(`${dir.path}/orders-0`);
  assert.equal(log.logStartOffset, 0);
  assert.equal(log.logEndOffset, 0);
  assert.equal(log.size, 0);
  assert.deepEqual(log.config, DEFAULT_LOG_CONFIG);
  assert.equal(log.recovery.clean, true);
  assert.deepEqual(await log.read(0, 1024), { bytes: new Uint8Array(0), nextOffset: 0 });
  await log.close();
});

Deno.test("append() assigns contiguous offsets across rolls and reads follow them", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, SMALL);
  const expected = await appendNumbered(log, 120, 4);
  assert.ok(log.segmentCount > 5, `expected several segments, got ${log.segmentCount}`);
  assert.equal(log.logEndOffset, expected.length);
  assert.deepEqual(await segmentFiles(dir.path, ".log"), await segmentFiles(dir.path, ".log"));
  const names = await segmentFiles(dir.path);
  assert.equal(names[0], "00000000000000000000.log");
  assert.ok(names.every((n) => /^\d{20}\.log$/.test(n)));
  assert.deepEqual(await readAll(log), expected);
  await log.close();
});

Deno.test("read() from any offset returns the batch holding it, mid-batch and across segments", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, SMALL);
  const expected = await appendNumbered(log, 60, 5);
  for (let offset = 0; offset < log.logEndOffset; offset++) {
    const r = await log.read(offset, 1);
    const records = recordsOf(r.bytes);
    assert.ok(records.length > 0);
    assert.ok(records[0].offset <= offset, "the first batch starts at or before the offset");
    assert.equal(r.nextOffset, records[records.length - 1].offset + 1);
    assert.ok(r.nextOffset > offset, "the first batch holds the offset");
    assert.deepEqual(records.find((x) => x.offset === offset), expected[offset]);
    // From every offset, following nextOffset crosses segment boundaries to the end.
    if (offset % 7 === 0) assert.deepEqual(await readAll(log, offset, 300), expected.slice(offset));
  }
  await log.close();
});

Deno.test("read() returns at least one whole batch, and whole batches only up to maxBytes", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  const big = "x".repeat(3000);
  await log.append(batchOf([big, big]));
  await log.append(batchOf(["a"]));
  await log.append(batchOf(["b"]));
  const r = await log.read(0, 10);
  assert.deepEqual(recordsOf(r.bytes).map((x) => x.offset), [0, 1]);
  assert.equal(r.nextOffset, 2);
  const all = await log.read(0, 1 << 20);
  assert.equal(all.nextOffset, 4);
  const firstTwo = splitBatches(all.bytes).slice(0, 2).reduce((n, b) => n + b.length, 0);
  const cut = await log.read(0, firstTwo + 10);
  assert.equal(cut.bytes.length, firstTwo);
  assert.equal(cut.nextOffset, 3);
  await log.close();
});

Deno.test("read() never returns a batch at or beyond maxOffset", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  await log.append(batchOf(["a", "b"]));
  await log.append(batchOf(["c", "d"]));
  await log.append(batchOf(["e"]));
  assert.deepEqual(
    recordsOf((await log.read(0, 1 << 20, { maxOffset: 4 })).bytes).map((r) => r.value),
    [
      "a",
      "b",
      "c",
      "d",
    ],
  );
  // A batch straddling the bound is held back whole.
  assert.equal((await log.read(0, 1 << 20, { maxOffset: 3 })).nextOffset, 2);
  assert.deepEqual(await log.read(2, 1 << 20, { maxOffset: 3 }), {
    bytes: new Uint8Array(0),
    nextOffset: 2,
  });
  assert.deepEqual(await log.read(4, 1 << 20, { maxOffset: 4 }), {
    bytes: new Uint8Array(0),
    nextOffset: 4,
  });
  await log.close();
});

Deno.test("read() outside [logStartOffset, logEndOffset] fails with OFFSET_OUT_OF_RANGE and the bounds", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, SMALL);
  await appendNumbered(log, 30, 3);
  await log.deleteRecordsBefore(10);
  const end = log.logEndOffset;
  await assert.rejects(log.read(9, 100), (e) => assertOutOfRange(e, 10, end));
  await assert.rejects(log.read(end + 1, 100), (e) => assertOutOfRange(e, 10, end));
  await assert.rejects(log.read(-1, 100), (e) => assertOutOfRange(e, 10, end));
  assert.deepEqual(await log.read(end, 100), { bytes: new Uint8Array(0), nextOffset: end });
  await log.close();
});

Deno.test("append() of bad bytes fails with CORRUPT_MESSAGE and changes nothing", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  await log.append(batchOf(["a"]));
  const good = batchOf(["b"]);
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(0), /at least one batch/],
    [good.subarray(0, 40), /cut short/],
    [good.subarray(0, good.length - 1), /remain/],
    [
      (() => {
        const b = good.slice();
        b[POS.magic] = 1;
        return b;
      })(),
      /magic 1/,
    ],
  ];
  for (const [bytes, message] of cases) {
    await assert.rejects(log.append(bytes), (e) => {
      assert.ok(e instanceof RillError);
      assert.equal(e.code, "CORRUPT_MESSAGE");
      assert.match(e.message, message);
      return true;
    });
  }
  assert.equal(log.logEndOffset, 1);
  assert.deepEqual((await readAll(log)).map((r) => r.value), ["a"]);
  await log.close();
});

Deno.test("append() writes baseOffset and partitionLeaderEpoch in place and keeps the CRC valid", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  await log.append(batchOf(["a", "b"]));
  const batch = batchOf(["c"]);
  const result = await log.append(batch, { leaderEpoch: 7 });
  assert.deepEqual(result, { baseOffset: 2, lastOffset: 2, maxTimestamp: 1_700_000_000_000 });
  const view = new DataView(batch.buffer);
  assert.equal(view.getBigInt64(POS.baseOffset), 2n);
  assert.equal(view.getInt32(POS.partitionLeaderEpoch), 7);
  const stored = (await log.read(2, 100)).bytes;
  assert.deepEqual(stored, batch);
  await log.close();
});

Deno.test("append() with several batches in one buffer gives them consecutive offsets", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  const a = batchOf(["a", "b"]);
  const b = batchOf(["c"]);
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  assert.deepEqual(await log.append(both), {
    baseOffset: 0,
    lastOffset: 2,
    maxTimestamp: 1_700_000_000_000,
  });
  assert.deepEqual((await readAll(log)).map((r) => [r.offset, r.value]), [[0, "a"], [1, "b"], [
    2,
    "c",
  ]]);
  await log.close();
});

Deno.test("append() with assignOffsets false keeps offsets and must start at the log end", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  const first = encodeBatch([{ value: new Uint8Array([1]) }, { value: new Uint8Array([2]) }], {
    baseOffset: 0,
  });
  assert.deepEqual(await log.append(first, { assignOffsets: false }), {
    baseOffset: 0,
    lastOffset: 1,
    maxTimestamp: new DataView(first.buffer).getBigInt64(POS.maxTimestamp) > 0n
      ? Number(new DataView(first.buffer).getBigInt64(POS.maxTimestamp))
      : 0,
  });
  const gap = encodeBatch([{ value: new Uint8Array([3]) }], { baseOffset: 5 });
  await assert.rejects(log.append(gap, { assignOffsets: false }), (e) => {
    assert.ok(e instanceof RillError);
    assert.equal(e.code, "OFFSET_OUT_OF_RANGE");
    return true;
  });
  const overlap = encodeBatch([{ value: new Uint8Array([3]) }], { baseOffset: 1 });
  await assert.rejects(log.append(overlap, { assignOffsets: false }), (e) => {
    assert.ok(e instanceof RillError);
    assert.equal(e.code, "CORRUPT_MESSAGE");
    return true;
  });
  const next = encodeBatch([{ value: new Uint8Array([3]) }], { baseOffset: 2 });
  assert.equal((await log.append(next, { assignOffsets: false })).baseOffset, 2);
  assert.equal(log.logEndOffset, 3);
  await log.close();
});

Deno.test("a compressed batch is stored and returned byte for byte", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  const batch = compressBatch(batchOf(["opaque", "bytes"]), "gzip");
  const copy = batch.slice();
  await log.append(batch);
  assert.deepEqual((await log.read(0, 1 << 20)).bytes, copy);
  assert.equal(await log.offsetForTimestamp(0), 0);
  await log.close();
});

Deno.test("appendNow() answers a small append at once; appends made in the same turn still share a write", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  const first = log.appendNow(batchOf(["a"]));
  assert.ok(!(first instanceof Promise), "a small append to an idle log is answered at once");
  assert.equal(first.baseOffset, 0);
  assert.equal(log.logEndOffset, 1);
  // Until the next microtask the writer is busy, as after an async write: these queue up
  // and go out together (group commit), each with its own offsets.
  const writes = log.writeCalls;
  const later = [log.appendNow(batchOf(["b", "c"])), log.appendNow(batchOf(["d"]))];
  assert.ok(later.every((r) => r instanceof Promise));
  const [second, third] = await Promise.all(later);
  assert.deepEqual([second.baseOffset, second.lastOffset, third.baseOffset], [1, 2, 3]);
  assert.equal(log.writeCalls - writes, 1, "the two queued appends went out in one write");
  // Bad input is thrown before anything is written.
  assert.throws(() => log.appendNow(new Uint8Array(10)), RillError);
  assert.equal(log.logEndOffset, 4);
  assert.deepEqual((await readAll(log)).map((r) => r.value), ["a", "b", "c", "d"]);
  await log.close();
});

Deno.test("concurrent append() calls keep their order and get contiguous offsets", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { segmentBytes: 8192 });
  const pending = Array.from(
    { length: 300 },
    (_, i) => log.append(batchOf(Array.from({ length: 1 + (i % 3) }, (_, j) => `c${i}-${j}`))),
  );
  const results = await Promise.all(pending);
  // Appends that queued up while a write was in flight went out together (group commit).
  assert.ok(log.writeCalls < 300, `${log.writeCalls} writes for 300 appends`);
  let next = 0;
  for (let i = 0; i < results.length; i++) {
    assert.equal(results[i].baseOffset, next);
    assert.equal(results[i].lastOffset, next + (i % 3));
    next = results[i].lastOffset + 1;
  }
  const records = await readAll(log);
  assert.equal(records.length, next);
  let k = 0;
  for (let i = 0; i < 300; i++) {
    for (let j = 0; j <= i % 3; j++) assert.equal(records[k++].value, `c${i}-${j}`);
  }
  await log.close();
});

Deno.test({
  name: "small appends queued together go to the file in one write system call",
  fn: async () => {
    await using dir = await tempDir();
    const log = await PartitionLog.open(dir.path);
    await log.append(batchOf(["first"])); // the segment file is open
    // The write calls on files (each one write(2) for bytes this small). Counted at the
    // FsFile methods rather than from /proc/self/io, whose per-process syscw also counts the
    // runtime's own writes (event-loop wake-ups, the test reporter): 15 once in CI.
    const proto = Deno.FsFile.prototype;
    const { write, writeSync } = proto;
    let writes = 0;
    proto.write = function (this: Deno.FsFile, p: Uint8Array) {
      writes++;
      return write.call(this, p);
    };
    proto.writeSync = function (this: Deno.FsFile, p: Uint8Array) {
      writes++;
      return writeSync.call(this, p);
    };
    let results;
    try {
      // The first is written at once; the 99 queued meanwhile go out as one group.
      results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => log.append(batchOf([`r${i}`]))),
      );
    } finally {
      proto.write = write;
      proto.writeSync = writeSync;
    }
    assert.ok(writes <= 10, `${writes} write calls for 100 appends`);
    assert.deepEqual(
      results.map((r) => r.baseOffset),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    const records = await readAll(log);
    assert.deepEqual(records.map((r) => r.value), ["first", ...results.map((_, i) => `r${i}`)]);
    await log.close();
  },
});

Deno.test("a read beside appends never sees half a batch", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { segmentBytes: 256 * 1024 });
  const value = "y".repeat(20_000);
  const pending = Array.from({ length: 60 }, (_, i) => log.append(batchOf([`${i}`, value, value])));
  let reads = 0;
  for (const p of pending) {
    // Appends after `p` are queued or being written while this read runs.
    let offset = log.logStartOffset;
    while (offset < log.logEndOffset) {
      const r = await log.read(offset, 1 << 20);
      const records = recordsOf(r.bytes); // throws on a partial batch or a bad CRC
      assert.ok(records.length % 3 === 0);
      offset = r.nextOffset;
      reads++;
    }
    await p;
  }
  assert.ok(reads > 0);
  assert.equal(log.logEndOffset, 180);
  await log.close();
});

Deno.test("offsetForTimestamp() finds the first record at or after a timestamp", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, SMALL);
  // 40 batches of 3 records; record k has timestamp 1000 + 10k.
  for (let i = 0; i < 40; i++) {
    const ts = [0, 1, 2].map((j) => 1000 + 10 * (3 * i + j));
    await log.append(batchOf([`a${i}`, `b${i}`, `c${i}`], ts));
  }
  assert.ok(log.segmentCount > 2);
  assert.equal(await log.offsetForTimestamp(0), 0);
  assert.equal(await log.offsetForTimestamp(1000), 0);
  assert.equal(await log.offsetForTimestamp(1001), 1);
  assert.equal(await log.offsetForTimestamp(1010), 1);
  for (let k = 0; k < 120; k += 7) {
    assert.equal(await log.offsetForTimestamp(1000 + 10 * k), k);
    assert.equal(await log.offsetForTimestamp(1000 + 10 * k - 5), k);
  }
  assert.equal(await log.offsetForTimestamp(1000 + 10 * 119), 119);
  assert.equal(await log.offsetForTimestamp(1000 + 10 * 119 + 1), null);
  await log.deleteRecordsBefore(50);
  assert.equal(await log.offsetForTimestamp(0), 50);
  await log.close();
  const reopened = await PartitionLog.open(dir.path, SMALL);
  assert.equal(await reopened.offsetForTimestamp(1000 + 10 * 77 - 3), 77);
  await reopened.close();
});

Deno.test("offsetForTimestamp() copes with timestamps that go backwards", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { indexIntervalBytes: 64 });
  await log.append(batchOf(["a"], 5000));
  await log.append(batchOf(["b"], 1000));
  await log.append(batchOf(["c"], 3000));
  await log.append(batchOf(["d"], 6000));
  assert.equal(await log.offsetForTimestamp(2000), 0);
  assert.equal(await log.offsetForTimestamp(5500), 3);
  assert.equal(await log.offsetForTimestamp(7000), null);
  await log.close();
});

Deno.test("the active segment rolls on segment.ms, by the injected clock", async () => {
  await using dir = await tempDir();
  let now = 1_000_000;
  const log = await PartitionLog.open(dir.path, { segmentMs: 60_000 }, { now: () => now });
  await log.append(batchOf(["a"], now));
  now += 30_000;
  await log.append(batchOf(["b"], now));
  assert.equal(log.segmentCount, 1);
  now += 31_000;
  await log.append(batchOf(["c"], now));
  assert.equal(log.segmentCount, 2);
  assert.deepEqual(await segmentFiles(dir.path), [
    "00000000000000000000.log",
    "00000000000000000002.log",
  ]);
  await log.close();
});

Deno.test("applyRetention() deletes closed segments older than retention.ms, never the active one", async () => {
  await using dir = await tempDir();
  let now = 10_000_000;
  const log = await PartitionLog.open(dir.path, { segmentMs: 1000, retentionMs: 5000 }, {
    now: () => now,
  });
  for (let i = 0; i < 6; i++) {
    await log.append(batchOf([`r${i}`], now));
    now += 1500; // each append rolls the previous segment
  }
  assert.equal(log.segmentCount, 6);
  // Segments' newest records are at t0, t0+1.5s, ... t0+7.5s; now = t0+9s; cutoff = t0+4s.
  assert.equal(await log.applyRetention(), 3);
  assert.equal(log.logStartOffset, 3);
  assert.equal(log.segmentCount, 3);
  assert.deepEqual((await readAll(log)).map((r) => r.value), ["r3", "r4", "r5"]);
  now += 1_000_000;
  assert.equal(await log.applyRetention(), 2);
  assert.equal(log.segmentCount, 1, "the active segment stays");
  assert.equal(log.logStartOffset, 5);
  await log.close();
  const reopened = await PartitionLog.open(dir.path, {}, { now: () => now });
  assert.equal(reopened.logStartOffset, 5);
  assert.equal(reopened.logEndOffset, 6);
  await reopened.close();
});

Deno.test("applyRetention() deletes the oldest segments while the log exceeds retention.bytes", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { segmentBytes: 1000, retentionMs: -1 });
  await appendNumbered(log, 90, 3);
  const segments = log.segmentCount;
  assert.ok(segments > 4);
  assert.equal(await log.applyRetention(), 0, "no size limit by default");
  log.updateConfig({ retentionBytes: 2500 });
  const deleted = await log.applyRetention();
  assert.ok(deleted > 0);
  // As Kafka: delete the oldest segments while what remains is still ≥ retention.bytes.
  assert.ok(log.size >= 2500, `size ${log.size}`);
  assert.ok(log.size - (await segmentSizes(dir.path))[0] < 2500);
  assert.equal(log.segmentCount, segments - deleted);
  const records = await readAll(log);
  assert.equal(records[0].offset, log.logStartOffset);
  assert.equal(records[records.length - 1].offset, log.logEndOffset - 1);
  await log.close();
});

Deno.test("truncateTo() removes whole batches from the offset on, and appends continue", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, SMALL);
  const expected = await appendNumbered(log, 50, 4);
  const segmentsBefore = log.segmentCount;
  // Offset 40 sits inside a batch: the whole batch goes.
  const batchStart = (await log.read(40, 1)).bytes;
  const first = recordsOf(batchStart)[0].offset;
  await log.truncateTo(40);
  assert.equal(log.logEndOffset, first);
  assert.ok(log.segmentCount < segmentsBefore);
  assert.deepEqual(await readAll(log), expected.slice(0, first));
  const r = await log.append(batchOf(["after"]));
  assert.equal(r.baseOffset, first);
  await log.truncateTo(5);
  assert.equal(log.logEndOffset <= 5, true);
  const end = log.logEndOffset;
  await log.append(batchOf(["again"]));
  await log.close();
  const reopened = await PartitionLog.open(dir.path, SMALL);
  assert.equal(reopened.recovery.clean, true);
  const records = await readAll(reopened);
  assert.deepEqual(records.slice(0, end), expected.slice(0, end));
  assert.deepEqual(records.slice(end).map((x) => x.value), ["again"]);
  await reopened.close();
});

Deno.test("truncateTo() below the log start offset empties the log and restarts it there", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, SMALL);
  await appendNumbered(log, 20, 3);
  await log.deleteRecordsBefore(15);
  await log.truncateTo(12);
  assert.equal(log.logStartOffset, 12);
  assert.equal(log.logEndOffset, 12);
  assert.equal((await log.append(batchOf(["x"]))).baseOffset, 12);
  await log.close();
});

Deno.test("deleteRecordsBefore() advances the log start offset and deletes whole segments below it", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, SMALL);
  const expected = await appendNumbered(log, 60, 3);
  const segments = log.segmentCount;
  await log.deleteRecordsBefore(70);
  assert.equal(log.logStartOffset, 70);
  assert.ok(log.segmentCount < segments);
  const records = await readAll(log);
  assert.deepEqual(records, expected.slice(70));
  await assert.rejects(log.deleteRecordsBefore(log.logEndOffset + 1), (e) => {
    assert.ok(e instanceof RillError);
    assert.equal(e.code, "OFFSET_OUT_OF_RANGE");
    return true;
  });
  await log.deleteRecordsBefore(3); // below the start: nothing happens
  assert.equal(log.logStartOffset, 70);
  await log.deleteRecordsBefore(log.logEndOffset);
  assert.equal(log.logStartOffset, log.logEndOffset);
  assert.equal(log.segmentCount, 1);
  const end = log.logEndOffset;
  await log.close();
  const reopened = await PartitionLog.open(dir.path, SMALL);
  assert.equal(reopened.logStartOffset, end);
  assert.equal(reopened.logEndOffset, end);
  assert.equal((await reopened.append(batchOf(["z"]))).baseOffset, end);
  await reopened.close();
});

Deno.test("close() then open() scans nothing and finds the same log", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, SMALL);
  const expected = await appendNumbered(log, 40, 4);
  const size = log.size;
  await log.close();
  await assert.rejects(
    log.append(batchOf(["late"])),
    (e) => e instanceof RillError && e.code === "KAFKA_STORAGE_ERROR",
  );
  const reopened = await PartitionLog.open(dir.path, SMALL);
  assert.deepEqual(reopened.recovery, {
    clean: true,
    scannedBytes: 0,
    truncatedBytes: 0,
    rebuiltIndexes: 0,
  });
  assert.equal(reopened.logEndOffset, expected.length);
  assert.equal(reopened.size, size);
  assert.deepEqual(await readAll(reopened), expected);
  assert.equal((await reopened.append(batchOf(["next"]))).baseOffset, expected.length);
  await reopened.delete();
  await assert.rejects(Deno.stat(dir.path + "/00000000000000000000.log"), Deno.errors.NotFound);
});

Deno.test("flush policies 'always' and 'interval' keep appends readable and advance the recovery point", async () => {
  await using dir = await tempDir();
  for (const flush of [{ mode: "always" }, { mode: "interval", ms: 5 }] as const) {
    const log = await PartitionLog.open(`${dir.path}/${flush.mode}`, { flush });
    const expected = await appendNumbered(log, 10, 2);
    await log.flush();
    assert.equal(log.recoveryPoint, log.logEndOffset);
    assert.deepEqual(await readAll(log), expected);
    await log.close();
  }
});

Deno.test("updateConfig() rejects bad settings with INVALID_CONFIG and changes nothing", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  for (
    const bad of [{ segmentBytes: 0 }, { retentionMs: -2 }, {
      flush: { mode: "interval", ms: 0 } as const,
    }]
  ) {
    assert.throws(
      () => log.updateConfig(bad),
      (e) => e instanceof RillError && e.code === "INVALID_CONFIG",
    );
  }
  assert.deepEqual(log.config, DEFAULT_LOG_CONFIG);
  await assert.rejects(PartitionLog.open(`${dir.path}/x`, { indexIntervalBytes: -5 }), RillError);
  await log.close();
});
