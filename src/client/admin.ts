/**
 * The admin client: topics, offsets and the cluster, over Rill's HTTP API (see
 * HTTP_API.md). Shaped like kafkajs's admin so Kafka users find their way.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { brokerOffset } from "./offsets.ts";
import { topicPath, type Transport } from "./transport.ts";

/**
 * A topic to create.
 *
 * @example
 * ```ts
 * const config: ITopicConfig = { topic: "orders", numPartitions: 3, configEntries: [{ name: "retention.ms", value: "60000" }] };
 * ```
 */
export interface ITopicConfig {
  /** the topic name: 1–249 characters of `[a-zA-Z0-9._-]` */
  topic: string;
  /** partitions (default 1) */
  numPartitions?: number;
  /** replicas per partition (default 1) */
  replicationFactor?: number;
  /** configs in Kafka's names, e.g. `[{ name: "retention.ms", value: "60000" }]` */
  configEntries?: { name: string; value: string }[];
}

/**
 * One partition of a topic description.
 *
 * @example
 * ```ts
 * const [p0]: PartitionMetadata[] = (await admin.describeTopic("orders")).partitions;
 * p0.highWatermark;
 * ```
 */
export interface PartitionMetadata {
  /** the partition number */
  partition: number;
  /** the leader broker's id */
  leader: number;
  /** the replica broker ids */
  replicas: number[];
  /** the in-sync replica ids */
  isr: number[];
  /** the first offset still stored */
  logStartOffset: number;
  /** the offset after the last committed record */
  highWatermark: number;
  /**
   * why the answering broker's log of the partition failed and takes no writes (an I/O error
   * such as a full disk; it reopens itself once space is back), null when it is fine
   */
  logFailure?: string | null;
}

/**
 * What GET /v1/topics/{topic} describes.
 *
 * @example
 * ```ts
 * const d: TopicDescription = await admin.describeTopic("orders");
 * d.configs["retention.ms"];
 * ```
 */
export interface TopicDescription {
  /** the topic name */
  name: string;
  /** replicas per partition */
  replicationFactor: number;
  /** the topic's configs */
  configs: Record<string, string>;
  /** its partitions */
  partitions: PartitionMetadata[];
}

/**
 * One entry of GET /v1/topics.
 *
 * @example
 * ```ts
 * const summaries: TopicSummary[] = await admin.listTopicSummaries();
 * ```
 */
export interface TopicSummary {
  /** the topic name */
  name: string;
  /** the number of partitions */
  partitions: number;
  /** replicas per partition */
  replicationFactor: number;
}

/**
 * What GET /v1/cluster describes.
 *
 * @example
 * ```ts
 * const { controllerId, brokers }: ClusterDescription = await admin.describeCluster();
 * ```
 */
export interface ClusterDescription {
  /** the cluster's id */
  clusterId: string;
  /** the broker currently acting as controller */
  controllerId: number;
  /** the brokers (`kafka`: host:port of the broker's Kafka listener, null when it has none) */
  brokers: { id: number; url: string; role: string; alive: boolean; kafka?: string | null }[];
}

/**
 * The offsets of one partition, as {@linkcode Admin.fetchTopicOffsets} returns them.
 *
 * @example
 * ```ts
 * const offsets: PartitionOffsets[] = await admin.fetchTopicOffsets("orders");
 * ```
 */
export interface PartitionOffsets {
  /** the partition */
  partition: number;
  /** the high watermark (kafkajs calls it `offset` and `high`) */
  offset: number;
  /** the high watermark */
  high: number;
  /** the log start offset */
  low: number;
}

/**
 * One group of GET /v1/groups.
 *
 * @example
 * ```ts
 * const groups: GroupSummary[] = await admin.listGroups();
 * ```
 */
export interface GroupSummary {
  /** the group id */
  groupId: string;
  /** e.g. "Empty", "Stable", "Reconciling" */
  state: string;
  /** how many members it has (or the members, from brokers that list them) */
  members: number | unknown[];
  /** the group's generation, when the broker says */
  generation?: number;
}

