/**
 * Damage on purpose, as Kafka's LogSegment and LogLoader tests do: cut, flip, delete and
 * garble files of a closed log, reopen it, and check that exactly the valid prefix survives
 * and that appends continue at the next offset.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { batchOf, copyDir, readAll, recordsOf, type SimpleRecord } from "./_fixtures.ts";

const LOG = "00000000000000000000.log";
const INDEX = "00000000000000000000.index";
const TIME_INDEX = "00000000000000000000.timeindex";
const CONFIG = { indexIntervalBytes: 200 };

interface Built {
  records: SimpleRecord[];
  /** per batch: [start position, end position, first offset, offset after] */
  batches: [number, number, number, number][];
  size: number;
}

/** Builds a one-segment log of 30 batches of varied sizes and closes it cleanly. */
async function build(dir: string): Promise<Built> {
  const log = await PartitionLog.open(dir, CONFIG);
  const records: SimpleRecord[] = [];
  for (let i = 0; i < 30; i++) {
    const n = 1 + (i % 4);
    const first = log.logEndOffset;
    const values = Array.from(
      { length: n },
      (_, j) => `v${first + j}-${"p".repeat((i * 37) % 150)}`,
    );
    const ts = 1_000_000 + i * 1000;
    await log.append(batchOf(values, ts));
    values.forEach((value, j) => records.push({ offset: first + j, value, timestamp: ts }));
  }
  const batches: Built["batches"] = [];
  let position = 0;
  for (let offset = 0; offset < log.logEndOffset;) {
    const r = await log.read(offset, 1);
    batches.push([position, position + r.bytes.length, offset, r.nextOffset]);
    position += r.bytes.length;
    offset = r.nextOffset;
  }
  const size = log.size;
  await log.close();
  return { records, batches, size };
}

async function writeRecoveryPoint(dir: string, offset: number): Promise<void> {
  await Deno.writeTextFile(`${dir}/recovery-point-offset-checkpoint`, `0\n${offset}\n`);
}

/** Reopens, checks the surviving records equal `expected` and that appends continue. */
async function expectPrefix(dir: string, expected: SimpleRecord[]): Promise<PartitionLog> {
  const log = await PartitionLog.open(dir, CONFIG);
  assert.equal(log.logEndOffset, expected.length);
  assert.deepEqual(await readAll(log), expected);
  for (let offset = 0; offset < expected.length; offset += 3) {
    const got = recordsOf((await log.read(offset, 1)).bytes).find((r) => r.offset === offset);
    assert.deepEqual(got, expected[offset]);
  }
  const next = await log.append(batchOf(["after"], 9_999_999));
  assert.equal(next.baseOffset, expected.length);
  return log;
}

Deno.test("a log cut at a random byte keeps exactly the whole batches before the cut", async () => {
  await using dir = await tempDir();
  const built = await build(`${dir.path}/original`);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: built.size - 1 }),
      fc.boolean(),
      async (cut, crash) => {
        const d = `${dir.path}/cut-${run++}`;
        await copyDir(`${dir.path}/original`, d);
        await Deno.truncate(`${d}/${LOG}`, cut);
        if (crash) {
          await Deno.remove(`${d}/.clean-shutdown`);
          await writeRecoveryPoint(d, 0);
        }
        const whole = built.batches.filter(([, end]) => end <= cut);
        const validEnd = whole.length === 0 ? 0 : whole[whole.length - 1][1];
        const nextOffset = whole.length === 0 ? 0 : whole[whole.length - 1][3];
        const log = await expectPrefix(d, built.records.slice(0, nextOffset));
        assert.equal(log.recovery.truncatedBytes, cut - validEnd);
        if (crash) assert.equal(log.recovery.scannedBytes, validEnd);
        await log.close();
        const again = await PartitionLog.open(d, CONFIG);
        assert.equal(again.recovery.clean, true);
        assert.equal(again.logEndOffset, nextOffset + 1);
        await again.close();
        await Deno.remove(d, { recursive: true });
      },
    ),
    { numRuns: 12 },
  );
});

