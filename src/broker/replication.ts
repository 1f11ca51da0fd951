/**
 * A broker's replication duties, kept in step with each metadata snapshot:
 *
 * - every hosted replica gets its role from the partition state (leader when the state
 *   names this broker, else follower of the named leader; an observer broker copies as an
 *   observer); a new leader epoch or leader switches it (become leader: serve with the new
 *   epoch; become follower: stop, truncate against the new leader, fetch);
 * - one {@linkcode ReplicaFetcher} per follower replica; with `replicaFetchSessions` (default)
 *   they share one {@linkcode LeaderFetcher} per leader broker: one fetch per leader for all
 *   the partitions copied from it;
 * - ISR changes the leaders propose are written to KV with a check on the partition state
 *   (leader and epoch unchanged), as Kafka's AlterPartition;
 * - periodically, leaders look for followers that fell behind `replica.lag.time.max.ms`.
 *
 * @module
 */
import type { ClusterStore } from "../coordination/cluster.ts";
import type { PartitionStateStore } from "../coordination/partition_states.ts";
import type { BrokerConfig } from "./config.ts";
import type { TopicState } from "./local_topics.ts";
import type { Replica } from "./replica.ts";
import { ReplicaFetcher } from "./replica_fetcher.ts";
import { LeaderFetcher } from "./leader_fetcher.ts";
import { ReplicationThrottle } from "./replication_throttle.ts";
import { RillError } from "../protocol/errors.ts";

/** What a {@linkcode ReplicationManager} needs. */
export interface ReplicationOptions {
  /** this broker's id */
  brokerId: number;
  /** whether this broker is an observer (never leads, never in the ISR) */
  observer: boolean;
  /** broker settings */
  config: BrokerConfig;
  /** broker registrations (leader URLs) */
  cluster: ClusterStore;
  /** partition state updates */
  states: PartitionStateStore;
  /** asks the broker to re-read metadata */
  refresh: () => void;
  /** where to report */
  log: (line: string, fields?: { topic?: string; partition?: number; code?: string }) => void;
  /** told of each ISR change this leader wrote (for metrics) */
  onIsrChange?: (shrunk: boolean) => void;
  /** told of the bytes a follower replica copied from its leader (for metrics) */
  onCopied?: (topic: string, bytes: number) => void;
}

interface Assignment {
  role: "leader" | "follower";
  epoch: number;
  leaderId: number;
  fetcher: ReplicaFetcher | null;
}

/**
 * Roles, fetchers and ISR writes of one broker.
 *
 * @example
 * ```ts
 * const repl = new ReplicationManager({ brokerId: 1, observer: false, config, cluster, states, refresh, log });
 * await repl.sync(localTopics.all());
 * ```
 */
export class ReplicationManager {
  readonly #o: ReplicationOptions;
  readonly #assigned = new Map<Replica, Assignment>();
  readonly #leaders = new Map<number, LeaderFetcher>();
  #urls = new Map<number, string>();
  #closed = false;
  #enabled = false;
  /** the follower replicas moving here (a move's target, not in the ISR yet) */
  readonly #moving = new Set<Replica>();
  readonly #throttle: ReplicationThrottle | null;
  /** per partition led here, the replicas a move is adding (not in the ISR yet) */
  readonly #adding = new Map<Replica, readonly number[]>();
  /** the sender side: what this leader answers to the replicas moves are adding */
  readonly #sendThrottle: ReplicationThrottle | null;
  /**
   * headers for requests to leaders (the cluster secret when security is on: followers
   * authenticate as the inter-broker principal)
   */
  requestHeaders: Record<string, string> = {};

  /** @param opts ids, stores and settings */
  constructor(opts: ReplicationOptions) {
    this.#o = opts;
    const rate = opts.config.replicationThrottleBytes;
    this.#throttle = rate > 0 ? new ReplicationThrottle(rate) : null;
    this.#sendThrottle = rate > 0 ? new ReplicationThrottle(rate) : null;
  }