/**
 * A group's committed offset of one partition, with its lag.
 *
 * @example
 * ```ts
 * const offsets: GroupPartitionOffset[] = await admin.fetchGroupOffsets("billing");
 * ```
 */
export interface GroupPartitionOffset {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the committed offset: the next one the group reads */
  offset: number;
  /** the partition's log end offset (absent when the serving broker does not hold the
   * partition's log) */
  logEndOffset?: number;
  /** logEndOffset - offset (absent with logEndOffset) */
  lag?: number;
  /** how old logEndOffset is, ms (0: live from the leader; else the leader's last report) */
  logEndOffsetAgeMs?: number;
  /** the metadata committed with the offset */
  metadata?: string;
}

/**
 * What GET /v1/groups/{group} describes.
 *
 * @example
 * ```ts
 * const d: GroupDescription = await admin.describeGroup("billing");
 * console.log(d.state, d.totalLag);
 * ```
 */
export interface GroupDescription {
  /** the group id */
  groupId: string;
  /** the group's state */
  state: string;
  /** the generation */
  generation: number;
  /** the members and their partitions */
  members: { memberId: string; assignment?: { topic: string; partition: number }[] }[];
  /** the committed offsets */
  offsets: GroupPartitionOffset[];
  /** the sum of the lags, when the broker says */
  totalLag?: number;
}

/**
 * Where {@linkcode Admin.resetGroupOffsets} moves a group's offsets.
 *
 * @example
 * ```ts
 * const to: GroupResetTo = { timestamp: Date.now() - 3_600_000 };
 * await admin.resetGroupOffsets("billing", "orders", to);
 * ```
 */
export type GroupResetTo = "earliest" | "latest" | { offset: number } | { timestamp: number };

/**
 * Where to look up an offset: the log start, the end, or the first at/after a timestamp.
 *
 * @example
 * ```ts
 * const at: OffsetSpec = { timestamp: Date.now() - 60_000 };
 * await admin.fetchOffset("orders", 0, at);
 * ```
 */
export type OffsetSpec = "earliest" | "latest" | { timestamp: number };

/**
 * Administers topics and reads cluster state. Get one from `rill.admin()`.
 *
 * @example
 * ```ts
 * const admin = new Rill({ brokers: ["http://127.0.0.1:8092"] }).admin();
 * await admin.createTopics({ topics: [{ topic: "orders", numPartitions: 3 }] });
 * console.log(await admin.listTopics());
 * ```
 */
export class Admin {
  readonly #t: Transport;

  /**
   * @param transport the client's transport (use `rill.admin()` rather than this)
   */
  constructor(transport: Transport) {
    this.#t = transport;
  }

