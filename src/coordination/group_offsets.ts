/**
 * Committed offsets of consumer groups in Deno KV: fenced commits, lag, reset and delete.
 * The committed offset of a partition is the next offset to read, as in Kafka.
 *
 * **Fencing.** A member's commit names `memberId` and `generation`; it is accepted only when
 * the member is live, `generation` is the member's current generation, and every partition
 * is one the member owns (in its `assignment` or its `pendingRevocation`, so a member may
 * commit what it is giving up before it confirms, but not once that revocation timed out). Otherwise: 409 UNKNOWN_MEMBER_ID or
 * ILLEGAL_GENERATION (the latter with `notOwned` listing the partitions it does not own), and
 * nothing is written. The write checks the versionstamps of the meta and of the member's
 * record, so ownership cannot change between the decision and the write. A member's
 * generation changes only through its own heartbeats, so a commit carrying the generation of
 * its last answer is never failed by other members coming and going.
 *
 * **Simple commits** (no `memberId`/`generation`, like Kafka's standalone consumers) are
 * accepted only while the group has no members, else 409 UNKNOWN_MEMBER_ID; they create the
 * group (Empty) if needed.
 *
 * **Atomicity.** All partitions of one commit are one atomic KV write (at most
 * {@linkcode MAX_COMMIT_PARTITIONS}); commits arriving while a write is in flight share the
 * next one (offset_commits.ts), each still fenced on its own.
 *
 * **Reset** (earliest, latest, an offset clamped to the log's bounds, or the first offset at
 * or after a timestamp, else the log end) and **delete** are allowed only while the group has
 * no live members, else 409 NON_EMPTY_GROUP. A reset creates the group if needed, as Kafka's
 * `kafka-consumer-groups --reset-offsets` does.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import {
  type CommittedOffset,
  groupMemberKey,
  groupMetaKey,
  groupOffsetKey,
  groupOffsetsPrefix,
} from "./group_keys.ts";
import { type GroupMembership, groupNotFound, unknownMember } from "./group_membership.ts";
import { has, type TopicPartition, tpKey } from "./group_partitions.ts";
import { revocationTimedOut } from "./group_reconcile.ts";
import { CommitCoalescer, type CommitPlan, type CommitStats } from "./offset_commits.ts";
import {
  checkAll,
  commitAtomic,
  CONFLICT,
  type GroupSnapshot,
  isExpired,
  markGroupsChanged,
  newMeta,
  withConflictRetry,
} from "./group_store.ts";

/** Most partitions in one commit or reset (KV allows 1000 mutations per atomic write). */
export const MAX_COMMIT_PARTITIONS = 900;
/** Longest commit metadata (Kafka's offset.metadata.max.bytes default). */
export const MAX_METADATA_LENGTH = 4096;

/** What offsets need from the broker. */
export interface GroupOffsetsDeps {
  /** the KV store shared by every broker */
  kv: Deno.Kv;
  /** the clock (ms since epoch); default Date.now */
  now?: () => number;
  /** a topic's partition count, or null when the topic does not exist */
  partitionCount(topic: string): Promise<number | null>;
  /** a partition's log start offset */
  logStartOffset(topic: string, partition: number): Promise<number> | number;
  /** a partition's log end offset (the next offset to be written) */
  logEndOffset(topic: string, partition: number): Promise<number> | number;
  /**
   * the log end offset for lag from any broker: live when it leads the partition, else the
   * leader's latest report and its age (null: unknown); default {@linkcode logEndOffset}
   */
  lagEndOffset?(
    topic: string,
    partition: number,
  ): Promise<{ offset: number; ageMs: number } | null>;
  /** the first offset whose timestamp is >= ts, or null when there is none */
  offsetForTimestamp(topic: string, partition: number, ts: number): Promise<number | null>;
  /**
   * commits this broker answered that are not in KV yet (the Kafka listener's,
   * broker/offset_commit_log.ts): reads lay them over KV's; a reset or delete first waits
   * for them
   */
  pending?: PendingCommits;
}

