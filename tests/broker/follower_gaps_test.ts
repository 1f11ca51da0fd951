/**
 * A follower copying a compacted leader log (`fillOffsetGaps`): the leader's reads have
 * offset gaps, the follower's log takes only contiguous batches; filled, the copy holds the
 * leader's records at the leader's offsets and compacts in turn.
 */
import assert from "node:assert/strict";
import { fillOffsetGaps } from "../../src/broker/follower_gaps.ts";
import { PartitionLog } from "../../src/storage/mod.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { keyedBatch, readKeyed } from "../storage/_compaction_fixtures.ts";

Deno.test("fillOffsetGaps() returns contiguous batches unchanged", () => {
  const a = keyedBatch([{ key: "a", value: "1" }, { key: "b", value: "2" }]);
  assert.equal(fillOffsetGaps(a, 0), a);
});

Deno.test("a follower copies a compacted leader log through its gaps, offsets and records alike", async () => {
  await using dir = await tempDir();
  const leader = await PartitionLog.open(`${dir.path}/leader`, {
    compact: true,
    segmentBytes: 500,
    minCleanableDirtyRatio: 0,
  });
  const follower = await PartitionLog.open(`${dir.path}/follower`, {
    compact: true,
    segmentBytes: 500,
    minCleanableDirtyRatio: 0,
  });
  try {
    for (let i = 0; i < 150; i++) {
      // Epoch 2's first record is never superseded: both caches start epoch 2 at it (a gap
      // hiding an epoch's start would start it later on the follower; see follower_gaps.ts).
      const key = i === 70 ? "first-of-2" : `k${i % 5}`;
      await leader.append(keyedBatch([{ key, value: `v${i}` }]), {
        leaderEpoch: i < 70 ? 1 : 2,
      });
    }
    assert.ok(await leader.clean());
    const expected = await readKeyed(leader);
    // The follower's fetch loop, as replica_fetcher.ts does it.
    for (let guard = 0; follower.logEndOffset < leader.logEndOffset && guard < 1000; guard++) {
      const offset = follower.logEndOffset;
      const { bytes } = await leader.read(offset, 300);
      const filled = fillOffsetGaps(bytes, offset, follower.latestEpoch());
      await follower.append(filled, { assignOffsets: false });
    }
    assert.equal(follower.logEndOffset, leader.logEndOffset);
    assert.deepEqual(await readKeyed(follower), expected);
    assert.deepEqual(follower.leaderEpochEntries(), leader.leaderEpochEntries());
    // Both compact everything: the same records remain (the follower's gap fillers go).
    for (const log of [leader, follower]) {
      await log.roll();
      await log.clean({ maxOffset: log.logEndOffset });
    }
    assert.deepEqual(await readKeyed(follower), await readKeyed(leader));
    assert.equal((await readKeyed(leader)).length, 6, "one record per key");
  } finally {
    await leader.close();
    await follower.close();
  }
});
