/**
 * Topic metadata in Deno KV: create, list, describe, alter and delete, each one atomic
 * write checked on versionstamps, so that two brokers racing to create the same topic get
 * one success and one TOPIC_ALREADY_EXISTS, and concurrent alters never lose an update.
 *
 * Stored shape (see kv_keys.ts): one `StoredTopic` per topic and one `StoredPartition` per
 * partition, which carries the replication state (leader, replicas, ISR, leader epoch) so
 * that replication can change one partition with one small checked write. Every change
 * bumps the metadata version counter, which brokers poll to learn of changes.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { kvRetry } from "./kv_retry.ts";
import {
  allPartitionsPrefix,
  metadataVersionKey,
  partitionKey,
  partitionsPrefix,
  topicKey,
  topicsPrefix,
} from "./kv_keys.ts";
import { placeReplicas } from "./placement.ts";
import { mergeTopicConfigs, type TopicConfigs } from "./topic_configs.ts";

/**
 * The most partitions a topic may have: a topic is created (or deleted) with all its
 * partition keys in one atomic KV operation, which allows 1000 mutations.
 */
export const MAX_PARTITIONS = 998;

/** The replication state of one partition. */
export interface PartitionState {
  /** the partition index */
  partition: number;
  /** the broker id of the leader, or -1 when none */
  leader: number;
  /** broker ids holding a replica, preferred leader first */
  replicas: number[];
  /** broker ids of the in-sync replicas */
  isr: number[];
  /** bumped by every leader change; fences stale leaders */
  leaderEpoch: number;
  /**
   * during a reassignment: the replicas the partition moves to (`replicas` holds old and
   * new until every target replica is in the ISR; the controller then completes the move)
   */
  targetReplicas?: number[];
  /**
   * during a reassignment: the replicas the partition had before it started (what a
   * cancelled move rolls back to)
   */
  previousReplicas?: number[];
}

/** A topic's metadata. */
export interface TopicMetadata {
  /** the topic name */
  name: string;
  /** a uuid, new for every creation of the name (tells a re-created topic apart) */
  topicId: string;
  /** replicas per partition */
  replicationFactor: number;
  /** explicit configs (Kafka names, string values) */
  configs: TopicConfigs;
  /** per-partition state, indexed by partition */
  partitions: PartitionState[];
  /** creation time, ms since the epoch */
  createdMs: number;
}

interface StoredTopic {
  name: string;
  topicId: string;
  replicationFactor: number;
  partitionCount: number;
  configs: TopicConfigs;
  createdMs: number;
}

/** A partition's state as stored in KV: the state plus the id of the topic it belongs to. */
export interface StoredPartition extends PartitionState {
  /** the id of the topic incarnation */
  topicId: string;
}

/** What {@linkcode TopicStore.create} needs. */
export interface CreateTopicRequest {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs: TopicConfigs;
  /** brokers that may hold replicas */
  brokerIds: readonly number[];
  /** the racks of the brokers that declared one (replicas spread over racks) */
  racks?: ReadonlyMap<number, string>;
}

/** What {@linkcode TopicStore.alter} changes. */
export interface AlterTopicRequest {
  /** a new, larger partition count */
  partitions?: number;
  /** validated config changes: a string sets, null removes */
  configs?: Record<string, string | null>;
  /** brokers that may hold replicas of new partitions */
  brokerIds: readonly number[];
  /** the racks of the brokers that declared one */
  racks?: ReadonlyMap<number, string>;
}

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/**
 * Checks a topic name against Kafka's rule: 1–249 characters of `[a-zA-Z0-9._-]`, not
 * `.` or `..`.
 *
 * @param name the name to check
 * @returns the name
 * @throws {RillError} INVALID_TOPIC_EXCEPTION saying why
 * @example
 * ```ts
 * validateTopicName("orders.v1"); // "orders.v1"
 * ```
 */
export function validateTopicName(name: unknown): string {
  if (typeof name !== "string" || name === "") {
    throw new RillError("INVALID_TOPIC_EXCEPTION", `Topic name must be a non-empty string`);
  }
  if (name === "." || name === "..") {
    throw new RillError("INVALID_TOPIC_EXCEPTION", `Topic name cannot be "." or ".."`);
  }
  if (!TOPIC_NAME.test(name)) {
    throw new RillError(
      "INVALID_TOPIC_EXCEPTION",
      name.length > 249
        ? `Topic name is ${name.length} characters long; the limit is 249`
        : `Topic name "${name}" may contain only ASCII letters, digits, ".", "_" and "-"`,
    );
  }
  return name;
}

function unknownTopic(name: string): RillError {
  return new RillError("UNKNOWN_TOPIC_OR_PARTITION", `Topic "${name}" does not exist`);
}

/** How many times a read-check-write is re-run when a concurrent writer changed the entry. */
const CONFLICT_ATTEMPTS = 20;

