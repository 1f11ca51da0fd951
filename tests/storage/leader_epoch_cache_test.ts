/**
 * The leader epoch cache: Kafka's LeaderEpochFileCacheTest cases on the cache alone, then
 * through PartitionLog (leader and replica appends, truncation, retention, reopen), with
 * the checkpoint deleted, garbled or left stale on purpose; and the log directory's lock.
 */
import assert from "node:assert/strict";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { LeaderEpochCache, PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { batchOf, readAll } from "./_fixtures.ts";

const CHECKPOINT = "leader-epoch-checkpoint";
const encoder = new TextEncoder();

function cacheWith(dir: string, ...pairs: [number, number][]): LeaderEpochCache {
  const cache = new LeaderEpochCache(dir);
  for (const [epoch, start] of pairs) cache.assign(epoch, start);
  return cache;
}

Deno.test("LeaderEpochCache.endOffsetFor() follows Kafka's OffsetsForLeaderEpoch cases", async (t) => {
  await t.step("the latest epoch ends at the log end offset", () => {
    const cache = cacheWith("/nowhere", [2, 6], [3, 8], [4, 11]);
    assert.deepEqual(cache.endOffsetFor(4, 14), { epoch: 4, endOffset: 14 });
  });
  await t.step("an earlier epoch ends where the next one starts", () => {
    const cache = cacheWith("/nowhere", [2, 6], [3, 8], [4, 11]);
    assert.deepEqual(cache.endOffsetFor(2, 14), { epoch: 2, endOffset: 8 });
    assert.deepEqual(cache.endOffsetFor(3, 14), { epoch: 3, endOffset: 11 });
  });
  await t.step("an epoch between two known ones answers the one below it", () => {
    const cache = cacheWith("/nowhere", [0, 10], [2, 13], [4, 17]);
    assert.deepEqual(cache.endOffsetFor(1, 20), { epoch: 0, endOffset: 13 });
    assert.deepEqual(cache.endOffsetFor(3, 20), { epoch: 2, endOffset: 17 });
  });
  await t.step("an epoch below every known one answers itself and the first start", () => {
    const cache = cacheWith("/nowhere", [5, 11], [6, 12], [10, 20]);
    assert.deepEqual(cache.endOffsetFor(4, 30), { epoch: 4, endOffset: 11 });
  });
  await t.step("an epoch above the latest, -1, or an empty cache is undefined", () => {
    const cache = cacheWith("/nowhere", [2, 100]);
    assert.deepEqual(cache.endOffsetFor(3, 120), { epoch: -1, endOffset: -1 });
    assert.deepEqual(cache.endOffsetFor(-1, 120), { epoch: -1, endOffset: -1 });
    assert.deepEqual(new LeaderEpochCache("/nowhere").endOffsetFor(0, 0), {
      epoch: -1,
      endOffset: -1,
    });
  });
  await t.step("an older or equal epoch does not rewrite history", () => {
    const cache = cacheWith("/nowhere", [2, 6], [3, 8]);
    assert.equal(cache.assign(3, 9), false);
    assert.equal(cache.assign(1, 20), false);
    assert.equal(cache.assign(-1, 20), false);
    assert.deepEqual(cache.entries(), [{ epoch: 2, startOffset: 6 }, { epoch: 3, startOffset: 8 }]);
  });
});

Deno.test("LeaderEpochCache truncation from the end and from the start", async (t) => {
  await t.step("truncateFromEnd() drops entries starting at or after the offset", () => {
    const cache = cacheWith("/nowhere", [2, 6], [3, 8], [4, 11]);
    assert.equal(cache.truncateFromEnd(12), false);
    assert.equal(cache.truncateFromEnd(9), true);
    assert.deepEqual(cache.entries(), [{ epoch: 2, startOffset: 6 }, { epoch: 3, startOffset: 8 }]);
    cache.truncateFromEnd(8);
    assert.deepEqual(cache.entries(), [{ epoch: 2, startOffset: 6 }]);
  });
  await t.step("truncateFromStart() moves the entry holding the offset to start there", () => {
    const cache = cacheWith("/nowhere", [2, 6], [3, 8], [4, 11]);
    assert.equal(cache.truncateFromStart(5), false);
    assert.equal(cache.truncateFromStart(9), true);
    assert.deepEqual(cache.entries(), [{ epoch: 3, startOffset: 9 }, {
      epoch: 4,
      startOffset: 11,
    }]);
    cache.truncateFromStart(11);
    assert.deepEqual(cache.entries(), [{ epoch: 4, startOffset: 11 }]);
    cache.truncateFromStart(50);
    assert.deepEqual(cache.entries(), [{ epoch: 4, startOffset: 50 }]);
  });
});

Deno.test("LeaderEpochCache.load() reads its checkpoint and reports a damaged one", async () => {
  await using dir = await tempDir();
  assert.equal((await LeaderEpochCache.load(dir.path)).problem, "missing");
  await cacheWith(dir.path, [0, 0], [3, 1200]).flush();
  assert.equal(await Deno.readTextFile(`${dir.path}/${CHECKPOINT}`), "0\n2\n0 0\n3 1200\n");
  const loaded = await LeaderEpochCache.load(dir.path);
  assert.equal(loaded.problem, undefined);
  assert.deepEqual(loaded.cache.entries(), [
    { epoch: 0, startOffset: 0 },
    { epoch: 3, startOffset: 1200 },
  ]);
  for (
    const [text, pattern] of [
      ["1\n0\n", /version/],
      ["0\n3\n0 0\n1 5\n", /says 3 entries/],
      ["0\n2\n3 0\n1 5\n", /bad entry "1 5"/],
      ["0\n2\n0 0\n1 x\n", /bad entry/],
      ["0\n1\n0 0", undefined],
    ] as const
  ) {
    await Deno.writeTextFile(`${dir.path}/${CHECKPOINT}`, text);
    const r = await LeaderEpochCache.load(dir.path);
    if (pattern === undefined) assert.equal(r.problem, undefined, text);
    else {
      assert.match(r.problem ?? "", pattern, text);
      assert.deepEqual(r.cache.entries(), []);
    }
  }
});

/** Appends one batch of `n` records as leader in `epoch`. */
async function appendIn(log: PartitionLog, epoch: number, n = 2): Promise<void> {
  const first = log.logEndOffset;
  await log.append(batchOf(Array.from({ length: n }, (_, i) => `e${epoch}-${first + i}`)), {
    leaderEpoch: epoch,
  });
}

/** A log with epochs 0 at 0, 2 at 4, 5 at 10 (log end 14), in segments of ~2 batches. */
async function threeEpochs(dir: string): Promise<PartitionLog> {
  const log = await PartitionLog.open(dir, { segmentBytes: 300 });
  await appendIn(log, 0);
  await appendIn(log, 0);
  await appendIn(log, 2);
  await appendIn(log, 2);
  await appendIn(log, 2);
  await appendIn(log, 5);
  await appendIn(log, 5);
  return log;
}

const THREE = [
  { epoch: 0, startOffset: 0 },
  { epoch: 2, startOffset: 4 },
  { epoch: 5, startOffset: 10 },
];

Deno.test("append() records each new leader epoch; endOffsetForEpoch() answers from it", async () => {
  await using dir = await tempDir();
  const log = await threeEpochs(dir.path);
  assert.ok(log.segmentCount > 2, "the epochs span several segments");
  assert.equal(log.latestEpoch(), 5);
  assert.deepEqual(log.leaderEpochEntries(), THREE);
  assert.deepEqual(log.endOffsetForEpoch(0), { epoch: 0, endOffset: 4 });
  assert.deepEqual(log.endOffsetForEpoch(1), { epoch: 0, endOffset: 4 });
  assert.deepEqual(log.endOffsetForEpoch(2), { epoch: 2, endOffset: 10 });
  assert.deepEqual(log.endOffsetForEpoch(4), { epoch: 2, endOffset: 10 });
  assert.deepEqual(log.endOffsetForEpoch(5), { epoch: 5, endOffset: 14 });
  assert.deepEqual(log.endOffsetForEpoch(6), { epoch: -1, endOffset: -1 });
  // An append without a leader epoch (-1) or with an older one adds nothing.
  await log.append(batchOf(["no epoch"]));
  await appendIn(log, 3);
  assert.deepEqual(log.leaderEpochEntries(), THREE);
  assert.deepEqual(log.endOffsetForEpoch(5), { epoch: 5, endOffset: 17 });
  await log.close();
  const reopened = await PartitionLog.open(dir.path);
  assert.deepEqual(reopened.leaderEpochEntries(), THREE);
  assert.equal(
    await Deno.readTextFile(`${dir.path}/${CHECKPOINT}`),
    "0\n3\n0 0\n2 4\n5 10\n",
  );
  await reopened.close();
});

Deno.test("append() without assignOffsets takes the epochs from the batch headers", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  const replicate = (base: number, epoch: number, n: number) =>
    log.append(
      encodeBatch(
        Array.from({ length: n }, (_, i) => ({ value: encoder.encode(`r${base + i}`) })),
        { baseOffset: base, partitionLeaderEpoch: epoch },
      ),
      { assignOffsets: false },
    );
  await replicate(0, 1, 3);
  await replicate(3, 1, 2);
  await replicate(5, 4, 1);
  // Several batches in one append, the second starting a new epoch.
  const two = new Uint8Array([
    ...encodeBatch([{ value: encoder.encode("a") }], { baseOffset: 6, partitionLeaderEpoch: 4 }),
    ...encodeBatch([{ value: encoder.encode("b") }], { baseOffset: 7, partitionLeaderEpoch: 7 }),
  ]);
  await log.append(two, { assignOffsets: false });
  assert.deepEqual(log.leaderEpochEntries(), [
    { epoch: 1, startOffset: 0 },
    { epoch: 4, startOffset: 5 },
    { epoch: 7, startOffset: 7 },
  ]);
  assert.deepEqual(log.endOffsetForEpoch(4), { epoch: 4, endOffset: 7 });
  await log.close();
});

