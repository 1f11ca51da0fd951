/**
 * The producer's record accumulator (Kafka's `RecordAccumulator`): records wait here per
 * partition, in batches of up to `batchBytes`, until the sender drains them. Each batch is
 * a {@linkcode BatchBuilder}: a record is encoded into its batch the moment it is appended.
 *
 * A partition's batches form a queue; only its last batch takes new records. A batch is
 * ready to send when it is full (a newer batch exists), when it has waited `lingerMs`, or
 * when the producer flushes. How many requests of one partition may be in flight at once
 * is the producer's call (`partitionLimit`, default 1): one keeps a plain producer's records
 * in send order over HTTP, where concurrent requests may overtake each other; an idempotent
 * producer may have several, its sequence numbers keeping the order at the broker. A batch
 * sent with a limit of 1 has its partition to itself until it is done. While a partition
 * is at its limit ("muted") its open batch keeps growing, so batching adapts to load on
 * its own.
 *
 * This file does no I/O: the producer drives it.
 *
 * @module
 */
import type { RecordHeader } from "../protocol/record_batch.ts";
import { BatchBuilder, type BytesLike } from "./batch_builder.ts";

/**
 * Where the results of the records of one `send()` call go.
 *
 * @example
 * ```ts
 * const sink: RecordSink = { done: (i, p, o) => console.log(i, p, o), fail: console.error };
 * ```
 */
export interface RecordSink {
  /** called with a record's offset once its batch is acknowledged */
  done(index: number, partition: number, offset: number): void;
  /** called when the record's batch failed for good */
  fail(error: unknown): void;
}

/**
 * Consecutive records of one batch that came from one send() call.
 *
 * @example
 * ```ts
 * batch.runs.forEach((run) => run.sink.fail(new Error("broker gone")));
 * ```
 */
export interface SinkRun {
  /** where their results go */
  sink: RecordSink;
  /** the index of the first of them in its send() call */
  firstIndex: number;
  /** how many */
  count: number;
}

/**
 * Records of one partition, sent as one RecordBatch.
 *
 * @example
 * ```ts
 * const batch = accumulator.drain(false);
 * if (batch) await post(batch.builder.build());
 * ```
 */
export interface ProducerBatch {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** `topic + "\u0000" + partition`, the partition's key in the producer's maps */
  key: string;
  /** the acks of the request */
  acks: string;
  /** the batch being built */
  builder: BatchBuilder;
  /** the sends its records belong to, in record order */
  runs: SinkRun[];
  /** whether the first record was keyless (for the sticky partitioner) */
  keyless: boolean;
  /** the estimated size, for the batchBytes limit */
  bytes: number;
  /** when the batch was opened (ms, from the accumulator's clock) */
  createdAt: number;
}

/**
 * Options of {@linkcode RecordAccumulator}.
 *
 * @example
 * ```ts
 * new RecordAccumulator({ batchBytes: 1 << 20, lingerMs: 5 });
 * ```
 */
export interface AccumulatorOptions {
  /** the size at which a batch is closed and a new one opened */
  batchBytes: number;
  /** how long a batch waits for more records before it is ready */
  lingerMs: number;
  /** the clock (injectable for tests) */
  now?: () => number;
  /** how many requests of the batch's partition may be in flight when it is sent, itself
   * included (default: always 1) */
  partitionLimit?: (batch: ProducerBatch) => number;
}

/**
 * The estimated bytes a record adds to a batch: key, value and headers (text counted one
 * byte a character) plus framing.
 *
 * @param key the key
 * @param value the value
 * @param headers the headers
 * @returns the estimate
 *
 * @example
 * ```ts
 * recordSize("key", new Uint8Array(100)); // 115
 * ```
 */
export function recordSize(key: BytesLike, value: BytesLike, headers?: RecordHeader[]): number {
  let size = 12 + (key === null ? 0 : key.length) + (value === null ? 0 : value.length);
  if (headers) {
    for (const h of headers) size += 4 + h.key.length + (h.value ? h.value.length : 0);
  }
  return size;
}

/** The smallest batch buffer (also the smallest kept for reuse). */
const MIN_BATCH_BUFFER = 4096;

interface PartitionQueue {
  topic: string;
  partition: number;
  /** `topic + "\u0000" + partition` */
  id: string;
  batches: ProducerBatch[];
  /** requests of the partition in flight */
  inFlight: number;
  /** whether an in-flight request was sent with a limit of 1 (nothing may join it) */
  exclusive: boolean;
  /** the size of the last batch built, to size the next buffer */
  lastSize: number;
}

/**
 * Collects records into per-partition batches and hands out the ready ones.
 *
 * @example
 * ```ts
 * const acc = new RecordAccumulator({ batchBytes: 1 << 20, lingerMs: 5 });
 * acc.append("orders", 0, "1", Date.now(), null, "hello", undefined, sink, 0);
 * const batch = acc.drain(true); // flushing: the open batch is ready now
 * ```
 */
export class RecordAccumulator {
  readonly #queues = new Map<string, PartitionQueue>();
  readonly #order: PartitionQueue[] = [];
  #cursor = 0;
  #pending = 0;
  #last: PartitionQueue | undefined;
  /** Buffers of finished batches, reused so big batches need no fresh zeroed memory. */
  readonly #spare: Uint8Array[] = [];
  readonly #batchBytes: number;
  readonly #lingerMs: number;
  readonly #now: () => number;
  readonly #limit: (batch: ProducerBatch) => number;

  /**
   * @param options batch size, linger and clock
   */
  constructor(options: AccumulatorOptions) {
    this.#batchBytes = options.batchBytes;
    this.#lingerMs = options.lingerMs;
    this.#now = options.now ?? Date.now;
    this.#limit = options.partitionLimit ?? (() => 1);
  }