/**
 * Topic metadata stored in Deno KV. Stateless: every call reads KV, so several brokers
 * (and processes) may use their own store on the same KV.
 *
 * @example
 * ```ts
 * const topics = new TopicStore(await Deno.openKv(":memory:"));
 * await topics.create({ name: "orders", partitions: 3, replicationFactor: 1, configs: {}, brokerIds: [1] });
 * ```
 */
export class TopicStore {
  /** @param kv the shared KV */
  constructor(readonly kv: Deno.Kv) {}

  /**
   * Creates a topic with its partitions placed on `brokerIds`.
   *
   * @param req name, counts, validated configs and eligible brokers
   * @returns the new topic's metadata
   * @throws {RillError} TOPIC_ALREADY_EXISTS when the name is taken (also when another
   *   broker wins a race), INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR
   */
  async create(req: CreateTopicRequest): Promise<TopicMetadata> {
    validateTopicName(req.name);
    checkPartitionCount(req.partitions);
    if (!Number.isInteger(req.replicationFactor) || req.replicationFactor < 1) {
      throw new RillError(
        "INVALID_REPLICATION_FACTOR",
        `Replication factor must be an integer of at least 1`,
      );
    }
    const start = hashName(req.name);
    const placement = placeReplicas(
      0,
      req.partitions,
      req.replicationFactor,
      req.brokerIds,
      start,
      req.racks,
    );
    const topic: StoredTopic = {
      name: req.name,
      topicId: crypto.randomUUID(),
      replicationFactor: req.replicationFactor,
      partitionCount: req.partitions,
      configs: { ...req.configs },
      createdMs: Date.now(),
    };
    const partitions: StoredPartition[] = placement.map((a) => ({
      topicId: topic.topicId,
      partition: a.partition,
      leader: a.replicas[0],
      replicas: a.replicas,
      isr: [...a.replicas],
      leaderEpoch: 0,
    }));
    const result = await kvRetry(() => {
      const op = this.kv.atomic().check({ key: topicKey(req.name), versionstamp: null });
      op.set(topicKey(req.name), topic);
      for (const p of partitions) op.set(partitionKey(req.name, p.partition), p);
      op.sum(metadataVersionKey(), 1n);
      return op.commit();
    });
    if (!result.ok) {
      throw new RillError("TOPIC_ALREADY_EXISTS", `Topic "${req.name}" already exists`);
    }
    return toMetadata(topic, partitions);
  }

  /**
   * Reads one topic.
   *
   * @param name the topic name
   * @returns its metadata, or null when it does not exist
   */
  async get(name: string): Promise<TopicMetadata | null> {
    const entry = await this.kv.get<StoredTopic>(topicKey(name));
    if (entry.value === null) return null;
    const partitions = await this.readPartitions(entry.value);
    return toMetadata(entry.value, partitions);
  }

  /**
   * Lists every topic, as one consistent snapshot (re-read while the version moves).
   *
   * @returns the topics with their partitions, sorted by name, and the metadata version
   *   the snapshot belongs to
   */
  async snapshot(): Promise<{ version: bigint; topics: TopicMetadata[] }> {
    for (let attempt = 0;; attempt++) {
      const before = await this.version();
      const topics: StoredTopic[] = [];
      for await (const e of this.kv.list<StoredTopic>({ prefix: topicsPrefix() })) {
        topics.push(e.value);
      }
      const byTopic = new Map<string, StoredPartition[]>();
      for await (const e of this.kv.list<StoredPartition>({ prefix: allPartitionsPrefix() })) {
        const name = e.key[2] as string;
        let list = byTopic.get(name);
        if (!list) byTopic.set(name, list = []);
        list.push(e.value);
      }
      const after = await this.version();
      if (before !== after && attempt < CONFLICT_ATTEMPTS) continue;
      const out = topics.map((t) =>
        toMetadata(t, (byTopic.get(t.name) ?? []).filter((p) => p.topicId === t.topicId))
      );
      out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      return { version: after, topics: out };
    }
  }

  /**
   * Lists every topic.
   *
   * @returns the topics, sorted by name
   */
  async list(): Promise<TopicMetadata[]> {
    return (await this.snapshot()).topics;
  }

