/**
 * A broker's membership of the cluster: its registration in KV (URL, role, rack, Kafka
 * listener), the heartbeats that keep it alive, and what its first registration starts: the
 * hand-over of leadership a restarted broker still holds, replication, the controller's loop
 * and the ISR checks. Deregistered on close.
 *
 * @module
 */
import type { BrokerRegistration, BrokerRole, ClusterStore } from "../coordination/cluster.ts";
import type { TopicStore } from "../coordination/topics.ts";
import type { PartitionStateStore } from "../coordination/partition_states.ts";
import type { BackgroundTasks } from "./background_tasks.ts";
import type { BrokerConfig } from "./config.ts";
import type { Controller } from "./controller.ts";
import type { LeaderFigures } from "./leader_figures.ts";
import type { ReplicationManager } from "./replication.ts";
import { resignStaleLeadership } from "./restart_handover.ts";

/** What {@linkcode Membership} registers and starts. */
export interface MembershipDeps {
  id: number;
  role: BrokerRole;
  rack: string | undefined;
  config: BrokerConfig;
  cluster: ClusterStore;
  topics: TopicStore;
  states: PartitionStateStore;
  tasks: BackgroundTasks;
  figures: LeaderFigures;
  replication: ReplicationManager;
  controller: Controller | null;
  /** Forgets the metadata cache's version and refreshes it. */
  refreshNow: () => Promise<void>;
  log: (line: string) => void;
}

/** Registration, heartbeats and the loops a registered broker runs. */
export class Membership {
  #registration: BrokerRegistration | null = null;

  constructor(private readonly deps: MembershipDeps) {}

  /** The current registration, or null before {@linkcode register}. */
  get registration(): BrokerRegistration | null {
    return this.#registration;
  }

  /**
   * Registers the broker with its URL; the first time, starts heartbeating and the loops of
   * a registered broker.
   *
   * @param url the advertised URL
   * @param kafka host:port of its Kafka listener, if any
   */
  async register(url: string, kafka?: string): Promise<void> {
    const d = this.deps;
    const first = this.#registration === null;
    this.#registration = await d.cluster.register({
      id: d.id,
      url,
      role: d.role,
      ...(d.rack === undefined ? {} : { rack: d.rack }),
      ...(kafka ? { kafka } : {}),
    });
    if (!first) return;
    // Counted from the start of the previous heartbeat, so a slow KV write does not stretch
    // the period; a heartbeat that lands late (event loop starved, KV queued) is logged: past
    // the session timeout, other brokers' controllers count this one dead.
    d.tasks.every(d.config.heartbeatIntervalMs, async () => {
      const previous = this.#registration;
      if (!previous) return;
      this.#registration = await d.cluster.heartbeat(
        previous,
        d.role === "broker" ? d.figures.report() : undefined,
      );
      const gap = Date.now() - previous.heartbeatMs;
      if (gap > d.config.sessionTimeoutMs / 2) {
        d.log(
          `heartbeat landed ${gap} ms after the previous one (session timeout ${d.config.sessionTimeoutMs} ms): the event loop or the KV is held up`,
        );
      }
    }, true);
    if (d.role === "broker") {
      const changed = await resignStaleLeadership(d.id, {
        cluster: d.cluster,
        topics: d.topics,
        states: d.states,
      });
      if (changed > 0) {
        d.log(`handed over or renewed the leadership of ${changed} partition(s) after a restart`);
      }
    }
    d.replication.enable();
    await d.refreshNow();
    const controller = d.controller;
    if (controller) {
      await controller.tick().catch((e) => d.log(`controller: ${e}`));
      d.tasks.every(d.config.controllerIntervalMs, () => controller.tick());
    }
    d.tasks.every(
      Math.max(50, Math.min(1000, Math.floor(d.config.replicaLagTimeMaxMs / 4))),
      () => Promise.resolve(d.replication.checkIsr()),
    );
  }

  /** Marks the registration stopped, if there is one (a failure is logged). */
  async deregister(): Promise<void> {
    if (!this.#registration) return;
    await this.deps.cluster.deregister(this.#registration).catch((e) =>
      this.deps.log(`could not mark the registration stopped: ${e}`)
    );
  }
}
