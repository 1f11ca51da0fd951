/**
 * Controller decisions with a real in-memory KV: the election rules, the controller lease
 * (one holder, taken over after expiry), and elections written as checked partition-state
 * updates that bump the leader epoch.
 */
import assert from "node:assert/strict";
import { Controller } from "../../src/broker/controller.ts";
import {
  cancelReassignment,
  completeReassignment,
  electLeader,
  fenceFromIsr,
  resignLeader,
  startReassignment,
} from "../../src/broker/election.ts";
import { ClusterStore } from "../../src/coordination/cluster.ts";
import { LeaseStore } from "../../src/coordination/leases.ts";
import { PartitionStateStore } from "../../src/coordination/partition_states.ts";
import { type PartitionState, TopicStore } from "../../src/coordination/topics.ts";
import { MoveStore } from "../../src/coordination/moves.ts";
import { movesKey } from "../../src/coordination/kv_keys.ts";

const state = (leader: number, isr: number[], epoch = 3) => ({
  partition: 0,
  leader,
  replicas: [1, 2, 3],
  isr,
  leaderEpoch: epoch,
});

Deno.test("electLeader: from the live ISR in replica order, leaderless without one, unclean only when enabled", () => {
  assert.equal(electLeader(state(1, [1, 2, 3]), new Set([1, 2, 3]), false), null);
  assert.deepEqual(
    electLeader(state(1, [1, 2, 3]), new Set([2, 3]), false),
    state(2, [2, 3], 4),
  );
  // 2 is alive but not in the ISR: 3 is chosen.
  assert.deepEqual(electLeader(state(1, [1, 3]), new Set([2, 3]), false), state(3, [3], 4));
  // No live ISR member: no leader, epoch bumped (fencing the old one), ISR kept.
  assert.deepEqual(electLeader(state(1, [1]), new Set([2, 3]), false), state(-1, [1], 4));
  assert.equal(electLeader(state(-1, [1], 4), new Set([2, 3]), false), null);
  // The ISR member comes back: it is elected.
  assert.deepEqual(electLeader(state(-1, [1], 4), new Set([1, 2]), false), state(1, [1], 5));
  // Unclean: any live replica, the ISR restarts with it.
  assert.deepEqual(electLeader(state(1, [1]), new Set([3]), true), state(3, [3], 4));
  // A restarted leader hands over to a live ISR member, or renews its epoch.
  assert.deepEqual(resignLeader(state(1, [1, 2]), 1, new Set([1, 2])), state(2, [1, 2], 4));
  assert.deepEqual(resignLeader(state(1, [1]), 1, new Set([1, 2])), state(1, [1], 4));
  assert.equal(resignLeader(state(2, [1, 2]), 1, new Set([1, 2])), null);
});

Deno.test("controller lease: one holder, renewed by it, taken over with a new epoch after it expires", async () => {
  using kv = await Deno.openKv(":memory:");
  let now = 1000;
  const lease = new LeaseStore(kv, undefined, () => now);
  const [a, b] = await Promise.all([lease.acquire(1, 500), lease.acquire(2, 500)]);
  assert.equal([a, b].filter((x) => x !== null).length, 1, "exactly one broker wins the race");
  const holder = (a ?? b)!.holder;
  const other = holder === 1 ? 2 : 1;
  now += 300;
  assert.equal(await lease.acquire(other, 500), null);
  assert.equal((await lease.acquire(holder, 500))!.epoch, 1);
  now += 400;
  assert.equal((await lease.current())!.holder, holder);
  now += 200;
  assert.equal(await lease.current(), null);
  const taken = await lease.acquire(other, 500);
  assert.deepEqual(taken, { holder: other, expiresMs: now + 500, epoch: 2 });
  await lease.release(other);
  assert.equal(await lease.current(), null);
});

