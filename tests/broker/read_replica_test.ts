/**
 * KIP-392's preferred read replica on the leader's side: the selector's rules (rack, live,
 * caught up, has the offset), the positions an observer's fetches leave on the leader, and
 * an observer asked for an offset it has not copied yet answering OFFSET_NOT_AVAILABLE.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Broker } from "../../src/broker/broker.ts";
import type { FollowerState } from "../../src/broker/isr.ts";
import { preferredReadReplica, type ReadReplicaNode } from "../../src/broker/read_replica.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

const NOW = 1_000_000;
const LAG = 10_000;

function at(leo: number, caughtUpAgoMs: number): FollowerState {
  return {
    leo,
    lastCaughtUpMs: NOW - caughtUpAgoMs,
    lastFetchMs: NOW,
    leaderLeoAtLastFetch: leo,
  };
}

const live = (rack: string): ReadReplicaNode => ({ rack, alive: true, kafka: "127.0.0.1:1" });

function pick(
  clientRack: string,
  fetchOffset: number,
  observers: [number, FollowerState][],
  nodes: [number, ReadReplicaNode][],
  leaderRack: string | undefined = "core",
): number | null {
  return preferredReadReplica({
    clientRack,
    fetchOffset,
    leaderRack,
    observers: new Map(observers),
    nodes: new Map(nodes),
    now: NOW,
    lagMaxMs: LAG,
  });
}

Deno.test("the selector sends a consumer to a live, caught-up observer of its rack only", () => {
  const nodes: [number, ReadReplicaNode][] = [[8, live("edge")], [9, live("edge")], [
    7,
    live("other"),
  ]];
  // Most caught up in the client's rack.
  assert.equal(pick("edge", 50, [[8, at(90, 0)], [9, at(100, 0)], [7, at(200, 0)]], nodes), 9);
  // Same copied offset: the most recently caught up.
  assert.equal(pick("edge", 50, [[8, at(100, 0)], [9, at(100, 5)]], nodes), 8);
  // No rack, the leader's own rack, a rack without observers: the leader serves.
  assert.equal(pick("", 50, [[9, at(100, 0)]], nodes), null);
  assert.equal(pick("edge", 50, [[9, at(100, 0)]], nodes, "edge"), null);
  assert.equal(pick("moon", 50, [[9, at(100, 0)]], nodes), null);
  // The observer lacks the offset asked for.
  assert.equal(pick("edge", 101, [[9, at(100, 0)]], nodes), null);
  // Stopped copying longer than replica.lag.time.max.ms ago.
  assert.equal(pick("edge", 50, [[9, at(100, LAG + 1)]], nodes), null);
  // Not alive, or without a Kafka listener, or not registered.
  assert.equal(pick("edge", 50, [[9, at(100, 0)]], [[9, { ...live("edge"), alive: false }]]), null);
  assert.equal(pick("edge", 50, [[9, at(100, 0)]], [[9, { rack: "edge", alive: true }]]), null);
  assert.equal(pick("edge", 50, [[9, at(100, 0)]], []), null);
  // A leader without a rack still sends rack-aware consumers to their rack.
  assert.equal(pick("edge", 50, [[9, at(100, 0)]], nodes, undefined), 9);
});

Deno.test("an observer's fetches leave its position on the leader; a lagging observer answers OFFSET_NOT_AVAILABLE", async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({
    id: 1,
    dataDir: dir.path,
    kv: ":memory:" as string,
    advertisedUrl: "http://broker-1.test",
    log: () => {},
  });
  try {
    await broker.createTopic({ name: "t", partitions: 2 });
    const records = Array.from({ length: 5 }, () => ({ value: new Uint8Array([1]) }));
    await broker.produceBatches("t", 0, encodeBatch(records), 1);
    const answer = await broker.fetchMany({
      partitions: [
        { topic: "t", partition: 0, offset: 3, maxBytes: 1 << 20 },
        { topic: "t", partition: 1, offset: 0, maxBytes: 1 << 20 },
      ],
      maxWaitMs: 0,
      minBytes: 1,
      observerId: 9,
    });
    answer.release();
    const p0 = await broker.replica("t", 0);
    assert.equal(p0.observers().get(9)?.leo, 3);
    assert.equal((await broker.replica("t", 1)).observers().get(9)?.leo, 0);
    // A consumer's fetch records nothing.
    (await broker.fetchMany({
      partitions: [{ topic: "t", partition: 0, offset: 5, maxBytes: 1 << 20 }],
      maxWaitMs: 0,
      minBytes: 1,
    })).release();
    assert.deepEqual([...p0.observers().keys()], [9]);

    // The same partition as an observer copy that has 5 records while its leader committed 8.
    p0.becomeFollower(p0.leaderEpoch, 2, true);
    assert.equal(p0.observers().size, 0);
    p0.updateHighWatermark(8);
    await assert.rejects(
      () => p0.read(6, 1 << 20),
      (e) => e instanceof RillError && e.code === "OFFSET_NOT_AVAILABLE" && e.retriable,
    );
    // Past what the leader committed: out of range, as before.
    await assert.rejects(
      () => p0.read(9, 1 << 20),
      (e) => e instanceof RillError && e.code === "OFFSET_OUT_OF_RANGE",
    );
    assert.equal((await p0.read(5, 1 << 20)).bytes.length, 0, "at its end: nothing yet");
  } finally {
    await broker.close();
  }
});