  /**
   * Does nothing: the admin talks plain HTTP and holds no connection. Kept for kafkajs's
   * shape.
   *
   * @returns a resolved promise
   * @example
   * ```ts
   * await admin.connect();
   * ```
   */
  connect(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Does nothing, like {@linkcode Admin.connect}.
   *
   * @returns a resolved promise
   * @example
   * ```ts
   * await admin.disconnect();
   * ```
   */
  disconnect(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Creates topics, as kafkajs's `createTopics`.
   *
   * @param options the topics to create
   * @returns true if every topic was created, false if one of them already existed
   * @throws {RillError} INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_CONFIG, …
   * @example
   * ```ts
   * await admin.createTopics({ topics: [{ topic: "orders", numPartitions: 3 }] });
   * ```
   */
  async createTopics(options: { topics: ITopicConfig[] }): Promise<boolean> {
    let all = true;
    for (const t of options.topics) {
      try {
        await this.createTopic(t);
      } catch (e) {
        if (e instanceof RillError && e.code === "TOPIC_ALREADY_EXISTS") all = false;
        else throw e;
      }
    }
    return all;
  }

  /**
   * Creates one topic and returns its description.
   *
   * @param config the topic
   * @returns the new topic's description
   * @throws {RillError} TOPIC_ALREADY_EXISTS if it exists, or a validation error
   * @example
   * ```ts
   * const d = await admin.createTopic({ topic: "orders", numPartitions: 3 });
   * d.partitions.length; // 3
   * ```
   */
  async createTopic(config: ITopicConfig): Promise<TopicDescription> {
    const configs: Record<string, string> = {};
    for (const { name, value } of config.configEntries ?? []) configs[name] = value;
    const body: Record<string, unknown> = { name: config.topic };
    if (config.numPartitions !== undefined) body.partitions = config.numPartitions;
    if (config.replicationFactor !== undefined) body.replicationFactor = config.replicationFactor;
    if (config.configEntries) body.configs = configs;
    return checkDescription(
      await this.#t.json<TopicDescription>("POST", "/v1/topics", { json: body }),
    );
  }

  /**
   * Lists the topic names.
   *
   * @returns the names, sorted
   * @example
   * ```ts
   * await admin.listTopics(); // ["orders", "payments"]
   * ```
   */
  async listTopics(): Promise<string[]> {
    return (await this.listTopicSummaries()).map((t) => t.name).sort();
  }

  /**
   * Lists the topics with their partition counts and replication factors.
   *
   * @returns one summary per topic
   * @example
   * ```ts
   * for (const t of await admin.listTopicSummaries()) console.log(t.name, t.partitions);
   * ```
   */
  async listTopicSummaries(): Promise<TopicSummary[]> {
    const body = await this.#t.json<{ topics: TopicSummary[] }>("GET", "/v1/topics");
    if (!body || !Array.isArray(body.topics)) throw malformed("GET /v1/topics");
    return body.topics;
  }

  /**
   * Describes one topic: configs, and per partition its leader, replicas and offsets.
   *
   * @param topic the topic name
   * @returns its description
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION if it does not exist
   * @example
   * ```ts
   * const { partitions } = await admin.describeTopic("orders");
   * ```
   */
  async describeTopic(topic: string): Promise<TopicDescription> {
    return checkDescription(await this.#t.json<TopicDescription>("GET", topicPath(topic)));
  }

  /**
   * Adds partitions and/or changes configs of a topic.
   *
   * @param topic the topic name
   * @param changes the new partition count (increase only) and configs to set
   * @returns the new description
   * @throws {RillError} INVALID_PARTITIONS when decreasing, INVALID_CONFIG, UNKNOWN_TOPIC_OR_PARTITION
   * @example
   * ```ts
   * await admin.alterTopic("orders", { partitions: 6, configs: { "retention.ms": "3600000" } });
   * ```
   */
  async alterTopic(
    topic: string,
    changes: { partitions?: number; configs?: Record<string, string> },
  ): Promise<TopicDescription> {
    return checkDescription(
      await this.#t.json<TopicDescription>("PATCH", topicPath(topic), { json: changes }),
    );
  }

  /**
   * Moves partitions to other brokers (`POST /v1/topics/{topic}/reassign`). The move
   * completes in the background: the new replicas catch up, join the ISR, then replace
   * the old ones (describe the topic to follow it: `targetReplicas` disappears when done).
   *
   * @param topic the topic name
   * @param partitions per partition, the broker ids it should live on (preferred leader first)
   * @returns the topic's description as the move starts
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (not a live broker, …)
   * @example
   * ```ts
   * await admin.reassignPartitions("orders", [{ partition: 0, replicas: [2, 3, 4] }]);
   * ```
   */
  async reassignPartitions(
    topic: string,
    partitions: { partition: number; replicas: number[] }[],
  ): Promise<TopicDescription> {
    return checkDescription(
      await this.#t.json<TopicDescription>("POST", `${topicPath(topic)}/reassign`, {
        json: { partitions },
      }),
    );
  }

  /**
   * Deletes a topic and its data.
   *
   * @param topic the topic name
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION if it does not exist
   * @example
   * ```ts
   * await admin.deleteTopic("orders");
   * ```
   */
  async deleteTopic(topic: string): Promise<void> {
    await this.#t.json<void>("DELETE", topicPath(topic));
  }

  /**
   * Deletes topics, as kafkajs's `deleteTopics`.
   *
   * @param options the topic names
   * @throws {RillError} the first failure
   * @example
   * ```ts
   * await admin.deleteTopics({ topics: ["a", "b"] });
   * ```
   */
  async deleteTopics(options: { topics: string[] }): Promise<void> {
    for (const t of options.topics) await this.deleteTopic(t);
  }

  /**
   * Looks up one offset of one partition.
   *
   * @param topic the topic
   * @param partition the partition
   * @param at "earliest", "latest" or `{ timestamp }` (the first offset whose timestamp is
   *   at or after it; the high watermark if there is none)
   * @returns the offset
   * @example
   * ```ts
   * const end = await admin.fetchOffset("orders", 0, "latest");
   * ```
   */
  async fetchOffset(topic: string, partition: number, at: OffsetSpec): Promise<number> {
    const spec = typeof at === "string" ? at : String(at.timestamp);
    const body = await this.#t.json<{ offset: unknown }>(
      "GET",
      `${topicPath(topic)}/partitions/${partition}/offsets`,
      { query: { at: spec } },
    );
    return brokerOffset(body?.offset, "offset");
  }

