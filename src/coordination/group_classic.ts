/**
 * Kafka's classic group protocol in the shared KV group store (group_keys.ts): the Kafka
 * listener's coordinator keeps a group's rebalance state in memory and mirrors it here, so
 * that `rill groups describe` shows a Kafka group's members, assignment and lag, and
 * committed offsets are the same records Rill consumers use.
 *
 * A group is used by one protocol at a time: the meta of a Kafka group carries `kafka`
 * (its protocol type and name); Rill's join refuses such a group while it has live
 * members, and the Kafka coordinator refuses a group with live Rill members, both with
 * INCONSISTENT_GROUP_PROTOCOL.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import {
  type CommittedOffset,
  groupMemberKey,
  type GroupMeta,
  groupMetaKey,
  groupOffsetKey,
  type TopicPartitions,
} from "./group_keys.ts";
import {
  checkAll,
  commitAtomic,
  CONFLICT,
  expiredMembers,
  type GroupSnapshot,
  markGroupsChanged,
  newMeta,
  readGroup,
  withConflictRetry,
} from "./group_store.ts";
import type { CommitPlan } from "./offset_commits.ts";

/** A member of a Kafka group as mirrored into KV. */
export interface ClassicMemberMirror {
  /** the member id */
  memberId: string;
  /** the client id */
  clientId: string;
  /** the subscribed topics (from the consumer protocol's subscription) */
  topics: string[];
  /** the session timeout */
  sessionTimeoutMs: number;
  /** when it joined */
  joinedAtMs: number;
  /** its assignment (from the leader's SyncGroup) */
  assignment: TopicPartitions;
  /** its last heartbeat */
  lastHeartbeatMs: number;
}

/** A Kafka group's state as mirrored into KV. */
export interface ClassicGroupMirror {
  /** the group id */
  groupId: string;
  /** the generation */
  generation: number;
  /** the protocol type ("consumer" for consumers) */
  protocolType: string;
  /** the chosen protocol (the assignor name, e.g. "range") */
  protocolName: string;
  /** the members */
  members: ClassicMemberMirror[];
}

/**
 * Throws INCONSISTENT_GROUP_PROTOCOL when the group has live members of Rill's protocol.
 *
 * @param kv the KV
 * @param groupId the group
 * @param now the clock
 * @throws {RillError} INCONSISTENT_GROUP_PROTOCOL
 */
export async function checkNotRillGroup(kv: Deno.Kv, groupId: string, now: number) {
  const snap = await readGroup(kv, groupId);
  if (!snap.meta || snap.meta.kafka) return;
  const expired = new Set(expiredMembers(snap, now));
  const live = [...snap.members.keys()].filter((id) => !expired.has(id));
  if (live.length > 0) {
    throw new RillError(
      "INCONSISTENT_GROUP_PROTOCOL",
      `Group "${groupId}" is in use by ${live.length} Rill consumer(s); a group is used by one protocol at a time`,
    );
  }
}

/**
 * Writes a Kafka group's state into KV (meta with the `kafka` marker, one record per
 * member, members gone deleted), replacing what was there.
 *
 * @param kv the KV
 * @param g the state
 * @param now the clock
 * @throws {RillError} INCONSISTENT_GROUP_PROTOCOL when Rill consumers took the group
 */
