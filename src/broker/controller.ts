/**
 * The controller: one broker at a time (the holder of the KV lease, leases.ts) watches the
 * brokers' heartbeats and moves the leadership of partitions whose leader died, with the
 * decisions of election.ts, each written as one checked KV update of the partition state
 * (a new leader epoch). Brokers learn of the change through the metadata version and switch
 * roles. It also completes replica reassignments once the new replicas are in sync.
 * When the controller dies, its lease expires after the session timeout and another
 * broker takes over. A broker whose session expired leaves the ISR of every partition at
 * once (election.ts `fenceFromIsr`, as Kafka's controller fences a broker whose heartbeats
 * stopped), so acks=all waits for the session timeout only, not for the leader's
 * `replica.lag.time.max.ms` on top.
 *
 * Healing and balancing ride on the same tick (no loop of their own, no extra KV reads
 * when idle): preferred leader election every `leaderImbalanceCheckIntervalMs` when
 * leadership is imbalanced (balance.ts, Kafka's auto.leader.rebalance), re-replication of
 * the replicas of brokers dead longer than `replicaReplacementDelayMs` past the session
 * timeout, the pending moves of a rebalance or decommission (moves.ts), at most
 * `maxConcurrentMoves` partitions moving at once and at most `maxConcurrentMovesPerBroker`
 * of them involving any one live broker (as the leader that sends the copy, a broker a replica
 * moves onto, or the broker it moves off: Cruise Control's
 * `num.concurrent.partition.movements.per.broker`), so that with the replication throttle no
 * broker sends or receives move traffic faster than the throttle's rate, and a decommission
 * does not copy onto every other broker at once; and optionally continuous balancing.
 *
 * **KV cost** (a hosted KV bills every request). A tick that finds nothing to do touches
 * the KV only when something may have changed: the holder renews its lease once half of
 * it has run out, with one write checked on its own last versionstamp; the other brokers
 * read the lease only once the copy they read says it expired; the broker registrations
 * are read again only when the first of the known heartbeats would reach the session
 * timeout (a broker cannot be found dead earlier); topic metadata comes from the broker's
 * cache (`metadata`), and partitions are looked at only when that version or the set of
 * live brokers moved, or an election or a reassignment is still pending.
 *
 * **Fencing.** Every election is written with a check on the lease entry this controller
 * last wrote: a controller that lost its lease (paused, cut off) cannot change a partition.
 *
 * **After a KV outage** every heartbeat looks stale, because nobody could write one. A tick
 * that starts more than half a session timeout (at least 3 s) after the previous one (the KV
 * held it up, or the process was paused) opens a grace period of one session timeout during which no
 * broker is judged dead, so that live brokers heartbeat again first.
 *
 * **Its own broker** is never judged dead: the controller is running and holds the lease,
 * even when its broker's heartbeat lapsed (event loop starved, the heartbeat's KV write
 * queued), so a lone broker never elects leader -1 for partitions whose only ISR member it is.
 *
 * @module
 */
import type { BrokerRegistration, ClusterStore } from "../coordination/cluster.ts";
import type { HeldLease, Lease, LeaseStore } from "../coordination/leases.ts";
import type { PartitionStateStore } from "../coordination/partition_states.ts";
import type { TopicMetadata, TopicStore } from "../coordination/topics.ts";
import type { MovePlanEntry, MoveStore } from "../coordination/moves.ts";
import { movesKey } from "../coordination/kv_keys.ts";
import { completeReassignment, electLeader, fenceFromIsr, startReassignment } from "./election.ts";
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
  | "maxConcurrentMovesPerBroker"
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
  /**
   * The topic metadata as the broker last read it (its cache, refreshed when the metadata
   * version moves); default: a fresh `topics.snapshot()` when the version moved.
   */
  metadata?: () => Promise<{ version: bigint; topics: TopicMetadata[] }>;
  /** pending moves (rebalance, decommission); without it none are run */
  moves?: MoveStore;
  /** balancing settings (default: none of it runs) */
  settings?: ControllerSettings;
  /** continuous balancing: plans and stores a rebalance, returning its move count */
  rebalance?: () => Promise<number>;
}

