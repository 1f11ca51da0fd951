/**
 * The produce path's pure parts: where each JSON-born record goes (explicit partition,
 * Kafka's murmur2 of the key, or one round-robin partition for a request's keyless
 * records), the `max.message.bytes` check per record, and the encoding of each partition's
 * records into RecordBatch v2 within `max.message.bytes` (appended together, atomically, by
 * the leader).
 *
 * Idempotent batches (raw `application/vnd.rill.batch` bodies whose producerId and
 * baseSequence are ≥ 0; ids come from `POST /v1/producers`) need nothing here: the partition
 * log checks them against its producer state (storage/producer_state.ts), which it rebuilds
 * from its own files after a restart and on a new leader after failover. Such a batch must
 * come alone in its request (INVALID_RECORD otherwise); a retry of one of the producer's
 * last 5 batches is answered 200 with the original offsets and is not appended again; a gap
 * is OUT_OF_ORDER_SEQUENCE_NUMBER (400) and an older epoch INVALID_PRODUCER_EPOCH (409).
 *
 * @module
 */
import { compressBatch } from "../protocol/compression.ts";
import { RillError } from "../protocol/errors.ts";
import { BATCH_HEADER_SIZE, encodeBatch, type RecordHeader } from "../protocol/record_batch.ts";
import { stampLogAppendTime } from "./batch_checks.ts";
import type { TopicState } from "./local_topics.ts";
import { TimeSlice } from "./time_slice.ts";
import { concatBytes } from "../protocol/bytes.ts";

/** `acks` of a produce: 0 (no wait), 1 (leader appended), -1 (`all`: committed). */
export type Acks = 0 | 1 | -1;

/** A record to produce, as the HTTP layer parsed it from JSON. */
export interface ProduceRecord {
  /** the key bytes, or null */
  key: Uint8Array | null;
  /** the value bytes, or null (a tombstone) */
  value: Uint8Array | null;
  /** headers, in order */
  headers: RecordHeader[];
  /** an explicit partition */
  partition?: number;
  /** ms since the epoch (default: now) */
  timestamp?: number;
}

/** Where one produced record landed. */
export interface RecordOffset {
  /** the partition */
  partition: number;
  /** the record's offset */
  offset: number;
  /** the record's timestamp as stored (the append time for LogAppendTime topics) */
  timestamp: number;
}

/** Where a produced raw batch body landed. */
export interface BatchAppendResult {
  /** the partition */
  partition: number;
  /** the offset of the first record */
  baseOffset: number;
  /** the offset of the last record */
  lastOffset: number;
  /** how many records */
  recordCount: number;
  /** the append time for LogAppendTime topics, else -1 (as Kafka's ProduceResponse) */
  logAppendTime: number;
}

/**
 * Picks each record's partition and checks its size.
 *
 * @param state the topic
 * @param records the records, in request order
 * @param slice the work's turns on the event loop
 * @returns partition → indexes of its records, in request order
 * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION for a partition beyond the count,
 *   MESSAGE_TOO_LARGE for a record over `max.message.bytes`
 * @example
 * ```ts
 * await assignPartitions(state, [{ key: null, value: null, headers: [] }]); // Map { 2 => [0] }
 * ```
 */
export async function assignPartitions(
  state: TopicState,
  records: readonly ProduceRecord[],
  slice: TimeSlice = new TimeSlice(),
): Promise<Map<number, number[]>> {
  const topic = state.meta.name;
  const count = state.meta.partitions.length;
  const groups = new Map<number, number[]>();
  let keyless = -1;
  for (let i = 0; i < records.length; i++) {
    if ((i & 1023) === 0 && slice.due) await slice.yield();
    const r = records[i];
    let p: number;
    if (r.partition !== undefined) {
      if (r.partition >= count) throw unknownPartition(topic, r.partition, count);
      p = r.partition;
    } else if (r.key !== null) {
      p = state.partitioner.partitionForKey(r.key, count);
    } else {
      if (keyless < 0) keyless = state.partitioner.nextKeylessPartition(count);
      p = keyless;
    }
    const size = recordSizeEstimate(r);
    if (size > state.maxMessageBytes) {
      throw new RillError(
        "MESSAGE_TOO_LARGE",
        `Record ${i} is about ${size} bytes as a batch, larger than max.message.bytes (${state.maxMessageBytes})`,
        { maxMessageBytes: state.maxMessageBytes },
      );
    }
    let g = groups.get(p);
    if (!g) groups.set(p, g = []);
    g.push(i);
  }
  return groups;
}

