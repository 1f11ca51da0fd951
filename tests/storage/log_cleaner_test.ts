/**
 * Log compaction of a PartitionLog (`src/storage/log_cleaner.ts`): what is kept, the
 * offsets, tombstones, the active segment, reads from removed offsets, and reopening.
 */
import assert from "node:assert/strict";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { copyDir } from "./_fixtures.ts";
import {
  compactedModel,
  keyedBatch,
  type KeyedRecord,
  keyedRecordsOf,
  readKeyed,
} from "./_compaction_fixtures.ts";

const T0 = 1_700_000_000_000;

/** Appends one keyed record per batch; returns what was appended. */
async function appendKeyed(
  log: PartitionLog,
  records: { key: string | null; value: string | null }[],
): Promise<KeyedRecord[]> {
  const out: KeyedRecord[] = [];
  for (const r of records) {
    const { baseOffset } = await log.append(keyedBatch([r]));
    out.push({ offset: baseOffset, ...r });
  }
  return out;
}

function updates(n: number, keys: number, tag = "v"): { key: string; value: string }[] {
  return Array.from({ length: n }, (_, i) => ({ key: `k${i % keys}`, value: `${tag}${i}` }));
}

/** The base offset of the active segment (the last `.log` file). */
async function activeBase(dir: string): Promise<number> {
  const bases: number[] = [];
  for await (const e of Deno.readDir(dir)) {
    const m = /^(\d{20})\.log$/.exec(e.name);
    if (m) bases.push(Number(m[1]));
  }
  return Math.max(...bases);
}

Deno.test("clean() keeps the latest record per key at its original offset, and the log end", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { compact: true, segmentBytes: 600 });
  try {
    const appended = await appendKeyed(log, updates(200, 7));
    const end = log.logEndOffset;
    const sizeBefore = log.size;
    const result = await log.clean();
    assert.ok(result, "a pass ran");
    assert.ok(result.recordsRemoved > 0);
    const active = await activeBase(dir.path);
    assert.deepEqual(await readKeyed(log), compactedModel(appended, active));
    assert.equal(log.logEndOffset, end, "the log end offset does not move");
    assert.equal(log.logStartOffset, 0);
    assert.ok(log.size < sizeBefore / 3, `${log.size} bytes left of ${sizeBefore}`);
    assert.equal(result.firstDirtyOffset, active);
    assert.equal(await log.clean(), null, "nothing dirty: the next pass does nothing");
    // Appends continue after the gaps.
    const { baseOffset } = await log.append(keyedBatch([{ key: "k0", value: "after" }]));
    assert.equal(baseOffset, end);
  } finally {
    await log.close();
  }
});

Deno.test("clean() leaves the active segment alone, and does nothing without compact", async () => {
  await using dir = await tempDir();
  const plain = await PartitionLog.open(`${dir.path}/plain`, { segmentBytes: 600 });
  await appendKeyed(plain, updates(50, 3));
  assert.equal(await plain.clean(), null, "cleanup.policy=delete: no compaction");
  await plain.close();

  const log = await PartitionLog.open(`${dir.path}/c`, { compact: true });
  try {
    const appended = await appendKeyed(log, updates(50, 3));
    const path = `${dir.path}/c/${"0".repeat(20)}.log`;
    const before = await Deno.readFile(path);
    assert.equal(await log.clean(), null, "one segment, the active one: nothing to clean");
    assert.deepEqual(await Deno.readFile(path), before);
    assert.deepEqual(await readKeyed(log), appended);
  } finally {
    await log.close();
  }
});

Deno.test("a read from an offset that compaction removed returns the next batch", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { compact: true, segmentBytes: 400 });
  try {
    // k0 is updated often (its old records go), k-i once each (kept).
    const records = [];
    for (let i = 0; i < 60; i++) {
      records.push(i % 2 === 0 ? { key: "k0", value: `v${i}` } : { key: `k-${i}`, value: `w${i}` });
    }
    await appendKeyed(log, records);
    await log.clean();
    // Offset 0 (k0=v0) is gone: reading from it gives offset 1 first.
    const r = await log.read(0, 100);
    const got = keyedRecordsOf(r.bytes);
    assert.equal(got[0].offset, 1);
    assert.ok(r.nextOffset > 1);
    // From any offset, reads (following nextOffset past empty batches, as a consumer does)
    // reach the next record kept.
    const kept = (await readKeyed(log)).map((x) => x.offset);
    for (let o = 0; o < kept[kept.length - 1]; o++) {
      let at = o;
      let first: KeyedRecord | undefined;
      for (let guard = 0; !first && guard < 100; guard++) {
        const r = await log.read(at, 1);
        assert.ok(r.nextOffset > at, `read(${at}) moves on`);
        first = keyedRecordsOf(r.bytes).find((x) => x.offset >= o);
        at = r.nextOffset;
      }
      assert.equal(first?.offset, kept.find((k) => k >= o), `from ${o}`);
    }
  } finally {
    await log.close();
  }
});