Deno.test("controller: elects a new leader when the leader's heartbeat stops, once, with a checked epoch bump", async () => {
  using kv = await Deno.openKv(":memory:");
  let now = 10_000;
  const cluster = new ClusterStore(kv, 1000, () => now);
  const topics = new TopicStore(kv);
  const states = new PartitionStateStore(kv);
  const regs = await Promise.all(
    [1, 2, 3].map((id) => cluster.register({ id, url: `http://b${id}`, role: "broker" })),
  );
  await topics.create({
    name: "t",
    partitions: 3,
    replicationFactor: 3,
    configs: {},
    brokerIds: [1, 2, 3],
  });
  const before = (await topics.get("t"))!.partitions;
  const lines: string[] = [];
  const make = (id: number) =>
    new Controller({
      brokerId: id,
      lease: new LeaseStore(kv, undefined, () => now),
      cluster,
      topics,
      states,
      leaseTtlMs: 1000,
      log: (l) => lines.push(l),
    });
  const c2 = make(2);
  const c3 = make(3);
  assert.equal(await c2.tick(), 0, "every leader is alive");
  assert.equal(c2.active, true);
  assert.equal(await c3.tick(), 0);
  assert.equal(c3.active, false, "the lease has one holder");

  // Broker 1 stops heartbeating; 2 and 3 go on.
  now += 1500;
  await cluster.heartbeat(regs[1]);
  await cluster.heartbeat(regs[2]);
  const led = before.filter((p) => p.leader === 1).length;
  assert.ok(led > 0);
  // Partitions broker 1 led get a new leader; the others lose it from their ISR at once.
  assert.equal(await c2.tick(), before.length);
  assert.equal(await c2.tick(), 0, "an election happens once");
  const after = (await topics.get("t"))!.partitions;
  for (const [i, p] of after.entries()) {
    if (before[i].leader !== 1) {
      assert.deepEqual(p, { ...before[i], isr: before[i].isr.filter((id) => id !== 1) });
      continue;
    }
    assert.notEqual(p.leader, 1);
    assert.equal(p.leaderEpoch, before[i].leaderEpoch + 1);
    assert.equal(p.isr.includes(1), false);
    assert.equal(p.isr.includes(p.leader), true);
  }
  assert.ok(lines.some((l) => /elected broker \d leader of t-\d/.test(l)));
  assert.ok(
    lines.some((l) => /fenced broker\(s\) 1 out of the isr of t-\d/.test(l)),
    lines.join("\n"),
  );

  // A leader change the controller did not expect (a concurrent write) is not overwritten.
  const p0 = after[0];
  await states.update("t", 0, (cur) => ({ ...cur, isr: [p0.leader] }));
  assert.equal(await c2.tick(), 0);
  assert.deepEqual((await topics.get("t"))!.partitions[0].isr, [p0.leader]);
});

Deno.test("rill broker/follower replication flags: timeouts for tests, the observer's topics, clear errors", async () => {
  const { parseBrokerArgs } = await import("../../src/cli/broker.ts");
  const a = parseBrokerArgs([
    "--session-timeout-ms",
    "1500",
    "--replica-lag-time-max-ms",
    "2000",
    "--topics",
    "a, b",
  ]);
  assert.deepEqual(a.replication, {
    config: {
      sessionTimeoutMs: 1500,
      heartbeatIntervalMs: 500,
      controllerIntervalMs: 375,
      replicaLagTimeMaxMs: 2000,
    },
    topics: ["a", "b"],
  });
  assert.throws(
    () => parseBrokerArgs(["--session-timeout-ms", "soon"]),
    /--session-timeout-ms must be a positive integer of milliseconds, got "soon"/,
  );
});

Deno.test("fenceFromIsr() drops brokers whose session expired from a live leader's ISR, keeps the epoch", () => {
  const p = { partition: 0, leader: 1, replicas: [1, 2, 3], isr: [1, 2, 3], leaderEpoch: 4 };
  assert.deepEqual(fenceFromIsr(p, new Set([1, 2])), { ...p, isr: [1, 2] });
  assert.equal(fenceFromIsr(p, new Set([1, 2, 3])), null, "nobody to fence");
  assert.equal(fenceFromIsr(p, new Set([2, 3])), null, "a dead leader is electLeader's case");
  assert.deepEqual(fenceFromIsr({ ...p, isr: [1] }, new Set([1])), null);
});