/** A tick held up this long (at least; half the session timeout if longer) opens a grace. */
export const STALL_MS = 3000;

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
  #lease: HeldLease | null = null;
  #seenLease: Lease | null = null;
  #registrations: BrokerRegistration[] | null = null;
  #recheckBrokersAt = 0;
  #lastTickStart: number | null = null;
  #graceUntil = 0;
  #lastVersion: bigint | null = null;
  #lastAlive = "";
  #pendingWork = true;
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
    const started = performance.now();
    const stall = Math.max(o.leaseTtlMs / 2, STALL_MS);
    if (this.#lastTickStart !== null && started - this.#lastTickStart > stall) {
      // The previous tick was held up (KV outage, paused process): heartbeats look stale.
      this.#graceUntil = started + o.leaseTtlMs;
      this.#registrations = null;
    }
    this.#lastTickStart = started;

    if (!(await this.#holdLease())) return 0;
    let readNow = false;
    const readRegistrations = async () => {
      const now = o.cluster.clock();
      const regs = await o.cluster.brokers();
      this.#registrations = regs;
      readNow = true;
      const deadlines = regs.filter((b) => b.alive).map((b) => o.cluster.deadline(b));
      // Read again when the first known heartbeat would expire (and at least every ttl).
      this.#recheckBrokersAt = Math.min(now + o.leaseTtlMs, ...deadlines);
    };
    if (this.#registrations === null || o.cluster.clock() >= this.#recheckBrokersAt) {
      await readRegistrations();
    }
    if (performance.now() - started > stall) {
      // This tick itself waited on the KV that long: what it read may follow an outage.
      this.#graceUntil = performance.now() + o.leaseTtlMs;
    }
    // This controller's own broker is alive whatever its registration says: it is running
    // this tick, and it holds the unexpired lease (renewed in the KV). Its heartbeat can
    // lapse while it serves (event loop starved, the heartbeat's KV write queued behind
    // other work); counting itself dead would elect leader -1 for every partition whose
    // only in-sync replica it is, an outage of a live broker (Kafka never does that).
    const self = (b: BrokerRegistration) => b.id === o.brokerId;
    const aliveNow = () => {
      const inGrace = performance.now() < this.#graceUntil;
      return new Set(
        this.#registrations!
          .filter((b) => b.role === "broker" && !b.stopped)
          .filter((b) => inGrace || self(b) || o.cluster.status(b).alive)
          .map((b) => b.id),
      );
    };
    // Brokers of any role whose session holds: the others leave every ISR (fenceFromIsr).
    const aliveAnyNow = () => {
      const inGrace = performance.now() < this.#graceUntil;
      return new Set(
        this.#registrations!
          .filter((b) => !b.stopped && (inGrace || self(b) || o.cluster.status(b).alive))
          .map((b) => b.id),
      );
    };
    let alive = aliveNow();
    const { version, topics } = await this.#metadata();
    // A leader missing from registrations read earlier may have registered since: an
    // election is decided on registrations read in this tick.
    // Likewise for an ISR member to be fenced out (fenceFromIsr): it may have just registered.
    const aliveAnyRead = aliveAnyNow();
    const suspect = topics.some((t) =>
      t.partitions.some((p) => !alive.has(p.leader) || p.isr.some((id) => !aliveAnyRead.has(id)))
    );
    if (suspect && !readNow) {
      await readRegistrations();
      alive = aliveNow();
    }
    const aliveKey = [...alive].sort((a, b) => a - b).join(",");
    const fence = { key: o.lease.key, versionstamp: this.#lease!.versionstamp };
    const balanced = o.settings
      ? await this.#balance(version, topics, alive, o.cluster.clock(), o.settings, fence)
      : 0;
    if (!this.#pendingWork && version === this.#lastVersion && aliveKey === this.#lastAlive) {
      return balanced;
    }
    this.#lastVersion = version;
    this.#lastAlive = aliveKey;
    this.#pendingWork = false;
    let changed = balanced;
    for (const topic of topics) {
      const unclean = topic.configs["unclean.leader.election.enable"] === "true";
      for (const p of topic.partitions) {
        if (p.targetReplicas) {
          // A reassignment completes once the new replicas are in sync: look again later.
          this.#pendingWork = true;
          if (completeReassignment(p) === null) continue;
          const done = await o.states.update(
            topic.name,
            p.partition,
            completeReassignment,
            fence,
          );
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
        if (p.leader >= 0 && alive.has(p.leader)) {
          const aliveAny = aliveAnyNow();
          if (fenceFromIsr(p, aliveAny) === null) continue;
          const fenced = await o.states.update(
            topic.name,
            p.partition,
            (cur) => fenceFromIsr(cur, aliveAny),
            fence,
          );
          if (fenced) {
            changed++;
            o.log(
              `fenced broker(s) ${
                p.isr.filter((id) => !fenced.isr.includes(id)).join(",")
              } out of the isr of ${topic.name}-${p.partition} (session expired; isr ${
                fenced.isr.join(",")
              })`,
            );
          } else {
            this.#pendingWork = true;
          }
          continue;
        }
        if (electLeader(p, alive, unclean) === null) continue;
        const next = await o.states.update(
          topic.name,
          p.partition,
          (cur) => electLeader(cur, alive, unclean),
          fence,
        );
        if (next) {
          changed++;
          o.log(
            `elected broker ${next.leader} leader of ${topic.name}-${p.partition} (epoch ${next.leaderEpoch}, isr ${
              next.isr.join(",")
            }; broker ${p.leader} is not alive)`,
          );
        } else {
          // Refused (the state or the lease moved): decide again at the next tick.
          this.#pendingWork = true;
        }
      }
    }
    return changed;
  }

  /**
   * Preferred leaders, re-replication, pending moves and continuous balancing (see the
   * module doc). Touches the KV only when there is something to do (the plan is read again
   * only when the metadata version moved).
   */
  async #balance(
    version: bigint,
    topics: TopicMetadata[],
    alive: ReadonlySet<number>,
    now: number,
    cfg: ControllerSettings,
    fence: Deno.AtomicCheck,
  ): Promise<number> {
    const o = this.#o;
    const snapshot = { version, topics };
    const brokers = (this.#registrations ?? []).map((b) => ({ ...b, alive: alive.has(b.id) }));
    let changed = 0;
    let moving = 0;
    // per live broker, the moves under way it takes part in (moveBrokers)
    const busy = new Map<number, number>();
    const take = (ids: number[]) => {
      for (const id of ids) busy.set(id, (busy.get(id) ?? 0) + 1);
    };
    const free = (ids: number[]) =>
      ids.every((id) => (busy.get(id) ?? 0) < cfg.maxConcurrentMovesPerBroker);
    for (const t of snapshot.topics) {
      for (const p of t.partitions) {
        if (!p.targetReplicas) continue;
        moving++;
        take(moveBrokers(p.leader, p.previousReplicas ?? p.replicas, p.targetReplicas, alive));
      }
    }
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
            }, fence);
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
          const involved = moveBrokers(p.leader, p.replicas, target, alive);
          if (!free(involved)) continue;
          const next = await o.states.update(
            t.name,
            p.partition,
            (cur) => cur.targetReplicas ? null : startReassignment(cur, target),
            fence,
          );
          if (next) {
            moving++;
            take(involved);
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
        const involved = moveBrokers(p.leader, p.replicas, m.replicas, alive);
        if (
          moving >= cfg.maxConcurrentMoves || p.targetReplicas ||
          !m.replicas.every((id) => alive.has(id)) || !free(involved)
        ) {
          left.push(m);
          continue;
        }
        // Checked on the plan as read too: a plan cancelled meanwhile starts nothing.
        const next = await o.states.update(
          m.topic,
          m.partition,
          (cur) => cur.targetReplicas ? null : startReassignment(cur, m.replicas),
          [fence, { key: movesKey(), versionstamp: this.#plan.versionstamp }],
        );
        if (next) {
          moving++;
          take(involved);
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
          fence,
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
    this.#lease = null;
  }

  /** Takes or renews the lease, touching the KV only when the lease needs it. */
  async #holdLease(): Promise<boolean> {
    const o = this.#o;
    const now = o.cluster.clock();
    const mine = this.#lease;
    if (mine && mine.expiresMs - now > o.leaseTtlMs / 2) return this.#active = true;
    const other = this.#seenLease;
    if (!mine && other && other.holder !== o.brokerId && other.expiresMs > now) {
      return this.#active = false;
    }
    const was = this.#active;
    const r = await o.lease.tryAcquire(o.brokerId, o.leaseTtlMs, mine);
    this.#lease = r.held;
    this.#seenLease = r.current;
    this.#active = r.held !== null;
    if (this.#active && !was) {
      o.log(`became the controller (lease epoch ${r.held!.epoch})`);
      const now = o.cluster.clock();
      this.#lastLeaderCheck = now;
      this.#lastAutoRebalance = now;
      this.#planVersion = -1n;
      // A new controller looks at every partition once.
      this.#pendingWork = true;
    }
    return this.#active;
  }

  async #metadata(): Promise<{ version: bigint; topics: TopicMetadata[] }> {
    const o = this.#o;
    if (o.metadata) return await o.metadata();
    const version = await o.topics.version();
    if (version === this.#lastVersion && this.#cached) return { version, topics: this.#cached };
    const snap = await o.topics.snapshot();
    this.#cached = snap.topics;
    return snap;
  }

  #cached: TopicMetadata[] | null = null;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/**
 * The live brokers a move takes part in: the partition's leader (it sends the copy), the
 * brokers the move adds and the brokers it removes.
 *
 * @param leader the partition's leader (-1: none)
 * @param from the replicas before the move
 * @param to the replicas after it
 * @param alive the live brokers
 * @returns their ids, each once
 */
export function moveBrokers(
  leader: number,
  from: readonly number[],
  to: readonly number[],
  alive: ReadonlySet<number>,
): number[] {
  const ids = new Set<number>();
  if (leader >= 0) ids.add(leader);
  for (const id of to) if (!from.includes(id)) ids.add(id);
  for (const id of from) if (!to.includes(id)) ids.add(id);
  return [...ids].filter((id) => alive.has(id));
}
