/**
 * Reading a group's state in one consistent KV read, and the conditional-write loop every
 * group change goes through: read, decide, `atomic().check()` the versionstamps the decision
 * rests on, commit (through {@linkcode kvRetry}); a failed check re-runs the whole
 * read-decide-write, and after {@linkcode MAX_CONFLICT_ATTEMPTS} the caller gets a retriable
 * 409 REBALANCE_IN_PROGRESS.
 *
 * Also here: the pure membership bookkeeping shared by membership and offsets (session
 * expiry, generation bumps and target recomputation).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { assign } from "./group_assignors.ts";
import {
  type AssignorName,
  groupMemberKey,
  type GroupMeta,
  groupMetaKey,
  groupStateRange,
  type MemberState,
} from "./group_keys.ts";
import { equal } from "./group_partitions.ts";
import { kvRetry } from "./kv_retry.ts";
import { groupChangesKey } from "./kv_keys.ts";

/** How many times a conflicting read-decide-write is re-run before giving up. */
export const MAX_CONFLICT_ATTEMPTS = 30;

/** The most members a group holds (a write checks every member record; KV allows 100). */
export const MAX_GROUP_MEMBERS = 90;

/** A member record with the versionstamp it was read at. */
export interface VersionedMember {
  /** the record */
  state: MemberState;
  /** its versionstamp */
  versionstamp: string;
}

/** A group's meta and member records, read at one point in time. */
export interface GroupSnapshot {
  /** the group id */
  groupId: string;
  /** the meta, or null when the group does not exist */
  meta: GroupMeta | null;
  /** the meta's versionstamp (null when absent), for `check()` */
  metaVersionstamp: string | null;
  /** the member records by member id (only members the meta lists) */
  members: Map<string, VersionedMember>;
}

/** The observed state of a group. */
export type GroupStateName = "Empty" | "Reconciling" | "Stable";

/**
 * Reads a group's meta and member records with one `kv.list()` (one consistent read).
 *
 * @param kv the KV store
 * @param groupId the group id
 * @returns the snapshot
 */
export async function readGroup(kv: Deno.Kv, groupId: string): Promise<GroupSnapshot> {
  const snap: GroupSnapshot = {
    groupId,
    meta: null,
    metaVersionstamp: null,
    members: new Map(),
  };
  const records: [string, VersionedMember][] = [];
  for await (const e of kv.list<unknown>(groupStateRange(groupId))) {
    if (e.key.length === 4 && e.key[3] === "meta") {
      snap.meta = e.value as GroupMeta;
      snap.metaVersionstamp = e.versionstamp;
    } else if (e.key.length === 5 && e.key[3] === "member") {
      records.push([String(e.key[4]), {
        state: e.value as MemberState,
        versionstamp: e.versionstamp,
      }]);
    }
  }
  for (const [id, m] of records) {
    if (snap.meta?.members[id]) snap.members.set(id, m);
  }
  return snap;
}

/** Marker a decision returns when its conditional write lost a race. */
export const CONFLICT: unique symbol = Symbol("conflict");

/**
 * Runs a read-decide-write until its checks hold. `attempt` reads, decides, and either
 * throws a RillError (bad request, fencing), returns a value, or returns
 * {@linkcode CONFLICT} when its `atomic().check()` failed.
 *
 * @param what the operation, for the conflict message
 * @param attempt one read-decide-write
 * @returns what `attempt` returned
 * @throws {RillError} REBALANCE_IN_PROGRESS (retriable) when every attempt conflicted
 */
export async function withConflictRetry<T>(
  what: string,
  attempt: () => Promise<T | typeof CONFLICT>,
): Promise<T> {
  for (let i = 0; i < MAX_CONFLICT_ATTEMPTS; i++) {
    const r = await attempt();
    if (r !== CONFLICT) return r;
    await new Promise((res) => setTimeout(res, Math.random() * Math.min(50, 2 ** i)));
  }
  throw new RillError(
    "REBALANCE_IN_PROGRESS",
    `Could not ${what}: the group kept changing under concurrent updates; retry`,
  );
}

/**
 * Commits an atomic operation through {@linkcode kvRetry}.
 *
 * @param build makes the atomic operation (called afresh on every lock retry)
 * @returns true when the checks held and it committed
 */
export async function commitAtomic(build: () => Deno.AtomicOperation): Promise<boolean> {
  const r = await kvRetry(() => build().commit());
  return r.ok;
}

