/**
 * Broker defaults in one place, and the mapping from a topic's Kafka-named configs to the
 * storage layer's {@linkcode LogConfig}.
 *
 * @module
 */
import { DEFAULT_LOG_CONFIG, type FlushPolicy, type LogConfig } from "../storage/mod.ts";
import { parseCleanupPolicy, type TopicConfigs } from "../coordination/topic_configs.ts";
import type { BrokerRole } from "../coordination/cluster.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { LogFields, Logger } from "../observability/log.ts";

/** What `Broker.open` needs. */
export interface BrokerOptions {
  /** the broker id (unique in the cluster) */
  id: number;
  /** the data directory: partition logs, meta.properties, and the default KV file */
  dataDir: string;
  /** a KV path or URL (default `<data>/meta.kv`), or an open KV the caller keeps owning */
  kv?: string | Deno.Kv;
  /** the URL clients reach this broker at; when absent, call {@linkcode Broker.register} later */
  advertisedUrl?: string;
  /** "broker" (default) or "follower" (never leads, holds no replica of new topics) */
  role?: BrokerRole;
  /** overrides of the broker defaults */
  config?: Partial<BrokerConfig>;
  /** the clock (for tests) */
  now?: () => number;
  /** where one-line reports go (default: stderr) */
  log?: (line: string, fields?: LogFields) => void;
  /** the structured logger (default: text lines on stderr, info level) */
  logger?: Logger;
  /** the metrics registry (default: a new one without process metrics) */
  metrics?: Metrics;
  /** a follower (observer): the topics to copy (default: all) */
  observeTopics?: readonly string[];
  /** the rack (zone) this broker is in: replicas of a partition spread over racks */
  rack?: string;
}

/** Settings of one broker process (not per topic). */
export interface BrokerConfig {
  /** largest request body accepted (Kafka's socket.request.max.bytes); 8 MiB */
  maxRequestBytes: number;
  /** the most records one JSON or NDJSON produce request may hold (then 413); 100,000 */
  maxRequestRecords: number;
  /**
   * produce is refused (KAFKA_STORAGE_ERROR) while the disk of the data directory or the KV
   * file has less free space than this; 0 turns it off; 64 MiB (broker/disk_space.ts)
   */
  minFreeBytes: number;
  /** size of the reserve file kept next to a local KV file for KV writes on a full disk; 8 MiB */
  kvReserveBytes: number;
  /** how long a request body may take to arrive once a route reads it (then 408); 30 s */
  requestBodyTimeoutMs: number;
  /** default of the topic config `max.message.bytes`: largest record batch; 1048588 as Kafka */
  maxMessageBytes: number;
  /** how often the metadata version key is polled; 1 s */
  metadataPollMs: number;
  /** how often the broker's registration heartbeat is written; 2 s */
  heartbeatIntervalMs: number;
  /** a broker whose heartbeat is older than this counts as dead; 6 s (Kafka's broker.session.timeout.ms) */
  sessionTimeoutMs: number;
  /** how often retention is applied to every log (Kafka's log.retention.check.interval.ms); 60 s */
  retentionCheckIntervalMs: number;
  /** the pause between two log cleaner passes over the compacted logs (Kafka's log.cleaner.backoff.ms); 15 s */
  logCleanerBackoffMs: number;
  /** the most dirty bytes one log compacts in one cleaner pass (bounds the work per pass); 64 MiB */
  logCleanerMaxDirtyBytes: number;
  /** fetch `maxBytes` when the request names none; 1 MiB */
  fetchDefaultMaxBytes: number;
  /** the largest `maxBytes` a fetch may ask for (larger values are clamped); 64 MiB */
  fetchMaxBytesLimit: number;
  /** the longest `maxWaitMs` a fetch may ask for; 5 min */
  fetchMaxWaitLimitMs: number;
  /** the most fetch sessions kept (Kafka's max.incremental.fetch.session.cache.slots); 1000 */
  fetchSessionCacheSlots: number;
  /** the interval of keep-alive comments on an idle server-sent-event stream; 15 s */
  sseKeepAliveMs: number;
  /** a follower not caught up for this long leaves the ISR (Kafka's replica.lag.time.max.ms); 10 s */
  replicaLagTimeMaxMs: number;
  /** how long a follower's fetch waits at the leader for data (long poll); 500 ms */
  replicaFetchMaxWaitMs: number;
  /** the most bytes a follower's fetch asks for; 8 MiB */
  replicaFetchMaxBytes: number;
  /** followers fetch all the partitions of a leader with one request (`POST /v1/fetch`);
   * true (false: one long poll per partition, as before) */
  replicaFetchSessions: boolean;
  /** how often the controller checks leaders (and renews its lease); 500 ms */
  controllerIntervalMs: number;
  /** how long an `acks=all` produce waits for the ISR (Kafka's request.timeout.ms); 30 s */
  ackTimeoutMs: number;
  /** move leadership back to preferred leaders (Kafka's auto.leader.rebalance.enable); true */
  autoLeaderRebalanceEnable: boolean;
  /** a broker whose share of non-preferred leaders is above this % gets them back (leader.imbalance.per.broker.percentage); 10 */
  leaderImbalancePerBrokerPercentage: number;
  /** how often the controller checks the leader balance (leader.imbalance.check.interval.seconds); 300 s */
  leaderImbalanceCheckIntervalMs: number;
  /** a broker dead this long has its replicas rebuilt on live brokers; 10 min */
  replicaReplacementDelayMs: number;
  /** the byte rate at which replicas moving here are copied (0: unthrottled) */
  replicationThrottleBytes: number;
  /** the most partition moves the controller runs at once; 5 */
  maxConcurrentMoves: number;
  /**
   * the most of those moves any one live broker takes part in at once (as the leader that
   * sends the copy, a broker a replica moves onto or off); 1
   */
  maxConcurrentMovesPerBroker: number;
  /** continuous balancing: plan and run a rebalance this often when nothing moves (0: off); 0 */
  autoRebalanceIntervalMs: number;
}

