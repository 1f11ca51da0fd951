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
 * @module
 */
import type { BrokerRegistration, ClusterStore } from "../coordination/cluster.ts";
import type { HeldLease, Lease, LeaseStore } from "../coordination/leases.ts";
import type { PartitionStateStore } from "../coordination/partition_states.ts";
import type { TopicMetadata, TopicStore } from "../coordination/topics.ts";
import { completeReassignment, electLeader, fenceFromIsr } from "./election.ts";

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
    const aliveNow = () => {
      const inGrace = performance.now() < this.#graceUntil;
      return new Set(
        this.#registrations!
          .filter((b) => b.role === "broker" && !b.stopped)
          .filter((b) => inGrace || o.cluster.status(b).alive)
          .map((b) => b.id),
      );
    };
    // Brokers of any role whose session holds: the others leave every ISR (fenceFromIsr).
    const aliveAnyNow = () => {
      const inGrace = performance.now() < this.#graceUntil;
      return new Set(
        this.#registrations!
          .filter((b) => !b.stopped && (inGrace || o.cluster.status(b).alive))
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
    if (!this.#pendingWork && version === this.#lastVersion && aliveKey === this.#lastAlive) {
      return 0;
    }
    this.#lastVersion = version;
    this.#lastAlive = aliveKey;
    this.#pendingWork = false;
    const fence = { key: o.lease.key, versionstamp: this.#lease!.versionstamp };
    let changed = 0;
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