Deno.test("a flipped byte inside the last batch drops that batch after a crash", async () => {
  await using dir = await tempDir();
  const built = await build(`${dir.path}/original`);
  const [start, end, firstOffset] = built.batches[built.batches.length - 1];
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: start + 21, max: end - 1 }),
      fc.boolean(),
      async (at, fullScan) => {
        const d = `${dir.path}/flip-${run++}`;
        await copyDir(`${dir.path}/original`, d);
        const bytes = await Deno.readFile(`${d}/${LOG}`);
        bytes[at] ^= 0x5a;
        await Deno.writeFile(`${d}/${LOG}`, bytes);
        await Deno.remove(`${d}/.clean-shutdown`);
        // The crash came after data up to the last batch was flushed (or before any flush).
        await writeRecoveryPoint(d, fullScan ? 0 : firstOffset);
        const log = await expectPrefix(d, built.records.slice(0, firstOffset));
        assert.equal(log.recovery.clean, false);
        assert.equal(log.recovery.truncatedBytes, end - start);
        assert.equal(log.recovery.scannedBytes, fullScan ? start : 0);
        assert.match(log.recovery.message ?? "", /CRC/);
        await log.close();
        await Deno.remove(d, { recursive: true });
      },
    ),
    { numRuns: 6 },
  );
});

Deno.test("a torn write after the recovery point is cut, and appends continue", async () => {
  await using dir = await tempDir();
  const built = await build(dir.path);
  const torn = batchOf(["never acknowledged"]).subarray(0, 50);
  const file = await Deno.open(`${dir.path}/${LOG}`, { append: true });
  await file.write(torn);
  file.close();
  await Deno.remove(`${dir.path}/.clean-shutdown`);
  const log = await expectPrefix(dir.path, built.records);
  assert.equal(log.recovery.truncatedBytes, 50);
  assert.match(log.recovery.message ?? "", /torn/);
  await log.close();
});

Deno.test("a missing clean-shutdown marker makes open() check only what lies past the recovery point", async () => {
  await using dir = await tempDir();
  const built = await build(`${dir.path}/a`);
  await copyDir(`${dir.path}/a`, `${dir.path}/b`);
  await copyDir(`${dir.path}/a`, `${dir.path}/c`);
  await Deno.remove(`${dir.path}/a/.clean-shutdown`);
  const a = await expectPrefix(`${dir.path}/a`, built.records);
  assert.deepEqual(a.recovery, {
    clean: false,
    scannedBytes: 0,
    truncatedBytes: 0,
    rebuiltIndexes: 0,
  });
  await a.close();
  // Recovery point 0 (or no checkpoint): everything is checked, and all of it is valid.
  await Deno.remove(`${dir.path}/b/.clean-shutdown`);
  await Deno.remove(`${dir.path}/b/recovery-point-offset-checkpoint`);
  const b = await expectPrefix(`${dir.path}/b`, built.records);
  assert.equal(b.recovery.scannedBytes, built.size);
  assert.equal(b.recovery.truncatedBytes, 0);
  await b.close();
  // Recovery point in the middle: exactly the batches from there on are checked.
  const [position, , offset] = built.batches[20];
  await Deno.remove(`${dir.path}/c/.clean-shutdown`);
  await writeRecoveryPoint(`${dir.path}/c`, offset);
  const c = await expectPrefix(`${dir.path}/c`, built.records);
  assert.equal(c.recovery.scannedBytes, built.size - position);
  await c.close();
});

