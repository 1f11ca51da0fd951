/**
 * The preferred read replica of KIP-392 (fetch from follower), chosen by a partition's
 * leader for a consumer that names its rack, as Kafka's `RackAwareReplicaSelector` does:
 *
 * - no client rack, or the leader in the client's rack: the leader serves (no preference);
 * - else the most caught-up replica in the client's rack that has the offset the consumer
 *   fetches (largest copied offset, then most recently caught up, then lowest id);
 * - none in that rack: the leader serves.
 *
 * The replicas Rill can send consumers to are its observers (`rill follower --rack R`): a
 * broker's follower replica does not serve consumer reads. An observer counts while it is
 * live (registered, heartbeating, with a Kafka listener) and caught up: its fetches reached
 * the leader's high watermark within `replica.lag.time.max.ms` (the ISR's rule), so one that
 * stops copying stops being preferred within that time.
 *
 * @module
 */
import type { FollowerState } from "./isr.ts";

/** What the selector needs of a broker registration. */
export interface ReadReplicaNode {
  /** its declared rack */
  rack?: string;
  /** heartbeating, not stopped */
  alive: boolean;
  /** its Kafka listener (host:port), if any */
  kafka?: string;
}

/** The inputs of {@linkcode preferredReadReplica}. */
export interface ReadReplicaQuery {
  /** the consumer's rack (Fetch v11+ `rack_id`; empty: none) */
  clientRack: string;
  /** the offset the consumer fetches from */
  fetchOffset: number;
  /** the leader's own rack */
  leaderRack: string | undefined;
  /** what the leader knows of each observer copying the partition */
  observers: ReadonlyMap<number, FollowerState>;
  /** the registrations by broker id */
  nodes: ReadonlyMap<number, ReadReplicaNode>;
  /** ms since the epoch */
  now: number;
  /** `replica.lag.time.max.ms` */
  lagMaxMs: number;
}

/**
 * The broker a consumer should fetch a partition from instead of the leader, if any.
 *
 * @param q the consumer's rack and offset, the leader's rack and what it knows
 * @returns the broker id, or null (fetch from the leader)
 * @example
 * ```ts
 * preferredReadReplica({ clientRack: "edge", fetchOffset: 0, leaderRack: "core",
 *   observers, nodes, now: Date.now(), lagMaxMs: 10_000 }); // 9
 * ```
 */
export function preferredReadReplica(q: ReadReplicaQuery): number | null {
  if (q.clientRack === "" || q.leaderRack === q.clientRack) return null;
  let best: number | null = null;
  let bestState: FollowerState | null = null;
  for (const [id, f] of q.observers) {
    const node = q.nodes.get(id);
    if (node === undefined || !node.alive || !node.kafka || node.rack !== q.clientRack) continue;
    if (f.leo < q.fetchOffset || q.now - f.lastCaughtUpMs > q.lagMaxMs) continue;
    const better = bestState === null || f.leo > bestState.leo ||
      (f.leo === bestState.leo && (f.lastCaughtUpMs > bestState.lastCaughtUpMs ||
        (f.lastCaughtUpMs === bestState.lastCaughtUpMs && id < best!)));
    if (better) {
      best = id;
      bestState = f;
    }
  }
  return best;
}