/** Commits answered but not yet in KV (broker/offset_commit_log.ts). */
/**
 * The key of a partition in {@linkcode PendingCommits.pendingOf}'s map.
 *
 * @param topic the topic
 * @param partition the partition
 * @returns `topic + "\u0000" + partition`
 */
export function pendingKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export interface PendingCommits {
  /** a group's pending offsets, by {@linkcode pendingKey} */
  pendingOf(
    groupId: string,
  ): ReadonlyMap<string, TopicPartition & { value: CommittedOffset }> | undefined;
  /** resolves once the group's commits appended so far are in KV (or dropped) */
  settled(groupId: string): Promise<void>;
}

/** One partition's offset in a commit (validated). */
export interface OffsetCommit extends TopicPartition {
  /** the next offset to read */
  offset: number;
  /** free-form metadata */
  metadata?: string;
}

/** A commit request (validated). */
export interface CommitRequest {
  /** the committing member; absent for a simple commit */
  memberId?: string;
  /** its generation; absent for a simple commit */
  generation?: number;
  /** the offsets */
  offsets: OffsetCommit[];
}

/** A committed offset with the partition's lag. */
export interface OffsetLag extends TopicPartition {
  /** the committed offset (next to read) */
  offset: number;
  /** the commit's metadata */
  metadata: string;
  /**
   * the partition's log end offset, or null when the partition no longer exists or this
   * broker cannot tell (it does not host the partition)
   */
  logEndOffset: number | null;
  /** `logEndOffset - offset` (never negative), or null when `logEndOffset` is */
  lag: number | null;
  /**
   * how old the log end offset is, ms: 0 when the answering broker leads the partition,
   * else the age of the leader's latest report; null when `logEndOffset` is
   */
  logEndOffsetAgeMs: number | null;
}

/** Where a reset moves the committed offsets. */
export type ResetTo = "earliest" | "latest" | { offset: number } | { timestamp: number };

/**
 * Committed offsets of groups.
 *
 * @example
 * ```ts
 * const offsets = new GroupOffsets(deps, membership);
 * await offsets.commit("g", { memberId, generation, offsets: [{ topic: "t", partition: 0, offset: 42 }] });
 * ```
 */
export class GroupOffsets {
  readonly #deps: GroupOffsetsDeps;
  readonly #kv: Deno.Kv;
  readonly #now: () => number;
  readonly #membership: GroupMembership;
  readonly #commits: CommitCoalescer<CommitRequest>;

  /**
   * @param deps KV, clock and log bounds
   * @param membership the membership of the same KV (for lazy expiry)
   * @param coalesce false: each commit reads and writes KV alone (offset_commits.ts)
   */
  constructor(deps: GroupOffsetsDeps, membership: GroupMembership, coalesce = true) {
    this.#deps = deps;
    this.#kv = deps.kv;
    this.#now = deps.now ?? Date.now;
    this.#membership = membership;
    this.#commits = new CommitCoalescer(this.#kv, planCommit, this.#now, coalesce);
  }

  /**
   * Commits offsets, fenced by member and generation, in one atomic write.
   *
   * @param groupId a validated group id
   * @param req the validated request
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
   *   INVALID_REQUEST (duplicate partitions, too many), REBALANCE_IN_PROGRESS
   */
  async commit(groupId: string, req: CommitRequest): Promise<void> {
    if (req.offsets.length === 0) {
      throw new RillError("INVALID_REQUEST", `"offsets" must list at least one partition`);
    }
    if (req.offsets.length > MAX_COMMIT_PARTITIONS) {
      throw new RillError(
        "INVALID_REQUEST",
        `One commit may hold at most ${MAX_COMMIT_PARTITIONS} partitions, got ${req.offsets.length}`,
      );
    }
    const seen = new Set<string>();
    for (const o of req.offsets) {
      const k = tpKey(o.topic, o.partition);
      if (seen.has(k)) {
        throw new RillError(
          "INVALID_REQUEST",
          `Partition ${o.topic}-${o.partition} appears twice in one commit`,
        );
      }
      seen.add(k);
      await this.#checkPartition(o.topic, o.partition);
    }
    await this.#commits.commit(groupId, req);
  }

