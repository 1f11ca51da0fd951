/**
 * Cluster-wide balancing operations any broker answers (the HTTP routes under
 * `/v1/cluster`): preferred leader election on demand, rebalance plans (dry run or
 * executed), decommissioning a broker, and the cluster's balance and move status. Plans
 * are computed here (balance.ts) from the metadata, the live brokers and the leaders'
 * reported sizes (leader_reports.ts); executing one stores it in KV (moves.ts), and the
 * controller runs it a few partitions at a time.
 *
 * @module
 */
import type { BrokerStatus, ClusterStore } from "../coordination/cluster.ts";
import { readLeaderReports } from "../coordination/leader_reports.ts";
import type { MovePlan, MoveStore } from "../coordination/moves.ts";
import type { PartitionStateStore } from "../coordination/partition_states.ts";
import type { TopicMetadata, TopicStore } from "../coordination/topics.ts";
import { RillError } from "../protocol/errors.ts";
import {
  type BrokerLoad,
  electPreferredLeader,
  loadOf,
  partitionKeyOf,
  type PartitionMove,
  planMoves,
} from "./balance.ts";

/** What {@linkcode ClusterAdmin} needs. */
export interface ClusterAdminOptions {
  /** the shared KV (leader reports) */
  kv: Deno.Kv;
  /** membership */
  cluster: ClusterStore;
  /** topic metadata */
  topics: TopicStore;
  /** partition state updates */
  states: PartitionStateStore;
  /** the pending moves */
  moves: MoveStore;
  /** the clock */
  now?: () => number;
}

/** A preferred leader election's outcome. */
export interface ElectionResult {
  /** partitions whose leadership moved to the preferred leader */
  elected: { topic: string; partition: number; leader: number; leaderEpoch: number }[];
  /** partitions whose preferred leader cannot lead now (dead, out of the ISR, moving) */
  notEligible: { topic: string; partition: number; preferred: number; leader: number }[];
}

/** A rebalance or decommission plan. */
export interface PlanResult {
  /** the moves, in the order the controller starts them */
  moves: PartitionMove[];
  /** load per broker now */
  before: BrokerLoad[];
  /** load per broker once the moves are done */
  after: BrokerLoad[];
  /** whether the plan was stored for the controller to run */
  executed: boolean;
}

/** The cluster's balance and move progress. */
export interface ClusterStatus {
  /** per broker: liveness, rack, load and leaders now */
  brokers: (BrokerLoad & {
    alive: boolean;
    rack: string | null;
    leaders: number;
    decommissioned: boolean;
    /** decommissioned and holding no replica: it may be stopped */
    safeToStop: boolean;
  })[];
  /** partitions moving now */
  moving: {
    topic: string;
    partition: number;
    replicas: number[];
    target: number[];
    isr: number[];
  }[];
  /** moves planned but not started */
  pending: number;
  /** the plan's kind and size, if any */
  plan: { kind: string; total: number; createdMs: number } | null;
  /** partitions not led by their preferred leader */
  nonPreferredLeaders: number;
  /** partitions with fewer in-sync replicas than replicas */
  underReplicated: number;
  /** partitions whose size no leader has reported yet (counted as 0 bytes) */
  unknownSizes: number;
}

/** Balancing operations (see the module doc). */
export class ClusterAdmin {
  readonly #o: ClusterAdminOptions;

  /** @param opts stores */
  constructor(opts: ClusterAdminOptions) {
    this.#o = opts;
  }

  /**
   * Moves leadership back to the preferred leader (the first replica) wherever it is
   * alive and in the ISR (`rill cluster elect-leaders`).
   *
   * @param topic only this topic (default: all)
   * @returns what moved and what could not
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION for an unknown topic
   */
  async electLeaders(topic?: string): Promise<ElectionResult> {
    const o = this.#o;
    const topics = await this.#topics(topic);
    const alive = await this.#alive();
    const out: ElectionResult = { elected: [], notEligible: [] };
    for (const t of topics) {
      for (const p of t.partitions) {
        const preferred = p.replicas[0];
        if (p.leader === preferred) continue;
        const next = await o.states.update(
          t.name,
          p.partition,
          (cur) => electPreferredLeader(cur, alive),
        );
        if (next) {
          out.elected.push({
            topic: t.name,
            partition: p.partition,
            leader: next.leader,
            leaderEpoch: next.leaderEpoch,
          });
        } else {
          out.notEligible.push({
            topic: t.name,
            partition: p.partition,
            preferred,
            leader: p.leader,
          });
        }
      }
    }
    return out;
  }

  /**
   * Plans a rebalance: every broker an even share of replicas, bytes and preferred leaders
   * (`rill cluster rebalance`).
   *
   * @param execute store the plan for the controller (else a dry run)
   * @returns the plan
   */
  async rebalance(execute: boolean): Promise<PlanResult> {
    return await this.#plan("rebalance", [], execute);
  }

  /**
   * Decommissions a broker: it gets no new replicas, and every replica it holds moves to
   * the others (`rill cluster decommission --id N`).
   *
   * @param brokerId the broker
   * @param execute store the plan (else a dry run)
   * @returns the plan
   * @throws {RillError} INVALID_REQUEST for an unknown broker or the last one
   */
  async decommission(brokerId: number, execute = true): Promise<PlanResult> {
    const brokers = await this.#o.cluster.brokers();
    if (!brokers.some((b) => b.id === brokerId && b.role === "broker")) {
      throw new RillError("INVALID_REQUEST", `Broker ${brokerId} is not a registered broker`);
    }
    return await this.#plan("decommission", [brokerId], execute);
  }