Deno.test("a deleted index is rebuilt from the log", async () => {
  await using dir = await tempDir();
  const built = await build(dir.path);
  await Deno.remove(`${dir.path}/${INDEX}`);
  await Deno.remove(`${dir.path}/${TIME_INDEX}`);
  const log = await expectPrefix(dir.path, built.records);
  assert.equal(log.recovery.rebuiltIndexes, 1);
  assert.match(log.recovery.message ?? "", /missing/);
  assert.equal(await log.offsetForTimestamp(1_000_000 + 17 * 1000), built.batches[17][2]);
  await log.close();
  assert.ok((await Deno.stat(`${dir.path}/${INDEX}`)).size > 0, "the index file was written again");
  const again = await PartitionLog.open(dir.path, CONFIG);
  assert.equal(again.recovery.rebuiltIndexes, 0);
  await again.close();
});

Deno.test("half an index entry, or entries out of order or past the log, get the index rebuilt", async () => {
  await using dir = await tempDir();
  const built = await build(`${dir.path}/original`);
  const index = await Deno.readFile(`${dir.path}/original/${INDEX}`);
  assert.ok(index.length >= 16, "the test needs an index with entries");
  const halfEntry = new Uint8Array([...index, 0, 0, 0, 7]);
  const swapped = new Uint8Array([
    ...index.subarray(8, 16),
    ...index.subarray(0, 8),
    ...index.subarray(16),
  ]);
  const pastLog = index.slice();
  new DataView(pastLog.buffer).setUint32(pastLog.length - 4, built.size + 100);
  const halfTimeEntry = new Uint8Array([
    ...(await Deno.readFile(`${dir.path}/original/${TIME_INDEX}`)),
    1,
    2,
    3,
    4,
    5,
  ]);
  const cases: [string, string, Uint8Array, RegExp][] = [
    ["half", INDEX, halfEntry, /multiple of 8/],
    ["swapped", INDEX, swapped, /out of order/],
    ["past", INDEX, pastLog, /past the log/],
    ["time", TIME_INDEX, halfTimeEntry, /multiple of 12/],
  ];
  for (const [name, file, bytes, reason] of cases) {
    const d = `${dir.path}/${name}`;
    await copyDir(`${dir.path}/original`, d);
    await Deno.writeFile(`${d}/${file}`, bytes);
    const log = await expectPrefix(d, built.records);
    assert.equal(log.recovery.rebuiltIndexes, 1, name);
    assert.match(log.recovery.message ?? "", reason);
    await log.close();
  }
});

Deno.test("a damaged index of a closed segment is rebuilt too", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path, { segmentBytes: 2048, indexIntervalBytes: 100 });
  const records: SimpleRecord[] = [];
  for (let i = 0; i < 60; i++) {
    const first = log.logEndOffset;
    await log.append(batchOf([`v${first}`, `w${first}`], 5000 + i));
    records.push({ offset: first, value: `v${first}`, timestamp: 5000 + i });
    records.push({ offset: first + 1, value: `w${first}`, timestamp: 5000 + i });
  }
  assert.ok(log.segmentCount >= 3);
  await log.close();
  await Deno.remove(`${dir.path}/${INDEX}`);
  const garbled = await Deno.readFile(`${dir.path}/${TIME_INDEX}`);
  await Deno.writeFile(`${dir.path}/${TIME_INDEX}`, garbled.subarray(0, garbled.length - 3));
  const reopened = await expectPrefix(dir.path, records);
  assert.equal(reopened.recovery.rebuiltIndexes, 1);
  assert.equal(await reopened.offsetForTimestamp(5010), 20);
  await reopened.close();
});

Deno.test("a damaged checkpoint is reported and the log is recovered from its start", async () => {
  await using dir = await tempDir();
  const built = await build(dir.path);
  await Deno.writeTextFile(`${dir.path}/recovery-point-offset-checkpoint`, "garbage");
  const log = await expectPrefix(dir.path, built.records);
  assert.equal(log.recovery.clean, false);
  assert.equal(log.recovery.scannedBytes, built.size);
  assert.match(log.recovery.message ?? "", /Checkpoint/);
  await log.close();
});
