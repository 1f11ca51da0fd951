import assert from "node:assert/strict";
import {
  electPreferredLeader,
  imbalancedPartitions,
  loadOf,
  partitionKeyOf,
  planMoves,
  replacementReplicas,
} from "../../src/broker/balance.ts";
import type { PartitionState, TopicMetadata } from "../../src/coordination/topics.ts";

function topic(name: string, parts: Partial<PartitionState>[], rf = 3): TopicMetadata {
  return {
    name,
    topicId: name,
    replicationFactor: rf,
    configs: {},
    createdMs: 0,
    partitions: parts.map((p, i) => ({
      partition: i,
      leader: p.leader ?? p.replicas![0],
      replicas: p.replicas!,
      isr: p.isr ?? p.replicas!,
      leaderEpoch: p.leaderEpoch ?? 0,
      ...(p.targetReplicas ? { targetReplicas: p.targetReplicas } : {}),
    })),
  };
}

Deno.test("preferred leader election: only when the preferred leader is alive, in the ISR, and nothing moves", () => {
  const p: PartitionState = {
    partition: 0,
    leader: 2,
    replicas: [1, 2, 3],
    isr: [1, 2, 3],
    leaderEpoch: 4,
  };
  assert.deepEqual(electPreferredLeader(p, new Set([1, 2, 3])), {
    ...p,
    leader: 1,
    leaderEpoch: 5,
  });
  assert.equal(electPreferredLeader(p, new Set([2, 3])), null, "dead");
  assert.equal(electPreferredLeader({ ...p, isr: [2, 3] }, new Set([1, 2, 3])), null, "out of ISR");
  assert.equal(electPreferredLeader({ ...p, leader: 1 }, new Set([1, 2, 3])), null, "already");
  assert.equal(
    electPreferredLeader({ ...p, targetReplicas: [4, 2, 3] }, new Set([1, 2, 3])),
    null,
    "moving",
  );
});

Deno.test("leader imbalance follows Kafka's per-broker percentage", () => {
  // broker 1 is preferred for 10 partitions and leads 9 of them: 10% is not above 10%
  const parts = [...Array(10).keys()].map((i) => ({
    replicas: [1, 2, 3],
    leader: i === 0 ? 2 : 1,
  }));
  const t = topic("t", parts);
  const alive = new Set([1, 2, 3]);
  assert.deepEqual(imbalancedPartitions([t], alive, 10), []);
  assert.deepEqual(imbalancedPartitions([t], alive, 5), [{ topic: "t", partition: 0 }]);
  // a dead preferred leader is not asked to lead
  assert.deepEqual(imbalancedPartitions([t], new Set([2, 3]), 5), []);
});

Deno.test("re-replication picks another rack first, then the least loaded broker", () => {
  const counts = new Map([[4, 10], [5, 2], [6, 1]]);
  const brokers = [
    { id: 1, rack: "a" },
    { id: 3, rack: "c" },
    { id: 4, rack: "b" },
    { id: 5, rack: "b" },
    { id: 6, rack: "a" },
  ];
  // replicas 1 (a), 2 (dead), 3 (c): rack b is free; 5 has fewer replicas than 4
  assert.deepEqual(replacementReplicas([1, 2, 3], new Set([2]), brokers, counts), [1, 5, 3]);
  assert.equal(counts.get(5), 3);
  assert.equal(replacementReplicas([1, 3], new Set([2]), brokers, counts), null, "nothing to do");
  assert.equal(
    replacementReplicas([1, 2], new Set([2]), [{ id: 1 }], new Map()),
    null,
    "no candidate left",
  );
});

Deno.test("a rebalance onto a new broker evens replica counts and bytes, moving few replicas", () => {
  // 12 partitions, RF 2, on brokers 1..3; broker 4 is new
  const parts = [...Array(12).keys()].map((i) => ({
    replicas: [1 + (i % 3), 1 + ((i + 1) % 3)],
  }));
  const t = topic("t", parts, 2);
  const sizes = new Map(parts.map((_, i) => [partitionKeyOf("t", i), 1000 + 10 * i]));
  const brokers = [1, 2, 3, 4].map((id) => ({ id }));
  const moves = planMoves([t], brokers, sizes, {});
  const assignment = new Map(
    t.partitions.map((p) => [partitionKeyOf("t", p.partition), p.replicas]),
  );
  for (const m of moves) assignment.set(partitionKeyOf(m.topic, m.partition), m.replicas);
  const loads = loadOf(assignment, [1, 2, 3, 4], sizes);
  const counts = loads.map((l) => l.replicas);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `counts ${counts}`);
  const bytes = loads.map((l) => l.bytes);
  const mean = bytes.reduce((a, b) => a + b, 0) / bytes.length;
  assert.ok(Math.max(...bytes) - Math.min(...bytes) <= 0.15 * mean, `bytes ${bytes}`);
  // 24 replicas over 4 brokers: broker 4 needs 6; replica moves = changed replica slots
  let moved = 0;
  for (const m of moves) {
    const before = t.partitions[m.partition].replicas;
    moved += m.replicas.filter((id) => !before.includes(id)).length;
  }
  assert.ok(moved <= 8, `moved ${moved} replicas`);
  for (const [, rs] of assignment) assert.equal(new Set(rs).size, rs.length, "distinct replicas");
  // preferred leaders are spread too
  const preferred = loads.map((l) => l.preferredLeaders);
  assert.ok(Math.max(...preferred) - Math.min(...preferred) <= 1, `preferred ${preferred}`);
});

Deno.test("a decommission plan leaves nothing on the excluded broker and keeps racks apart", () => {
  const t = topic("t", [
    { replicas: [1, 2] },
    { replicas: [2, 3] },
    { replicas: [3, 1] },
    { replicas: [3, 2] },
  ], 2);
  const brokers = [{ id: 1, rack: "a" }, { id: 2, rack: "b" }, { id: 3, rack: "a" }, {
    id: 4,
    rack: "b",
  }];
  const moves = planMoves([t], brokers, new Map(), { exclude: new Set([3]) });
  const after = new Map(t.partitions.map((p) => [p.partition, p.replicas]));
  for (const m of moves) after.set(m.partition, m.replicas);
  for (const [, rs] of after) {
    assert.equal(rs.includes(3), false);
    const racks = rs.map((id) => brokers.find((b) => b.id === id)!.rack);
    assert.equal(new Set(racks).size, racks.length, `racks of ${rs}`);
  }
  // partitions already moving are left alone
  const moving = topic("m", [{ replicas: [3, 1], targetReplicas: [4, 1] }], 2);
  assert.deepEqual(planMoves([moving], brokers, new Map(), { exclude: new Set([3]) }), []);
});
