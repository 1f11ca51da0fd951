/**
 * ISR and high watermark logic: the pure rules of isr.ts, and a leader Replica on a real
 * log whose followers are simulated by calling recordFollowerFetch.
 */
import assert from "node:assert/strict";
import { Replica } from "../../src/broker/replica.ts";
import {
  caughtUpFollowers,
  highWatermarkOf,
  laggingFollowers,
  newFollower,
  recordFetch,
} from "../../src/broker/isr.ts";
import { decodeBatch, encodeBatch } from "../../src/protocol/record_batch.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

const batch = (n = 1) =>
  encodeBatch([...Array(n)].map((_, i) => ({ value: new TextEncoder().encode(`v${i}`) })));

Deno.test("isr rules: high watermark is the smallest ISR log end offset; lagging and caught-up followers", () => {
  const f2 = newFollower(1000);
  const f3 = newFollower(1000);
  const followers = new Map([[2, f2], [3, f3]]);
  // Unknown positions hold the high watermark back.
  assert.equal(highWatermarkOf(1, 10, [1, 2, 3], followers), null);
  recordFetch(f2, 10, 10, 1100);
  recordFetch(f3, 4, 10, 1100);
  assert.equal(highWatermarkOf(1, 10, [1, 2, 3], followers), 4);
  assert.equal(highWatermarkOf(1, 10, [1, 2], followers), 10);
  // 3 fetched behind the leader: caught up as of its previous fetch only.
  assert.equal(f2.lastCaughtUpMs, 1100);
  assert.equal(f3.lastCaughtUpMs, 1000);
  assert.deepEqual(laggingFollowers(1, [1, 2, 3], followers, 1500, 400), [3]);
  assert.deepEqual(laggingFollowers(1, [1, 2, 3], followers, 1500, 600), []);
  // It reaches the leader's end as of its last fetch: caught up as of that fetch.
  recordFetch(f3, 10, 12, 1700);
  assert.equal(f3.lastCaughtUpMs, 1100);
  assert.deepEqual(caughtUpFollowers([1, 2, 3], [1, 2], followers, 10, 0), [3]);
  assert.deepEqual(caughtUpFollowers([1, 2, 3], [1, 2], followers, 11, 0), []);
  assert.deepEqual(caughtUpFollowers([1, 2, 3], [1, 2], followers, 10, 11), []);
});

