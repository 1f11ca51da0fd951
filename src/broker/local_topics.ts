/**
 * The topics as this broker knows them: the metadata cached from KV and the partition
 * replicas it hosts, kept in step with each metadata snapshot (open the logs of new
 * partitions, apply changed configs, delete the data of deleted topics). Produce and fetch
 * read only this cache, never KV.
 *
 * @module
 */
import type { TopicMetadata } from "../coordination/topics.ts";
import { parseCleanupPolicy } from "../coordination/topic_configs.ts";
import {
  type BrokerConfig,
  logConfigOf,
  maxMessageBytesOf,
  minInsyncReplicasOf,
} from "./config.ts";
import {
  listPartitionDirs,
  partitionDir,
  readPartitionTopicId,
  removeDir,
  writePartitionTopicId,
} from "./data_dir.ts";
import { type StoredCompression, storedCompressionOf } from "./batch_checks.ts";
import { TopicPartitioner } from "./partitioner.ts";
import { Replica } from "./replica.ts";

/** A topic as the hot path sees it. */
export interface TopicState {
  /** the metadata from KV */
  meta: TopicMetadata;
  /** the hosted replicas, indexed by partition (undefined where this broker holds none) */
  replicas: (Replica | undefined)[];
  /** picks partitions for JSON records without one */
  partitioner: TopicPartitioner;
  /** the largest record batch accepted */
  maxMessageBytes: number;
  /** `min.insync.replicas` */
  minInsyncReplicas: number;
  /** `message.timestamp.type=LogAppendTime` */
  logAppendTime: boolean;
  /** `cleanup.policy` includes `compact`: records need a key */
  compacted: boolean;
  /** `compression.type`: "producer" keeps batches as sent, else the codec to store with */
  compression: StoredCompression;
}

/** What {@linkcode LocalTopics} needs. */
export interface LocalTopicsOptions {
  /** this broker's id */
  brokerId: number;
  /** the data directory */
  dataDir: string;
  /** broker defaults */
  config: BrokerConfig;
  /** the clock (for tests) */
  now?: () => number;
  /** where to report what happened (one line each) */
  log?: (line: string) => void;
  /**
   * an observer's choice of topics to copy (every partition of them, whatever the
   * assignment); when absent, the broker hosts the partitions assigned to it
   */
  observe?: (topic: string) => boolean;
}

/**
 * The cached topics and hosted replicas of one broker.
 *
 * @example
 * ```ts
 * const local = new LocalTopics({ brokerId: 1, dataDir, config: DEFAULT_BROKER_CONFIG });
 * await local.apply((await topicStore.snapshot()).topics);
 * local.get("orders")?.replicas[0]?.highWatermark;
 * ```
 */
export class LocalTopics {
  readonly #topics = new Map<string, TopicState>();
  readonly #opts: LocalTopicsOptions;

  /** @param opts broker id, data directory and defaults */
  constructor(opts: LocalTopicsOptions) {
    this.#opts = opts;
  }

  /**
   * The cached state of a topic.
   *
   * @param name the topic
   * @returns its state, or undefined when unknown
   */
  get(name: string): TopicState | undefined {
    return this.#topics.get(name);
  }

  /** Every cached topic. */
  all(): IterableIterator<TopicState> {
    return this.#topics.values();
  }

  /** Every hosted replica. */
  *replicas(): IterableIterator<Replica> {
    for (const t of this.#topics.values()) {
      for (const r of t.replicas) if (r) yield r;
    }
  }