Deno.test("truncateTo() drops the epochs it cuts away; a full restart clears them", async () => {
  await using dir = await tempDir();
  const log = await threeEpochs(dir.path);
  await log.truncateTo(11); // inside epoch 5's first batch: the whole batch goes
  assert.equal(log.logEndOffset, 10);
  assert.deepEqual(log.leaderEpochEntries(), THREE.slice(0, 2));
  assert.deepEqual(log.endOffsetForEpoch(2), { epoch: 2, endOffset: 10 });
  await appendIn(log, 6);
  assert.deepEqual(log.leaderEpochEntries(), [...THREE.slice(0, 2), { epoch: 6, startOffset: 10 }]);
  await log.close();
  const reopened = await PartitionLog.open(dir.path);
  assert.deepEqual(reopened.leaderEpochEntries(), [
    ...THREE.slice(0, 2),
    { epoch: 6, startOffset: 10 },
  ]);
  await reopened.truncateTo(0);
  assert.deepEqual(reopened.leaderEpochEntries(), []);
  assert.equal(reopened.latestEpoch(), -1);
  await reopened.close();
});

Deno.test("deleteRecordsBefore() and retention move the first epoch's start", async () => {
  await using dir = await tempDir();
  const log = await threeEpochs(dir.path);
  await log.deleteRecordsBefore(5);
  assert.deepEqual(log.leaderEpochEntries(), [
    { epoch: 2, startOffset: 5 },
    { epoch: 5, startOffset: 10 },
  ]);
  log.updateConfig({ retentionBytes: 1 });
  await log.applyRetention();
  assert.ok(log.logStartOffset >= 10, `retention moved the start to ${log.logStartOffset}`);
  assert.deepEqual(log.leaderEpochEntries(), [{ epoch: 5, startOffset: log.logStartOffset }]);
  await log.close();
  const reopened = await PartitionLog.open(dir.path);
  assert.deepEqual(reopened.leaderEpochEntries(), [{ epoch: 5, startOffset: log.logStartOffset }]);
  await reopened.close();
});

