/**
 * The classic group coordinator on its own (an in-process broker for its KV store): the
 * rebalance barrier, fencing by generation and member id, REBALANCE_IN_PROGRESS on the
 * heartbeats of members that must rejoin, session expiry, and the KV mirror that Rill's
 * describe reads.
 *
 * @module
 */
import assert from "node:assert/strict";
import { openTestBroker } from "../http/_app.ts";
import { ClassicGroups, parseAssignment } from "../../src/kafka/group_coordinator.ts";
import { KAFKA_ERROR } from "../../src/kafka/errors.ts";
import { GroupMembership } from "../../src/coordination/group_membership.ts";
import { Writer } from "../../src/kafka/wire.ts";

function subscription(topics: string[]): Uint8Array {
  const w = new Writer().int16(0).int32(topics.length);
  for (const t of topics) w.string(t, false);
  w.bytes(null, false);
  return concat(w.frame()).subarray(4);
}

function assignment(topic: string, partitions: number[]): Uint8Array {
  const w = new Writer().int16(0).int32(1).string(topic, false).int32(partitions.length);
  for (const p of partitions) w.int32(p);
  w.bytes(null, false);
  return concat(w.frame()).subarray(4);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const join = (groups: ClassicGroups, memberId: string, sessionTimeoutMs = 10_000) =>
  groups.join({
    groupId: "g",
    memberId,
    clientId: "c",
    clientHost: "h",
    sessionTimeoutMs,
    rebalanceTimeoutMs: 5_000,
    protocolType: "consumer",
    protocols: [{ name: "range", metadata: subscription(["t"]) }],
  });

Deno.test("classic groups: barrier, fencing, rebalance signals, expiry and the KV mirror", async () => {
  await using tb = await openTestBroker();
  await tb.broker.createTopic({ name: "t", partitions: 4 });
  const groups = new ClassicGroups(tb.broker, () => {});
  try {
    const a = await join(groups, "");
    assert.equal(a.errorCode, 0);
    assert.equal(a.leader, a.memberId);
    assert.equal(a.members.length, 1);
    const s = await groups.sync({
      groupId: "g",
      generationId: a.generationId,
      memberId: a.memberId,
      assignments: [{ memberId: a.memberId, assignment: assignment("t", [0, 1, 2, 3]) }],
    });
    assert.deepEqual(parseAssignment(s.assignment), { t: [0, 1, 2, 3] });
    // Rill's describe reads the mirror.
    const m = new GroupMembership({ kv: tb.broker.kv, partitionCount: () => Promise.resolve(4) });
    const d = await m.describe("g");
    assert.equal(d.members.length, 1);
    assert.deepEqual(d.members[0].assignment.map((x) => x.partition), [0, 1, 2, 3]);
    assert.deepEqual(d.members[0].topics, ["t"]);

    // Fencing.
    assert.equal(
      groups.heartbeat("g", a.memberId, a.generationId + 1),
      KAFKA_ERROR.ILLEGAL_GENERATION,
    );
    assert.equal(groups.heartbeat("g", "nobody", a.generationId), KAFKA_ERROR.UNKNOWN_MEMBER_ID);
    assert.equal(groups.checkCommit("g", "nobody", a.generationId), KAFKA_ERROR.UNKNOWN_MEMBER_ID);
    assert.equal(
      groups.checkCommit("g", a.memberId, a.generationId - 1),
      KAFKA_ERROR.ILLEGAL_GENERATION,
    );
    assert.equal(
      groups.checkCommit("g", "", -1),
      KAFKA_ERROR.UNKNOWN_MEMBER_ID,
      "simple commits need an empty group",
    );
    assert.equal((await join(groups, "not-a-member")).errorCode, KAFKA_ERROR.UNKNOWN_MEMBER_ID);

    // A second member joins: the first is told to rejoin through its heartbeat.
    const bJoin = join(groups, "");
    assert.equal(
      groups.heartbeat("g", a.memberId, a.generationId),
      KAFKA_ERROR.REBALANCE_IN_PROGRESS,
    );
    const aAgain = await join(groups, a.memberId);
    const b = await bJoin;
    assert.equal(aAgain.generationId, a.generationId + 1);
    assert.equal(b.generationId, aAgain.generationId);
    assert.equal(aAgain.members.length, 2, "the leader gets every member's metadata");
    assert.equal(b.members.length, 0);
    // The follower's sync waits for the leader's.
    const bSync = groups.sync({
      groupId: "g",
      generationId: b.generationId,
      memberId: b.memberId,
      assignments: [],
    });
    await groups.sync({
      groupId: "g",
      generationId: aAgain.generationId,
      memberId: a.memberId,
      assignments: [
        { memberId: a.memberId, assignment: assignment("t", [0, 1]) },
        { memberId: b.memberId, assignment: assignment("t", [2, 3]) },
      ],
    });
    assert.deepEqual(parseAssignment((await bSync).assignment), { t: [2, 3] });
    assert.equal(
      groups.heartbeat("g", a.memberId, a.generationId),
      KAFKA_ERROR.ILLEGAL_GENERATION,
      "old generation",
    );

    // b's session expires: a is asked to rebalance and ends up alone.
    let now = Date.now();
    groups.now = () => now;
    now += 11_000;
    groups.heartbeat("g", a.memberId, aAgain.generationId); // a stays alive
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (groups.get("g")!.members.size === 1) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    assert.equal(
      groups.heartbeat("g", a.memberId, aAgain.generationId),
      KAFKA_ERROR.REBALANCE_IN_PROGRESS,
    );
    const alone = await join(groups, a.memberId);
    assert.equal(alone.members.length, 1);
    assert.equal(groups.leave("g", a.memberId), 0);
    assert.equal(groups.get("g")!.state, "Empty");
  } finally {
    groups.close();
  }
});
