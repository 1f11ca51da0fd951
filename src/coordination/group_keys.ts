/**
 * Consumer group keys and values in Deno KV. All of a group's state lives under
 * `["rill", "groups", <groupId>, …]`, so any broker serves any group:
 *
 * | key                                                   | value                        |
 * | ----------------------------------------------------- | ---------------------------- |
 * | `["rill", "groups", <group>, "member", <memberId>]`   | {@linkcode MemberState}      |
 * | `["rill", "groups", <group>, "meta"]`                 | {@linkcode GroupMeta}        |
 * | `["rill", "groups", <group>, "offset", <topic>, <p>]` | {@linkcode CommittedOffset}  |
 *
 * The keys sort as listed ("member" < "meta" < "offset"), so one `kv.list()` over
 * {@linkcode groupStateRange} reads the meta and every member record of a group in one
 * consistent read, without touching its committed offsets: that is what a heartbeat costs.
 *
 * - **meta** changes only when the membership changes (join, leave, expiry, subscription
 *   change, a subscribed topic gaining partitions): it holds the generation, the assignor,
 *   each member's subscription and session timeout, and the target assignment of the
 *   generation. Every change bumps `generation` under an `atomic().check()` on its
 *   versionstamp, so two brokers racing cannot both decide one.
 * - **member** records are small: written when the member's state changes (its generation,
 *   the partitions it may work on and those it must still give up, the broker vouching for
 *   its liveness, group_liveness.ts), not per heartbeat once a broker vouches for it.
 * - **offset** entries hold the committed offset (the next offset to read, as in Kafka).
 *
 * Values are structured-cloned plain objects; a partition set is a
 * {@linkcode TopicPartitions} (`{ topic: [sorted partitions] }`) to stay small.
 *
 * @module
 */
import { groupsPrefix } from "./kv_keys.ts";

/** A set of partitions: topic name → sorted, distinct partition numbers. */
export type TopicPartitions = Record<string, number[]>;

/** A server-side assignment strategy. */
export type AssignorName = "range" | "roundrobin" | "sticky";

/** What the group knows about a member: changes only when the member (re)joins. */
export interface MemberInfo {
  /** the subscribed topics, sorted */
  topics: string[];
  /** the session timeout: a member silent for longer is removed */
  sessionTimeoutMs: number;
  /** free-form client id, for describe */
  clientId: string;
  /** when the member joined (ms since epoch, the broker's clock) */
  joinedAtMs: number;
}

/** A group's metadata: changes only on membership changes. */
export interface GroupMeta {
  /** the group id */
  groupId: string;
  /** bumped by every membership change; 0 for a group that never had a member */
  generation: number;
  /** the assignment strategy of the group */
  assignor: AssignorName;
  /** the members of the generation */
  members: Record<string, MemberInfo>;
  /** the target assignment of the generation, memberId → partitions */
  target: Record<string, TopicPartitions>;
  /** the partition counts the target was computed over */
  partitionCounts: Record<string, number>;
  /** when the group was created */
  createdAtMs: number;
  /**
   * set while Kafka clients use the group (classic protocol, group_classic.ts): their
   * protocol type and chosen assignor; the target is then the Kafka leader's assignment
   */
  kafka?: { protocolType: string; protocolName: string };
}

/** A member's hot record: written by each of its heartbeats. */
export interface MemberState {
  /** the generation the member was last told of */
  generation: number;
  /** the partitions the member may work on */
  assignment: TopicPartitions;
  /** partitions the member was told to give up and has not yet acknowledged giving up */
  pendingRevocation: TopicPartitions;
  /** the last heartbeat (or join), on the broker's clock */
  lastHeartbeatMs: number;
  /** when the current `pendingRevocation` was first told to the member; null when none */
  revocationStartedMs?: number | null;
  /**
   * the broker that keeps this member's liveness in memory (group_liveness.ts); absent:
   * `lastHeartbeatMs` alone tells
   */
  vouchedBy?: { broker: number; incarnation: string };
}

/** A committed offset of one partition. */
export interface CommittedOffset {
  /** the next offset to read */
  offset: number;
  /** free-form metadata from the committer (at most 4096 characters) */
  metadata: string;
  /** when it was committed */
  commitTimestampMs: number;
  /** the committing member and its generation; null for simple commits and resets */
  memberId: string | null;
  /** the generation of the commit; null for simple commits and resets */
  generation: number | null;
}

/**
 * Prefix of all state of one group.
 *
 * @param groupId the group id
 * @returns the key prefix
 */
export function groupPrefix(groupId: string): Deno.KvKey {
  return [...groupsPrefix(), groupId];
}

/**
 * Key of a group's metadata.
 *
 * @param groupId the group id
 * @returns the key
 */
export function groupMetaKey(groupId: string): Deno.KvKey {
  return [...groupsPrefix(), groupId, "meta"];
}

/**
 * Key of one member's record.
 *
 * @param groupId the group id
 * @param memberId the member id
 * @returns the key
 */
export function groupMemberKey(groupId: string, memberId: string): Deno.KvKey {
  return [...groupsPrefix(), groupId, "member", memberId];
}

/**
 * Prefix of a group's committed offsets.
 *
 * @param groupId the group id
 * @returns the key prefix
 */
export function groupOffsetsPrefix(groupId: string): Deno.KvKey {
  return [...groupsPrefix(), groupId, "offset"];
}

/**
 * Key of one committed offset.
 *
 * @param groupId the group id
 * @param topic the topic
 * @param partition the partition
 * @returns the key
 */
export function groupOffsetKey(groupId: string, topic: string, partition: number): Deno.KvKey {
  return [...groupsPrefix(), groupId, "offset", topic, partition];
}

/**
 * The key range holding a group's member records and its meta (and not its offsets).
 *
 * @param groupId the group id
 * @returns a `kv.list()` selector
 */
export function groupStateRange(groupId: string): { start: Deno.KvKey; end: Deno.KvKey } {
  // "member…" keys, then "meta"; a key sorts after its own prefix, so [.., "meta", 0]
  // ends the range right after the meta key and before "offset".
  return {
    start: [...groupsPrefix(), groupId, "member"],
    end: [...groupsPrefix(), groupId, "meta", 0],
  };
}

/**
 * The first key after every key of `groupId`: where a scan for the next group starts.
 * (In KV's tuple order, `[…, g, anything]` < `[…, g + "\0"]` < `[…, g2]` for any g2 > g.)
 *
 * @param groupId the group id
 * @returns the key
 */
export function afterGroupKey(groupId: string): Deno.KvKey {
  return [...groupsPrefix(), groupId + "\0"];
}