  /** What the commits of this broker did (coalescing; offset_commits.ts). */
  get commitStats(): CommitStats {
    return this.#commits.stats;
  }

  /**
   * The committed offsets of a group with each partition's lag.
   *
   * @param groupId a validated group id
   * @param mustExist throw GROUP_ID_NOT_FOUND when the group does not exist
   * @returns offsets sorted by topic and partition, and their total lag
   * @throws {RillError} GROUP_ID_NOT_FOUND
   */
  async fetch(
    groupId: string,
    mustExist = true,
  ): Promise<{ offsets: OffsetLag[]; totalLag: number }> {
    const pending = this.#deps.pending?.pendingOf(groupId);
    if (
      mustExist && !pending && (await this.#kv.get(groupMetaKey(groupId))).versionstamp === null
    ) {
      throw groupNotFound(groupId);
    }
    const committed: (TopicPartition & { value: CommittedOffset })[] = [];
    for await (const e of this.#kv.list<CommittedOffset>({ prefix: groupOffsetsPrefix(groupId) })) {
      const topic = String(e.key[4]);
      const partition = Number(e.key[5]);
      const newer = pending?.get(pendingKey(topic, partition));
      committed.push({ topic, partition, value: newer?.value ?? e.value });
    }
    if (pending) {
      // Partitions whose first commit is not in KV yet, in KV's order (topic, partition).
      const listed = new Set(committed.map((c) => pendingKey(c.topic, c.partition)));
      for (const [k, p] of pending) {
        if (!listed.has(k)) {
          committed.push({ topic: p.topic, partition: p.partition, value: p.value });
        }
      }
      committed.sort((a, b) =>
        a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition
      );
    }
    const offsets: OffsetLag[] = [];
    let totalLag = 0;
    for (const { topic, partition, value } of committed) {
      const count = await this.#deps.partitionCount(topic);
      let logEndOffset: number | null = null;
      let lag: number | null = null;
      let logEndOffsetAgeMs: number | null = null;
      if (count !== null && partition < count) {
        const end = await this.#lagEndOffsetOrNull(topic, partition);
        logEndOffset = end?.offset ?? null;
        logEndOffsetAgeMs = end?.ageMs ?? null;
        if (logEndOffset !== null) {
          lag = Math.max(0, logEndOffset - value.offset);
          totalLag += lag;
        }
      }
      offsets.push({
        topic,
        partition,
        offset: value.offset,
        metadata: value.metadata,
        logEndOffset,
        lag,
        logEndOffsetAgeMs,
      });
    }
    return { offsets, totalLag };
  }

  /**
   * Moves a group's committed offsets of one topic; only while the group has no members.
   *
   * @param groupId a validated group id
   * @param topic the topic
   * @param to where to
   * @param partitions which partitions (default: all of the topic)
   * @returns the new offsets
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, NON_EMPTY_GROUP, REBALANCE_IN_PROGRESS
   */
  async reset(
    groupId: string,
    topic: string,
    to: ResetTo,
    partitions?: number[],
  ): Promise<{ offsets: (TopicPartition & { offset: number })[] }> {
    const count = await this.#deps.partitionCount(topic);
    if (count === null) {
      throw new RillError("UNKNOWN_TOPIC_OR_PARTITION", `Topic "${topic}" does not exist`, {
        topic,
      });
    }
    const list = partitions ?? Array.from({ length: count }, (_, i) => i);
    if (list.length > MAX_COMMIT_PARTITIONS) {
      throw new RillError(
        "INVALID_REQUEST",
        `One reset may hold at most ${MAX_COMMIT_PARTITIONS} partitions`,
      );
    }
    for (const p of list) await this.#checkPartition(topic, p);
    // Commits answered before the reset are in KV first, so the reset replaces them.
    await this.#deps.pending?.settled(groupId);
    const offsets: (TopicPartition & { offset: number })[] = [];
    for (const partition of list) {
      const start = await this.#deps.logStartOffset(topic, partition);
      const end = await this.#deps.logEndOffset(topic, partition);
      let offset: number;
      if (to === "earliest") offset = start;
      else if (to === "latest") offset = end;
      else if ("offset" in to) offset = Math.min(end, Math.max(start, to.offset));
      else offset = (await this.#deps.offsetForTimestamp(topic, partition, to.timestamp)) ?? end;
      offsets.push({ topic, partition, offset });
    }
    await withConflictRetry("reset offsets", async () => {
      const snap = await this.#membership.expire(groupId);
      if (snap.members.size > 0) throw nonEmpty(groupId, snap.members.size, "reset its offsets");
      const now = this.#now();
      const ok = await commitAtomic(() => {
        const op = checkAll(this.#kv.atomic(), snap);
        if (!snap.meta) markGroupsChanged(op).set(groupMetaKey(groupId), newMeta(groupId, now));
        for (const o of offsets) {
          op.set(
            groupOffsetKey(groupId, o.topic, o.partition),
            {
              offset: o.offset,
              metadata: "",
              commitTimestampMs: now,
              memberId: null,
              generation: null,
            } satisfies CommittedOffset,
          );
        }
        return op;
      });
      return ok ? true : CONFLICT;
    });
    return { offsets };
  }

  /**
   * Deletes a group and its committed offsets; only while it has no members.
   *
   * @param groupId a validated group id
   * @throws {RillError} GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, REBALANCE_IN_PROGRESS
   */
  async deleteGroup(groupId: string): Promise<void> {
    // Commits answered before the delete are in KV first, so the delete removes them.
    await this.#deps.pending?.settled(groupId);
    await withConflictRetry("delete the group", async () => {
      const snap = await this.#membership.expire(groupId);
      if (!snap.meta) throw groupNotFound(groupId);
      if (snap.members.size > 0) throw nonEmpty(groupId, snap.members.size, "delete it");
      // Offsets go in chunks, each checked on the meta (no member joined meanwhile); the
      // meta goes last, so a crash midway leaves an existing, smaller group.
      const keys: Deno.KvKey[] = [];
      for await (const e of this.#kv.list({ prefix: groupOffsetsPrefix(groupId) })) {
        keys.push(e.key);
      }
      for (let i = 0; i < keys.length; i += MAX_COMMIT_PARTITIONS) {
        const chunk = keys.slice(i, i + MAX_COMMIT_PARTITIONS);
        const ok = await commitAtomic(() => {
          const op = this.#kv.atomic().check({
            key: groupMetaKey(groupId),
            versionstamp: snap.metaVersionstamp,
          });
          for (const k of chunk) op.delete(k);
          return op;
        });
        if (!ok) return CONFLICT;
      }
      const ok = await commitAtomic(() =>
        markGroupsChanged(checkAll(this.#kv.atomic(), snap)).delete(groupMetaKey(groupId))
      );
      return ok ? true : CONFLICT;
    });
  }

  /** The log end offset for lag and its age, or null when nobody can tell. */
  async #lagEndOffsetOrNull(
    topic: string,
    partition: number,
  ): Promise<{ offset: number; ageMs: number } | null> {
    if (!this.#deps.lagEndOffset) {
      const offset = await this.#logEndOffsetOrNull(topic, partition);
      return offset === null ? null : { offset, ageMs: 0 };
    }
    try {
      return await this.#deps.lagEndOffset(topic, partition);
    } catch (e) {
      if (e instanceof RillError && UNKNOWN_END_CODES.has(e.code)) return null;
      throw e;
    }
  }

  /** The log end offset, or null when this broker cannot tell (not hosting it, gone). */
  async #logEndOffsetOrNull(topic: string, partition: number): Promise<number | null> {
    try {
      return await this.#deps.logEndOffset(topic, partition);
    } catch (e) {
      if (e instanceof RillError && UNKNOWN_END_CODES.has(e.code)) return null;
      throw e;
    }
  }

  async #checkPartition(topic: string, partition: number): Promise<void> {
    const count = await this.#deps.partitionCount(topic);
    if (count === null || partition >= count) {
      throw new RillError(
        "UNKNOWN_TOPIC_OR_PARTITION",
        count === null
          ? `Topic "${topic}" does not exist`
          : `Topic "${topic}" has ${count} partition(s); partition ${partition} does not exist`,
        { topic, partition },
      );
    }
  }
}

