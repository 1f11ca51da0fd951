/**
 * The broker's Kafka offset commit log (broker/offset_commit_log.ts) on real files and a real
 * KV file: entries cut short or damaged end the read, commits are readable before their copy
 * and in KV after it (many commits in few KV writes), a copy refused by KV is dropped and
 * logged, a replay at start never moves a partition back, and a group delete waits for the
 * group's pending commits so they do not come back after it.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  decodeCommitEntries,
  encodeCommitEntry,
  type LoggedCommit,
  OFFSET_COMMIT_LOG,
  OffsetCommitLog,
} from "../../src/broker/offset_commit_log.ts";
import { mirrorClassicGroup } from "../../src/coordination/group_classic.ts";
import { type CommittedOffset, groupOffsetKey } from "../../src/coordination/group_keys.ts";
import { GroupMembership } from "../../src/coordination/group_membership.ts";
import { GroupOffsets } from "../../src/coordination/group_offsets.ts";

function commit(offset: number, over: Partial<LoggedCommit> = {}): LoggedCommit {
  return {
    groupId: "g",
    memberId: "m1",
    generation: 1,
    timestampMs: Date.now(),
    offsets: [{ topic: "t", partition: 0, offset, metadata: "" }],
    ...over,
  };
}

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "rill-offset-log-" });
  const kv = await Deno.openKv(`${dir}/meta.kv`);
  const lines: string[] = [];
  return {
    dir,
    kv,
    lines,
    open: () => OffsetCommitLog.open({ dataDir: dir, kv, log: (l) => lines.push(l) }),
    async offset(group = "g", partition = 0) {
      return (await kv.get<CommittedOffset>(groupOffsetKey(group, "t", partition))).value?.offset;
    },
    async [Symbol.asyncDispose]() {
      kv.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Group offsets over `kv` that read the commits `log` has not copied yet (2 partitions, log end 100). */
function groupOffsets(kv: Deno.Kv, log: OffsetCommitLog): GroupOffsets {
  const membership = new GroupMembership({ kv, partitionCount: () => Promise.resolve(2) });
  return new GroupOffsets({
    kv,
    pending: log,
    partitionCount: () => Promise.resolve(2),
    logStartOffset: () => 0,
    logEndOffset: () => 100,
    offsetForTimestamp: () => Promise.resolve(null),
  }, membership);
}

/** A Kafka group with one member, recorded in KV as the coordinator records it. */
async function kafkaGroup(kv: Deno.Kv, groupId = "g") {
  await mirrorClassicGroup(kv, {
    groupId,
    generation: 1,
    protocolType: "consumer",
    protocolName: "range",
    members: [{
      memberId: "m1",
      clientId: "c",
      topics: ["t"],
      sessionTimeoutMs: 10_000,
      joinedAtMs: Date.now(),
      assignment: { t: [0, 1] },
      lastHeartbeatMs: Date.now(),
    }],
  }, Date.now());
}

Deno.test("log entries: a torn or damaged entry ends the read, the ones before it are kept", () => {
  const a = encodeCommitEntry(commit(1));
  const b = encodeCommitEntry(commit(2, { groupId: "h" }));
  const whole = new Uint8Array([...a, ...b]);
  assert.deepEqual(decodeCommitEntries(whole).commits.map((c) => c.offsets[0].offset), [1, 2]);
  for (const cut of [1, 7, 8, b.length - 1]) {
    const torn = decodeCommitEntries(whole.subarray(0, a.length + cut));
    assert.deepEqual(torn.commits.map((c) => c.offsets[0].offset), [1]);
    assert.equal(torn.ignoredBytes, cut);
  }
  const damaged = whole.slice();
  damaged[a.length + 12] ^= 0x40;
  assert.deepEqual(decodeCommitEntries(damaged).commits.length, 1);
});

Deno.test("commits are read before their copy, then are in KV, many in few KV writes", async () => {
  await using t = await setup();
  await kafkaGroup(t.kv);
  const log = t.open();
  await log.recover();
  for (let i = 1; i <= 50; i++) {
    assert.ok(
      log.append(
        commit(i, { offsets: [{ topic: "t", partition: i % 2, offset: i, metadata: "" }] }),
      ),
    );
    assert.equal(log.pendingOf("g")?.get(`t\u0000${i % 2}`)?.value.offset, i);
  }
  await log.settled();
  assert.equal(log.pendingOf("g"), undefined);
  assert.equal(await t.offset("g", 0), 50);
  assert.equal(await t.offset("g", 1), 49);
  const s = log.stats;
  assert.equal(s.appended, 50);
  assert.ok(s.kvWrites < 10, `50 commits took ${s.kvWrites} KV writes`);
  await log.close();
  // Everything was copied: a clean close leaves nothing to replay.
  assert.equal((await Deno.stat(`${t.dir}/${OFFSET_COMMIT_LOG}`)).size, 0);
  const again = t.open();
  await again.recover();
  assert.ok(!t.lines.some((l) => /to copy into the KV/.test(l)), t.lines.join("\n"));
  await again.close();
});