export async function mirrorClassicGroup(
  kv: Deno.Kv,
  g: ClassicGroupMirror,
  now: number,
): Promise<void> {
  await withConflictRetry("record the Kafka group", async () => {
    const snap = await readGroup(kv, g.groupId);
    if (snap.meta && !snap.meta.kafka) {
      const expired = new Set(expiredMembers(snap, now));
      if ([...snap.members.keys()].some((id) => !expired.has(id))) {
        throw new RillError(
          "INCONSISTENT_GROUP_PROTOCOL",
          `Group "${g.groupId}" is in use by Rill consumers`,
        );
      }
    }
    const base = snap.meta ?? newMeta(g.groupId, now);
    const meta: GroupMeta = {
      ...base,
      generation: g.generation,
      assignor: "range",
      members: Object.fromEntries(g.members.map((m) => [m.memberId, {
        topics: [...m.topics].sort(),
        sessionTimeoutMs: m.sessionTimeoutMs,
        clientId: m.clientId,
        joinedAtMs: m.joinedAtMs,
      }])),
      target: Object.fromEntries(g.members.map((m) => [m.memberId, m.assignment])),
      partitionCounts: {},
      kafka: { protocolType: g.protocolType, protocolName: g.protocolName },
    };
    const ids = new Set(g.members.map((m) => m.memberId));
    const ok = await commitAtomic(() => {
      // Rill brokers' group snapshots (group_liveness.ts) must see this change.
      const op = markGroupsChanged(checkAll(kv.atomic(), snap));
      op.set(groupMetaKey(g.groupId), meta);
      for (const m of g.members) {
        op.set(groupMemberKey(g.groupId, m.memberId), {
          generation: g.generation,
          assignment: m.assignment,
          pendingRevocation: {},
          lastHeartbeatMs: m.lastHeartbeatMs,
          revocationStartedMs: null,
        });
      }
      for (const id of snap.members.keys()) {
        if (!ids.has(id)) op.delete(groupMemberKey(g.groupId, id));
      }
      return op;
    });
    return ok ? true : CONFLICT;
  });
}

/**
 * Refreshes one member's heartbeat time in KV (so describe and expiry see it alive).
 *
 * @param kv the KV
 * @param groupId the group
 * @param memberId the member
 * @param now the heartbeat time
 */
export async function touchClassicMember(
  kv: Deno.Kv,
  groupId: string,
  memberId: string,
  now: number,
): Promise<void> {
  const key = groupMemberKey(groupId, memberId);
  const cur = await kv.get<{ lastHeartbeatMs: number }>(key);
  if (cur.value === null) return;
  await commitAtomic(() => kv.atomic().check(cur).set(key, { ...cur.value, lastHeartbeatMs: now }));
}

/** One offset a Kafka client commits. */
export interface ClassicOffset {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the next offset to read */
  offset: number;
  /** the client's metadata */
  metadata: string;
}

/**
 * Versionstamps of Kafka group metas (groupId → versionstamp) seen by
 * {@linkcode commitClassicOffsets}: while a group's meta is unchanged, a commit is one
 * conditional KV write instead of a read and a write. Bounded: it starts afresh past
 * {@linkcode META_HINTS_MAX} groups.
 */
export type ClassicMetaHints = Map<string, string>;

/** The most groups a {@linkcode ClassicMetaHints} remembers. */
export const META_HINTS_MAX = 10_000;

/**
 * Writes committed offsets of a Kafka group (already fenced by the coordinator's
 * generation and member checks) into the shared offset records.
 *
 * With `hints`, a group whose meta was read before as a Kafka group's is written with one
 * conditional write (the meta's versionstamp checked, as the full path does); when the meta
 * changed since (a rebalance, or Rill consumers took the group) the full path runs.
 *
 * @param kv the KV
 * @param groupId the group
 * @param offsets the offsets
 * @param member the committing member and generation, or null for a simple commit
 * @param now the clock
 * @param hints the meta versionstamps seen so far (kept by the caller)
 * @throws {RillError} INCONSISTENT_GROUP_PROTOCOL when Rill consumers hold the group
 */
export async function commitClassicOffsets(
  kv: Deno.Kv,
  groupId: string,
  offsets: ClassicOffset[],
  member: { memberId: string; generation: number } | null,
  now: number,
  hints?: ClassicMetaHints,
): Promise<void> {
  const setOffsets = (op: Deno.AtomicOperation) => {
    for (const o of offsets) {
      op.set(
        groupOffsetKey(groupId, o.topic, o.partition),
        {
          offset: o.offset,
          metadata: o.metadata,
          commitTimestampMs: now,
          memberId: member?.memberId ?? null,
          generation: member?.generation ?? null,
        } satisfies CommittedOffset,
      );
    }
    return op;
  };
  const known = hints?.get(groupId);
  if (known !== undefined) {
    const ok = await commitAtomic(() =>
      setOffsets(kv.atomic().check({ key: groupMetaKey(groupId), versionstamp: known }))
    );
    if (ok) return;
    hints!.delete(groupId);
  }
  await withConflictRetry("commit offsets", async () => {
    const snap = await readGroup(kv, groupId);
    if (snap.meta && !snap.meta.kafka) {
      const expired = new Set(expiredMembers(snap, now));
      if ([...snap.members.keys()].some((id) => !expired.has(id))) {
        throw new RillError(
          "INCONSISTENT_GROUP_PROTOCOL",
          `Group "${groupId}" is in use by Rill consumers; commit through their protocol`,
        );
      }
    }
    const ok = await commitAtomic(() => {
      const op = kv.atomic().check({
        key: groupMetaKey(groupId),
        versionstamp: snap.metaVersionstamp,
      });
      if (!snap.meta) markGroupsChanged(op).set(groupMetaKey(groupId), newMeta(groupId, now));
      return setOffsets(op);
    });
    if (ok && hints && snap.meta?.kafka && snap.metaVersionstamp !== null) {
      if (hints.size >= META_HINTS_MAX) hints.clear();
      hints.set(groupId, snap.metaVersionstamp);
    }
    return ok ? true : CONFLICT;
  });
}

