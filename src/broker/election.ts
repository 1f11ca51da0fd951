/**
 * The controller's decisions, as pure functions of a partition's state and the set of live
 * brokers (so they are tested without processes):
 *
 * - {@linkcode electLeader}: a partition whose leader is dead (or absent) gets a new leader
 *   from its ISR, preferring the replica order (the preferred leader first); the leader
 *   epoch is bumped, and dead brokers leave the ISR. With no live ISR member, the partition
 *   stays leaderless (epoch bumped, ISR kept so that a returning member is elected) unless
 *   unclean election is enabled, which takes any live replica and resets the ISR to it.
 * - {@linkcode fenceFromIsr}: a partition whose leader is alive loses from its ISR every
 *   broker whose session expired, at once, as Kafka's controller fences a broker whose
 *   heartbeats stopped (rather than after the leader's `replica.lag.time.max.ms` on top):
 *   `acks=all` traffic waits for the session timeout only. The leader epoch is kept (the
 *   leader learns the ISR from the metadata, replica.ts `syncIsr`); a fenced broker that
 *   comes back rejoins the ISR as any follower does, once caught up.
 * - {@linkcode resignLeader}: a restarted broker that is still recorded as leader hands
 *   leadership to another live ISR member (its followers' positions and the high watermark
 *   were lost with the process), or keeps it with a new epoch when it is the only one.
 * - {@linkcode startReassignment} / {@linkcode completeReassignment}: moving replicas as
 *   Kafka does: first the partition is replicated to old and new brokers alike; once every
 *   target replica is in the ISR, the replicas become the target, the ISR loses the
 *   others, and leadership moves (new epoch) if the leader is not among the targets.
 * - {@linkcode cancelReassignment}: rolling a move back (`rill cluster cancel-moves`,
 *   `recommission`): the replicas and ISR return to the replicas the partition had before,
 *   with a new leader epoch; leadership stays with (or goes to) a previous replica in the
 *   ISR, which holds every acknowledged record. Refused when no previous replica is in
 *   the ISR and alive (only the new replicas have the data: the move must finish).
 *
 * @module
 */
import type { PartitionState } from "../coordination/topics.ts";

/**
 * The new state of a partition whose leader may be dead.
 *
 * @param p the current state
 * @param alive ids of the live brokers that may lead
 * @param unclean whether a replica outside the ISR may be elected
 * @returns the new state, or null when nothing changes
 * @example
 * ```ts
 * electLeader({ partition: 0, leader: 1, replicas: [1, 2, 3], isr: [1, 2, 3], leaderEpoch: 4 },
 *   new Set([2, 3]), false);
 * // { partition: 0, leader: 2, replicas: [1, 2, 3], isr: [2, 3], leaderEpoch: 5 }
 * ```
 */
export function electLeader(
  p: PartitionState,
  alive: ReadonlySet<number>,
  unclean: boolean,
): PartitionState | null {
  if (p.leader >= 0 && alive.has(p.leader)) return null;
  const candidate = p.replicas.find((id) => p.isr.includes(id) && alive.has(id));
  if (candidate !== undefined) {
    return {
      ...p,
      leader: candidate,
      isr: p.isr.filter((id) => alive.has(id)),
      leaderEpoch: p.leaderEpoch + 1,
    };
  }
  if (unclean) {
    const any = p.replicas.find((id) => alive.has(id));
    if (any !== undefined) {
      return { ...p, leader: any, isr: [any], leaderEpoch: p.leaderEpoch + 1 };
    }
  }
  if (p.leader === -1) return null;
  // Nobody can lead: fence the old leader and wait for an ISR member to come back.
  return { ...p, leader: -1, leaderEpoch: p.leaderEpoch + 1 };
}

/**
 * The new state of a partition whose ISR holds brokers whose session expired.
 *
 * @param p the current state
 * @param alive ids of the live brokers (of any role)
 * @returns the state without them in the ISR (the leader stays), or null when nothing changes
 * @example
 * ```ts
 * fenceFromIsr({ partition: 0, leader: 1, replicas: [1, 2, 3], isr: [1, 2, 3], leaderEpoch: 4 },
 *   new Set([1, 2]));
 * // { partition: 0, leader: 1, replicas: [1, 2, 3], isr: [1, 2], leaderEpoch: 4 }
 * ```
 */
export function fenceFromIsr(
  p: PartitionState,
  alive: ReadonlySet<number>,
): PartitionState | null {
  if (p.leader < 0 || !alive.has(p.leader)) return null;
  const isr = p.isr.filter((id) => id === p.leader || alive.has(id));
  return isr.length === p.isr.length ? null : { ...p, isr };
}