  /** Whether the partition may send its first batch now (as far as in-flight limits go). */
  #canSend(q: PartitionQueue): boolean {
    if (q.batches.length === 0) return false;
    if (q.inFlight === 0) return true;
    return !q.exclusive && q.inFlight < this.#limit(q.batches[0]);
  }

  /** How many records wait in batches not yet drained. */
  get pendingRecords(): number {
    return this.#pending;
  }

  #queue(topic: string, partition: number): PartitionQueue {
    const last = this.#last;
    if (last !== undefined && last.partition === partition && last.topic === topic) return last;
    const id = topic + "\u0000" + partition;
    let q = this.#queues.get(id);
    if (q === undefined) {
      q = { topic, partition, id, batches: [], inFlight: 0, exclusive: false, lastSize: 0 };
      this.#queues.set(id, q);
      this.#order.push(q);
    }
    this.#last = q;
    return q;
  }

  /**
   * Encodes a record into its partition's open batch, opening a new batch when the record
   * does not fit (or the acks differ).
   *
   * @param topic the topic
   * @param partition the partition
   * @param acks the acks of the request
   * @param timestamp the record's timestamp
   * @param key the key
   * @param value the value
   * @param headers the headers
   * @param sink where its result goes
   * @param index its index in its send() call
   * @returns the batch that was closed to make room, if one was (for the sticky partitioner)
   */
  append(
    topic: string,
    partition: number,
    acks: string,
    timestamp: number,
    key: BytesLike,
    value: BytesLike,
    headers: RecordHeader[] | undefined,
    sink: RecordSink,
    index: number,
  ): ProducerBatch | undefined {
    const q = this.#queue(topic, partition);
    const size = recordSize(key, value, headers);
    let last = q.batches[q.batches.length - 1];
    let closed: ProducerBatch | undefined;
    if (
      last === undefined || last.acks !== acks ||
      (last.bytes + size > this.#batchBytes && last.builder.count > 0)
    ) {
      closed = last;
      const cap = Math.min(
        this.#batchBytes + 1024,
        Math.max(MIN_BATCH_BUFFER, Math.ceil(q.lastSize * 1.1), size + 128),
      );
      last = {
        topic,
        partition,
        key: q.id,
        acks,
        builder: new BatchBuilder(cap, this.#takeSpare(cap)),
        runs: [],
        keyless: key === null,
        bytes: 61,
        createdAt: this.#now(),
      };
      q.batches.push(last);
    }
    last.builder.append(timestamp, key, value, headers);
    last.bytes += size;
    const runs = last.runs;
    const run = runs[runs.length - 1];
    if (run !== undefined && run.sink === sink && run.firstIndex + run.count === index) run.count++;
    else runs.push({ sink, firstIndex: index, count: 1 });
    this.#pending++;
    return closed;
  }

  /**
   * Takes the next ready batch of a partition below its in-flight limit, and counts it in
   * flight until {@linkcode RecordAccumulator.unmute}. Partitions take turns.
   *
   * @param flushing treat every non-empty batch as ready
   * @returns a batch, or undefined when none is ready
   */
  drain(flushing: boolean): ProducerBatch | undefined {
    const n = this.#order.length;
    let now = -1;
    for (let i = 0; i < n; i++) {
      const q = this.#order[(this.#cursor + i) % n];
      if (!this.#canSend(q)) continue;
      const first = q.batches[0];
      let ready = flushing || q.batches.length > 1 || first.bytes >= this.#batchBytes;
      if (!ready) {
        if (now < 0) now = this.#now();
        ready = now - first.createdAt >= this.#lingerMs;
      }
      if (!ready) continue;
      q.batches.shift();
      if (q.inFlight++ === 0) q.exclusive = this.#limit(first) <= 1;
      q.lastSize = first.builder.size;
      this.#cursor = (this.#cursor + i + 1) % n;
      this.#pending -= first.builder.count;
      return first;
    }
    return undefined;
  }

  #takeSpare(cap: number): Uint8Array | undefined {
    const spare = this.#spare;
    for (let i = spare.length - 1; i >= 0; i--) {
      if (spare[i].length >= cap) return spare.splice(i, 1)[0];
    }
    return undefined;
  }

  /**
   * Takes back the buffer of a batch whose request is over (acknowledged or failed for
   * good), for a later batch to write into (no fresh zeroed memory, less garbage). A few are
   * kept at most.
   *
   * @param batch the finished batch; it must not be used afterwards
   */
  recycle(batch: ProducerBatch): void {
    const buf = batch.builder.buffer;
    if (buf.length >= MIN_BATCH_BUFFER && this.#spare.length < 8) this.#spare.push(buf);
  }

  /**
   * Counts one request of a partition as done (acknowledged or failed for good), so that
   * the partition may send again.
   *
   * @param topic the topic
   * @param partition the partition
   * @param key `topic + "\u0000" + partition`, if at hand (a batch's `key`)
   */
  unmute(topic: string, partition: number, key = topic + "\u0000" + partition): void {
    const q = this.#queues.get(key);
    if (q && q.inFlight > 0 && --q.inFlight === 0) q.exclusive = false;
  }

  /**
   * When the earliest waiting batch becomes ready by linger, or undefined if none waits.
   *
   * @returns a time on the accumulator's clock
   */
  nextLingerDeadline(): number | undefined {
    let t: number | undefined;
    for (const q of this.#order) {
      if (!this.#canSend(q)) continue;
      const d = q.batches[0].createdAt + this.#lingerMs;
      if (t === undefined || d < t) t = d;
    }
    return t;
  }
}