/** Errors of `logEndOffset` that make a partition's lag unknown rather than fail a listing. */
const UNKNOWN_END_CODES = new Set<string>([
  "NOT_LEADER_OR_FOLLOWER",
  "LEADER_NOT_AVAILABLE",
  "UNKNOWN_TOPIC_OR_PARTITION",
]);

function nonEmpty(groupId: string, n: number, what: string): RillError {
  return new RillError(
    "NON_EMPTY_GROUP",
    `Group "${groupId}" has ${n} member(s); it must be empty to ${what}`,
  );
}

/**
 * Decides one commit on a snapshot of its group (the fencing rules atop this file): what it
 * writes and the versionstamps the decision relied on.
 *
 * @param groupId the group
 * @param req the validated request
 * @param snap the group's state
 * @param now the broker's clock
 * @returns the plan
 * @throws {RillError} UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION (with `notOwned`)
 */
export function planCommit(
  groupId: string,
  req: CommitRequest,
  snap: GroupSnapshot,
  now: number,
): CommitPlan {
  const sets: CommitPlan["sets"] = req.offsets.map((o) => [
    groupOffsetKey(groupId, o.topic, o.partition),
    {
      offset: o.offset,
      metadata: o.metadata ?? "",
      commitTimestampMs: now,
      memberId: req.memberId ?? null,
      generation: req.generation ?? null,
    },
  ]);
  if (req.memberId === undefined) {
    const live = [...snap.members].filter(([id, m]) => !isExpired(snap.meta!, id, m.state, now));
    if (live.length > 0) {
      throw new RillError(
        "UNKNOWN_MEMBER_ID",
        `Group "${groupId}" has ${live.length} live member(s): a commit must name "memberId" and "generation"`,
      );
    }
    const checks: Deno.AtomicCheck[] = [
      { key: groupMetaKey(groupId), versionstamp: snap.metaVersionstamp },
    ];
    for (const [id, m] of snap.members) {
      checks.push({ key: groupMemberKey(groupId, id), versionstamp: m.versionstamp });
    }
    return { checks, meta: snap.meta ? null : newMeta(groupId, now), sets };
  }
  const own = snap.members.get(req.memberId);
  if (!snap.meta || !own) throw unknownMember(groupId, req.memberId);
  if (isExpired(snap.meta, req.memberId, own.state, now)) {
    throw unknownMember(groupId, req.memberId, "its session expired");
  }
  if (req.generation !== own.state.generation) {
    throw new RillError(
      "ILLEGAL_GENERATION",
      `Member "${req.memberId}" of group "${groupId}" is at generation ${own.state.generation}, not ${req.generation}; nothing was committed`,
      { generation: own.state.generation },
    );
  }
  // a revocation left unconfirmed past the timeout is no longer the member's
  const revoking = revocationTimedOut(snap.meta, req.memberId, own.state, now)
    ? {}
    : own.state.pendingRevocation;
  const notOwned = req.offsets.filter((o) =>
    !has(own.state.assignment, o.topic, o.partition) && !has(revoking, o.topic, o.partition)
  ).map(({ topic, partition }) => ({ topic, partition }));
  if (notOwned.length > 0) {
    const names = notOwned.slice(0, 5).map((tp) => `${tp.topic}-${tp.partition}`).join(", ");
    throw new RillError(
      "ILLEGAL_GENERATION",
      `Member "${req.memberId}" does not own ${names}${
        notOwned.length > 5 ? ", …" : ""
      } in generation ${req.generation}; nothing was committed`,
      { generation: own.state.generation, notOwned },
    );
  }
  return {
    checks: [
      { key: groupMetaKey(groupId), versionstamp: snap.metaVersionstamp },
      { key: groupMemberKey(groupId, req.memberId), versionstamp: own.versionstamp },
    ],
    meta: null,
    sets,
  };
}