  /**
   * The low and high offsets of every partition of a topic, as kafkajs's
   * `fetchTopicOffsets`.
   *
   * @param topic the topic
   * @returns one entry per partition
   * @example
   * ```ts
   * for (const p of await admin.fetchTopicOffsets("orders")) console.log(p.partition, p.high);
   * ```
   */
  async fetchTopicOffsets(topic: string): Promise<PartitionOffsets[]> {
    const d = await this.describeTopic(topic);
    return d.partitions.map((p) => ({
      partition: p.partition,
      offset: p.highWatermark,
      high: p.highWatermark,
      low: p.logStartOffset,
    }));
  }

  /**
   * For every partition, the first offset whose timestamp is at or after `timestamp`, as
   * kafkajs's `fetchTopicOffsetsByTimestamp`.
   *
   * @param topic the topic
   * @param timestamp milliseconds since the epoch
   * @returns one entry per partition
   * @example
   * ```ts
   * await admin.fetchTopicOffsetsByTimestamp("orders", Date.now() - 60_000);
   * ```
   */
  async fetchTopicOffsetsByTimestamp(
    topic: string,
    timestamp: number,
  ): Promise<{ partition: number; offset: number }[]> {
    const d = await this.describeTopic(topic);
    return await Promise.all(d.partitions.map(async (p) => ({
      partition: p.partition,
      offset: await this.fetchOffset(topic, p.partition, { timestamp }),
    })));
  }

  /**
   * Describes the cluster: its id, controller and brokers.
   *
   * @returns the cluster description
   * @example
   * ```ts
   * const { brokers } = await admin.describeCluster();
   * ```
   */
  async describeCluster(): Promise<ClusterDescription> {
    const body = await this.#t.json<ClusterDescription>("GET", "/v1/cluster");
    if (!body || !Array.isArray(body.brokers)) throw malformed("GET /v1/cluster");
    return body;
  }

  /**
   * Lists the consumer groups.
   *
   * @returns one summary per group
   * @example
   * ```ts
   * for (const g of await admin.listGroups()) console.log(g.groupId, g.state);
   * ```
   */
  async listGroups(): Promise<GroupSummary[]> {
    const body = await this.#t.json<{ groups: GroupSummary[] }>("GET", "/v1/groups");
    if (!body || !Array.isArray(body.groups)) throw malformed("GET /v1/groups");
    return body.groups;
  }

