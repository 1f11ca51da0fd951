/**
 * The producer: `send({ topic, messages })` in kafkajs's shape, with Kafka's batching.
 *
 * Each message is given a partition (explicit, murmur2 of the key, or the sticky
 * partition), joins its partition's open batch in the {@linkcode RecordAccumulator}, and
 * resolves once the batch that carries it is acknowledged. The sender encodes each batch
 * as one RecordBatch v2 and sends it to the partition's leader: over the client's WebSocket
 * connection to that broker (pipelined; README.md, "WebSocket protocol"), or as
 * `POST /v1/topics/{topic}/records?partition=P&acks=A` (`application/vnd.rill.batch`)
 * with `transport: "http"` or where WebSocket is refused; up to `maxInFlightRequests` requests
 * are in flight. Retriable failures are retried with backoff and jitter.
 *
 * **Idempotence** (on by default, as in Kafka since 3.0; the rules are atop idempotence.ts):
 * the producer gets a producer id and epoch from the cluster (`POST /v1/producers`, on
 * `connect()` or its first send) and stamps each batch with them and the partition's next
 * sequence number, once, when the batch is first sent (the same requests and batch sizes
 * as a plain producer: this costs nothing measurable); a retry sends the very same batch
 * bytes, so a batch whose first attempt reached the broker is recognised as a duplicate and
 * answered with its original offsets instead of being appended twice. Up to
 * `maxInFlightRequests` (default 5, at most 5 — Kafka's
 * `max.in.flight.requests.per.connection`) batches of one partition may be in flight once
 * the partition has acknowledged a first batch; order is kept by the sequence numbers: the
 * leader appends a batch only right after its predecessor, holding one that overtook it for
 * a moment, and a batch still refused as out of order is resent once the batches before it
 * succeeded (or fails, if one of them failed).
 * With `idempotent: false` (or `acks: 0`) a retried batch may be appended twice
 * (at-least-once), and a partition has one request in flight at a time: HTTP requests may
 * overtake each other, and nothing else would keep the order.
 *
 * **Compression** (`compression: "gzip" | "snappy" | "lz4" | "zstd"`, default "none"): a
 * batch's records are compressed once, when it is sent for the first time (Kafka's codec
 * bits, byte-compatible with Kafka clients); retries resend those same bytes.
 *
 * @module
 */
import {
  compressBatch,
  compressionId,
  type CompressionType,
  prepareCompression,
} from "../protocol/compression.ts";
import { RillError } from "../protocol/errors.ts";
import type { RecordHeader } from "../protocol/record_batch.ts";
import { type ProducerBatch, RecordAccumulator } from "./accumulator.ts";
import { keyBytes } from "./batch_builder.ts";
import type { Metadata } from "./metadata.ts";
import { brokerOffset } from "./offsets.ts";
import { Partitioner } from "./partitioner.ts";
import { type BatchSequence, IdempotentProducer } from "./idempotence.ts";
import { retryAfter, type RetryHooks } from "./retry.ts";
import type { Transport } from "./transport.ts";
import { type DirectOwner, DirectSend, type InFlightLink } from "./direct_send.ts";
import { InFlightChains, whenSettled } from "./in_flight_chains.ts";
import { acksParam, checkBytes, SendResult, toHeaders } from "./send_input.ts";
import type {
  Acks,
  Message,
  ProducerOptions,
  ProducerRecord,
  RecordMetadata,
} from "./producer_types.ts";

export type {
  Acks,
  Bytes,
  HeaderValue,
  Message,
  ProducerOptions,
  ProducerRecord,
  RecordMetadata,
} from "./producer_types.ts";

/** The most batches an idempotent producer may have in flight (the broker's window). */
const MAX_IDEMPOTENT_IN_FLIGHT = 5;

/**
 * Sends messages to topics, batching them per partition. Get one from `rill.producer()`.
 *
 * @example
 * ```ts
 * const producer = new Rill({ brokers: ["http://127.0.0.1:8092"] }).producer({ lingerMs: 5 });
 * await producer.connect();
 * const [meta] = await producer.send({
 *   topic: "orders",
 *   messages: [{ key: "user-1", value: JSON.stringify({ total: 42 }) }],
 * });
 * console.log(meta.partition, meta.offset);
 * await producer.disconnect();
 * ```
 */