/**
 * Whether a member's session has expired at `now`.
 *
 * @param meta the group meta
 * @param memberId the member
 * @param state its record
 * @param now the broker's clock
 * @param alive judges members a broker vouches for (group_liveness.ts); without it such a
 *   member counts as alive; for a record no broker vouches for, `lastHeartbeatMs` tells
 * @returns true when it has been silent for longer than its session timeout
 */
export function isExpired(
  meta: GroupMeta,
  memberId: string,
  state: MemberState,
  now: number,
  alive?: LivenessJudge,
): boolean {
  const info = meta.members[memberId];
  if (!info) return true;
  if (state.vouchedBy) {
    // Its broker keeps its liveness (group_liveness.ts): without that broker's word, assume
    // alive rather than take a live member's partitions on a stale heartbeat time.
    return alive ? !alive(meta.groupId, memberId, state, info.sessionTimeoutMs) : false;
  }
  return now - state.lastHeartbeatMs > info.sessionTimeoutMs;
}

/**
 * The ids of the members whose session has expired.
 *
 * @param snap the snapshot
 * @param now the broker's clock
 * @param alive judges members a broker vouches for (group_liveness.ts)
 * @returns the expired member ids
 */
export function expiredMembers(snap: GroupSnapshot, now: number, alive?: LivenessJudge): string[] {
  if (!snap.meta) return [];
  return [...snap.members].filter(([id, m]) => isExpired(snap.meta!, id, m.state, now, alive))
    .map(([id]) => id);
}

/**
 * Whether a member some broker vouches for is alive (group_liveness.ts).
 *
 * @param groupId the group
 * @param memberId the member
 * @param state its record (with `vouchedBy`)
 * @param sessionTimeoutMs its session timeout
 */
export type LivenessJudge = (
  groupId: string,
  memberId: string,
  state: MemberState,
  sessionTimeoutMs: number,
) => boolean;

/**
 * Marks that group meta or member records change in this write: brokers' group snapshots
 * (group_liveness.ts) are then read again.
 *
 * @param op the atomic operation
 * @returns the same operation
 */
export function markGroupsChanged(op: Deno.AtomicOperation): Deno.AtomicOperation {
  return op.set(groupChangesKey(), true);
}

/**
 * A new, empty group meta.
 *
 * @param groupId the group id
 * @param now the broker's clock
 * @param assignor the strategy
 * @returns the meta
 */
export function newMeta(
  groupId: string,
  now: number,
  assignor: AssignorName = "sticky",
): GroupMeta {
  return {
    groupId,
    generation: 0,
    assignor,
    members: {},
    target: {},
    partitionCounts: {},
    createdAtMs: now,
  };
}

/**
 * The next generation's meta: generation + 1 and the target recomputed over the members and
 * partition counts of `meta` (sticky starts from the previous target).
 *
 * @param meta the meta with its members and counts already changed
 * @returns a new meta
 */
export function bumpGeneration(meta: GroupMeta): GroupMeta {
  const target = assign(meta.assignor, {
    members: Object.entries(meta.members).map(([memberId, m]) => ({ memberId, topics: m.topics })),
    partitionCounts: meta.partitionCounts,
    previous: meta.target,
  });
  return { ...meta, generation: meta.generation + 1, target };
}

/**
 * The group's state: Empty (no members), Stable (every member is at the group's generation,
 * holds exactly its target and owes no revocation), otherwise Reconciling.
 *
 * @param meta the meta (null: Empty)
 * @param members member records
 * @returns the state
 */
export function groupState(
  meta: GroupMeta | null,
  members: Map<string, MemberState>,
): GroupStateName {
  if (!meta || members.size === 0) return "Empty";
  for (const [id, s] of members) {
    if (s.generation !== meta.generation) return "Reconciling";
    if (Object.keys(s.pendingRevocation).length > 0) return "Reconciling";
    if (!equal(s.assignment, meta.target[id] ?? {})) return "Reconciling";
  }
  return "Stable";
}

/**
 * Adds to an atomic operation a check of the meta and of every member record read.
 *
 * @param op the atomic operation
 * @param snap the snapshot the decision was made on
 * @returns the same operation
 */
export function checkAll(op: Deno.AtomicOperation, snap: GroupSnapshot): Deno.AtomicOperation {
  op.check({ key: groupMetaKey(snap.groupId), versionstamp: snap.metaVersionstamp });
  for (const [id, m] of snap.members) {
    op.check({ key: groupMemberKey(snap.groupId, id), versionstamp: m.versionstamp });
  }
  return op;
}