/**
 * The new state of a partition led by a broker that has just restarted.
 *
 * @param p the current state
 * @param self the restarted broker
 * @param alive ids of the live brokers that may lead
 * @returns the new state, or null when `self` is not its leader
 * @example
 * ```ts
 * resignLeader({ partition: 0, leader: 1, replicas: [1, 2], isr: [1, 2], leaderEpoch: 0 }, 1, new Set([1, 2]));
 * // { partition: 0, leader: 2, replicas: [1, 2], isr: [1, 2], leaderEpoch: 1 }
 * ```
 */
export function resignLeader(
  p: PartitionState,
  self: number,
  alive: ReadonlySet<number>,
): PartitionState | null {
  if (p.leader !== self) return null;
  const other = p.replicas.find((id) => id !== self && p.isr.includes(id) && alive.has(id));
  return { ...p, leader: other ?? self, leaderEpoch: p.leaderEpoch + 1 };
}

/**
 * The first step of moving a partition to `target`: replicate to the union.
 *
 * @param p the current state
 * @param target the replicas wanted, preferred leader first
 * @returns the new state, or null when the partition already has exactly these replicas
 * @example
 * ```ts
 * startReassignment({ partition: 0, leader: 1, replicas: [1, 2], isr: [1, 2], leaderEpoch: 0 }, [2, 3]);
 * // { ..., replicas: [1, 2, 3], targetReplicas: [2, 3], previousReplicas: [1, 2] }
 * ```
 */
export function startReassignment(
  p: PartitionState,
  target: readonly number[],
): PartitionState | null {
  const same = p.replicas.length === target.length && p.replicas.every((id, i) => id === target[i]);
  if (same && !p.targetReplicas) return null;
  const replicas = [...p.replicas];
  for (const id of target) if (!replicas.includes(id)) replicas.push(id);
  // A move re-targeted while under way still rolls back to where it began.
  const previousReplicas = [...(p.targetReplicas ? p.previousReplicas ?? p.replicas : p.replicas)];
  return { ...p, replicas, targetReplicas: [...target], previousReplicas };
}

/**
 * Rolls a reassignment back to the replicas the partition had before it started.
 *
 * @param p the current state
 * @param alive ids of the live brokers that may lead
 * @param replicationFactor the topic's (for a move started before `previousReplicas` was
 *   recorded: the previous replicas are then the first ones)
 * @returns the new state, or null when no move is under way or no previous replica is
 *   alive and in the ISR
 * @example
 * ```ts
 * cancelReassignment({ partition: 0, leader: 1, replicas: [1, 2, 3], isr: [1, 2, 3],
 *   leaderEpoch: 0, targetReplicas: [2, 3], previousReplicas: [1, 2] }, new Set([1, 2, 3]), 2);
 * // { partition: 0, leader: 1, replicas: [1, 2], isr: [1, 2], leaderEpoch: 1 }
 * ```
 */
export function cancelReassignment(
  p: PartitionState,
  alive: ReadonlySet<number>,
  replicationFactor: number,
): PartitionState | null {
  if (!p.targetReplicas) return null;
  const previous = p.previousReplicas ?? p.replicas.slice(0, replicationFactor);
  const isr = p.isr.filter((id) => previous.includes(id));
  const leader = previous.includes(p.leader) && isr.includes(p.leader) && alive.has(p.leader)
    ? p.leader
    : previous.find((id) => isr.includes(id) && alive.has(id));
  if (leader === undefined) return null;
  // A new epoch even when the leader stays: an ISR change the leader computed from the
  // moving replica set is refused rather than written over the rolled-back one.
  return {
    partition: p.partition,
    leader,
    replicas: [...previous],
    isr,
    leaderEpoch: p.leaderEpoch + 1,
  };
}

/**
 * The last step of a reassignment, once every target replica is in the ISR.
 *
 * @param p the current state
 * @returns the new state, or null while the move is not done (or none is under way)
 * @example
 * ```ts
 * completeReassignment({ partition: 0, leader: 1, replicas: [1, 2, 3], isr: [1, 2, 3],
 *   leaderEpoch: 0, targetReplicas: [2, 3] });
 * // { partition: 0, leader: 2, replicas: [2, 3], isr: [2, 3], leaderEpoch: 1 }
 * ```
 */
export function completeReassignment(p: PartitionState): PartitionState | null {
  const target = p.targetReplicas;
  if (!target || !target.every((id) => p.isr.includes(id))) return null;
  const next: PartitionState = {
    partition: p.partition,
    leader: p.leader,
    replicas: [...target],
    isr: p.isr.filter((id) => target.includes(id)),
    leaderEpoch: p.leaderEpoch,
  };
  if (!target.includes(p.leader)) {
    next.leader = target[0];
    next.leaderEpoch++;
  }
  return next;
}
