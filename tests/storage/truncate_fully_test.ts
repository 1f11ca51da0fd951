/**
 * `PartitionLog.truncateFullyAndStartAt`: a follower behind the leader's log start empties
 * its log and restarts it at the leader's log start offset. Afterwards the log is empty at
 * that offset, appends continue there, and the state survives a clean close and a crash.
 */
import assert from "node:assert/strict";
import { setBaseOffset, setPartitionLeaderEpoch } from "../../src/protocol/record_batch.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { readCheckpoint } from "../../src/storage/checkpoint.ts";
import {
  LOG_START_OFFSET_CHECKPOINT,
  RECOVERY_POINT_CHECKPOINT,
} from "../../src/storage/file_names.ts";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { appendNumbered, batchOf, copyDir, readAll, segmentFiles } from "./_fixtures.ts";
import { idemBatch } from "./_producer_fixtures.ts";

const SMALL = { segmentBytes: 512 };

/** A log of several segments with leader epochs and an idempotent producer's batch. */
async function filledLog(dir: string): Promise<PartitionLog> {
  const log = await PartitionLog.open(dir, SMALL);
  await appendNumbered(log, 20);
  await log.append(idemBatch({ producerId: 7, producerEpoch: 0, baseSequence: 0, count: 2 }), {
    leaderEpoch: 3,
  });
  await appendNumbered(log, 5);
  return log;
}

async function snapshotFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".snapshot")) names.push(e.name);
  return names;
}

async function assertOutOfRange(log: PartitionLog, offset: number): Promise<void> {
  await assert.rejects(
    () => log.read(offset, 4096),
    (e: unknown) => e instanceof RillError && e.code === "OFFSET_OUT_OF_RANGE",
  );
}

/** The state a restarted log must show, open or reopened. */
async function assertRestartedAt(log: PartitionLog, dir: string, offset: number) {
  assert.equal(log.logStartOffset, offset);
  assert.equal(log.logEndOffset, offset);
  assert.equal(log.latestEpoch(), -1, "the leader epoch cache is empty");
  assert.deepEqual(log.leaderEpochEntries(), []);
  assert.equal(log.producerState(7), undefined, "the producer state is empty");
  assert.deepEqual(await segmentFiles(dir), [`${String(offset).padStart(20, "0")}.log`]);
  assert.deepEqual(await readAll(log), []);
  await assertOutOfRange(log, offset - 1);
}

Deno.test("truncateFullyAndStartAt past the log end empties the log and restarts it there", async (t) => {
  await using dir = await tempDir();
  const log = await filledLog(dir.path);
  const oldSegments = await segmentFiles(dir.path);
  assert.ok(oldSegments.length > 2, "the log spans several segments");
  const leoBefore = log.logEndOffset;
  const start = leoBefore + 1000;

  await log.truncateFullyAndStartAt(start);

  await t.step("the log is empty at the new offset; old segments are gone", async () => {
    await assertRestartedAt(log, dir.path, start);
    for (const name of oldSegments) {
      await assert.rejects(() => Deno.stat(`${dir.path}/${name}`), Deno.errors.NotFound);
    }
    assert.deepEqual(await snapshotFiles(dir.path), [], "producer snapshots are deleted");
    assert.equal(await readCheckpoint(dir.path, LOG_START_OFFSET_CHECKPOINT), start);
    assert.equal(await readCheckpoint(dir.path, RECOVERY_POINT_CHECKPOINT), start);
  });

  await t.step("leader appends continue at the new offset", async () => {
    const r = await log.append(batchOf(["a", "b"]), { leaderEpoch: 5 });
    assert.equal(r.baseOffset, start);
    assert.equal(log.logEndOffset, start + 2);
    assert.deepEqual((await readAll(log)).map((x) => [x.offset, x.value]), [
      [start, "a"],
      [start + 1, "b"],
    ]);
    assert.equal(log.latestEpoch(), 5);
  });
  await log.close();
});

Deno.test("truncateFullyAndStartAt takes replica appends whose baseOffset is the new start", async () => {
  await using dir = await tempDir();
  const log = await filledLog(dir.path);
  const start = log.logEndOffset + 50;
  await log.truncateFullyAndStartAt(start);

  const batch = batchOf(["x", "y", "z"]);
  setBaseOffset(batch, start);
  setPartitionLeaderEpoch(batch, 4);
  const r = await log.append(batch, { assignOffsets: false });
  assert.equal(r.baseOffset, start);
  assert.equal(log.logEndOffset, start + 3);
  assert.equal(log.latestEpoch(), 4);

  const gap = batchOf(["w"]);
  setBaseOffset(gap, start + 10);
  await assert.rejects(() => log.append(gap, { assignOffsets: false }), RillError);
  assert.deepEqual((await readAll(log)).map((x) => x.value), ["x", "y", "z"]);
  await log.close();
});

Deno.test("a log restarted by truncateFullyAndStartAt reopens the same after a clean close", async () => {
  await using dir = await tempDir();
  const log = await filledLog(dir.path);
  const start = log.logEndOffset + 7;
  await log.truncateFullyAndStartAt(start);
  await log.close();

  const reopened = await PartitionLog.open(dir.path, SMALL);
  try {
    await assertRestartedAt(reopened, dir.path, start);
    assert.equal((await reopened.append(batchOf(["after"]))).baseOffset, start);
  } finally {
    await reopened.close();
  }
});

Deno.test("a log restarted by truncateFullyAndStartAt reopens the same after a crash", async (t) => {
  // Past the log end (a follower behind the leader's log start) and below it.
  for (const where of ["past the log end", "below the log end"]) {
    await t.step(where, async () => {
      await using dir = await tempDir();
      const logDir = `${dir.path}/log`;
      const crashed = `${dir.path}/crashed`;
      const log = await filledLog(logDir);
      const start = where === "past the log end" ? log.logEndOffset + 100 : 3;
      await log.truncateFullyAndStartAt(start);
      await log.settled();
      await copyDir(logDir, crashed);
      await log.close();

      const reopened = await PartitionLog.open(crashed, SMALL);
      try {
        await assertRestartedAt(reopened, crashed, start);
        await assertOutOfRange(reopened, start + 1);
        assert.equal((await reopened.append(batchOf(["after"]))).baseOffset, start);
        assert.deepEqual((await readAll(reopened)).map((x) => [x.offset, x.value]), [
          [start, "after"],
        ]);
      } finally {
        await reopened.close();
      }
    });
  }
});

Deno.test("truncateFullyAndStartAt refuses a negative or fractional offset and changes nothing", async () => {
  await using dir = await tempDir();
  const log = await filledLog(dir.path);
  const leo = log.logEndOffset;
  for (const bad of [-1, 1.5, Number.NaN]) {
    await assert.rejects(() => log.truncateFullyAndStartAt(bad), RangeError);
  }
  assert.equal(log.logStartOffset, 0);
  assert.equal(log.logEndOffset, leo);
  assert.equal((await readAll(log)).length, leo);
  await log.close();
});