/** The defaults of {@linkcode BrokerConfig}. */
export const DEFAULT_BROKER_CONFIG: Readonly<BrokerConfig> = Object.freeze({
  maxRequestBytes: 8 * 1024 * 1024,
  maxRequestRecords: 100_000,
  minFreeBytes: 64 * 1024 * 1024,
  kvReserveBytes: 8 * 1024 * 1024,
  requestBodyTimeoutMs: 30_000,
  maxMessageBytes: 1048588,
  metadataPollMs: 1000,
  heartbeatIntervalMs: 2000,
  sessionTimeoutMs: 6000,
  retentionCheckIntervalMs: 60_000,
  logCleanerBackoffMs: 15_000,
  logCleanerMaxDirtyBytes: 64 * 1024 * 1024,
  fetchDefaultMaxBytes: 1024 * 1024,
  fetchMaxBytesLimit: 64 * 1024 * 1024,
  fetchMaxWaitLimitMs: 300_000,
  fetchSessionCacheSlots: 1000,
  sseKeepAliveMs: 15_000,
  replicaLagTimeMaxMs: 10_000,
  replicaFetchMaxWaitMs: 500,
  replicaFetchMaxBytes: 8 * 1024 * 1024,
  replicaFetchSessions: true,
  controllerIntervalMs: 500,
  ackTimeoutMs: 30_000,
  autoLeaderRebalanceEnable: true,
  leaderImbalancePerBrokerPercentage: 10,
  leaderImbalanceCheckIntervalMs: 300_000,
  replicaReplacementDelayMs: 600_000,
  replicationThrottleBytes: 0,
  maxConcurrentMoves: 5,
  maxConcurrentMovesPerBroker: 1,
  autoRebalanceIntervalMs: 0,
});

