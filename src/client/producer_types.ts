/**
 * The producer's public shapes: a message, a send, its answer and the producer's options
 * (kafkajs's names), apart from the {@linkcode Producer} that sends them (producer.ts).
 *
 * @module
 */
import type { CompressionType } from "../protocol/compression.ts";

/**
 * Text or bytes; text is sent as its UTF-8 bytes.
 *
 * @example
 * ```ts
 * const value: Bytes = new TextEncoder().encode("hello");
 * ```
 */
export type Bytes = string | Uint8Array;

/**
 * Header values: text, bytes, null, or several values for a repeated header.
 *
 * @example
 * ```ts
 * const headers: Record<string, HeaderValue> = { trace: "abc", tags: ["a", "b"], raw: new Uint8Array([1]) };
 * ```
 */
export type HeaderValue = Bytes | null | Bytes[];

/**
 * A message to send.
 *
 * @example
 * ```ts
 * const message: Message = { key: "user-1", value: "hello", headers: { lang: "en" } };
 * ```
 */
export interface Message {
  /** the key (decides the partition unless `partition` is given); null or absent for none */
  key?: Bytes | null;
  /** the value; null is a tombstone */
  value: Bytes | null;
  /** headers, in kafkajs's object shape; an array value repeats the header */
  headers?: Record<string, HeaderValue | undefined>;
  /** an explicit partition */
  partition?: number;
  /** milliseconds since the epoch (default: when send() is called) */
  timestamp?: number;
}

/**
 * Acknowledgement level: "all" (or -1) waits for the in-sync replicas, 1 for the leader, 0 for nothing.
 *
 * @example
 * ```ts
 * await producer.send({ topic: "orders", messages, acks: 1 satisfies Acks });
 * ```
 */
export type Acks = "all" | -1 | 1 | 0 | "1" | "0";

/**
 * What {@linkcode Producer.send} takes.
 *
 * @example
 * ```ts
 * const record: ProducerRecord = { topic: "orders", messages: [{ value: "x" }], acks: "all" };
 * await producer.send(record);
 * ```
 */
export interface ProducerRecord {
  /** the topic */
  topic: string;
  /** the messages, in order */
  messages: Message[];
  /** acknowledgement level (default: the producer's, "all" unless set) */
  acks?: Acks;
}

/**
 * Where a message was stored.
 *
 * @example
 * ```ts
 * const [meta]: RecordMetadata[] = await producer.send({ topic: "orders", messages: [{ value: "x" }] });
 * console.log(meta.partition, meta.offset);
 * ```
 */
export interface RecordMetadata {
  /** the topic */
  topicName: string;
  /** the partition */
  partition: number;
  /** the message's offset (-1 with acks=0) */
  offset: number;
}

/**
 * Options of `rill.producer()`.
 *
 * @example
 * ```ts
 * const producer = rill.producer({ lingerMs: 5, batchBytes: 512 * 1024, maxInFlightRequests: 5, acks: 1 });
 * ```
 */
export interface ProducerOptions {
  /** how long a batch waits for more records before it is sent (default 0: as soon as the
   * partition may send, within its in-flight limit; records sent meanwhile join the batch) */
  lingerMs?: number;
  /** the size of a batch, in bytes (default 1 MiB) */
  batchBytes?: number;
  /** requests in flight at once, over all partitions; an idempotent producer may use them all
   * for one partition, a plain one sends one request per partition at a time (default 5; at
   * most 5 when idempotent, as Kafka's max.in.flight.requests.per.connection) */
  maxInFlightRequests?: number;
  /** the default acknowledgement level (default "all") */
  acks?: Acks;
  /** number batches so that retries never duplicate (default true; not with acks=0) */
  idempotent?: boolean;
  /** a stable name for this producer's identity: the same key gets the same producer id
   * with a newer epoch, which fences an older instance using the key */
  producerKey?: string;
  /** the codec batches are compressed with: "none" (default), "gzip", "snappy", "lz4" or
   * "zstd" (Kafka's `compression.type`); a topic may still store them otherwise */
  compression?: CompressionType;
}
