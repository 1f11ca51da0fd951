/**
 * Replica placement: which brokers hold each partition of a new topic (or of partitions
 * added to one). As in Kafka, the replicas of a partition are distinct brokers, the first
 * replica is the preferred leader, and consecutive partitions start on consecutive brokers
 * so leadership spreads evenly. When brokers declare racks (`--rack`), the brokers are taken
 * in a rack-alternated order (Kafka's rack-aware assignment: the first broker of each rack,
 * then the second of each, …) and each partition's further replicas skip racks it already
 * uses while another rack is left, so one rack's loss leaves every partition a replica.
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
 * @param racks the racks of the brokers that declared one
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
  racks: ReadonlyMap<number, string> = new Map(),
): ReplicaAssignment[] {
  const sorted = [...new Set(brokerIds)].sort((a, b) => a - b);
  const brokers = sorted.some((id) => racks.has(id)) ? rackAlternated(sorted, racks) : sorted;
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
    const replicas: number[] = [brokers[first]];
    const usedRacks = new Set<string | undefined>([racks.get(brokers[first])]);
    // next brokers in order, skipping used racks (a broker without a rack never clashes) …
    for (let j = 1; j < brokers.length && replicas.length < replicationFactor; j++) {
      const id = brokers[(first + j) % brokers.length];
      const rack = racks.get(id);
      if (rack !== undefined && usedRacks.has(rack)) continue;
      replicas.push(id);
      usedRacks.add(rack);
    }
    // … then any, in order, when there are fewer racks than replicas
    for (let j = 1; replicas.length < replicationFactor; j++) {
      const id = brokers[(first + j) % brokers.length];
      if (!replicas.includes(id)) replicas.push(id);
    }
    out.push({ partition, replicas });
  }
  return out;
}

/** The brokers ordered 1st of each rack, 2nd of each, …; brokers without a rack last. */
function rackAlternated(sorted: readonly number[], racks: ReadonlyMap<number, string>): number[] {
  const byRack = new Map<string, number[]>();
  for (const id of sorted) {
    const rack = racks.get(id);
    if (rack === undefined) continue;
    byRack.set(rack, [...byRack.get(rack) ?? [], id]);
  }
  const groups = [...byRack.keys()].sort().map((r) => byRack.get(r)!);
  const out: number[] = [];
  for (let i = 0; out.length < sorted.length && groups.some((g) => i < g.length); i++) {
    for (const g of groups) if (i < g.length) out.push(g[i]);
  }
  for (const id of sorted) if (!racks.has(id)) out.push(id);
  return out;
}