Deno.test("a missing or damaged leader-epoch checkpoint is rebuilt from the batch headers", async () => {
  await using dir = await tempDir();
  const log = await threeEpochs(dir.path);
  await log.close();
  for (const damage of ["delete", "garble", "reorder"] as const) {
    const path = `${dir.path}/${CHECKPOINT}`;
    if (damage === "delete") await Deno.remove(path);
    else if (damage === "garble") await Deno.writeTextFile(path, "0\n3\nx y\n");
    else await Deno.writeTextFile(path, "0\n2\n5 10\n2 4\n");
    const reopened = await PartitionLog.open(dir.path);
    assert.deepEqual(reopened.leaderEpochEntries(), THREE, damage);
    assert.match(reopened.recovery.message ?? "", /leader-epoch checkpoint.*rebuilt/, damage);
    assert.equal(reopened.recovery.clean, true, "the segments themselves were fine");
    await reopened.close();
    assert.equal(await Deno.readTextFile(path), "0\n3\n0 0\n2 4\n5 10\n", "rewritten");
  }
});

Deno.test("after a crash the cache drops entries past the log and regains scanned epochs", async () => {
  await using dir = await tempDir();
  const log = await threeEpochs(dir.path);
  await log.close();
  const path = `${dir.path}/${CHECKPOINT}`;
  // An entry written ahead of its batch (the process died between the two).
  await Deno.writeTextFile(path, "0\n4\n0 0\n2 4\n5 10\n9 14\n");
  await Deno.remove(`${dir.path}/.clean-shutdown`);
  let reopened = await PartitionLog.open(dir.path);
  assert.equal(reopened.recovery.clean, false);
  assert.deepEqual(reopened.leaderEpochEntries(), THREE);
  await reopened.close();
  // A stale checkpoint that misses the last epoch, whose batches lie past the recovery
  // point: the recovery scan puts it back.
  await Deno.writeTextFile(path, "0\n2\n0 0\n2 4\n");
  await Deno.writeTextFile(`${dir.path}/recovery-point-offset-checkpoint`, "0\n8\n");
  await Deno.remove(`${dir.path}/.clean-shutdown`);
  reopened = await PartitionLog.open(dir.path);
  assert.equal(reopened.recovery.clean, false);
  assert.deepEqual(reopened.leaderEpochEntries(), THREE);
  assert.equal((await readAll(reopened, 0)).length, 14);
  await reopened.close();
});

Deno.test("a log directory can be open only once at a time, in this process or another", async () => {
  await using dir = await tempDir();
  const log = await PartitionLog.open(dir.path);
  await log.append(batchOf(["only"]));
  await assert.rejects(PartitionLog.open(dir.path), (e: unknown) => {
    assert.ok(e instanceof RillError);
    assert.equal(e.code, "KAFKA_STORAGE_ERROR");
    assert.ok(e.message.includes(dir.path), e.message);
    assert.match(e.message, /already open/);
    return true;
  });
  const mod = new URL("../../src/storage/mod.ts", import.meta.url).href;
  const child = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { PartitionLog } from "${mod}";
       try { await PartitionLog.open(${JSON.stringify(dir.path)}); console.log("opened"); }
       catch (e) { console.log(e.code); }`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(new TextDecoder().decode(child.stdout).trim(), "KAFKA_STORAGE_ERROR");
  assert.equal(log.logEndOffset, 1, "the failed opens changed nothing");
  await log.close();
  const again = await PartitionLog.open(dir.path);
  assert.deepEqual((await readAll(again, 0)).map((r) => r.value), ["only"]);
  await again.close();
});