  /**
   * The cluster's balance and move progress (`rill cluster status`).
   *
   * @returns the status
   */
  async status(): Promise<ClusterStatus> {
    const o = this.#o;
    const [brokers, snapshot, plan, sizes] = await Promise.all([
      o.cluster.brokers(),
      o.topics.snapshot(),
      o.moves.get(),
      this.#sizes(),
    ]);
    const decommissioned = new Set(plan.plan?.decommissioned ?? []);
    const assignment = new Map<string, number[]>();
    const leaders = new Map<number, number>();
    const moving: ClusterStatus["moving"] = [];
    let nonPreferred = 0, under = 0;
    for (const t of snapshot.topics) {
      for (const p of t.partitions) {
        assignment.set(partitionKeyOf(t.name, p.partition), p.replicas);
        if (p.leader >= 0) leaders.set(p.leader, (leaders.get(p.leader) ?? 0) + 1);
        if (p.leader !== p.replicas[0]) nonPreferred++;
        if (p.isr.length < (p.targetReplicas ?? p.replicas).length) under++;
        if (p.targetReplicas) {
          moving.push({
            topic: t.name,
            partition: p.partition,
            replicas: p.replicas,
            target: p.targetReplicas,
            isr: p.isr,
          });
        }
      }
    }
    const regs = brokers.filter((b) => b.role === "broker");
    const loads = loadOf(assignment, regs.map((b) => b.id), sizes);
    return {
      brokers: loads.map((l, i) => ({
        ...l,
        alive: regs[i].alive,
        rack: regs[i].rack ?? null,
        leaders: leaders.get(l.id) ?? 0,
        decommissioned: decommissioned.has(l.id),
        safeToStop: decommissioned.has(l.id) && l.replicas === 0,
      })),
      moving,
      pending: plan.plan?.pending.length ?? 0,
      plan: plan.plan
        ? { kind: plan.plan.kind, total: plan.plan.total, createdMs: plan.plan.createdMs }
        : null,
      nonPreferredLeaders: nonPreferred,
      underReplicated: under,
      unknownSizes: [...assignment.keys()].filter((k) => !sizes.has(k)).length,
    };
  }

  /**
   * The brokers being decommissioned (new topics place no replica on them).
   *
   * @returns their ids
   */
  async decommissioned(): Promise<Set<number>> {
    return new Set((await this.#o.moves.get()).plan?.decommissioned ?? []);
  }

  async #plan(
    kind: MovePlan["kind"],
    decommission: number[],
    execute: boolean,
  ): Promise<PlanResult> {
    const o = this.#o;
    const [brokers, snapshot, current, sizes] = await Promise.all([
      o.cluster.brokers(),
      o.topics.snapshot(),
      o.moves.get(),
      this.#sizes(),
    ]);
    const decommissioned = new Set([...current.plan?.decommissioned ?? [], ...decommission]);
    const live = brokers.filter((b) => b.alive && b.role === "broker");
    const exclude = new Set([...decommissioned, ...liveless(brokers)]);
    const moves = planMoves(
      snapshot.topics,
      live.map((b) => ({ id: b.id, rack: b.rack })),
      sizes,
      { exclude },
    );
    const ids = brokers.filter((b) => b.role === "broker").map((b) => b.id);
    const assignment = new Map<string, number[]>();
    for (const t of snapshot.topics) {
      for (const p of t.partitions) assignment.set(partitionKeyOf(t.name, p.partition), p.replicas);
    }
    const before = loadOf(assignment, ids, sizes);
    for (const m of moves) assignment.set(partitionKeyOf(m.topic, m.partition), m.replicas);
    const after = loadOf(assignment, ids, sizes);
    // A rebalance with nothing to move stores nothing (no metadata version bump).
    if (execute && (kind === "decommission" || moves.length > 0)) {
      const rf = new Map(snapshot.topics.map((t) => [t.name, t.replicationFactor]));
      if (moves.some((m) => m.replicas.length !== rf.get(m.topic))) {
        throw new RillError(
          "INVALID_REQUEST",
          `Not enough live brokers to hold every replica off brokers ${[...exclude].join(",")}`,
        );
      }
      await o.moves.put({
        kind,
        createdMs: (o.now ?? Date.now)(),
        pending: moves,
        total: moves.length,
        decommissioned: [...decommissioned],
      });
    }
    return { moves, before, after, executed: execute };
  }

  async #topics(topic?: string): Promise<TopicMetadata[]> {
    const all = (await this.#o.topics.snapshot()).topics;
    if (topic === undefined) return all;
    const t = all.find((x) => x.name === topic);
    if (!t) throw new RillError("UNKNOWN_TOPIC_OR_PARTITION", `Topic "${topic}" does not exist`);
    return [t];
  }

  async #alive(): Promise<Set<number>> {
    return new Set(
      (await this.#o.cluster.brokers()).filter((b) => b.alive && b.role === "broker").map((b) =>
        b.id
      ),
    );
  }

  async #sizes(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [k, f] of await readLeaderReports(this.#o.kv)) out.set(k, f.bytes);
    return out;
  }
}

/** Registered brokers that are not alive (their replicas move too when planning). */
function liveless(brokers: BrokerStatus[]): number[] {
  return brokers.filter((b) => b.role === "broker" && !b.alive).map((b) => b.id);
}