Deno.test("leader replica: acks=all waits for the ISR, the ISR shrinks and grows through onIsrChange, consumers stop at the high watermark", async () => {
  await using dir = await tempDir();
  let now = 10_000;
  const r = await Replica.open({
    topic: "t",
    topicId: "id",
    partition: 0,
    dir: `${dir.path}/t-0`,
    leaderEpoch: 0,
    logConfig: {},
    brokerId: 1,
    replicated: true,
    now: () => now,
  });
  try {
    const proposals: number[][] = [];
    r.onIsrChange = (_r, isr) => proposals.push(isr);
    r.becomeLeader(1, [1, 2, 3], [1, 2, 3]);
    const a = await r.append(batch(3));
    assert.equal(r.logEndOffset, 3);
    assert.equal(r.highWatermark, 0, "followers have not fetched yet");
    let committed = false;
    const wait = r.waitForCommit(a.lastOffset, 5000, 2).then(() => committed = true);
    // Consumers see nothing above the high watermark.
    assert.equal((await r.read(0, 1 << 20)).bytes.length, 0);
    r.recordFollowerFetch(2, 3);
    assert.equal(r.highWatermark, 0, "follower 3 still unknown");
    r.recordFollowerFetch(3, 1);
    assert.equal(r.highWatermark, 1);
    await Promise.resolve();
    assert.equal(committed, false);
    r.recordFollowerFetch(3, 3);
    await wait;
    assert.equal(r.highWatermark, 3);
    assert.ok((await r.read(0, 1 << 20)).bytes.length > 0);

    // Follower 3 stops fetching: after the lag time it is proposed out; the shrink counts
    // once written.
    await r.append(batch(2));
    now += 2000;
    r.recordFollowerFetch(2, 5);
    r.checkLaggingFollowers(1000);
    assert.deepEqual(proposals, [[1, 2]]);
    assert.equal(r.highWatermark, 3);
    r.isrChanged([1, 2], 1);
    assert.equal(r.highWatermark, 5);
    assert.deepEqual([...r.isr], [1, 2]);

    // It catches up and is proposed back in (counting at once).
    r.recordFollowerFetch(3, 5);
    assert.deepEqual(proposals[1], [1, 2, 3]);
    assert.deepEqual([...r.isr], [1, 2, 3]);
    r.isrChanged([1, 2, 3], 1);

    // min.insync.replicas checked when the high watermark passes: ISR [1] < 2 fails.
    r.isrChanged([1], 1);
    const b = await r.append(batch());
    await assert.rejects(
      r.waitForCommit(b.lastOffset, 5000, 2),
      (e: unknown) => e instanceof RillError && e.code === "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    );

    // Losing leadership fails pending acks=all with NOT_LEADER_OR_FOLLOWER and refuses appends.
    r.isrChanged([1, 2], 1);
    const c = await r.append(batch());
    const pending = r.waitForCommit(c.lastOffset, 5000, 1);
    r.becomeFollower(2, 2);
    await assert.rejects(
      pending,
      (e: unknown) => e instanceof RillError && e.code === "NOT_LEADER_OR_FOLLOWER",
    );
    await assert.rejects(
      r.append(batch()),
      (e: unknown) => e instanceof RillError && e.code === "NOT_LEADER_OR_FOLLOWER",
    );
    // As a follower, the high watermark follows the leader's, capped at the log end.
    r.updateHighWatermark(100);
    assert.equal(r.highWatermark, r.logEndOffset);
  } finally {
    await r.close();
  }
});

Deno.test("acks=all times out with REQUEST_TIMED_OUT when the ISR does not follow", async () => {
  await using dir = await tempDir();
  const r = await Replica.open({
    topic: "t",
    topicId: "id",
    partition: 0,
    dir: `${dir.path}/t-0`,
    leaderEpoch: 0,
    logConfig: {},
    brokerId: 1,
    replicated: true,
  });
  try {
    r.becomeLeader(0, [1, 2], [1, 2]);
    const a = await r.append(batch());
    await assert.rejects(
      r.waitForCommit(a.lastOffset, 30, 1),
      (e: unknown) => e instanceof RillError && e.code === "REQUEST_TIMED_OUT",
    );
  } finally {
    await r.close();
  }
});

Deno.test("OffsetsForLeaderEpoch: the leader answers where an epoch ends, and a follower truncates a divergent suffix", async () => {
  await using dir = await tempDir();
  const open = (name: string) =>
    Replica.open({
      topic: "t",
      topicId: "id",
      partition: 0,
      dir: `${dir.path}/${name}/t-0`,
      leaderEpoch: 0,
      logConfig: {},
      brokerId: name === "a" ? 1 : 2,
      replicated: true,
    });
  const a = await open("a");
  const b = await open("b");
  try {
    // Both hold epoch 0 records 0..2; then b leads epoch 1 and appends 3..4 that a never sees.
    a.becomeLeader(0, [1, 2], [1, 2]);
    await a.append(batch(3));
    b.becomeFollower(0, 1);
    await b.appendAsFollower((await a.readForFollower(0, 1 << 20)).bytes.slice(), 0);
    b.becomeLeader(1, [1, 2], [2]);
    await b.append(batch(2));
    // Meanwhile a, still believing it leads epoch 0, appended 3..5 (never committed).
    await a.append(batch(3));
    assert.equal(a.logEndOffset, 6);
    // a follows b now: b says epoch 0 ended at 3, so a truncates to 3 and copies b's records.
    const answer = b.epochEndOffset(a.log.latestEpoch());
    assert.deepEqual(answer, { epoch: 0, endOffset: 3 });
    a.becomeFollower(1, 2);
    await a.truncateTo(Math.min(answer.endOffset, a.log.endOffsetForEpoch(answer.epoch).endOffset));
    assert.equal(a.logEndOffset, 3);
    await a.appendAsFollower((await b.readForFollower(3, 1 << 20)).bytes.slice(), 5);
    assert.deepEqual(
      (await a.readForFollower(0, 1 << 20)).bytes,
      (await b.readForFollower(0, 1 << 20)).bytes,
    );
    assert.equal(a.highWatermark, 5);
    // The current epoch ends at the log end offset, even before anything was appended in it.
    assert.deepEqual(b.epochEndOffset(7), { epoch: 1, endOffset: 5 });
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("a leader that truncated after losing leadership serves the records it holds now, not its last append from before", async () => {
  await using dir = await tempDir();
  const r = await Replica.open({
    topic: "t",
    topicId: "id",
    partition: 0,
    dir: `${dir.path}/t-0`,
    leaderEpoch: 0,
    logConfig: {},
    brokerId: 1,
    replicated: true,
  });
  const values = async (offset: number) =>
    (await r.read(offset, 1 << 20)).bytes.length === 0
      ? []
      : decodeBatch((await r.read(offset, 1 << 20)).bytes, true).records.map((x) =>
        new TextDecoder().decode(x.value!)
      );
  const named = (tag: string) =>
    encodeBatch([0, 1, 2].map((i) => ({ value: new TextEncoder().encode(`${tag}${i}`) })));
  try {
    r.becomeLeader(0, [1, 2], [1]);
    // A consumer waits at the log end while the leader appends 0..2.
    const waiting = r.waiters.wait(1, 60_000);
    await r.append(named("old"));
    assert.equal(await waiting, "data");
    assert.deepEqual(await values(0), ["old0", "old1", "old2"]);
    // Another broker led epoch 1 with other records at 0..2: this one follows, truncates
    // and copies them, then leads again.
    r.becomeFollower(1, 2);
    await r.truncateTo(0);
    const theirs = named("new");
    new DataView(theirs.buffer, theirs.byteOffset).setInt32(12, 1); // partitionLeaderEpoch
    await r.appendAsFollower(theirs, 3);
    r.becomeLeader(2, [1, 2], [1]);
    assert.equal(r.highWatermark, 3);
    assert.deepEqual(await values(0), ["new0", "new1", "new2"]);
  } finally {
    await r.close();
  }
});