/** The most records {@linkcode encodeRecords} puts in one batch (bounds one encode call). */
export const MAX_RECORDS_PER_BATCH = 4096;

/**
 * Encodes some records of a request into batches of at most `max.message.bytes` and
 * {@linkcode MAX_RECORDS_PER_BATCH} records each, in order (stamped with the append time for
 * LogAppendTime topics), letting the event loop turn between batches once the work has run
 * for its budget. The batches are returned concatenated: the leader appends them at once,
 * all or none, as a raw body of several batches.
 *
 * @param state the topic
 * @param records all records of the request
 * @param indexes which of them, in order
 * @param now the append time
 * @param slice the work's turns on the event loop
 * @returns the batches, concatenated
 * @throws {RillError} MESSAGE_TOO_LARGE for a record that alone makes a batch over the limit
 * @example
 * ```ts
 * const batches = await encodeRecords(state, records, [0, 2], Date.now());
 * ```
 */
export async function encodeRecords(
  state: TopicState,
  records: readonly ProduceRecord[],
  indexes: readonly number[],
  now: number,
  slice: TimeSlice = new TimeSlice(),
): Promise<Uint8Array> {
  const batches: Uint8Array[] = [];
  let total = 0;
  for (let from = 0; from < indexes.length;) {
    if (slice.due) await slice.yield();
    let size = BATCH_HEADER_SIZE;
    let to = from;
    while (to < indexes.length && to - from < MAX_RECORDS_PER_BATCH) {
      const bound = recordSizeBound(records[indexes[to]]);
      if (to > from && size + bound > state.maxMessageBytes) break;
      size += bound;
      to++;
    }
    const batch = encodeBatch(
      indexes.slice(from, to).map((i) => {
        const r = records[i];
        return {
          key: r.key,
          value: r.value,
          headers: r.headers,
          timestamp: state.logAppendTime ? now : r.timestamp,
        };
      }),
      { now },
    );
    const stored = state.compression === "producer" || state.compression === "none"
      ? batch
      : compressBatch(batch, state.compression);
    if (stored.length > state.maxMessageBytes) {
      throw new RillError(
        "MESSAGE_TOO_LARGE",
        `Record ${
          indexes[from]
        } is ${stored.length} bytes as a batch, larger than max.message.bytes (${state.maxMessageBytes})`,
        { maxMessageBytes: state.maxMessageBytes },
      );
    }
    if (state.logAppendTime) stampLogAppendTime(stored, now);
    batches.push(stored);
    total += stored.length;
    from = to;
  }
  return batches.length === 1 ? batches[0] : concatBytes(batches, total);
}

/**
 * An upper bound of the bytes a record takes inside a batch (every varint at its widest).
 */
function recordSizeBound(r: ProduceRecord): number {
  let size = 36 + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const h of r.headers) size += 10 + h.key.length * 3 + (h.value?.length ?? 0);
  return size;
}

/**
 * The error for a partition beyond a topic's count.
 *
 * @param topic the topic
 * @param partition the partition asked for
 * @param count the topic's partition count
 * @returns UNKNOWN_TOPIC_OR_PARTITION with the count
 * @example
 * ```ts
 * throw unknownPartition("orders", 5, 3);
 * ```
 */
export function unknownPartition(topic: string, partition: number, count: number): RillError {
  return new RillError(
    "UNKNOWN_TOPIC_OR_PARTITION",
    `Topic "${topic}" has ${count} partition(s); partition ${partition} does not exist`,
    { partitions: count },
  );
}

/**
 * An upper estimate of a record's size as the only record of a batch.
 *
 * @param r the record
 * @returns bytes
 * @example
 * ```ts
 * recordSizeEstimate({ key: null, value: new Uint8Array(100), headers: [] }); // 185
 * ```
 */
export function recordSizeEstimate(r: ProduceRecord): number {
  let size = BATCH_HEADER_SIZE + 24 + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const h of r.headers) size += 10 + h.key.length * 3 + (h.value?.length ?? 0);
  return size;
}
