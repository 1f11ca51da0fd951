/**
 * Coalesced offset commits (src/coordination/offset_commits.ts) on a real KV file: commits
 * arriving together share KV writes, each is still fenced on its own, and each is answered
 * only once it is durable (readable from another KV handle).
 */
import assert from "node:assert/strict";
import { GroupMembership } from "../../src/coordination/group_membership.ts";
import { GroupOffsets } from "../../src/coordination/group_offsets.ts";
import { CommitCoalescer, type PlanCommit } from "../../src/coordination/offset_commits.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

async function open(path: string) {
  const kv = await Deno.openKv(path);
  const deps = {
    kv,
    partitionCount: (t: string) => Promise.resolve(t === "t" ? 64 : null),
    logStartOffset: () => 0,
    logEndOffset: () => 1_000_000,
    offsetForTimestamp: () => Promise.resolve(null),
  };
  const membership = new GroupMembership(deps);
  return { kv, membership, offsets: new GroupOffsets(deps, membership) };
}

Deno.test("offset commits: concurrent commits share KV writes and are each durable and fenced", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/kv.sqlite`;
  const { kv, membership, offsets } = await open(path);
  try {
    // Simple commits (no members) to 40 partitions of one group, all at once.
    const simple = await Promise.all(
      Array.from(
        { length: 40 },
        (_, p) =>
          offsets.commit("plain", { offsets: [{ topic: "t", partition: p, offset: 100 + p }] }),
      ),
    );
    assert.equal(simple.length, 40);
    const afterSimple = { ...offsets.commitStats };
    assert.equal(afterSimple.commits, 40);
    assert.ok(afterSimple.writes < 40, `${afterSimple.writes} writes for 40 commits`);

    // A member group: one member owns every partition.
    const joined = await membership.join("g", { topics: ["t"] });
    const { memberId, generation } = joined;
    const good = Array.from({ length: 30 }, (_, i) =>
      offsets.commit("g", {
        memberId,
        generation,
        offsets: [{ topic: "t", partition: i % 64, offset: 1000 + i }],
      }));
    // In the same burst: a stale generation and an unknown member are refused alone.
    const stale = offsets.commit("g", {
      memberId,
      generation: generation + 7,
      offsets: [{ topic: "t", partition: 0, offset: 1 }],
    });
    const stranger = offsets.commit("g", {
      memberId: "nobody",
      generation,
      offsets: [{ topic: "t", partition: 1, offset: 1 }],
    });
    const refusals = [
      assert.rejects(
        stale,
        (e: unknown) => e instanceof RillError && e.code === "ILLEGAL_GENERATION",
      ),
      assert.rejects(
        stranger,
        (e: unknown) => e instanceof RillError && e.code === "UNKNOWN_MEMBER_ID",
      ),
    ];
    await Promise.all(good);
    await Promise.all(refusals);

    // Durable: another handle on the same file reads every committed offset.
    const other = await open(path);
    try {
      const plain = await other.offsets.fetch("plain");
      assert.deepEqual(
        plain.offsets.map((o) => o.offset),
        Array.from({ length: 40 }, (_, p) => 100 + p),
      );
      const g = await other.offsets.fetch("g");
      const byPartition = new Map(g.offsets.map((o) => [o.partition, o.offset]));
      for (let i = 0; i < 30; i++) assert.equal(byPartition.get(i), 1000 + i);
    } finally {
      other.kv.close();
    }
  } finally {
    kv.close();
  }
});

Deno.test("offset commits: a round whose checks fail (a member heartbeats meanwhile) is run commit by commit", async () => {
  await using dir = await tempDir();
  const { kv, membership, offsets } = await open(`${dir.path}/kv.sqlite`);
  try {
    const a = await membership.join("g", { topics: ["t"] });
    const commits = [];
    for (let round = 0; round < 20; round++) {
      // Heartbeats write the member's record while commits that read it are in flight.
      commits.push(
        offsets.commit("g", {
          memberId: a.memberId,
          generation: a.generation,
          offsets: [{ topic: "t", partition: round % 64, offset: round }],
        }),
      );
      commits.push(membership.heartbeat("g", a.memberId, a.generation).then(() => undefined));
    }
    await Promise.all(commits);
    const g = await offsets.fetch("g");
    assert.equal(g.offsets.length, 20);
    assert.equal(offsets.commitStats.commits, 20);
  } finally {
    kv.close();
  }
});

Deno.test("offset commits: keys with bigint parts are coalesced, and a failing plan's commit is refused while the others land", async () => {
  await using dir = await tempDir();
  const kv = await Deno.openKv(`${dir.path}/kv.sqlite`);
  try {
    const plan: PlanCommit<{ offsets: number[]; fail?: boolean }> = (groupId, req) => {
      if (req.fail) throw new RillError("ILLEGAL_GENERATION", "Stale generation");
      const key = ["bigint-commits", groupId, BigInt(req.offsets[0])];
      return {
        checks: [{ key, versionstamp: null }],
        meta: null,
        sets: [[key, {
          offset: req.offsets[0],
          metadata: "",
          commitTimestampMs: 0,
          memberId: null,
          generation: null,
        }]],
      };
    };
    const commits = new CommitCoalescer(kv, plan);
    const results = await Promise.allSettled([
      commits.commit("g", { offsets: [1] }),
      commits.commit("g", { offsets: [2] }),
      commits.commit("g", { offsets: [3], fail: true }),
      commits.commit("h", { offsets: [1] }),
    ]);
    assert.deepEqual(results.map((r) => r.status), [
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    for (const [g, o] of [["g", 1], ["g", 2], ["h", 1]] as const) {
      const got = await kv.get<{ offset: number }>(["bigint-commits", g, BigInt(o)]);
      assert.equal(got.value?.offset, o);
    }
  } finally {
    kv.close();
  }
});