Deno.test("cancelReassignment() returns to the previous replicas with an in-sync previous leader, or refuses", () => {
  const start = { partition: 0, leader: 1, replicas: [1, 2], isr: [1, 2], leaderEpoch: 3 };
  const moving = startReassignment(start, [3, 4])!;
  assert.deepEqual(moving.previousReplicas, [1, 2]);
  const all = new Set([1, 2, 3, 4]);
  // the new replicas caught up partly: rolled back, leader kept, epoch bumped
  assert.deepEqual(cancelReassignment({ ...moving, isr: [1, 2, 3] }, all, 2), {
    partition: 0,
    leader: 1,
    replicas: [1, 2],
    isr: [1, 2],
    leaderEpoch: 4,
  });
  // re-targeted while moving: still rolls back to where it began
  const retargeted = startReassignment({ ...moving, isr: [1, 2, 3] }, [3, 5])!;
  assert.deepEqual(retargeted.previousReplicas, [1, 2]);
  assert.deepEqual(cancelReassignment(retargeted, all, 2)?.replicas, [1, 2]);
  // the leader moved to a new replica after a failover: back to an in-sync previous one
  assert.deepEqual(
    cancelReassignment({ ...moving, leader: 3, isr: [2, 3, 4] }, new Set([2, 3, 4]), 2),
    { partition: 0, leader: 2, replicas: [1, 2], isr: [2], leaderEpoch: 4 },
  );
  // only new replicas are in sync: rolling back would lose records
  assert.equal(cancelReassignment({ ...moving, leader: 3, isr: [3, 4] }, all, 2), null);
  // a previous replica in the ISR but dead cannot lead either
  assert.equal(cancelReassignment({ ...moving, leader: 3, isr: [1, 3] }, new Set([3, 4]), 2), null);
  // no move, nothing to cancel; a move started before previousReplicas existed: the first rf
  assert.equal(cancelReassignment(start, all, 2), null);
  const legacy = { ...moving, previousReplicas: undefined };
  assert.deepEqual(cancelReassignment(legacy, all, 2)?.replicas, [1, 2]);
  // completing drops the bookkeeping
  assert.equal(
    "previousReplicas" in completeReassignment({ ...moving, isr: [1, 2, 3, 4] })!,
    false,
  );
});

Deno.test("a partition update fenced on the lease and the move plan writes nothing once the plan moved", async () => {
  using kv = await Deno.openKv(":memory:");
  const topics = new TopicStore(kv);
  const states = new PartitionStateStore(kv);
  const moves = new MoveStore(kv);
  await topics.create({
    name: "t",
    partitions: 1,
    replicationFactor: 2,
    configs: {},
    brokerIds: [1, 2],
  });
  await moves.put({
    kind: "rebalance",
    createdMs: 0,
    pending: [{ topic: "t", partition: 0, replicas: [3, 1] }],
    total: 1,
    decommissioned: [],
  });
  const read = await moves.get(); // what the controller read
  await kv.set(["test-lease"], 1);
  const lease = await kv.get(["test-lease"]);
  const fences = (plan: { versionstamp: string | null }) => [
    { key: lease.key, versionstamp: lease.versionstamp },
    { key: movesKey(), versionstamp: plan.versionstamp },
  ];
  const start = (cur: PartitionState) => startReassignment(cur, [3, 1]);
  // the plan is cancelled between the controller's read and its start of the move
  await moves.change(() => null);
  assert.equal(await states.update("t", 0, start, fences(read)), null);
  assert.equal((await states.get("t", 0))!.targetReplicas, undefined, "no move started");
  // checked on the plan as it is now: written
  const now = await moves.get();
  assert.deepEqual((await states.update("t", 0, start, fences(now)))?.targetReplicas, [3, 1]);
});