export class Producer {
  readonly #t: Transport;
  readonly #meta: Metadata;
  readonly #acc: RecordAccumulator;
  readonly #partitioner = new Partitioner();
  readonly #scratch = { buf: new Uint8Array(256) };
  readonly #maxInFlight: number;
  readonly #acks: string;
  readonly #lingerMs: number;
  readonly #compression: CompressionType;
  /** resolves once the codec can compress (zstd loads its WebAssembly module) */
  readonly #codecReady: Promise<void> | undefined;
  readonly #idem: IdempotentProducer | null;
  #inFlight = 0;
  #flushing = 0;
  #wakeQueued = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #idle: (() => void)[] = [];
  #closed = false;
  /** this producer's share of the transport's WebSocket connections, once it sent */
  #streams: (() => void) | undefined;
  /** per partition, its idempotent batches in flight, in stamping order */
  readonly #chains = new InFlightChains();

  /**
   * @param transport the client's transport (use `rill.producer()` rather than this)
   * @param metadata the client's metadata cache
   * @param options batching, in-flight limit and default acks
   * @throws {RangeError} on a negative linger, a batch size below 1, an in-flight limit below
   *   1, or above 5 for an idempotent producer
   */
  constructor(transport: Transport, metadata: Metadata, options: ProducerOptions = {}) {
    this.#t = transport;
    this.#meta = metadata;
    const lingerMs = options.lingerMs ?? 0;
    const batchBytes = options.batchBytes ?? 1 << 20;
    const maxInFlight = options.maxInFlightRequests ?? 5;
    if (!(lingerMs >= 0)) throw new RangeError(`lingerMs must be >= 0, got ${lingerMs}`);
    if (!(batchBytes >= 1)) throw new RangeError(`batchBytes must be >= 1, got ${batchBytes}`);
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw new RangeError(`maxInFlightRequests must be an integer >= 1, got ${maxInFlight}`);
    }
    this.#lingerMs = lingerMs;
    this.#compression = options.compression ?? "none";
    compressionId(this.#compression); // a clear error for an unknown codec, now
    this.#codecReady = this.#compression === "none"
      ? undefined
      : prepareCompression(this.#compression);
    this.#maxInFlight = maxInFlight;
    this.#acks = acksParam(options.acks);
    this.#idem = options.idempotent === false
      ? null
      : new IdempotentProducer(transport, options.producerKey);
    if (this.#idem !== null && this.#acks !== "0" && maxInFlight > MAX_IDEMPOTENT_IN_FLIGHT) {
      throw new RangeError(
        `maxInFlightRequests must be at most ${MAX_IDEMPOTENT_IN_FLIGHT} for an idempotent producer (the broker remembers its last ${MAX_IDEMPOTENT_IN_FLIGHT} batches), got ${maxInFlight}; set idempotent: false to allow more`,
      );
    }
    this.#acc = new RecordAccumulator({
      batchBytes,
      lingerMs,
      partitionLimit: (batch) => this.#partitionLimit(batch),
    });
  }

  /**
   * The producer id and epoch this producer writes with (allocating them if needed), or
   * null when it is not idempotent.
   *
   * @returns the identity
   * @example
   * ```ts
   * const id = await producer.identity(); // { producerId: 7, producerEpoch: 0 }
   * ```
   */
  identity(): Promise<{ producerId: number; producerEpoch: number } | null> {
    return this.#idem ? this.#idem.identity() : Promise.resolve(null);
  }

  /**
   * Readies the producer. HTTP needs no connection; an idempotent producer gets its
   * producer id and epoch here (as Kafka's producer does before its first send), so that
   * the first send does not wait for them. Without connect() the first send gets them.
   *
   * @returns a promise that resolves once the producer is ready
   * @throws {RillError} when the broker cannot allocate a producer id
   * @example
   * ```ts
   * await producer.connect();
   * ```
   */
  async connect(): Promise<void> {
    this.#closed = false;
    if (this.#idem) await this.#idem.identity();
  }

  /**
   * Sends messages to one topic and resolves once all of them are acknowledged.
   *
   * @param record the topic, the messages and the acks
   * @returns one entry per message, in order: its partition and offset
   * @throws {TypeError} on a malformed message (nothing is sent then)
   * @throws {RillError} the broker's error for a batch that failed for good (other batches
   *   of the same call may have been stored)
   * @example
   * ```ts
   * await producer.send({ topic: "orders", messages: [{ key: "k", value: "v" }], acks: 1 });
   * ```
   */
  send(record: ProducerRecord): Promise<RecordMetadata[]> {
    // Not an async function: a send awaited one at a time then costs one promise (its
    // result's), not two and their ticks. What it throws still comes as a rejection.
    try {
      return this.#send(record);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #send(record: ProducerRecord): Promise<RecordMetadata[]> {
    if (this.#closed) throw new RillError("INVALID_REQUEST", "The producer is disconnected");
    this.#idem?.checkNotFenced();
    const { topic, messages } = record;
    if (typeof topic !== "string" || topic === "") {
      throw new TypeError("topic must be a non-empty string");
    }
    if (!Array.isArray(messages)) throw new TypeError("messages must be an array");
    const acks = record.acks === undefined ? this.#acks : acksParam(record.acks);
    const now = Date.now();
    // Check every message first, so a bad one sends nothing.
    const n = messages.length;
    let needCount = false;
    let headers: (RecordHeader[] | undefined)[] | undefined;
    for (let i = 0; i < n; i++) {
      const m = messages[i];
      if (m === null || typeof m !== "object") {
        throw new TypeError(`messages[${i}] must be an object`);
      }
      checkBytes(m.key, i, "key");
      if (m.value === undefined) {
        throw new TypeError(`messages[${i}].value is missing (use null for a tombstone)`);
      }
      checkBytes(m.value, i, "value");
      const ts = m.timestamp;
      if (ts !== undefined && (!Number.isSafeInteger(ts) || ts < 0)) {
        throw new TypeError(`messages[${i}].timestamp must be a non-negative integer`);
      }
      const p = m.partition;
      if (p === undefined || p === null) needCount = true;
      else if (!Number.isInteger(p) || p < 0) {
        throw new TypeError(`messages[${i}].partition must be a non-negative integer`);
      }
      if (m.headers !== undefined) {
        headers ??= new Array(n);
        headers[i] = toHeaders(m.headers);
      }
    }
    if (!needCount) return this.#enqueue(topic, messages, acks, now, headers, 0);
    const count = this.#meta.cached(topic);
    if (count !== undefined) return this.#enqueue(topic, messages, acks, now, headers, count);
    return this.#meta.partitionCount(topic).then((count) =>
      this.#enqueue(topic, messages, acks, now, headers, count)
    );
  }

  /** Appends a checked send's messages to their batches; resolves once all are answered. */
  #enqueue(
    topic: string,
    messages: Message[],
    acks: string,
    now: number,
    headers: (RecordHeader[] | undefined)[] | undefined,
    count: number,
  ): Promise<RecordMetadata[]> {
    const n = messages.length;
    const result = new SendResult(topic, n);
    const acc = this.#acc;
    for (let i = 0; i < n; i++) {
      const m = messages[i];
      const key = m.key ?? null;
      let p = m.partition ?? -1;
      if (p < 0) {
        p = this.#partitioner.partition(
          topic,
          key === null ? null : keyBytes(key, this.#scratch),
          count,
        );
      }
      const closed = acc.append(
        topic,
        p,
        acks,
        m.timestamp ?? now,
        key,
        m.value,
        headers?.[i],
        result,
        i,
      );
      if (closed !== undefined && closed.keyless) {
        this.#partitioner.batchClosed(topic, closed.partition, count);
      }
    }
    this.#wake();
    return result.promise;
  }

  /**
   * Sends messages to several topics, as kafkajs's `sendBatch`.
   *
   * @param batch the messages per topic and the acks
   * @returns the metadata of every message, topic after topic
   * @example
   * ```ts
   * await producer.sendBatch({ topicMessages: [{ topic: "a", messages: [{ value: "x" }] }] });
   * ```
   */
  async sendBatch(
    batch: { topicMessages: { topic: string; messages: Message[] }[]; acks?: Acks },
  ): Promise<RecordMetadata[]> {
    const all = await Promise.all(
      batch.topicMessages.map((tm) => this.send({ ...tm, acks: batch.acks })),
    );
    return all.flat();
  }

  /**
   * Sends every waiting batch now, without waiting for linger, and resolves once nothing is
   * pending or in flight.
   *
   * @returns a promise
   * @example
   * ```ts
   * producer.send({ topic: "t", messages }); // not awaited
   * await producer.flush();
   * ```
   */
  async flush(): Promise<void> {
    if (this.#acc.pendingRecords === 0 && this.#inFlight === 0) return;
    this.#flushing++;
    try {
      await new Promise<void>((resolve) => {
        this.#idle.push(resolve);
        this.#wake();
      });
    } finally {
      this.#flushing--;
    }
  }

  /**
   * Sends what is pending and stops accepting messages.
   *
   * @returns a promise that resolves once pending messages are acknowledged or failed
   * @example
   * ```ts
   * await producer.disconnect();
   * ```
   */
  async disconnect(): Promise<void> {
    await this.flush();
    this.#closed = true;
    this.#streams?.();
    this.#streams = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** How many requests of a batch's partition may be in flight when it is sent. */
  #partitionLimit(batch: ProducerBatch): number {
    const idem = this.#idem;
    if (idem === null || batch.acks === "0") return 1;
    if (!idem.warm(batch.topic, batch.partition, batch.key)) return 1;
    // The broker remembers a producer's last 5 batches: a batch still unresolved (perhaps
    // appended, its answer lost, to be retried) must stay among them, so batches already
    // acknowledged after the oldest unresolved one count against the limit too.
    const chain = this.#chains.get(batch.key);
    if (chain === undefined || chain.links.length === 0) return this.#maxInFlight;
    const resolvedSince = chain.next - chain.links[0].index - chain.links.length;
    return this.#maxInFlight - resolvedSince;
  }

  #wake(): void {
    if (this.#wakeQueued) return;
    this.#wakeQueued = true;
    queueMicrotask(this.#woken);
  }

  /** {@linkcode #wake}'s microtask (made once: a send awaited at a time wakes once a send). */
  readonly #woken = (): void => {
    this.#wakeQueued = false;
    this.#drain();
  };

  #draining = false;

  #drain(): void {
    // A batch that fails before its first await frees its slot from inside the loop below,
    // which then goes on: no nested drain.
    if (this.#draining) return;
    this.#draining = true;
    try {
      this.#drainNow();
    } finally {
      this.#draining = false;
    }
  }

  #drainNow(): void {
    while (this.#inFlight < this.#maxInFlight) {
      const batch = this.#acc.drain(this.#flushing > 0);
      if (batch === undefined) break;
      this.#inFlight++;
      if (batch.keyless) {
        const count = this.#meta.cached(batch.topic);
        if (count !== undefined) this.#partitioner.batchClosed(batch.topic, batch.partition, count);
      }
      // It settles the batch's sends and frees its slot itself (it does not throw).
      this.#sendBatch(batch);
    }
    if (this.#acc.pendingRecords === 0 && this.#inFlight === 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
      return;
    }
    if (this.#lingerMs > 0 && this.#inFlight < this.#maxInFlight) {
      const at = this.#acc.nextLingerDeadline();
      if (at !== undefined && at < this.#timerAt) {
        if (this.#timer !== undefined) clearTimeout(this.#timer);
        this.#timerAt = at;
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#timerAt = Infinity;
          this.#drain();
        }, Math.max(0, at - Date.now()));
      }
    }
  }

  /**
   * Sends a batch, settles its sends and frees its slot (it does not throw). The common case
   * (no codec, the producer id known, the partition's broker connected over WebSocket) goes
   * without a promise or an async frame: the batch is stamped, built and sent at once, and
   * the connection hands its answer to a {@linkcode DirectSend} (see
   * {@linkcode Transport.produceDirect}); a failure goes on in {@linkcode #sendBatchAsync}.
   */
  #sendBatch(batch: ProducerBatch): void {
    if (this.#codecReady === undefined) {
      const idem = batch.acks === "0" ? null : this.#idem;
      let seq: BatchSequence | null = null;
      try {
        if (idem !== null) {
          seq = idem.assignNow(batch.topic, batch.partition, batch.builder.count, batch.key);
        }
      } catch {
        // Fenced: the general path fails the batch as it should.
      }
      if (idem === null || seq !== null) {
        const link = seq === null ? undefined : this.#chains.link(batch, seq);
        const body = batch.builder.build(seq ?? undefined);
        this.#streams ??= this.#t.useStreams();
        const send = new DirectSend(this.#directOwner, batch, seq, link, body);
        if (!this.#t.produceDirect(batch.topic, batch.partition, batch.acks, body, send)) {
          void this.#sendBatchAsync(batch, send, undefined);
        }
        return;
      }
    }
    void this.#sendBatchAsync(batch, undefined, undefined);
  }

  /** What a {@linkcode DirectSend} calls back (one per producer: no closure per batch). */
  readonly #directOwner: DirectOwner = {
    resolved: (send, answer) => this.#directResolved(send, answer),
    rejected: (send, error) => void this.#sendBatchAsync(send.batch, send, { error }),
  };

  /** A batch sent directly was acknowledged. */
  #directResolved(send: DirectSend, answer: unknown): void {
    const { batch, seq } = send;
    let ok = false;
    try {
      this.#acknowledge(batch, seq, answer);
      ok = true;
    } catch (e) {
      this.#failBatch(batch, seq, e);
    } finally {
      this.#release(batch, send.link, ok);
    }
  }

  /**
   * Sends a batch with the retry machinery. `made`: the batch stamped and built already (by
   * {@linkcode #sendBatch}); `first`: its first attempt's failure, to go on from.
   */
  async #sendBatchAsync(
    batch: ProducerBatch,
    made: DirectSend | undefined,
    first: { error: unknown } | undefined,
  ): Promise<void> {
    const idem = batch.acks === "0" ? null : this.#idem;
    let seq: BatchSequence | null = made?.seq ?? null;
    let link: InFlightLink | undefined = made?.link;
    let ok = false;
    try {
      let body: Uint8Array;
      if (made !== undefined) body = made.body;
      else {
        const count = batch.builder.count;
        if (idem) {
          seq = idem.assignNow(batch.topic, batch.partition, count, batch.key) ??
            await idem.assign(batch.topic, batch.partition, count);
          link = this.#chains.link(batch, seq);
        }
        body = batch.builder.build(seq ?? undefined);
        if (this.#codecReady !== undefined) {
          await this.#codecReady;
          body = compressBatch(body, this.#compression);
        }
        this.#streams ??= this.#t.useStreams();
      }
      // The first attempt straight; the retry machinery only once it failed.
      const produce = () => this.#t.produce(batch.topic, batch.partition, batch.acks, body);
      let answer: unknown;
      for (;;) {
        try {
          try {
            if (first !== undefined) {
              // A direct first attempt failed: go on from there as produce() would.
              const { error } = first;
              first = undefined;
              answer = await this.#t.produceAfter(batch.topic, batch.partition, batch.acks, body, {
                error,
                base: made!.base,
                routed: made!.routed,
              });
            } else answer = await produce();
          } catch (failed) {
            answer = await retryAfter(failed, produce, this.#t.retry, this.#retryHooks(batch));
          }
          break;
        } catch (e) {
          // Refused as out of order while earlier batches of the partition are unresolved:
          // it overtook one of them. Resend it once they all succeeded.
          if (!(e instanceof RillError && e.code === "OUT_OF_ORDER_SEQUENCE_NUMBER")) throw e;
          if (link === undefined) throw e;
          const earlier = this.#chains.earlier(link);
          if (earlier.length === 0) {
            // Earlier ones were acknowledged since this attempt went out (a resend after a
            // broken connection overtook theirs): send it again, once per new acknowledgement.
            const acked = this.#chains.get(link.key)?.acked ?? 0;
            if (acked === link.ackedBefore) throw e;
            link.ackedBefore = acked;
            continue;
          }
          const results = await Promise.all(earlier.map(whenSettled));
          if (!results.every((r) => r)) {
            throw new RillError(
              "OUT_OF_ORDER_SEQUENCE_NUMBER",
              `An earlier batch of ${batch.topic}-${batch.partition} failed for good, so this one (sequence ${
                seq!.baseSequence
              }) was not written either, to keep the partition's order`,
              e.details,
            );
          }
        }
      }
      this.#acknowledge(batch, seq, answer);
      ok = true;
    } catch (e) {
      this.#failBatch(batch, seq, e);
    } finally {
      this.#release(batch, link, ok);
    }
  }

  /** Settles an acknowledged batch's sends with their offsets (throws on an answer without). */
  #acknowledge(batch: ProducerBatch, seq: BatchSequence | null, answer: unknown): void {
    // The WebSocket answer (and HTTP's minimal one) names the first offset: the rest follow,
    // without offsetsOf's closures.
    const b = answer as { offsets?: unknown; baseOffset?: unknown } | null;
    const base = b !== null && b.offsets === undefined && b.baseOffset !== undefined
      ? brokerOffset(b.baseOffset, "baseOffset")
      : -1;
    const offsets = base < 0 ? offsetsOf(answer, batch.builder.count, batch) : undefined;
    if (seq !== null) this.#idem!.acknowledged(batch.topic, batch.partition, seq, batch.key);
    let r = 0;
    for (const run of batch.runs) {
      for (let j = 0; j < run.count; j++) {
        run.sink.done(run.firstIndex + j, batch.partition, offsets ? offsets(r++) : base + r++);
      }
    }
  }

  /** Fails a batch's sends for good. */
  #failBatch(batch: ProducerBatch, seq: BatchSequence | null, e: unknown): void {
    if (e instanceof RillError && e.code === "UNKNOWN_TOPIC_OR_PARTITION") {
      this.#meta.invalidate(batch.topic);
    }
    const error = seq !== null
      ? this.#idem!.failed(batch.topic, batch.partition, seq, batch.builder.count, e)
      : e;
    for (const run of batch.runs) run.sink.fail(error);
  }

  /** A batch's request is over: its slot is free, and the next batch (of its partition too) may go. */
  #release(batch: ProducerBatch, link: InFlightLink | undefined, ok: boolean): void {
    if (link !== undefined) this.#chains.unlink(link, ok);
    this.#acc.recycle(batch);
    this.#inFlight--;
    this.#acc.unmute(batch.topic, batch.partition, batch.key);
    this.#drain();
  }

  /** How a batch's produce is retried: a refusal naming no leader refreshes the metadata. */
  #retryHooks(batch: ProducerBatch): RetryHooks {
    return {
      onRetry: (e) => {
        if (
          e instanceof RillError &&
          (e.code === "NOT_LEADER_OR_FOLLOWER" || e.code === "LEADER_NOT_AVAILABLE")
        ) this.#meta.invalidate(batch.topic);
      },
    };
  }
}