Deno.test("copy rounds read a Kafka group once while its meta is unchanged, again after a rebalance", async () => {
  await using t = await setup();
  await kafkaGroup(t.kv);
  const log = t.open();
  for (let i = 1; i <= 5; i++) {
    assert.ok(log.append(commit(i)));
    await log.settled();
  }
  assert.equal(await t.offset(), 5);
  assert.deepEqual([log.stats.kvReads, log.stats.kvWrites], [1, 5]);
  // A rebalance recorded by the coordinator changes the meta: the kept snapshot's check fails,
  // the commit is decided again on a fresh read and lands.
  await kafkaGroup(t.kv);
  assert.ok(log.append(commit(6)));
  await log.settled();
  assert.equal(await t.offset(), 6);
  assert.ok(log.stats.kvReads >= 2, JSON.stringify(log.stats));
  assert.ok(log.append(commit(7)));
  await log.settled();
  assert.equal(await t.offset(), 7);
  await log.close();
});

Deno.test("a member's commit whose group was deleted before the copy is dropped and logged", async () => {
  await using t = await setup();
  const log = t.open();
  assert.ok(log.append(commit(7)));
  await log.settled();
  assert.equal(await t.offset(), undefined);
  assert.equal(log.stats.dropped, 1);
  assert.ok(t.lines.some((l) => /dropped 1 Kafka offset commit\(s\) of group "g"/.test(l)));
  await log.close();
});

Deno.test("a restart copies what the log holds, but never over a newer commit in KV", async () => {
  await using t = await setup();
  await kafkaGroup(t.kv);
  const now = Date.now();
  // Partition 0: committed later through another broker; partition 1: only in the log.
  await t.kv.set(
    groupOffsetKey("g", "t", 0),
    {
      offset: 90,
      metadata: "",
      commitTimestampMs: now,
      memberId: "m2",
      generation: 2,
    } satisfies CommittedOffset,
  );
  const entries = [
    commit(5, { timestampMs: now - 1000 }),
    commit(6, {
      timestampMs: now - 1000,
      offsets: [{ topic: "t", partition: 1, offset: 6, metadata: "" }],
    }),
  ].map(encodeCommitEntry);
  await Deno.writeFile(
    `${t.dir}/${OFFSET_COMMIT_LOG}`,
    new Uint8Array(entries.flatMap((e) => [...e])),
  );
  const log = t.open();
  assert.ok(
    t.lines.some((l) => /2 Kafka committed offset\(s\) to copy/.test(l)),
    t.lines.join("\n"),
  );
  await log.recover();
  assert.equal(await t.offset("g", 0), 90);
  assert.equal(await t.offset("g", 1), 6);
  await log.close();
});

Deno.test("pending commits are read at once; deleting a group waits for them, they do not come back", async () => {
  await using t = await setup();
  const log = t.open();
  const offsets = groupOffsets(t.kv, log);
  // A simple commit (no member) creates the group when copied; read at once, it is there.
  assert.ok(log.append(commit(3, { groupId: "h", memberId: null, generation: null })));
  const seen = await offsets.fetch("h");
  assert.deepEqual(seen.offsets.map((o) => [o.offset, o.lag]), [[3, 97]]);
  // Deleted at once, before the commit's copy: the delete waits for it, then removes it.
  assert.ok(log.append(commit(4, { memberId: null, generation: null })));
  await offsets.deleteGroup("g");
  await log.settled();
  assert.equal(await t.offset(), undefined);
  await assert.rejects(offsets.fetch("g"), /GROUP_ID_NOT_FOUND|does not exist/);
  await log.close();
});

Deno.test("a partition committed in KV and again in a pending commit is read once, at the pending offset", async () => {
  await using t = await setup();
  await kafkaGroup(t.kv);
  const log = t.open();
  const offsets = groupOffsets(t.kv, log);
  // Partition 0 was copied at 5 earlier; a newer commit of 8 is answered, not yet copied.
  await t.kv.set(
    groupOffsetKey("g", "t", 0),
    {
      offset: 5,
      metadata: "",
      commitTimestampMs: Date.now(),
      memberId: "m1",
      generation: 1,
    } satisfies CommittedOffset,
  );
  assert.ok(log.append(commit(8)));
  const seen = await offsets.fetch("g");
  assert.deepEqual(seen.offsets.map((o) => [o.topic, o.partition, o.offset]), [["t", 0, 8]]);
  await log.settled();
  await log.close();
});
