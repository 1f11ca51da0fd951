/**
 * The controller: one broker at a time (the holder of the KV lease, leases.ts) watches the
 * brokers' heartbeats and moves the leadership of partitions whose leader died, with the
 * decisions of election.ts, each written as one checked KV update of the partition state
 * (a new leader epoch). Brokers learn of the change through the metadata version and switch
 * roles. A broker whose session expired leaves the ISR of every partition at once
 * (election.ts `fenceFromIsr`), so acks=all waits for the session timeout and no longer for
 * the leader's lag limit on top. It also completes replica reassignments once the new
 * replicas are in sync.
 * When the controller dies, its lease expires after the session timeout and another
 * broker takes over.
 *
 * @module
 */
import type { ClusterStore } from "../coordination/cluster.ts";
import type { LeaseStore } from "../coordination/leases.ts";
import type { PartitionStateStore } from "../coordination/partition_states.ts";
import type { TopicStore } from "../coordination/topics.ts";
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
   * leader is not alive, and fences brokers whose session expired out of the other
   * partitions' ISRs.
   *
   * @returns how many partitions changed leader or ISR
   */
  async tick(): Promise<number> {
    const o = this.#o;
    const lease = await o.lease.acquire(o.brokerId, o.leaseTtlMs);
    const was = this.#active;
    this.#active = lease !== null;
    if (!this.#active) return 0;
    if (!was) o.log(`became the controller (lease epoch ${lease!.epoch})`);
    const brokers = await o.cluster.brokers();
    const alive = new Set(brokers.filter((b) => b.alive && b.role === "broker").map((b) => b.id));
    const aliveAny = new Set(brokers.filter((b) => b.alive).map((b) => b.id));
    let changed = 0;
    for (const topic of (await o.topics.snapshot()).topics) {
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
        if (p.leader >= 0 && alive.has(p.leader)) {
          if (fenceFromIsr(p, aliveAny) === null) continue;
          const fenced = await o.states.update(
            topic.name,
            p.partition,
            (cur) => fenceFromIsr(cur, aliveAny),
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
          }
          continue;
        }
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
    return changed;
  }

  /** Gives the lease up (graceful shutdown). */
  async resign(): Promise<void> {
    if (this.#active) await this.#o.lease.release(this.#o.brokerId);
    this.#active = false;
  }
}