  /**
   * Adds partitions and/or changes configs, checked against concurrent changes.
   *
   * @param name the topic
   * @param req the changes (already validated configs)
   * @returns the new metadata
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS when the count does
   *   not grow
   */
  async alter(name: string, req: AlterTopicRequest): Promise<TopicMetadata> {
    for (let attempt = 1;; attempt++) {
      const entry = await this.kv.get<StoredTopic>(topicKey(name));
      const topic = entry.value;
      if (topic === null) throw unknownTopic(name);
      const added: StoredPartition[] = [];
      const next: StoredTopic = { ...topic, configs: { ...topic.configs } };
      if (req.partitions !== undefined && req.partitions !== topic.partitionCount) {
        checkPartitionCount(req.partitions);
        if (req.partitions < topic.partitionCount) {
          throw new RillError(
            "INVALID_PARTITIONS",
            `Topic "${name}" has ${topic.partitionCount} partitions; the count can only grow`,
            { partitions: topic.partitionCount },
          );
        }
        const placement = placeReplicas(
          topic.partitionCount,
          req.partitions - topic.partitionCount,
          topic.replicationFactor,
          req.brokerIds,
          hashName(name),
          req.racks,
        );
        for (const a of placement) {
          added.push({
            topicId: topic.topicId,
            partition: a.partition,
            leader: a.replicas[0],
            replicas: a.replicas,
            isr: [...a.replicas],
            leaderEpoch: 0,
          });
        }
        next.partitionCount = req.partitions;
      } else if (req.partitions !== undefined) {
        checkPartitionCount(req.partitions);
      }
      if (req.configs) next.configs = mergeTopicConfigs(topic.configs, req.configs);
      const result = await kvRetry(() => {
        const op = this.kv.atomic().check(entry);
        op.set(topicKey(name), next);
        for (const p of added) op.set(partitionKey(name, p.partition), p);
        op.sum(metadataVersionKey(), 1n);
        return op.commit();
      });
      if (result.ok) return toMetadata(next, [...await this.readPartitions(topic), ...added]);
      if (attempt >= CONFLICT_ATTEMPTS) {
        throw new RillError(
          "REQUEST_TIMED_OUT",
          `Topic "${name}" kept changing under concurrent updates; try again`,
        );
      }
    }
  }

  /**
   * Deletes a topic and its partition states in one atomic write.
   *
   * @param name the topic
   * @returns the metadata it had
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION
   */
  async delete(name: string): Promise<TopicMetadata> {
    for (let attempt = 1;; attempt++) {
      const entry = await this.kv.get<StoredTopic>(topicKey(name));
      const topic = entry.value;
      if (topic === null) throw unknownTopic(name);
      const keys: Deno.KvKey[] = [];
      for await (const e of this.kv.list({ prefix: partitionsPrefix(name) })) keys.push(e.key);
      const partitions = await this.readPartitions(topic);
      const result = await kvRetry(() => {
        const op = this.kv.atomic().check(entry).delete(topicKey(name));
        for (const k of keys) op.delete(k);
        op.sum(metadataVersionKey(), 1n);
        return op.commit();
      });
      if (result.ok) return toMetadata(topic, partitions);
      if (attempt >= CONFLICT_ATTEMPTS) {
        throw new RillError(
          "REQUEST_TIMED_OUT",
          `Topic "${name}" kept changing under concurrent updates; try again`,
        );
      }
    }
  }

  /**
   * Reads the metadata version counter (0 before any topic change).
   *
   * @returns the version
   */
  async version(): Promise<bigint> {
    const e = await this.kv.get<Deno.KvU64>(metadataVersionKey());
    return e.value?.value ?? 0n;
  }

  private async readPartitions(topic: StoredTopic): Promise<StoredPartition[]> {
    const out: StoredPartition[] = [];
    for await (const e of this.kv.list<StoredPartition>({ prefix: partitionsPrefix(topic.name) })) {
      if (e.value.topicId === topic.topicId) out.push(e.value);
    }
    return out;
  }
}

function checkPartitionCount(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PARTITIONS) {
    throw new RillError(
      "INVALID_PARTITIONS",
      `Partition count must be an integer from 1 to ${MAX_PARTITIONS}, got ${n}`,
    );
  }
}

function toMetadata(topic: StoredTopic, partitions: StoredPartition[]): TopicMetadata {
  const states: PartitionState[] = new Array(topic.partitionCount);
  for (const p of partitions) {
    if (p.partition < topic.partitionCount) {
      states[p.partition] = {
        partition: p.partition,
        leader: p.leader,
        replicas: p.replicas,
        isr: p.isr,
        leaderEpoch: p.leaderEpoch,
      };
      if (p.targetReplicas) states[p.partition].targetReplicas = p.targetReplicas;
      if (p.previousReplicas) states[p.partition].previousReplicas = p.previousReplicas;
    }
  }
  for (let i = 0; i < states.length; i++) {
    // A partition whose state is missing (never expected) has no leader rather than a hole.
    states[i] ??= { partition: i, leader: -1, replicas: [], isr: [], leaderEpoch: 0 };
  }
  return {
    name: topic.name,
    topicId: topic.topicId,
    replicationFactor: topic.replicationFactor,
    configs: topic.configs,
    partitions: states,
    createdMs: topic.createdMs,
  };
}

/** A small stable hash of a name, so different topics start their leaders on different brokers. */
function hashName(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return h;
}
