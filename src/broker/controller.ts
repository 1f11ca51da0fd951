/**
 * The controller: one broker at a time (the holder of the KV lease, leases.ts) watches the
 * brokers' heartbeats and moves the leadership of partitions whose leader died, with the
 * decisions of election.ts, each written as one checked KV update of the partition state
 * (a new leader epoch). Brokers learn of the change through the metadata version and switch
 * roles. It also completes replica reassignments once the new replicas are in sync.
 * When the controller dies, its lease expires after the session timeout and another
 * broker takes over.
 *
 * Healing and balancing ride on the same tick (no loop of their own, no extra KV reads
 * when idle): preferred leader election every `leaderImbalanceCheckIntervalMs` when
 * leadership is imbalanced (balance.ts, Kafka's auto.leader.rebalance), re-replication of
 * the replicas of brokers dead longer than `replicaReplacementDelayMs`, and the pending
 * moves of a rebalance or decommission (moves.ts), at most `maxConcurrentMoves` partitions
 * moving at once.
 *
 * @module
 */
import type { BrokerStatus, ClusterStore } from "../coordination/cluster.ts";
import type { LeaseStore } from "../coordination/leases.ts";
import type { PartitionStateStore } from "../coordination/partition_states.ts";
import type { TopicMetadata, TopicStore } from "../coordination/topics.ts";
import type { MovePlanEntry, MoveStore } from "../coordination/moves.ts";
import { completeReassignment, electLeader, startReassignment } from "./election.ts";
import {
  electPreferredLeader,
  imbalancedPartitions,
  type PlannedBroker,
  replacementReplicas,
} from "./balance.ts";
import type { BrokerConfig } from "./config.ts";

/** The settings the controller uses. */
export type ControllerSettings = Pick<
  BrokerConfig,
  | "autoLeaderRebalanceEnable"
  | "leaderImbalancePerBrokerPercentage"
  | "leaderImbalanceCheckIntervalMs"
  | "replicaReplacementDelayMs"
  | "maxConcurrentMoves"
  | "autoRebalanceIntervalMs"
>;

/** What a {@linkcode Controller} needs. */
export interface ControllerOptions {
  /** this broker's id */
  brokerId: number;
  /** the lease */
  lease: LeaseStore;
  /** broker registrations */
  cluster: ClusterStore;
  /** topic metadata */
  topics: TopicStore;
  /** partition state updates */
  states: PartitionStateStore;
  /** the lease's time to live (the session timeout) */
  leaseTtlMs: number;
  /** where to report */
  log: (line: string) => void;
  /** pending moves (rebalance, decommission); without it none are run */
  moves?: MoveStore;
  /** balancing settings (default: none of it runs) */
  settings?: ControllerSettings;
  /** the clock (ms since the epoch) */
  now?: () => number;
  /** continuous balancing: plans and stores a rebalance, returning its move count */
  rebalance?: () => Promise<number>;
}

/**
 * The controller role of one broker: call {@linkcode tick} periodically.
 *
 * @example
 * ```ts
 * const c = new Controller({ brokerId: 1, lease, cluster, topics, states, leaseTtlMs: 6000, log });
 * await c.tick(); // takes or renews the lease, then elects leaders where needed
 * ```
 */
export class Controller {
  readonly #o: ControllerOptions;
  #active = false;
  #lastLeaderCheck = 0;
  #lastAutoRebalance = 0;
  #planVersion = -1n;
  #plan: MovePlanEntry = { plan: null, versionstamp: null };

  /** @param opts stores, lease and settings */
  constructor(opts: ControllerOptions) {
    this.#o = opts;
  }

  /** Whether this broker held the lease at its last tick. */
  get active(): boolean {
    return this.#active;
  }

