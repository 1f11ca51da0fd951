/**
 * The broker's topic administration: create, list, describe, alter, reassign and delete
 * topics (metadata in KV, then the local cache refreshed), and the registered brokers.
 *
 * @module
 */
import type { BrokerRole, BrokerStatus, ClusterStore } from "../coordination/cluster.ts";
import { type TopicConfigs, validateTopicConfigs } from "../coordination/topic_configs.ts";
import type { TopicMetadata, TopicStore } from "../coordination/topics.ts";
import type { PartitionStateStore } from "../coordination/partition_states.ts";
import { startReassignment } from "./election.ts";
import { RillError } from "../protocol/errors.ts";
import { unknownPartition } from "./produce.ts";
import type { LocalTopics } from "./local_topics.ts";
import type { PartitionLookup } from "./partition_lookup.ts";

/** A topic's description: metadata plus the offsets of the replicas hosted here. */
export interface TopicDescription {
  /** the metadata */
  meta: TopicMetadata;
  /** per partition: its offsets when hosted here, else null */
  offsets: (
    {
      logStartOffset: number;
      highWatermark: number;
      logEndOffset: number;
      /** why the log failed and takes no writes (I/O error; paths left out), else null */
      logFailure: string | null;
    } | null
  )[];
}

/** What {@linkcode TopicAdmin} needs from its broker. */
export interface TopicAdminContext {
  /** this broker's id */
  brokerId: number;
  /** this broker's role */
  role: BrokerRole;
  /** topic metadata in KV */
  topics: TopicStore;
  /** membership in KV */
  cluster: ClusterStore;
  /** partition states in KV */
  states: PartitionStateStore;
  /** the topics and replicas hosted here */
  local: LocalTopics;
  /** finds topics and replicas */
  lookup: PartitionLookup;
  /** refreshes the metadata cache (`force`: even if the KV version looks unchanged) */
  refresh: (force?: boolean) => Promise<void>;
  /** the brokers being decommissioned (they get no replicas of new partitions) */
  decommissioned?: () => Promise<Set<number>>;
}

/** Topic administration through one broker. */
export class TopicAdmin {
  readonly #c: TopicAdminContext;

  constructor(context: TopicAdminContext) {
    this.#c = context;
  }

