/**
 * Finding the hosted replica a request is for: the topic from the metadata cache (refreshed
 * once on a miss), the partition's replica here, and the NOT_LEADER_OR_FOLLOWER /
 * LEADER_NOT_AVAILABLE errors (with the leader's id and URL) when this broker is not the
 * one to ask. Shared by the produce path, the fetch path and the topic admin of the broker.
 *
 * @module
 */
import type { ClusterStore } from "../coordination/cluster.ts";
import { RillError } from "../protocol/errors.ts";
import type { LocalTopics, TopicState } from "./local_topics.ts";
import { unknownPartition } from "./produce.ts";
import type { Replica } from "./replica.ts";

/** What {@linkcode PartitionLookup} needs. */
export interface PartitionLookupOptions {
  /** this broker's id */
  brokerId: number;
  /** the topics and replicas hosted here */
  local: LocalTopics;
  /** membership (for the leader's URL) */
  cluster: ClusterStore;
  /** refreshes the metadata cache */
  refresh: () => Promise<void>;
}

/** Resolves topics and partitions to hosted replicas, or to the error that says who to ask. */
export class PartitionLookup {
  readonly #opts: PartitionLookupOptions;

  constructor(opts: PartitionLookupOptions) {
    this.#opts = opts;
  }

  /**
   * A topic's cached state, without refreshing the cache.
   *
   * @param name the topic
   * @returns its state, or undefined when the cache does not know it
   */
  cached(name: string): TopicState | undefined {
    return this.#opts.local.get(name);
  }

  /**
   * A topic's cached state, refreshing the cache once when it is unknown.
   *
   * @param name the topic
   * @returns its state
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION
   */
  async topic(name: string): Promise<TopicState> {
    let state = this.#opts.local.get(name);
    if (state) return state;
    await this.#opts.refresh();
    state = this.#opts.local.get(name);
    if (!state) {
      throw new RillError("UNKNOWN_TOPIC_OR_PARTITION", `Topic "${name}" does not exist`);
    }
    return state;
  }

  /**
   * The hosted replica of a partition, whatever its role.
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the replica
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER
   */
  async replica(topic: string, partition: number): Promise<Replica> {
    const state = await this.topic(topic);
    const count = state.meta.partitions.length;
    if (partition >= count) throw unknownPartition(topic, partition, count);
    const replica = state.replicas[partition];
    if (!replica) throw await this.notLeader(state, partition);
    return replica;
  }

  /**
   * The error for a request sent to a broker that does not lead the partition.
   *
   * @param state the topic
   * @param partition the partition
   * @returns LEADER_NOT_AVAILABLE (no leader) or NOT_LEADER_OR_FOLLOWER with the leader's id
   *   and URL
   */
  async notLeader(state: TopicState, partition: number): Promise<RillError> {
    const leaderId = state.meta.partitions[partition].leader;
    const leader = (await this.#opts.cluster.brokers()).find((b) => b.id === leaderId);
    if (leaderId < 0) {
      return new RillError(
        "LEADER_NOT_AVAILABLE",
        `Partition ${state.meta.name}-${partition} has no leader: no in-sync replica is alive`,
        { leaderId, leaderUrl: null },
      );
    }
    return new RillError(
      "NOT_LEADER_OR_FOLLOWER",
      `Broker ${this.#opts.brokerId} does not lead partition ${state.meta.name}-${partition}; its leader is broker ${leaderId}${
        leader ? ` at ${leader.url}` : ""
      }`,
      { leaderId, leaderUrl: leader?.alive ? leader.url : null },
    );
  }
}