  /**
   * Takes or renews the lease; as controller, elects a new leader for every partition whose
   * leader is not alive.
   *
   * @returns how many partitions changed leader
   */
  async tick(): Promise<number> {
    const o = this.#o;
    const lease = await o.lease.acquire(o.brokerId, o.leaseTtlMs);
    const was = this.#active;
    this.#active = lease !== null;
    if (!this.#active) return 0;
    const now = (o.now ?? Date.now)();
    if (!was) {
      o.log(`became the controller (lease epoch ${lease!.epoch})`);
      this.#lastLeaderCheck = now;
      this.#lastAutoRebalance = now;
      this.#planVersion = -1n;
    }
    const brokers = await o.cluster.brokers();
    const alive = new Set(brokers.filter((b) => b.alive && b.role === "broker").map((b) => b.id));
    const snapshot = await o.topics.snapshot();
    let changed = 0;
    for (const topic of snapshot.topics) {
      const unclean = topic.configs["unclean.leader.election.enable"] === "true";
      for (const p of topic.partitions) {
        if (p.targetReplicas && completeReassignment(p) !== null) {
          const done = await o.states.update(topic.name, p.partition, completeReassignment);
          if (done) {
            changed++;
            o.log(
              `moved ${topic.name}-${p.partition} to brokers ${
                done.replicas.join(",")
              } (leader ${done.leader})`,
            );
          }
          continue;
        }
        if (p.leader >= 0 && alive.has(p.leader)) continue;
        if (electLeader(p, alive, unclean) === null) continue;
        const next = await o.states.update(
          topic.name,
          p.partition,
          (cur) => electLeader(cur, alive, unclean),
        );
        if (next) {
          changed++;
          o.log(
            `elected broker ${next.leader} leader of ${topic.name}-${p.partition} (epoch ${next.leaderEpoch}, isr ${
              next.isr.join(",")
            }; broker ${p.leader} is not alive)`,
          );
        }
      }
    }
    if (o.settings) changed += await this.#balance(snapshot, brokers, alive, now, o.settings);
    return changed;
  }

  /** Preferred leaders, re-replication and pending moves (see the module doc). */
  async #balance(
    snapshot: { version: bigint; topics: TopicMetadata[] },
    brokers: BrokerStatus[],
    alive: ReadonlySet<number>,
    now: number,
    cfg: ControllerSettings,
  ): Promise<number> {
    const o = this.#o;
    let changed = 0;
    let moving = 0;
    for (const t of snapshot.topics) for (const p of t.partitions) if (p.targetReplicas) moving++;
    if (o.moves && snapshot.version !== this.#planVersion) {
      this.#plan = await o.moves.get();
      this.#planVersion = snapshot.version;
    }
    const decommissioned = new Set(this.#plan.plan?.decommissioned ?? []);
    // Re-replication: replicas on brokers dead for longer than the delay move to live ones.
    const gone = new Set(
      brokers.filter((b) =>
        b.role === "broker" && !b.alive &&
        now - b.heartbeatMs >= o.cluster.sessionTimeoutMs + cfg.replicaReplacementDelayMs
      ).map((b) => b.id),
    );
    if (gone.size > 0) {
      const candidates: PlannedBroker[] = brokers
        .filter((b) => alive.has(b.id) && !decommissioned.has(b.id))
        .map((b) => ({ id: b.id, rack: b.rack }));
      const counts = new Map<number, number>();
      for (const t of snapshot.topics) {
        for (const p of t.partitions) {
          for (const id of p.replicas) counts.set(id, (counts.get(id) ?? 0) + 1);
        }
      }
      for (const t of snapshot.topics) {
        for (const p of t.partitions) {
          // A move whose target broker died for good goes to a live broker instead.
          const stuck = p.targetReplicas?.some((id) => gone.has(id)) && p.leader >= 0;
          const retarget = stuck
            ? replacementReplicas(p.targetReplicas!, gone, candidates, counts)
            : null;
          if (retarget) {
            const next = await o.states.update(t.name, p.partition, (cur) => {
              if (!cur.targetReplicas || !sameList(cur.targetReplicas, p.targetReplicas!)) {
                return null;
              }
              const replicas = [...cur.replicas];
              for (const id of retarget) if (!replicas.includes(id)) replicas.push(id);
              return { ...cur, replicas, targetReplicas: retarget };
            });
            if (next) {
              changed++;
              o.log(
                `re-targeting the move of ${t.name}-${p.partition} to brokers ${
                  retarget.join(",")
                } (a target broker is dead)`,
              );
            }
            continue;
          }
          if (moving >= cfg.maxConcurrentMoves) break;
          if (p.targetReplicas || p.leader < 0 || !p.replicas.some((id) => gone.has(id))) continue;
          const target = replacementReplicas(p.replicas, gone, candidates, counts);
          if (target === null) continue;
          const next = await o.states.update(
            t.name,
            p.partition,
            (cur) => cur.targetReplicas ? null : startReassignment(cur, target),
          );
          if (next) {
            moving++;
            changed++;
            o.log(
              `re-replicating ${t.name}-${p.partition} from brokers ${p.replicas.join(",")} to ${
                target.join(",")
              } (brokers ${
                [...gone].join(",")
              } dead for over ${cfg.replicaReplacementDelayMs} ms past the session timeout)`,
            );
          }
        }
      }
    }
    // Pending moves of a rebalance or decommission.
    const plan = this.#plan.plan;
    if (o.moves && plan && plan.pending.length > 0 && moving < cfg.maxConcurrentMoves) {
      const byName = new Map(snapshot.topics.map((t) => [t.name, t]));
      const left = [];
      for (const m of plan.pending) {
        const p = byName.get(m.topic)?.partitions[m.partition];
        if (!p) continue; // the topic or partition is gone
        if (
          moving >= cfg.maxConcurrentMoves || p.targetReplicas ||
          !m.replicas.every((id) => alive.has(id))
        ) {
          left.push(m);
          continue;
        }
        const next = await o.states.update(
          m.topic,
          m.partition,
          (cur) => cur.targetReplicas ? null : startReassignment(cur, m.replicas),
        );
        if (next) {
          moving++;
          changed++;
          o.log(
            `moving ${m.topic}-${m.partition} to brokers ${m.replicas.join(",")} (${plan.kind})`,
          );
        } else if (!sameList(p.replicas, m.replicas)) left.push(m);
      }
      // Written only when a move started or went away (no KV write while all wait).
      if (left.length !== plan.pending.length) {
        const updated = { ...plan, pending: left };
        if (await o.moves.update(this.#plan, updated)) this.#plan = await o.moves.get();
        else this.#planVersion = -1n;
      }
    }
    // Continuous balancing (e.g. a new broker gets its share): only while nothing moves and
    // every registered broker is alive (a dead one is re-replication's, after its delay).
    if (
      o.rebalance && cfg.autoRebalanceIntervalMs > 0 &&
      now - this.#lastAutoRebalance >= cfg.autoRebalanceIntervalMs
    ) {
      this.#lastAutoRebalance = now;
      const idle = moving === 0 && (this.#plan.plan?.pending.length ?? 0) === 0;
      if (idle && brokers.every((b) => b.role !== "broker" || b.alive)) {
        const planned = await o.rebalance();
        if (planned > 0) o.log(`continuous balancing planned ${planned} move(s)`);
      }
    }
    // Preferred leaders, every check interval.
    if (
      cfg.autoLeaderRebalanceEnable &&
      now - this.#lastLeaderCheck >= cfg.leaderImbalanceCheckIntervalMs
    ) {
      this.#lastLeaderCheck = now;
      for (
        const { topic, partition } of imbalancedPartitions(
          snapshot.topics,
          alive,
          cfg.leaderImbalancePerBrokerPercentage,
        )
      ) {
        const next = await o.states.update(
          topic,
          partition,
          (cur) => electPreferredLeader(cur, alive),
        );
        if (next) {
          changed++;
          o.log(
            `moved the leadership of ${topic}-${partition} back to its preferred leader ${next.leader} (epoch ${next.leaderEpoch})`,
          );
        }
      }
    }
    return changed;
  }

  /** Gives the lease up (graceful shutdown). */
  async resign(): Promise<void> {
    if (this.#active) await this.#o.lease.release(this.#o.brokerId);
    this.#active = false;
  }
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}