/**
 * Reads the offsets of a produce answer: `{"offsets":[{partition, offset}…]}` one per
 * record, or `{"baseOffset"}` (or only a first offset) from which the rest follow; null
 * (acks=0) gives -1 for every record.
 */
function offsetsOf(body: unknown, n: number, batch: ProducerBatch): (i: number) => number {
  if (body === null) return () => -1;
  const b = body as { offsets?: unknown[]; baseOffset?: unknown };
  const at = (o: unknown) =>
    brokerOffset(
      typeof o === "object" && o !== null ? (o as { offset?: unknown }).offset : o,
      "offset",
    );
  if (Array.isArray(b.offsets) && b.offsets.length === n) {
    const first = at(b.offsets[0]);
    const last = at(b.offsets[n - 1]);
    // Offsets of one batch are consecutive: check both ends, compute the middle.
    if (last - first === n - 1) return (i) => first + i;
    return (i) => at(b.offsets![i]);
  }
  let base: number | undefined;
  if (b.baseOffset !== undefined) base = brokerOffset(b.baseOffset, "baseOffset");
  else if (Array.isArray(b.offsets) && b.offsets.length > 0) base = at(b.offsets[0]);
  if (base === undefined) {
    throw new RillError(
      "UNKNOWN_SERVER_ERROR",
      `The broker acknowledged ${n} records on "${batch.topic}-${batch.partition}" without offsets`,
    );
  }
  return (i) => base + i;
}