Deno.test("tombstones outlive their first cleaning by delete.retention.ms, then go", async () => {
  await using dir = await tempDir();
  let now = T0;
  const log = await PartitionLog.open(dir.path, {
    compact: true,
    segmentBytes: 100_000,
    deleteRetentionMs: 60_000,
    minCleanableDirtyRatio: 0,
  }, { now: () => now });
  try {
    await appendKeyed(log, [
      { key: "a", value: "1" },
      { key: "b", value: "1" },
      { key: "a", value: null },
      { key: "c", value: "1" },
    ]);
    await log.roll();
    await appendKeyed(log, [{ key: "d", value: "1" }]);
    await log.clean();
    assert.deepEqual(await readKeyed(log), [
      { offset: 1, key: "b", value: "1" },
      { offset: 2, key: "a", value: null },
      { offset: 3, key: "c", value: "1" },
      { offset: 4, key: "d", value: "1" },
    ], "the tombstone is kept: consumers must see the delete");

    now += 59_000;
    await log.roll();
    await appendKeyed(log, [{ key: "e", value: "1" }]);
    await log.clean();
    assert.ok((await readKeyed(log)).some((r) => r.key === "a"), "still within retention");

    now += 2_000;
    await log.roll();
    await appendKeyed(log, [{ key: "f", value: "1" }]);
    await log.clean();
    assert.deepEqual((await readKeyed(log)).map((r) => r.key), ["b", "c", "d", "e", "f"]);
  } finally {
    await log.close();
  }
});

Deno.test("records without a key are dropped by compaction, as Kafka's cleaner does", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { compact: true });
  try {
    await appendKeyed(log, [{ key: null, value: "x" }, { key: "a", value: "1" }]);
    await log.roll();
    await appendKeyed(log, [{ key: "b", value: "1" }]);
    await log.clean();
    assert.deepEqual((await readKeyed(log)).map((r) => r.offset), [1, 2]);
  } finally {
    await log.close();
  }
});

Deno.test("min.compaction.lag.ms and maxOffset keep recent segments out of a pass", async () => {
  await using dir = await tempDir();
  let now = T0;
  const log = await PartitionLog.open(dir.path, {
    compact: true,
    minCompactionLagMs: 10_000,
  }, { now: () => now });
  try {
    const appended = await appendKeyed(log, updates(10, 2));
    await log.roll();
    await appendKeyed(log, updates(1, 2, "x"));
    now = T0 - 1; // records stamped T0 are younger than the lag
    assert.equal(await log.clean(), null);
    now = T0 + 10_000;
    assert.equal(await log.clean({ maxOffset: 9 }), null, "not below the high watermark");
    assert.ok(await log.clean({ maxOffset: 11 }));
    assert.deepEqual((await readKeyed(log)).slice(0, 2), compactedModel(appended, 10));
  } finally {
    await log.close();
  }
});

Deno.test("a compacted log reopens the same after a clean close and after a crash", async () => {
  await using dir = await tempDir();
  const logDir = `${dir.path}/log`;
  const log = await PartitionLog.open(logDir, {
    compact: true,
    segmentBytes: 500,
    indexIntervalBytes: 64,
  });
  const appended = await appendKeyed(log, updates(300, 11));
  await log.clean();
  const expected = await readKeyed(log);
  assert.deepEqual(expected, compactedModel(appended, await activeBase(logDir)));
  await log.settled();
  await copyDir(logDir, `${dir.path}/crashed`); // no clean-shutdown marker: a crash
  await log.close();

  for (const path of [logDir, `${dir.path}/crashed`]) {
    const reopened = await PartitionLog.open(path, { compact: true, segmentBytes: 500 });
    try {
      assert.equal(reopened.recovery.truncatedBytes, 0, reopened.recovery.message);
      assert.deepEqual(await readKeyed(reopened), expected);
      assert.equal(await reopened.clean(), null, "the cleaner checkpoint survived");
      const next = await reopened.append(keyedBatch([{ key: "k0", value: "more" }]));
      assert.equal(next.baseOffset, 300);
    } finally {
      await reopened.close();
    }
  }
});

Deno.test("an idempotent producer's last batch survives as an empty batch, and its state with it", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { compact: true });
  const { encodeBatch } = await import("../../src/protocol/record_batch.ts");
  const enc = new TextEncoder();
  const batch = (key: string, seq: number) =>
    encodeBatch([{ key: enc.encode(key), value: enc.encode(`s${seq}`) }], {
      producerId: 7,
      producerEpoch: 0,
      baseSequence: seq,
    });
  await log.append(batch("a", 0));
  await log.append(batch("a", 1)); // producer 7's last batch, superseded below
  await log.roll();
  await log.append(keyedBatch([{ key: "a", value: "other" }]));
  await log.roll();
  await log.append(keyedBatch([{ key: "z", value: "1" }]));
  await log.clean();
  assert.deepEqual((await readKeyed(log)).map((r) => r.offset), [2, 3]);
  await log.close();
  // Rebuilt from the batch headers alone, producer 7 still ends at sequence 1.
  for await (const e of Deno.readDir(dir.path)) {
    if (e.name.endsWith(".snapshot")) await Deno.remove(`${dir.path}/${e.name}`);
  }
  const reopened = await PartitionLog.open(dir.path, { compact: true });
  try {
    const state = reopened.producerState(7);
    assert.equal(state?.batches.at(-1)?.lastSequence, 1);
    assert.equal(state?.batches.at(-1)?.lastOffset, 1);
  } finally {
    await reopened.close();
  }
});
