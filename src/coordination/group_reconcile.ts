/**
 * The handover rule: how a member moves from what it holds to its target assignment
 * without any partition being worked by two members at once (cooperative, as in Kafka's
 * KIP-848).
 *
 * Every member record holds `assignment` (the partitions it may work on) and
 * `pendingRevocation` (partitions it was told to give up but has not yet confirmed giving
 * up). The server counts a partition as **owned** by a member while it is in either set.
 * The invariant: no partition is owned by two members.
 *
 * On each join or heartbeat of member M (see {@linkcode reconcileMember}):
 *
 * 1. **Acknowledge.** A heartbeat whose `generation` equals M's recorded generation
 *    confirms that M has processed the answer carrying that generation: it has stopped work
 *    on (and committed) the partitions listed in that answer's `pendingRevocation`, which
 *    are then released. A heartbeat with an older generation (a lost answer) releases
 *    nothing; the answer is sent again.
 * 2. **Revoke.** When the group's generation moved past M's, the partitions M holds that are
 *    not in its new target move from `assignment` to `pendingRevocation` (and partitions in
 *    `pendingRevocation` that are back in its target return to `assignment`); M's
 *    generation becomes the group's.
 * 3. **Grant.** Each partition of M's target that M does not hold is added to `assignment`
 *    only when no other member owns it; otherwise it stays in `pendingAssignment` until
 *    its previous owner acknowledges the revocation, leaves, or is expired.
 *
 * **Revocation timeout.** A revocation not confirmed within the member's session timeout of
 * first being told (say the member keeps heartbeating with an old generation) is released
 * anyway (compare KIP-848's rebalance timeout), so one stuck member cannot hold partitions
 * forever; the member keeps the rest of its assignment. This is safe given the client's
 * session rule — *stop all work when no heartbeat sent in the last `sessionTimeoutMs` has
 * been answered* — because a client that got any answer since the revocation was written
 * was told to stop those partitions, and one that got none has stopped everything.
 *
 * A member is told each revocation at most once per generation, so "heartbeat with the
 * generation of the answer" is an unambiguous acknowledgement. Clients must stop work on
 * `pendingRevocation` partitions (committing their offsets, with the answer's generation,
 * first) and then heartbeat at once with that generation; they may start work on
 * `assignment` partitions right away.
 *
 * Grants are decided on a snapshot, and the write that grants checks the versionstamps of
 * the meta and of every member record it read, so a concurrent grant elsewhere fails one
 * of the two writes (see group_membership.ts).
 *
 * @module
 */
import type { GroupMeta, MemberState, TopicPartitions } from "./group_keys.ts";
import { fromList, has, intersect, minus, toList, union } from "./group_partitions.ts";

/** The result of {@linkcode reconcileMember}. */
export interface Reconciled {
  /** the member's new record */
  state: MemberState;
  /** partitions of its target still owned by others */
  pendingAssignment: TopicPartitions;
  /** whether partitions were granted (the write must check every member record) */
  granted: boolean;
}

/**
 * Applies the handover rule to one member.
 *
 * @param meta the group meta (its generation and target)
 * @param members every member's current record (including this member's)
 * @param memberId the member
 * @param ackGeneration the generation the member heartbeated with (null on join)
 * @param now the broker's clock, recorded as the member's last heartbeat
 * @returns the new record, what is still pending, and whether anything was granted
 * @example
 * ```ts
 * const r = reconcileMember(meta, members, "m1", 3, Date.now());
 * ```
 */
export function reconcileMember(
  meta: GroupMeta,
  members: Map<string, MemberState>,
  memberId: string,
  ackGeneration: number | null,
  now: number,
): Reconciled {
  const prev = members.get(memberId)!;
  let assignment = prev.assignment;
  let pendingRevocation = prev.pendingRevocation;
  let generation = prev.generation;
  let revocationStartedMs = prev.revocationStartedMs ?? null;
  // 1. acknowledge (or time the revocation out)
  if (
    (ackGeneration !== null && ackGeneration === generation) ||
    revocationTimedOut(meta, memberId, prev, now)
  ) {
    pendingRevocation = {};
    revocationStartedMs = null;
  }
  const target = meta.target[memberId] ?? {};
  // 2. revoke
  if (generation !== meta.generation) {
    const back = intersect(pendingRevocation, target);
    pendingRevocation = union(minus(pendingRevocation, target), minus(assignment, target));
    assignment = union(intersect(assignment, target), back);
    generation = meta.generation;
  }
  // 3. grant
  const others: TopicPartitions[] = [];
  for (const [id, s] of members) {
    if (id === memberId) continue;
    others.push(s.assignment);
    if (!revocationTimedOut(meta, id, s, now)) others.push(s.pendingRevocation);
  }
  const wanted = toList(minus(target, assignment));
  const grant = wanted.filter((tp) => !others.some((o) => has(o, tp.topic, tp.partition)));
  if (grant.length > 0) assignment = union(assignment, fromList(grant));
  if (Object.keys(pendingRevocation).length === 0) revocationStartedMs = null;
  else revocationStartedMs ??= now;
  return {
    state: { generation, assignment, pendingRevocation, lastHeartbeatMs: now, revocationStartedMs },
    pendingAssignment: minus(target, assignment),
    granted: grant.length > 0,
  };
}

/**
 * Whether a member's pending revocation has waited longer than its session timeout, after
 * which it is released without confirmation (see the module doc).
 *
 * @param meta the group meta (the member's session timeout)
 * @param memberId the member
 * @param s its record
 * @param now the broker's clock
 * @returns true when the revocation timed out
 */
export function revocationTimedOut(
  meta: GroupMeta,
  memberId: string,
  s: MemberState,
  now: number,
): boolean {
  const since = s.revocationStartedMs;
  const timeout = meta.members[memberId]?.sessionTimeoutMs;
  return since != null && timeout !== undefined && now - since > timeout;
}
