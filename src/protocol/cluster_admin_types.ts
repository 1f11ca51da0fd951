/**
 * The shapes of the cluster balancing API's answers (`/v1/cluster/...`: status, preferred
 * leader election, rebalance and decommission plans, cancelling moves), shared by the broker
 * (src/broker/cluster_admin.ts, balance.ts) and the client (src/client/cluster_ops.ts).
 *
 * @module
 */

/** Per broker: replicas, preferred leaderships and bytes. */
export interface BrokerLoad {
  /** the broker id */
  id: number;
  /** replicas held */
  replicas: number;
  /** partitions whose preferred leader it is */
  preferredLeaders: number;
  /** bytes of the partitions it holds (the leaders' latest reported sizes) */
  bytes: number;
}

/** A partition move. */
export interface PartitionMove {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the replicas it ends with, preferred leader first */
  replicas: number[];
}

/** A rebalance or decommission plan. */
export interface MovePlanResult {
  /** the moves */
  moves: PartitionMove[];
  /** load per broker now */
  before: BrokerLoad[];
  /** load per broker once the moves are done */
  after: BrokerLoad[];
  /** whether the controller runs it (false: dry run) */
  executed: boolean;
}

/** A preferred leader election's outcome. */
export interface ElectLeadersResult {
  /** partitions whose leadership moved back to the preferred leader */
  elected: { topic: string; partition: number; leader: number; leaderEpoch: number }[];
  /** partitions whose preferred leader cannot lead now (dead, out of the ISR, moving) */
  notEligible: { topic: string; partition: number; preferred: number; leader: number }[];
}

/** The cluster's balance and moves. */
export interface ClusterStatus {
  /** per broker */
  brokers: (BrokerLoad & {
    alive: boolean;
    rack: string | null;
    leaders: number;
    decommissioned: boolean;
    safeToStop: boolean;
  })[];
  /** partitions moving now */
  moving: {
    topic: string;
    partition: number;
    replicas: number[];
    target: number[];
    /** the replicas before the move (what cancelling it returns to) */
    previous: number[] | null;
    isr: number[];
  }[];
  /** moves planned, not started */
  pending: number;
  /** the current plan */
  plan: { kind: string; total: number; createdMs: number } | null;
  /** partitions not led by their preferred leader */
  nonPreferredLeaders: number;
  /** partitions with fewer in-sync replicas than replicas */
  underReplicated: number;
  /** partitions whose size no leader has reported yet (counted as 0 bytes) */
  unknownSizes: number;
}

/** What cancelling moves did (`cancelMoves`, `recommission`). */
export interface CancelMovesResult {
  /** planned moves dropped before they started */
  dropped: PartitionMove[];
  /** moves under way rolled back: the partition has its previous replicas again */
  rolledBack: { topic: string; partition: number; replicas: number[]; leader: number }[];
  /**
   * moves under way that could not be rolled back (no previous replica alive and in sync)
   * or that completed first; they finish
   */
  notRolledBack: { topic: string; partition: number; target: number[]; reason: string }[];
  /** brokers still being decommissioned */
  decommissioned: number[];
}