/** A committed offset of a Kafka group on its way into KV (broker/offset_commit_log.ts). */
export interface ClassicOffsetCopy {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the record, as committed (its time, member and generation are the commit's) */
  value: CommittedOffset;
}

/** Kafka commits of one group copied into KV together (what {@linkcode planClassicCopy} takes). */
export interface ClassicCopyRequest {
  /** the offsets */
  offsets: ClassicOffsetCopy[];
  /** whether a group member made any of them (not only simple commits) */
  byMember: boolean;
}

/**
 * Decides the KV write of Kafka commits that the group's coordinator already accepted (its
 * in-memory member and generation checks): the offsets, checked on the group's meta as read.
 * A simple commit to a group not in KV creates it, as {@linkcode commitClassicOffsets} does.
 *
 * @param groupId the group
 * @param req the offsets
 * @param snap the group as read in the coalescer's round
 * @param now the clock
 * @returns the plan (offset_commits.ts)
 * @throws {RillError} INCONSISTENT_GROUP_PROTOCOL when Rill consumers took the group meanwhile;
 *   GROUP_ID_NOT_FOUND when a member's commit finds no group (deleted meanwhile: a Kafka
 *   group is recorded in KV before any member may commit)
 */
export function planClassicCopy(
  groupId: string,
  req: ClassicCopyRequest,
  snap: GroupSnapshot,
  now: number,
): CommitPlan {
  if (snap.meta && !snap.meta.kafka) {
    const expired = new Set(expiredMembers(snap, now));
    if ([...snap.members.keys()].some((id) => !expired.has(id))) {
      throw new RillError(
        "INCONSISTENT_GROUP_PROTOCOL",
        `Group "${groupId}" is in use by Rill consumers`,
      );
    }
  }
  if (!snap.meta && req.byMember) {
    throw new RillError("GROUP_ID_NOT_FOUND", `Group "${groupId}" no longer exists`);
  }
  return {
    checks: [{ key: groupMetaKey(groupId), versionstamp: snap.metaVersionstamp }],
    meta: snap.meta ? null : newMeta(groupId, now),
    sets: req.offsets.map((o) => [groupOffsetKey(groupId, o.topic, o.partition), o.value]),
  };
}

/**
 * Reads committed offsets of a group.
 *
 * @param kv the KV
 * @param groupId the group
 * @param wanted topic → partitions, or null for every committed offset
 * @returns offsets (absent partitions are not listed)
 */
export async function readCommittedOffsets(
  kv: Deno.Kv,
  groupId: string,
  wanted: { topic: string; partitions: number[] }[] | null,
): Promise<Map<string, CommittedOffset>> {
  const out = new Map<string, CommittedOffset>();
  if (wanted === null) {
    const prefix = [...groupMetaKey(groupId).slice(0, -1), "offset"];
    for await (const e of kv.list<CommittedOffset>({ prefix })) {
      out.set(`${String(e.key[4])}\u0000${Number(e.key[5])}`, e.value);
    }
    return out;
  }
  const keys = wanted.flatMap((t) => t.partitions.map((p) => groupOffsetKey(groupId, t.topic, p)));
  for (let i = 0; i < keys.length; i += 10) {
    const got = await kv.getMany<CommittedOffset[]>(keys.slice(i, i + 10));
    for (const e of got) {
      if (e.value !== null) out.set(`${String(e.key[4])}\u0000${Number(e.key[5])}`, e.value);
    }
  }
  return out;
}
