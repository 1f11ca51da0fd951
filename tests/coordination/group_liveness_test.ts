import assert from "node:assert/strict";
import { ClusterStore } from "../../src/coordination/cluster.ts";
import { GroupLiveness } from "../../src/coordination/group_liveness.ts";
import { GroupMembership } from "../../src/coordination/group_membership.ts";
import { groupChangesKey } from "../../src/coordination/kv_keys.ts";
import type { BrokerRegistration } from "../../src/coordination/cluster.ts";

/** Counts KV calls (reads: get/getMany/list; writes: commits and set/delete). */
function counting(kv: Deno.Kv, counts: { reads: number; writes: number }): Deno.Kv {
  return new Proxy(kv, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      if (prop === "get" || prop === "getMany" || prop === "list") {
        return (...a: unknown[]) => (counts.reads++, v.apply(target, a));
      }
      if (prop === "set" || prop === "delete") {
        return (...a: unknown[]) => (counts.writes++, v.apply(target, a));
      }
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = () => (counts.writes++, commit());
          return op;
        };
      }
      return v.bind(target);
    },
  });
}

/** A broker as group coordination sees it: registration, liveness, membership. */
async function broker(kv: Deno.Kv, cluster: ClusterStore, id: number, clock: () => number) {
  const counts = { reads: 0, writes: 0 };
  const ckv = counting(kv, counts);
  let reg: BrokerRegistration | null = await cluster.register({
    id,
    url: `http://b${id}`,
    role: "broker",
  });
  const liveness = new GroupLiveness({
    brokerId: id,
    incarnation: () => reg?.incarnation ?? null,
    registrations: () => new ClusterStore(ckv, 6000, clock).brokers(),
    brokerSessionTimeoutMs: 6000,
    now: clock,
  });
  const membership = new GroupMembership({
    kv: ckv,
    now: clock,
    partitionCount: () => Promise.resolve(4),
    liveness,
  });
  return {
    counts,
    liveness,
    membership,
    /** the metadata poll's read of the group change marker */
    poll: async () => liveness.observe((await kv.get(groupChangesKey())).versionstamp),
    heartbeat: async () => {
      if (reg) reg = await cluster.heartbeat(reg);
    },
    die: () => reg = null,
  };
}

Deno.test("group liveness: heartbeats that change nothing cost no KV call; a change elsewhere is seen after the next poll", async () => {
  using kv = await Deno.openKv(":memory:");
  let now = 1_000_000;
  const clock = () => now;
  const cluster = new ClusterStore(kv, 6000, clock);
  const a = await broker(kv, cluster, 1, clock);
  const b = await broker(kv, cluster, 2, clock);
  await a.poll();
  const m1 = await a.membership.join("g", { topics: ["t"], sessionTimeoutMs: 9000 });
  // Heartbeat until Stable (the join's grant is confirmed by the member's next heartbeat).
  let ans = m1;
  for (let i = 0; i < 5 && ans.state !== "Stable"; i++) {
    now += 100;
    await a.poll();
    ans = await a.membership.heartbeat("g", m1.memberId, ans.generation);
  }
  assert.equal(ans.state, "Stable");
  assert.equal(ans.assignment.length, 4);
  await a.poll();
  a.counts.reads = a.counts.writes = 0;
  for (let i = 0; i < 10; i++) {
    now += 3000;
    await a.heartbeat(); // the broker's own registration heartbeat, as the broker loop does
    await b.heartbeat();
    const h = await a.membership.heartbeat("g", m1.memberId, ans.generation);
    assert.deepEqual(h.assignment, ans.assignment);
  }
  assert.deepEqual(a.counts, { reads: 0, writes: 0 }, "10 quiet heartbeats, no KV call");

  // A second member joins through broker 2: broker 1 learns of it once it polls.
  const m2 = await b.membership.join("g", { topics: ["t"], sessionTimeoutMs: 9000 });
  await a.poll();
  const h1 = await a.membership.heartbeat("g", m1.memberId, ans.generation);
  assert.ok(h1.generation > ans.generation, "the new generation reached member 1");
  assert.equal(h1.pendingRevocation.length, 2, "member 1 gives up half of its partitions");
  assert.equal(m2.assignment.length, 0);
});

Deno.test("group liveness: a silent member is expired by the broker that vouches for it; a dead broker's members by the others", async () => {
  using kv = await Deno.openKv(":memory:");
  let now = 2_000_000;
  const clock = () => now;
  const cluster = new ClusterStore(kv, 6000, clock);
  const a = await broker(kv, cluster, 1, clock);
  const b = await broker(kv, cluster, 2, clock);
  const m1 = await a.membership.join("g", { topics: ["t"], sessionTimeoutMs: 3000 });
  const m2 = await b.membership.join("g", { topics: ["t"], sessionTimeoutMs: 3000 });
  // Member 1 heartbeats through broker 1 (in memory there); member 2 goes silent.
  let g1 = m1.generation;
  for (let i = 0; i < 5; i++) {
    now += 1000;
    await a.heartbeat();
    await b.heartbeat();
    await a.poll();
    g1 = (await a.membership.heartbeat("g", m1.memberId, g1)).generation;
  }
  // Broker 1 judges member 2 alive while broker 2, which vouches for it, is alive.
  let d = await a.membership.describe("g");
  assert.deepEqual(d.members.map((m) => m.memberId).sort(), [m1.memberId, m2.memberId].sort());
  // Broker 2 saw member 2 silent for 5 s > 3 s: its sweep removes it.
  await b.liveness.sweep();
  d = await a.membership.describe("g");
  assert.deepEqual(d.members.map((m) => m.memberId), [m1.memberId]);

  // Member 3 joins through broker 2, then broker 1 dies (stops heartbeating).
  const m3 = await b.membership.join("g", { topics: ["t"], sessionTimeoutMs: 3000 });
  a.die();
  for (let i = 0; i < 4; i++) {
    now += 2000;
    await b.heartbeat();
    await b.poll();
    await b.membership.heartbeat("g", m3.memberId, 0).catch(() => {});
  }
  d = await b.membership.describe("g");
  assert.deepEqual(
    d.members.map((m) => m.memberId),
    [m3.memberId],
    "member 1 went with its broker",
  );
});