  /**
   * Creates a topic, placing its partitions on the live brokers.
   *
   * @param req name, partitions (default 1), replication factor (default 1), configs
   * @returns the topic's metadata
   * @throws {RillError} TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
   *   INVALID_REPLICATION_FACTOR, INVALID_CONFIG
   */
  async createTopic(
    req: { name: string; partitions?: number; replicationFactor?: number; configs?: TopicConfigs },
  ): Promise<TopicMetadata> {
    const configs = validateTopicConfigs(req.configs) as TopicConfigs;
    const replicationFactor = req.replicationFactor ?? 1;
    const meta = await this.#c.topics.create({
      name: req.name,
      partitions: req.partitions ?? 1,
      replicationFactor,
      configs,
      ...await this.#eligibleBrokers(),
    });
    await this.#c.refresh();
    return meta;
  }

  /**
   * Lists the topics (refreshing the cache first if the metadata changed).
   *
   * @returns every topic, sorted by name
   */
  async listTopics(): Promise<TopicMetadata[]> {
    await this.#c.refresh();
    return [...this.#c.local.all()].map((t) => t.meta).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
  }

  /**
   * Describes a topic with the offsets of its partitions hosted here.
   *
   * @param name the topic
   * @returns metadata and offsets
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION
   */
  async describeTopic(name: string): Promise<TopicDescription> {
    await this.#c.refresh();
    const state = await this.#c.lookup.topic(name);
    return {
      meta: state.meta,
      offsets: state.meta.partitions.map((p) => {
        const r = state.replicas[p.partition];
        return r
          ? {
            logStartOffset: r.logStartOffset,
            highWatermark: r.highWatermark,
            logEndOffset: r.logEndOffset,
            logFailure: r.log.failure?.replace(/\/[^\s'"]*/g, "…") ?? null,
          }
          : null;
      }),
    };
  }

  /**
   * Adds partitions to a topic and/or changes its configs (null removes one).
   *
   * @param name the topic
   * @param req the changes
   * @returns the new metadata
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS, INVALID_CONFIG
   */
  async alterTopic(
    name: string,
    req: { partitions?: number; configs?: Record<string, string | null> },
  ): Promise<TopicMetadata> {
    const configs = req.configs === undefined ? undefined : validateTopicConfigs(req.configs, true);
    const meta = await this.#c.topics.alter(name, {
      partitions: req.partitions,
      configs,
      ...await this.#eligibleBrokers(),
    });
    await this.#c.refresh();
    return meta;
  }

  /**
   * Starts moving partitions to other brokers (Kafka's partition reassignment): the new
   * replicas copy the partition from its leader, and once all of them are in the ISR the
   * controller makes them the replicas (moving leadership if needed) and the replicas left
   * behind are deleted.
   *
   * @param name the topic
   * @param moves per partition, the brokers it should live on (preferred leader first)
   * @returns the metadata once the move has started
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (a broker that is not a
   *   live broker, a repeated id, a wrong count)
   */
  async reassignPartitions(
    name: string,
    moves: readonly { partition: number; replicas: number[] }[],
  ): Promise<TopicMetadata> {
    await this.#c.refresh();
    const state = await this.#c.lookup.topic(name);
    const live = new Set(
      (await this.#c.cluster.brokers()).filter((b) => b.alive && b.role === "broker").map((b) =>
        b.id
      ),
    );
    const rf = state.meta.replicationFactor;
    const seen = new Set<number>();
    for (const m of moves) {
      const count = state.meta.partitions.length;
      if (m.partition >= count) throw unknownPartition(name, m.partition, count);
      if (seen.has(m.partition)) {
        throw new RillError("INVALID_REQUEST", `Partition ${m.partition} is listed twice`);
      }
      seen.add(m.partition);
      if (m.replicas.length !== rf || new Set(m.replicas).size !== rf) {
        throw new RillError(
          "INVALID_REQUEST",
          `Partition ${m.partition} needs ${rf} distinct broker ids (the replication factor), got [${m.replicas}]`,
        );
      }
      const dead = m.replicas.find((id) => !live.has(id));
      if (dead !== undefined) {
        throw new RillError(
          "INVALID_REQUEST",
          `Broker ${dead} is not a live broker that may hold replicas`,
        );
      }
    }
    for (const m of moves) {
      await this.#c.states.update(
        name,
        m.partition,
        (cur) => startReassignment(cur, m.replicas),
      );
    }
    await this.#c.refresh(true);
    return (await this.#c.lookup.topic(name)).meta;
  }

  /**
   * Deletes a topic; its data here is removed at once, on other brokers at their next poll.
   *
   * @param name the topic
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION
   */
  async deleteTopic(name: string): Promise<void> {
    await this.#c.topics.delete(name);
    await this.#c.refresh();
  }

  /**
   * The registered brokers with their liveness.
   *
   * @returns brokers sorted by id
   */
  brokers(): Promise<BrokerStatus[]> {
    return this.#c.cluster.brokers();
  }

  async #eligibleBrokers(): Promise<{ brokerIds: number[]; racks: Map<number, string> }> {
    const out = this.#c.decommissioned ? await this.#c.decommissioned() : new Set<number>();
    const eligible = (await this.#c.cluster.brokers())
      .filter((b) => b.alive && b.role === "broker" && !out.has(b.id));
    const ids = eligible.map((b) => b.id);
    if (
      this.#c.role === "broker" && !ids.includes(this.#c.brokerId) && !out.has(this.#c.brokerId)
    ) ids.push(this.#c.brokerId);
    const racks = new Map<number, string>();
    for (const b of eligible) if (b.rack !== undefined) racks.set(b.id, b.rack);
    return { brokerIds: ids, racks };
  }
}
