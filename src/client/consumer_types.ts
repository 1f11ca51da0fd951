/**
 * The consumer's public types: its options, the subscribe and assign arguments, the
 * rebalance listener, and the payloads `run()` hands to `eachMessage` / `eachBatch`.
 *
 * @module
 */
import type { ConsumedMessage } from "./message.ts";

/**
 * Options of `rill.consumer()`.
 *
 * @example
 * ```ts
 * const consumer = rill.consumer({ maxWaitMs: 1000, maxBytes: 4 << 20, autoOffsetReset: "latest" });
 * ```
 */
export interface ConsumerOptions {
  /** the consumer group: use `subscribe()` and the group's assignment instead of `assign()` */
  groupId?: string;
  /** groups: the session timeout asked of the broker, ms (default the broker's, 10,000) */
  sessionTimeoutMs?: number;
  /** groups: how often to heartbeat, ms (default the broker's: a third of the session) */
  heartbeatIntervalMs?: number;
  /** groups: the server-side assignor, "range", "roundrobin" or "sticky" (default the
   * broker's) */
  assignor?: "range" | "roundrobin" | "sticky";
  /** groups: called with the partitions granted to this member, before their records are
   * delivered (same as `consumer.on("assigned", fn)`) */
  onAssigned?: RebalanceListener;
  /** groups: called with the partitions taken from this member, after their work stopped and
   * their offsets were committed (same as `consumer.on("revoked", fn)`) */
  onRevoked?: RebalanceListener;
  /** how long a fetch may wait for records (long poll), in ms (default 5,000); a consumer
   * reading through a push subscription (over WebSocket, the default there) has no long poll */
  maxWaitMs?: number;
  /** the bytes a fetch waits for (default 1); above 1, the consumer long-polls instead of
   * reading through a push subscription over WebSocket */
  minBytes?: number;
  /** the most bytes one fetch of one partition returns (default 1 MiB) */
  maxBytes?: number;
  /** fetch results buffered per partition ahead of the application (default 2) */
  maxBufferedBatches?: number;
  /** the most bytes of one fetch answer over all the partitions of a broker (Kafka's
   * `fetch.max.bytes`; default 8 MiB; a first batch larger than it still comes whole) */
  fetchMaxBytes?: number;
  /** fetch all the partitions a broker serves with one long poll in a fetch session
   * (`POST /v1/fetch`), or over WebSocket one push subscription where the broker offers it
   * (default true); false: one long poll per partition (over the transport's WebSocket
   * connection where it has one) */
  fetchSessions?: boolean;
  /** check each batch's CRC-32C (default true) */
  checkCrcs?: boolean;
  /** what to do when the position falls outside the log (e.g. deleted by retention), as
   * Kafka's `auto.offset.reset`: "earliest" jumps to the log start, "latest" to the high
   * watermark, "none" fails (default "earliest"). In a group it also says where a
   * partition without a committed offset starts, unless `subscribe({ fromBeginning: true })`
   * (default there "latest", as kafkajs) */
  autoOffsetReset?: "earliest" | "latest" | "none";
}

/**
 * A rebalance listener: receives the partitions granted (`onAssigned`) or taken
 * (`onRevoked`). The rebalance waits for it; an error it throws is logged and ignored.
 *
 * @example
 * ```ts
 * const onAssigned: RebalanceListener = (partitions) => console.log("got", partitions);
 * ```
 */
export type RebalanceListener = (
  partitions: { topic: string; partition: number }[],
) => void | Promise<void>;

/**
 * What `subscribe()` takes.
 *
 * @example
 * ```ts
 * await consumer.subscribe({ topics: ["orders"], fromBeginning: true });
 * ```
 */
export interface SubscribeOptions {
  /** the topics */
  topics?: string[];
  /** one topic (kafkajs's older shape) */
  topic?: string;
  /** partitions without a committed offset start at the earliest offset (default false:
   * at the latest, or at `autoOffsetReset` when given) */
  fromBeginning?: boolean;
}

/**
 * Where to start reading a partition.
 *
 * @example
 * ```ts
 * await consumer.assign([{ topic: "orders", partition: 0, offset: 42 }]);
 * ```
 */
export interface TopicPartitionOffset {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** an offset (number, bigint or decimal string), or "earliest"/"latest" (default "latest") */
  offset?: number | bigint | string;
  /** instead of an offset: the first record whose timestamp is at or after this (ms) */
  timestamp?: number;
}

/**
 * What `eachMessage` receives.
 *
 * @example
 * ```ts
 * await consumer.run({ eachMessage: ({ topic, partition, message }) => console.log(topic, partition, message.offset) });
 * ```
 */
export interface EachMessagePayload {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the record */
  message: ConsumedMessage;
  /** kept for kafkajs's shape; does nothing without groups */
  heartbeat(): Promise<void>;
}

/**
 * A batch of records of one partition, as `eachBatch` receives it.
 *
 * @example
 * ```ts
 * await consumer.run({ eachBatch: ({ batch }) => console.log(batch.partition, batch.firstOffset(), batch.offsetLag()) });
 * ```
 */
export interface Batch {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the partition's high watermark when fetched */
  highWatermark: number;
  /** the records, in offset order */
  messages: ConsumedMessage[];
  /** whether there are no records */
  isEmpty(): boolean;
  /** the first record's offset */
  firstOffset(): number | null;
  /** the last record's offset */
  lastOffset(): number;
  /** records between the last one and the high watermark */
  offsetLag(): number;
}

/**
 * What `eachBatch` receives.
 *
 * @example
 * ```ts
 * await consumer.run({
 *   eachBatch: async ({ batch, resolveOffset, isStale }) => {
 *     for (const m of batch.messages) {
 *       if (isStale()) break;
 *       await handle(m);
 *       resolveOffset(m.offset);
 *     }
 *   },
 * });
 * ```
 */
export interface EachBatchPayload {
  /** the records */
  batch: Batch;
  /** marks every record up to `offset` as processed */
  resolveOffset(offset: number): void;
  /** kept for kafkajs's shape; does nothing without groups */
  heartbeat(): Promise<void>;
  /** whether the consumer is still running */
  isRunning(): boolean;
  /** whether a seek made the rest of this batch obsolete */
  isStale(): boolean;
}

/**
 * What `run()` takes: one of the handlers.
 *
 * @example
 * ```ts
 * const options: RunOptions = { eachMessage: ({ message }) => console.log(message.valueString()) };
 * await consumer.run(options);
 * ```
 */
export interface RunOptions {
  /** called for each record, in order per partition */
  eachMessage?: (payload: EachMessagePayload) => Promise<void> | void;
  /** called for each fetched batch of a partition */
  eachBatch?: (payload: EachBatchPayload) => Promise<void> | void;
  /** after eachBatch returns, treat the whole batch as processed (default true) */
  eachBatchAutoResolve?: boolean;
  /** groups: commit resolved offsets automatically (default true) */
  autoCommit?: boolean;
  /** groups: commit resolved offsets once this many ms passed since the last commit
   * (default 5,000; checked after each handler call and each heartbeat) */
  autoCommitInterval?: number;
  /** groups: also commit once this many records were resolved since the last commit */
  autoCommitThreshold?: number;
}
