/**
 * A Kafka group's offset commits in the shared KV group store (src/coordination/group_classic.ts)
 * on a real KV file: while the group's meta is unchanged a commit is one conditional write,
 * and once Rill consumers took the group a commit from a Kafka client is refused and changes
 * nothing, exactly as without the shortcut.
 */
import assert from "node:assert/strict";
import {
  type ClassicMetaHints,
  commitClassicOffsets,
  mirrorClassicGroup,
  readCommittedOffsets,
} from "../../src/coordination/group_classic.ts";
import { GroupMembership } from "../../src/coordination/group_membership.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

const member = (memberId: string) => ({
  memberId,
  clientId: "kafkajs",
  topics: ["t"],
  sessionTimeoutMs: 30_000,
  joinedAtMs: Date.now(),
  assignment: { t: [0, 1] },
  lastHeartbeatMs: Date.now(),
});

async function committed(kv: Deno.Kv, partition: number): Promise<number | undefined> {
  const got = await readCommittedOffsets(kv, "g", [{ topic: "t", partitions: [partition] }]);
  return got.get(`t\u0000${partition}`)?.offset;
}

Deno.test("Kafka group commits: fast while the group is unchanged, refused once Rill consumers took it", async () => {
  await using dir = await tempDir();
  const kv = await Deno.openKv(`${dir.path}/kv.sqlite`);
  try {
    const hints: ClassicMetaHints = new Map();
    const base = { groupId: "g", protocolType: "consumer", protocolName: "range" };
    await mirrorClassicGroup(kv, { ...base, generation: 1, members: [member("a")] }, Date.now());
    const commit = (offset: number, generation: number) =>
      commitClassicOffsets(
        kv,
        "g",
        [{ topic: "t", partition: 0, offset, metadata: "" }],
        { memberId: "a", generation },
        Date.now(),
        hints,
      );
    await commit(5, 1);
    assert.equal(await committed(kv, 0), 5);
    assert.ok(hints.has("g"), "the Kafka group's meta is remembered");
    await commit(6, 1);
    assert.equal(await committed(kv, 0), 6);
    // A rebalance rewrites the meta: the next commit still lands.
    await mirrorClassicGroup(kv, { ...base, generation: 2, members: [member("a")] }, Date.now());
    await commit(7, 2);
    assert.equal(await committed(kv, 0), 7);
    // The Kafka members leave; a Rill consumer takes the group.
    await mirrorClassicGroup(kv, { ...base, generation: 3, members: [] }, Date.now());
    const membership = new GroupMembership({
      kv,
      partitionCount: (t: string) => Promise.resolve(t === "t" ? 2 : null),
    });
    await membership.join("g", { topics: ["t"] });
    await assert.rejects(
      () => commit(8, 2),
      (e) => e instanceof RillError && e.code === "INCONSISTENT_GROUP_PROTOCOL",
    );
    assert.equal(await committed(kv, 0), 7, "the refused commit changed nothing");
  } finally {
    kv.close();
  }
});