/**
 * Maps a topic's configs to the storage settings of its partition logs. Configs that are
 * not set keep the storage defaults.
 *
 * @param configs the topic's validated configs
 * @returns the log settings to apply
 * @example
 * ```ts
 * logConfigOf({ "segment.bytes": "1048576", "flush.messages": "1" });
 * // { segmentBytes: 1048576, flush: { mode: "always" }, compact: false, retentionMs: 604800000,
 * //   retentionBytes: -1 }
 * ```
 */
export function logConfigOf(configs: TopicConfigs): Partial<LogConfig> {
  const out: Partial<LogConfig> = {};
  const num = (name: string): number | undefined =>
    configs[name] === undefined ? undefined : Number(configs[name]);
  const segmentBytes = num("segment.bytes");
  if (segmentBytes !== undefined) out.segmentBytes = segmentBytes;
  const segmentMs = num("segment.ms");
  if (segmentMs !== undefined) out.segmentMs = segmentMs;
  const retentionMs = num("retention.ms");
  if (retentionMs !== undefined) out.retentionMs = retentionMs;
  const retentionBytes = num("retention.bytes");
  if (retentionBytes !== undefined) out.retentionBytes = retentionBytes;
  const indexInterval = num("index.interval.bytes");
  if (indexInterval !== undefined) out.indexIntervalBytes = indexInterval;
  out.flush = flushPolicyOf(configs);
  const policy = parseCleanupPolicy(configs["cleanup.policy"]) ?? { compact: false, delete: true };
  out.compact = policy.compact;
  if (!policy.delete) {
    // As Kafka: without "delete" in cleanup.policy, retention deletes nothing.
    out.retentionMs = -1;
    out.retentionBytes = -1;
  } else {
    // Explicit defaults, so that a live log switched back from compact-only retains again.
    out.retentionMs ??= DEFAULT_LOG_CONFIG.retentionMs;
    out.retentionBytes ??= DEFAULT_LOG_CONFIG.retentionBytes;
  }
  const dirtyRatio = num("min.cleanable.dirty.ratio");
  if (dirtyRatio !== undefined) out.minCleanableDirtyRatio = dirtyRatio;
  const deleteRetention = num("delete.retention.ms");
  if (deleteRetention !== undefined) out.deleteRetentionMs = deleteRetention;
  const lag = num("min.compaction.lag.ms");
  if (lag !== undefined) out.minCompactionLagMs = lag;
  return out;
}

/**
 * The flush policy of a topic: `flush.messages=1` (or `flush.ms=0`) fsyncs every append,
 * `flush.ms=N` fsyncs at most N ms after an append, neither leaves it to the OS.
 *
 * @param configs the topic's validated configs
 * @returns the policy
 * @example
 * ```ts
 * flushPolicyOf({ "flush.ms": "1000" }); // { mode: "interval", ms: 1000 }
 * ```
 */
export function flushPolicyOf(configs: TopicConfigs): FlushPolicy {
  if (configs["flush.messages"] === "1") return { mode: "always" };
  const ms = configs["flush.ms"];
  if (ms !== undefined) {
    return ms === "0" ? { mode: "always" } : { mode: "interval", ms: Number(ms) };
  }
  return { mode: "os" };
}

/**
 * The largest record batch a topic accepts (`max.message.bytes`, else the broker default).
 *
 * @param configs the topic's configs
 * @param brokerDefault the broker's default
 * @returns the limit in bytes
 * @example
 * ```ts
 * maxMessageBytesOf({}, 1048588); // 1048588
 * ```
 */
export function maxMessageBytesOf(configs: TopicConfigs, brokerDefault: number): number {
  const v = configs["max.message.bytes"];
  return v === undefined ? brokerDefault : Number(v);
}

/**
 * The `min.insync.replicas` of a topic (default 1).
 *
 * @param configs the topic's configs
 * @returns the minimum ISR size for `acks=all`
 * @example
 * ```ts
 * minInsyncReplicasOf({ "min.insync.replicas": "2" }); // 2
 * ```
 */
export function minInsyncReplicasOf(configs: TopicConfigs): number {
  const v = configs["min.insync.replicas"];
  return v === undefined ? 1 : Number(v);
}
