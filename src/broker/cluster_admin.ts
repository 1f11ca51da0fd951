/**
 * Cluster-wide balancing operations any broker answers (the HTTP routes under
 * `/v1/cluster`): preferred leader election on demand, rebalance plans (dry run or
 * executed), decommissioning a broker and taking that back (recommission), cancelling the
 * moves under way, and the cluster's balance and move status. Plans are computed here
 * (balance.ts) from the metadata, the live brokers and the leaders' reported sizes
 * (leader_reports.ts); executing one stores it in KV (moves.ts), and the controller runs
 * it a few partitions at a time.
 *
 * Cancelling first empties the plan's pending moves (the controller starts a move only
 * with a check on the plan it read, so none starts after that), then rolls every move
 * under way back with one checked partition update each (election.ts
 * `cancelReassignment`): a move the controller completes first stays completed.
 *
 * @module
 */
import type { BrokerStatus, ClusterStore } from "../coordination/cluster.ts";
import { readLeaderReports } from "../coordination/leader_reports.ts";
import type { MovePlan, MoveStore } from "../coordination/moves.ts";
import type { PartitionStateStore } from "../coordination/partition_states.ts";
import type { TopicMetadata, TopicStore } from "../coordination/topics.ts";
import type {
  CancelMovesResult,
  ClusterStatus,
  ElectLeadersResult,
  MovePlanResult,
} from "../protocol/cluster_admin_types.ts";
import { RillError } from "../protocol/errors.ts";
import { cancelReassignment } from "./election.ts";
import {
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
export type ElectionResult = ElectLeadersResult;
/** A rebalance or decommission plan. */
export type PlanResult = MovePlanResult;
/** What cancelling moves did (`cancel-moves`, `recommission`). */
export type CancelResult = CancelMovesResult;
export type { ClusterStatus } from "../protocol/cluster_admin_types.ts";

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
   * Cancels every move: planned moves are dropped, moves under way roll back to the
   * partition's previous replicas (their new, partial replicas are deleted by the brokers
   * that held them), as far as that loses no acknowledged record (`rill cluster
   * cancel-moves`). Brokers being decommissioned stay so (see {@linkcode recommission}).
   *
   * @returns what was dropped and rolled back
   */
  async cancelMoves(): Promise<CancelResult> {
    const { before, after } = await this.#o.moves.change((plan) =>
      plan === null || plan.pending.length === 0
        ? undefined
        : plan.decommissioned.length === 0
        ? null
        : { ...plan, pending: [] }
    );
    return await this.#rollBack(
      before?.pending ?? [],
      () => true,
      after?.decommissioned ?? [],
    );
  }

  /**
   * Takes a decommission back (`rill cluster recommission --id N`): the broker may hold
   * replicas again, the planned moves off it are dropped, and the moves off it under way
   * roll back. Replicas already moved off stay where they are (a rebalance gives the
   * broker its share again).
   *
   * @param brokerId the broker
   * @returns what was dropped and rolled back
   * @throws {RillError} INVALID_REQUEST when the broker is not being decommissioned
   */
  async recommission(brokerId: number): Promise<CancelResult> {
    const o = this.#o;
    const snapshot = await o.topics.snapshot();
    const replicasNow = new Map<string, number[]>();
    for (const t of snapshot.topics) {
      for (const p of t.partitions) {
        replicasNow.set(partitionKeyOf(t.name, p.partition), p.previousReplicas ?? p.replicas);
      }
    }
    // a planned move off the broker: it holds the partition now, and not afterwards
    const off = (m: { topic: string; partition: number; replicas: number[] }) =>
      (replicasNow.get(partitionKeyOf(m.topic, m.partition)) ?? []).includes(brokerId) &&
      !m.replicas.includes(brokerId);
    let dropped: PartitionMove[] = [];
    const { after } = await o.moves.change((plan) => {
      if (!plan?.decommissioned.includes(brokerId)) {
        throw new RillError(
          "INVALID_REQUEST",
          `Broker ${brokerId} is not being decommissioned`,
        );
      }
      dropped = plan.pending.filter(off);
      const decommissioned = plan.decommissioned.filter((id) => id !== brokerId);
      const pending = plan.pending.filter((m) => !off(m));
      return decommissioned.length === 0 && pending.length === 0
        ? null
        : { ...plan, pending, decommissioned };
    });
    return await this.#rollBack(dropped, off, after?.decommissioned ?? []);
  }

  /** Rolls back the moves under way that `which` selects (by their target). */
  async #rollBack(
    dropped: PartitionMove[],
    which: (m: { topic: string; partition: number; replicas: number[] }) => boolean,
    decommissioned: number[],
  ): Promise<CancelResult> {
    const o = this.#o;
    const [snapshot, alive] = await Promise.all([o.topics.snapshot(), this.#alive()]);
    const out: CancelResult = { dropped, rolledBack: [], notRolledBack: [], decommissioned };
    for (const t of snapshot.topics) {
      for (const p of t.partitions) {
        const target = p.targetReplicas;
        if (!target || !which({ topic: t.name, partition: p.partition, replicas: target })) {
          continue;
        }
        let why = "it completed first";
        const next = await o.states.update(t.name, p.partition, (cur) => {
          if (!cur.targetReplicas) return null;
          const back = cancelReassignment(cur, alive, t.replicationFactor);
          if (back === null) {
            why = "no replica it had before is alive and in sync: it finishes instead";
          }
          return back;
        });
        if (next) {
          out.rolledBack.push({
            topic: t.name,
            partition: p.partition,
            replicas: next.replicas,
            leader: next.leader,
          });
        } else {
          out.notRolledBack.push({ topic: t.name, partition: p.partition, target, reason: why });
        }
      }
    }
    return out;
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
            previous: p.previousReplicas ?? null,
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