  /**
   * The sender side of the replication throttle (Kafka's `leader.replication.throttled.rate`,
   * at the same `--replication-throttle-bytes`): the bucket this leader's answers to
   * `replicaId` take from while a move is adding that replica, else null.
   *
   * @param r the partition's replica (led here)
   * @param replicaId the fetching broker
   * @returns the bucket, or null (not throttled)
   */
  sendThrottle(r: Replica, replicaId: number): ReplicationThrottle | null {
    return this.#sendThrottle && this.#adding.get(r)?.includes(replicaId)
      ? this.#sendThrottle
      : null;
  }

  /**
   * Brings every hosted replica's role in line with the metadata.
   *
   * @param topics the broker's topics (after a metadata apply)
   */
  async sync(topics: Iterable<TopicState>): Promise<void> {
    if (this.#closed) return;
    if (!this.#enabled) {
      // Before registration, only unreplicated partitions are served (as leaders).
      for (const t of topics) {
        if (t.meta.replicationFactor > 1 || this.#o.observer) continue;
        for (const p of t.meta.partitions) {
          const r = t.replicas[p.partition];
          if (r && p.leader === this.#o.brokerId) r.becomeLeader(p.leaderEpoch, p.replicas, p.isr);
        }
      }
      return;
    }
    const seen = new Set<Replica>();
    for (const t of topics) {
      for (const p of t.meta.partitions) {
        const r = t.replicas[p.partition];
        if (!r || r.closing) continue;
        seen.add(r);
        const me = this.#o.brokerId;
        if (p.targetReplicas?.includes(me) && !p.isr.includes(me)) this.#moving.add(r);
        else this.#moving.delete(r);
        const adding = p.leader === me && p.targetReplicas
          ? p.targetReplicas.filter((id) => !p.isr.includes(id))
          : [];
        if (adding.length > 0) this.#adding.set(r, adding);
        else this.#adding.delete(r);
        const role = !this.#o.observer && p.leader === this.#o.brokerId ? "leader" : "follower";
        const cur = this.#assigned.get(r);
        if (cur && cur.role === role && cur.epoch === p.leaderEpoch && cur.leaderId === p.leader) {
          if (role === "leader") r.syncIsr(p.isr, p.replicas);
          continue;
        }
        if (cur?.fetcher) await cur.fetcher.stop();
        const next: Assignment = { role, epoch: p.leaderEpoch, leaderId: p.leader, fetcher: null };
        if (role === "leader") {
          r.onIsrChange = (rep, isr, epoch) => this.#writeIsr(rep, isr, epoch);
          r.becomeLeader(p.leaderEpoch, p.replicas, p.isr);
          if (cur || t.meta.replicationFactor > 1) {
            this.#o.log(`leading ${r.name} (epoch ${p.leaderEpoch}, isr ${p.isr.join(",")})`);
          }
        } else {
          r.becomeFollower(p.leaderEpoch, p.leader, this.#o.observer);
          if (p.leader >= 0) {
            next.fetcher = new ReplicaFetcher({
              replica: r,
              brokerId: this.#o.brokerId,
              leaderId: p.leader,
              leaderEpoch: p.leaderEpoch,
              observer: this.#o.observer,
              leaderUrl: (id) => this.#leaderUrl(id),
              maxWaitMs: this.#o.config.replicaFetchMaxWaitMs,
              maxBytes: this.#o.config.replicaFetchMaxBytes,
              onCopied: (bytes) => this.#o.onCopied?.(r.topic, bytes),
              onStale: () => {
                this.#urls = new Map();
                this.#o.refresh();
              },
              log: this.#o.log,
              headers: () => this.requestHeaders,
              // A replica moving here (throttled) copies on its own, so its throttle never
              // holds up the other partitions of the leader's shared fetch.
              shared: this.#o.config.replicaFetchSessions && !this.#moving.has(r)
                ? this.#leaderFetcher(p.leader)
                : undefined,
              throttle: () => this.#moving.has(r) ? this.#throttle : null,
            });
            next.fetcher.start();
          }
        }
        this.#assigned.set(r, next);
      }
    }
    for (const [r, a] of [...this.#assigned]) {
      if (!seen.has(r)) {
        this.#assigned.delete(r);
        this.#moving.delete(r);
        this.#adding.delete(r);
        await a.fetcher?.stop();
      }
    }
  }

  /** Starts taking roles for replicated partitions (once the broker is registered). */
  enable(): void {
    this.#enabled = true;
  }

  /** Leaders drop followers that fell behind (call every so often). */
  checkIsr(): void {
    for (const [r, a] of this.#assigned) {
      if (a.role === "leader" && !r.closing) {
        r.checkLaggingFollowers(this.#o.config.replicaLagTimeMaxMs);
      }
    }
  }

  /**
   * The fetcher of a follower replica (for tests and metrics).
   *
   * @param r the replica
   * @returns its fetcher, or null
   */
  fetcherOf(r: Replica): ReplicaFetcher | null {
    return this.#assigned.get(r)?.fetcher ?? null;
  }

  /** Stops every fetcher. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#assigned.values()];
    this.#assigned.clear();
    await Promise.all(all.map((a) => a.fetcher?.stop()));
    const leaders = [...this.#leaders.values()];
    this.#leaders.clear();
    await Promise.all(leaders.map((l) => l.close()));
  }

  /** The shared fetch loop of a leader (created on first use). */
  #leaderFetcher(leaderId: number): LeaderFetcher {
    let l = this.#leaders.get(leaderId);
    if (l === undefined) {
      l = new LeaderFetcher({
        leaderId,
        brokerId: this.#o.brokerId,
        leaderUrl: (id) => this.#leaderUrl(id),
        maxWaitMs: this.#o.config.replicaFetchMaxWaitMs,
        maxBytes: this.#o.config.replicaFetchMaxBytes,
        onStale: () => {
          this.#urls = new Map();
          this.#o.refresh();
        },
        log: this.#o.log,
        headers: () => this.requestHeaders,
      });
      this.#leaders.set(leaderId, l);
    }
    return l;
  }

  async #leaderUrl(id: number): Promise<string | null> {
    const known = this.#urls.get(id);
    if (known) return known;
    const b = (await this.#o.cluster.brokers()).find((x) => x.id === id);
    if (!b || !b.alive) return null;
    this.#urls.set(id, b.url);
    return b.url;
  }

  #writeIsr(r: Replica, isr: number[], epoch: number): void {
    const me = this.#o.brokerId;
    let before = 0;
    this.#o.states.update(r.topic, r.partition, (cur) => {
      if (cur.leader !== me || cur.leaderEpoch !== epoch) return null;
      // Only brokers holding a replica now (a move may have ended since this was computed).
      const next = isr.filter((id) => cur.replicas.includes(id));
      const same = cur.isr.length === next.length && cur.isr.every((id) => next.includes(id));
      before = cur.isr.length;
      return same ? null : { ...cur, isr: next };
    }).then(async (written) => {
      if (written) {
        this.#o.onIsrChange?.(written.isr.length < before);
        this.#o.log(`${r.name} isr is now ${written.isr.join(",")} (epoch ${epoch})`, {
          topic: r.topic,
          partition: r.partition,
        });
        r.isrChanged(written.isr, epoch);
        return;
      }
      // Refused or unchanged: re-read the state and take what KV holds.
      const cur = await this.#o.states.get(r.topic, r.partition);
      if (cur && cur.leader === me && cur.leaderEpoch === epoch) r.isrChanged(cur.isr, epoch);
      else {
        r.isrChanged(null, epoch);
        this.#o.refresh();
      }
    }).catch((e) => {
      r.isrChanged(null, epoch);
      this.#o.log(`could not write the isr of ${r.name}: ${e}`, {
        topic: r.topic,
        partition: r.partition,
        code: e instanceof RillError ? e.code : undefined,
      });
    });
  }
}
