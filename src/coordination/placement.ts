/**
 * Replica placement: which brokers hold each partition of a new topic (or of partitions
 * added to one). As in Kafka, the replicas of a partition are distinct brokers, the first
 * replica is the preferred leader, and consecutive partitions start on consecutive brokers
 * so leadership spreads evenly.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";

/** One partition's replica assignment. */
export interface ReplicaAssignment {
  /** the partition index */
  partition: number;
  /** broker ids, preferred leader first */
  replicas: number[];
}

/**
 * Places `count` partitions, numbered from `firstPartition`, on `brokerIds`.
 *
 * @param firstPartition the index of the first partition to place
 * @param count how many partitions
 * @param replicationFactor replicas per partition
 * @param brokerIds the brokers that may hold replicas (alive, not observers)
 * @param start the broker index the first partition starts on (spreads topics)
 * @returns one assignment per partition
 * @throws {RillError} INVALID_REPLICATION_FACTOR when there are fewer brokers than replicas
 * @example
 * ```ts
 * placeReplicas(0, 3, 2, [1, 2, 3]);
 * // [{partition:0,replicas:[1,2]},{partition:1,replicas:[2,3]},{partition:2,replicas:[3,1]}]
 * ```
 */
export function placeReplicas(
  firstPartition: number,
  count: number,
  replicationFactor: number,
  brokerIds: readonly number[],
  start = 0,
): ReplicaAssignment[] {
  const brokers = [...new Set(brokerIds)].sort((a, b) => a - b);
  if (replicationFactor > brokers.length) {
    throw new RillError(
      "INVALID_REPLICATION_FACTOR",
      `Replication factor ${replicationFactor} is larger than the ${brokers.length} live broker(s)`,
      { liveBrokers: brokers.length },
    );
  }
  const out: ReplicaAssignment[] = [];
  for (let i = 0; i < count; i++) {
    const partition = firstPartition + i;
    const first = (start + partition) % brokers.length;
    const replicas: number[] = [];
    for (let j = 0; j < replicationFactor; j++) {
      replicas.push(brokers[(first + j) % brokers.length]);
    }
    out.push({ partition, replicas });
  }
  return out;
}