  /**
   * Describes a consumer group: state, generation, members with their partitions, and
   * committed offsets with their lag.
   *
   * @param groupId the group
   * @returns its description
   * @throws {RillError} GROUP_ID_NOT_FOUND if the group does not exist
   * @example
   * ```ts
   * const { state, offsets } = await admin.describeGroup("billing");
   * ```
   */
  async describeGroup(groupId: string): Promise<GroupDescription> {
    const d = await this.#t.json<GroupDescription>("GET", groupPath(groupId));
    if (!d || typeof d.groupId !== "string") throw malformed("group description");
    d.members = Array.isArray(d.members) ? d.members : [];
    d.offsets = checkGroupOffsets(d.offsets ?? []);
    return d;
  }

  /**
   * The committed offsets of a group, with the partitions' end offsets and lag.
   *
   * @param groupId the group
   * @returns one entry per committed partition
   * @example
   * ```ts
   * const lag = (await admin.fetchGroupOffsets("billing")).reduce((n, o) => n + (o.lag ?? 0), 0);
   * ```
   */
  async fetchGroupOffsets(groupId: string): Promise<GroupPartitionOffset[]> {
    const body = await this.#t.json<{ offsets: GroupPartitionOffset[] }>(
      "GET",
      `${groupPath(groupId)}/offsets`,
    );
    if (!body || !Array.isArray(body.offsets)) throw malformed("group offsets");
    return checkGroupOffsets(body.offsets);
  }

  /**
   * Moves a group's committed offsets of a topic (only while the group has no members).
   *
   * @param groupId the group
   * @param topic the topic
   * @param to "earliest", "latest", `{ offset }` or `{ timestamp }`
   * @param partitions only these partitions (default: all of the topic)
   * @returns the new offsets
   * @throws {RillError} NON_EMPTY_GROUP while the group has members
   * @example
   * ```ts
   * await admin.resetGroupOffsets("billing", "orders", "earliest");
   * ```
   */
  async resetGroupOffsets(
    groupId: string,
    topic: string,
    to: GroupResetTo,
    partitions?: number[],
  ): Promise<GroupPartitionOffset[]> {
    const json: Record<string, unknown> = { topic, to };
    if (partitions !== undefined) json.partitions = partitions;
    const body = await this.#t.json<{ offsets: GroupPartitionOffset[] }>(
      "POST",
      `${groupPath(groupId)}/offsets/reset`,
      { json },
    );
    return checkGroupOffsets(body?.offsets ?? []);
  }

  /**
   * Deletes a consumer group and its committed offsets (only while it has no members).
   *
   * @param groupId the group
   * @throws {RillError} GROUP_ID_NOT_FOUND, or NON_EMPTY_GROUP while it has members
   * @example
   * ```ts
   * await admin.deleteGroup("billing");
   * ```
   */
  async deleteGroup(groupId: string): Promise<void> {
    await this.#t.json<void>("DELETE", groupPath(groupId));
  }
}

function groupPath(groupId: string): string {
  return `/v1/groups/${encodeURIComponent(groupId)}`;
}

function checkGroupOffsets(offsets: GroupPartitionOffset[]): GroupPartitionOffset[] {
  for (const o of offsets) {
    o.offset = brokerOffset(o.offset, "offset");
    // null: the serving broker does not hold that partition's log (another broker leads it)
    if (o.logEndOffset === null) o.logEndOffset = o.lag = undefined;
    if (o.logEndOffsetAgeMs === null) o.logEndOffsetAgeMs = undefined;
    if (o.logEndOffset !== undefined) o.logEndOffset = brokerOffset(o.logEndOffset, "logEndOffset");
  }
  return offsets;
}

function checkDescription(d: TopicDescription): TopicDescription {
  if (!d || typeof d.name !== "string" || !Array.isArray(d.partitions)) {
    throw malformed("topic description");
  }
  for (const p of d.partitions) {
    p.highWatermark = brokerOffset(p.highWatermark, "highWatermark");
    p.logStartOffset = brokerOffset(p.logStartOffset, "logStartOffset");
  }
  d.partitions.sort((a, b) => a.partition - b.partition);
  return d;
}

function malformed(what: string): RillError {
  return new RillError("UNKNOWN_SERVER_ERROR", `The broker's answer to ${what} is malformed`);
}
