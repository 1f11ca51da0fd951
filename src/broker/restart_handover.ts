/**
 * What a restarted broker does before it serves: it hands over the leadership it still
 * holds in KV (its followers' positions and the high watermark died with the old process).
 * Another live ISR member takes it with a new epoch, or this broker keeps it with a new
 * epoch when it is the only one (election.ts's `resignLeader`).
 *
 * @module
 */
import type { ClusterStore } from "../coordination/cluster.ts";
import type { PartitionStateStore } from "../coordination/partition_states.ts";
import type { TopicStore } from "../coordination/topics.ts";
import { resignLeader } from "./election.ts";

/**
 * Hands over or renews every leadership of replicated partitions that KV still gives to
 * `brokerId`.
 *
 * @param brokerId the restarted broker
 * @param stores membership, topics and partition states in KV
 * @returns how many partitions changed
 */
export async function resignStaleLeadership(
  brokerId: number,
  stores: { cluster: ClusterStore; topics: TopicStore; states: PartitionStateStore },
): Promise<number> {
  const alive = new Set(
    (await stores.cluster.brokers()).filter((b) => b.alive && b.role === "broker").map((b) => b.id),
  );
  alive.add(brokerId);
  let changed = 0;
  for (const t of (await stores.topics.snapshot()).topics) {
    if (t.replicationFactor < 2) continue;
    for (const p of t.partitions) {
      if (p.leader !== brokerId) continue;
      const next = await stores.states.update(
        t.name,
        p.partition,
        (cur) => resignLeader(cur, brokerId, alive),
      );
      if (next) changed++;
    }
  }
  return changed;
}