  /**
   * Brings the cache and the hosted replicas in line with a metadata snapshot. Callers
   * serialise calls.
   *
   * @param topics every topic in KV
   */
  async apply(topics: readonly TopicMetadata[]): Promise<void> {
    const seen = new Set<string>();
    for (const meta of topics) {
      seen.add(meta.name);
      try {
        await this.#applyTopic(meta);
      } catch (e) {
        // One topic that cannot be applied (e.g. a log that fails to open) must not keep
        // the others from being served; the next metadata change retries it.
        this.#opts.log?.(`could not apply the metadata of topic ${meta.name}: ${e}`);
      }
    }
    for (const [name, state] of [...this.#topics]) {
      if (!seen.has(name)) await this.#drop(state);
    }
  }

  async #applyTopic(meta: TopicMetadata): Promise<void> {
    let state = this.#topics.get(meta.name);
    if (state && state.meta.topicId !== meta.topicId) {
      // Deleted and re-created between two polls: the old data must go.
      await this.#drop(state);
      state = undefined;
    }
    const replicas = state ? state.replicas : [];
    const configChanged = !state || !sameConfigs(state.meta.configs, meta.configs);
    const logConfig = logConfigOf(meta.configs);
    for (const p of meta.partitions) {
      const hosted = this.#hosts(meta, p.partition);
      const existing = replicas[p.partition];
      if (hosted && !existing) {
        replicas[p.partition] = await this.#openReplica(meta, p.partition, p.leaderEpoch);
      } else if (!hosted && existing) {
        replicas[p.partition] = undefined;
        await existing.delete();
      } else if (existing) {
        // The leader epoch and role are set by the broker's replication manager.
        if (configChanged) existing.updateConfig(logConfig);
      }
    }
    const next: TopicState = {
      meta,
      replicas,
      partitioner: state?.partitioner ?? new TopicPartitioner(),
      maxMessageBytes: maxMessageBytesOf(meta.configs, this.#opts.config.maxMessageBytes),
      minInsyncReplicas: minInsyncReplicasOf(meta.configs),
      logAppendTime: meta.configs["message.timestamp.type"] === "LogAppendTime",
      compacted: parseCleanupPolicy(meta.configs["cleanup.policy"])?.compact ?? false,
      compression: storedCompressionOf(meta.configs["compression.type"]),
    };
    this.#topics.set(meta.name, next);
  }

  /**
   * Deletes partition directories of topics that no longer exist (deleted while the broker
   * was down), of partitions this broker no longer holds, and of earlier incarnations of a
   * re-created topic. Directories of hosted partitions are kept even if their log failed to
   * open. Call once after the first {@linkcode apply}.
   *
   * @param topics every topic in KV (the snapshot just applied)
   * @returns how many directories were removed
   */
  async removeStrays(topics: readonly TopicMetadata[]): Promise<number> {
    const byName = new Map(topics.map((t) => [t.name, t]));
    let removed = 0;
    for (const d of await listPartitionDirs(this.#opts.dataDir)) {
      const meta = byName.get(d.topic);
      const p = meta?.partitions[d.partition];
      if (meta && p && this.#hosts(meta, d.partition)) {
        const owner = await readPartitionTopicId(d.dir);
        if (owner === null || owner === meta.topicId) continue;
      }
      await removeDir(d.dir);
      this.#opts.log?.(
        `removed the log of ${d.topic}-${d.partition}: it belongs to no current topic`,
      );
      removed++;
    }
    return removed;
  }

  /**
   * Reopens, through recovery, every hosted log that failed on an I/O error (ENOSPC, say):
   * the failed replica is closed — without a clean-shutdown marker, so the open recovers and
   * cuts off a write that was cut short — and a new one takes its place, which the broker's
   * replication manager then gives its role again, as after a restart. A log that cannot be
   * reopened yet is left out (`undefined`): the next metadata apply opens it.
   *
   * @returns the partitions reopened (`topic-partition`)
   */
  async reopenFailed(): Promise<string[]> {
    const reopened: string[] = [];
    for (const state of this.#topics.values()) {
      for (const [p, r] of state.replicas.entries()) {
        if (!r || r.closing || r.log.failure === null) continue;
        const why = r.log.failure;
        await r.close().catch(() => {}); // its appends failed already
        state.replicas[p] = undefined;
        try {
          const meta = state.meta;
          state.replicas[p] = await this.#openReplica(meta, p, meta.partitions[p].leaderEpoch);
          reopened.push(r.name);
          this.#opts.log?.(`reopened ${r.name} through recovery after its log failed (${why})`);
        } catch (e) {
          this.#opts.log?.(`could not reopen ${r.name} yet: ${e}`);
        }
      }
    }
    return reopened;
  }

  /** Closes every hosted replica (each waits for its in-flight appends). */
  async closeAll(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const r of this.replicas()) closing.push(r.close());
    await Promise.all(closing);
  }

  #hosts(meta: TopicMetadata, partition: number): boolean {
    if (this.#opts.observe) return this.#opts.observe(meta.name);
    return meta.partitions[partition].replicas.includes(this.#opts.brokerId);
  }

  async #drop(state: TopicState): Promise<void> {
    this.#topics.delete(state.meta.name);
    for (const r of state.replicas) if (r) await r.delete();
    this.#opts.log?.(`deleted topic ${state.meta.name}`);
  }

  async #openReplica(meta: TopicMetadata, partition: number, leaderEpoch: number) {
    const dir = partitionDir(this.#opts.dataDir, meta.name, partition);
    const owner = await readPartitionTopicId(dir);
    if (owner !== null && owner !== meta.topicId) {
      await removeDir(dir);
      this.#opts.log?.(
        `removed the log of ${meta.name}-${partition}: it belonged to a deleted topic`,
      );
    }
    const replica = await Replica.open({
      topic: meta.name,
      topicId: meta.topicId,
      partition,
      dir,
      leaderEpoch,
      logConfig: logConfigOf(meta.configs),
      now: this.#opts.now,
      brokerId: this.#opts.brokerId,
      replicated: this.#opts.observe !== undefined || meta.replicationFactor > 1,
    });
    if (owner !== meta.topicId) await writePartitionTopicId(dir, meta.topicId);
    const rec = replica.log.recovery;
    if (!rec.clean) {
      this.#opts.log?.(
        `recovered ${replica.name}: scanned ${rec.scannedBytes} bytes, truncated ${rec.truncatedBytes}`,
      );
    }
    return replica;
  }
}

function sameConfigs(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}
