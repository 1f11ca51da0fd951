/**
 * The client side of idempotent producing (Kafka's `TransactionManager`, idempotence part):
 * the producer id and epoch, and the next sequence number of every partition.
 *
 * - The identity comes from `POST /v1/producers` on first use (with `producerKey`, the
 *   key's id with a new epoch).
 * - Each batch takes the partition's next sequence when it is first sent; its bytes, built
 *   once, are what every retry sends, so the leader can recognise a retry of a batch it
 *   already appended (it answers with the original offsets).
 * - Up to `maxInFlightRequests` (at most 5, the leader's window of remembered batches)
 *   batches of one partition may be in flight, but only once a batch of the current
 *   identity was acknowledged on that partition ({@linkcode IdempotentProducer.warm}):
 *   until then the leader may have no state for the producer and would accept a batch
 *   that overtook its predecessor at any sequence. The leader holds a batch that arrives
 *   ahead of its predecessor for a moment; if it still refuses it as
 *   OUT_OF_ORDER_SEQUENCE_NUMBER while an earlier batch of the partition is unresolved, the
 *   producer resends it once the earlier ones succeeded, and fails it if one of them failed;
 *   if one was acknowledged since the batch was stamped (a resend after a broken connection
 *   overtook that one's), it sends it again, once per such acknowledgement.
 * - A batch that failed for good either surely was not appended (the broker refused it with
 *   a 4xx answer such as MESSAGE_TOO_LARGE): its sequence numbers are handed out again; or
 *   its fate is unknown (retries used up on an unreachable broker), or the broker reported
 *   OUT_OF_ORDER_SEQUENCE_NUMBER: the producer then takes a new identity (new epoch for a
 *   key, else a new id) so later batches start cleanly at sequence 0 (KIP-360's idea), and
 *   the affected sends fail with a clear error rather than being reordered silently.
 * - INVALID_PRODUCER_EPOCH means a newer instance with the same `producerKey` exists: the
 *   producer is fenced, and every later send fails.
 * - A producer with a `producerKey` never skips: any batch that failed for good makes every
 *   later send fail too (like fencing), so that each partition holds a gap-free prefix of
 *   what was sent (the streams API relies on it; its tasks restart from their last commit).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { Transport } from "./transport.ts";

/** A batch's producer fields. */
export interface BatchSequence {
  /** the producer id */
  producerId: number;
  /** the producer epoch */
  producerEpoch: number;
  /** the sequence number of the batch's first record */
  baseSequence: number;
}

const INT32_MAX = 0x7fffffff;

/**
 * Identity and sequence numbers of one idempotent producer.
 *
 * @example
 * ```ts
 * const idem = new IdempotentProducer(transport);
 * const seq = await idem.assign("orders", 0, 10); // { producerId, producerEpoch, baseSequence: 0 }
 * ```
 */
export class IdempotentProducer {
  readonly #t: Transport;
  readonly #key: string | undefined;
  #identity: Promise<{ producerId: number; producerEpoch: number }> | null = null;
  /** sequences belong to this identity */
  #current: { producerId: number; producerEpoch: number } | null = null;
  readonly #next = new Map<string, number>();
  /** partitions where a batch of the current identity was acknowledged */
  readonly #acked = new Set<string>();
  #fenced: RillError | null = null;

  /**
   * @param transport the client's transport
   * @param producerKey the stable key, if any
   */
  constructor(transport: Transport, producerKey?: string) {
    this.#t = transport;
    this.#key = producerKey;
  }

  /**
   * The producer id and epoch (allocated on first use).
   *
   * @returns the identity
   * @throws {RillError} when the broker cannot allocate one
   */
  identity(): Promise<{ producerId: number; producerEpoch: number }> {
    if (this.#identity === null) {
      const p = this.#t.json<{ producerId: number; producerEpoch: number }>(
        "POST",
        "/v1/producers",
        { json: this.#key === undefined ? {} : { producerKey: this.#key } },
      ).then((id) => {
        if (!Number.isSafeInteger(id?.producerId) || !Number.isInteger(id?.producerEpoch)) {
          throw new RillError("UNKNOWN_SERVER_ERROR", "The broker answered without a producer id");
        }
        this.#current = { producerId: id.producerId, producerEpoch: id.producerEpoch };
        this.#next.clear();
        this.#acked.clear();
        return this.#current;
      });
      p.catch(() => {
        if (this.#identity === p) this.#identity = null;
      });
      this.#identity = p;
    }
    return this.#identity;
  }

  /**
   * Throws if a newer instance fenced this producer.
   *
   * @throws {RillError} INVALID_PRODUCER_EPOCH
   */
  checkNotFenced(): void {
    if (this.#fenced) throw this.#fenced;
  }

  /**
   * Gives a batch of `count` records its producer fields and moves the partition's
   * sequence on.
   *
   * @param topic the topic
   * @param partition the partition
   * @param count the records in the batch
   * @returns the fields to build the batch with
   */
  async assign(topic: string, partition: number, count: number): Promise<BatchSequence> {
    this.checkNotFenced();
    return this.#take(await this.identity(), topic, partition, count);
  }

  /**
   * As {@linkcode IdempotentProducer.assign}, without waiting: once the identity is known
   * (the usual case), a batch gets its fields in the same tick; before that, null.
   *
   * @param topic the topic
   * @param partition the partition
   * @param count the records in the batch
   * @param key `topic + "\u0000" + partition`, if at hand
   * @returns the fields to build the batch with, or null if the identity is not known yet
   * @throws {RillError} when the producer was fenced
   * @example
   * ```ts
   * const seq = idem.assignNow("orders", 0, 10) ?? await idem.assign("orders", 0, 10);
   * ```
   */
  assignNow(
    topic: string,
    partition: number,
    count: number,
    key = topic + "\u0000" + partition,
  ): BatchSequence | null {
    this.checkNotFenced();
    const id = this.#current;
    return id === null ? null : this.#take(id, topic, partition, count, key);
  }

  /**
   * Whether a batch of the current identity was acknowledged on the partition, so that
   * the leader checks this producer's sequences there (and several batches may be in
   * flight).
   *
   * @param topic the topic
   * @param partition the partition
   * @param key `topic + "\u0000" + partition`, if at hand
   * @returns true once a batch was acknowledged there
   * @example
   * ```ts
   * const limit = idem.warm("orders", 0) ? 5 : 1;
   * ```
   */
  warm(topic: string, partition: number, key = topic + "\u0000" + partition): boolean {
    return this.#current !== null && this.#acked.has(key);
  }

  /**
   * Notes that a batch was acknowledged.
   *
   * @param topic the topic
   * @param partition the partition
   * @param seq the batch's producer fields
   * @param key `topic + "\u0000" + partition`, if at hand
   */
  acknowledged(
    topic: string,
    partition: number,
    seq: BatchSequence,
    key = topic + "\u0000" + partition,
  ): void {
    const id = this.#current;
    if (id !== null && id.producerId === seq.producerId && id.producerEpoch === seq.producerEpoch) {
      this.#acked.add(key);
    }
  }

  #take(
    id: { producerId: number; producerEpoch: number },
    topic: string,
    partition: number,
    count: number,
    k = topic + "\u0000" + partition,
  ): BatchSequence {
    const base = this.#next.get(k) ?? 0;
    const after = base + count;
    this.#next.set(k, after > INT32_MAX ? after - INT32_MAX - 1 : after);
    return { producerId: id.producerId, producerEpoch: id.producerEpoch, baseSequence: base };
  }

  /**
   * Settles the sequence state after a batch failed for good, and says why in the error.
   *
   * @param topic the topic
   * @param partition the partition
   * @param seq the batch's producer fields
   * @param count its records
   * @param error what the send failed with
   * @returns the error the batch's sends should fail with
   */
  failed(
    topic: string,
    partition: number,
    seq: BatchSequence,
    count: number,
    error: unknown,
  ): unknown {
    const sameIdentity = this.#current !== null &&
      this.#current.producerId === seq.producerId &&
      this.#current.producerEpoch === seq.producerEpoch;
    const where = `${topic}-${partition}`;
    if (error instanceof RillError && error.code === "INVALID_PRODUCER_EPOCH") {
      const fenced = new RillError(
        "INVALID_PRODUCER_EPOCH",
        `The producer (id ${seq.producerId}, epoch ${seq.producerEpoch}) was fenced on ${where} by a newer instance with the same producer key; it cannot send any more`,
        { producerId: seq.producerId, producerEpoch: seq.producerEpoch },
      );
      this.#fenced ??= fenced;
      return fenced;
    }
    if (this.#key !== undefined) {
      const fatal = new RillError(
        error instanceof RillError ? error.code : "UNKNOWN_SERVER_ERROR",
        `A batch of producer "${this.#key}" on ${where} failed for good (${
          error instanceof Error ? error.message : error
        }); the producer stops so that nothing is written after the gap`,
        error instanceof RillError ? error.details : {},
      );
      this.#fenced ??= fatal;
      return fatal;
    }
    if (!sameIdentity) return error;
    const k = topic + "\u0000" + partition;
    const notAppended = error instanceof RillError && error.status >= 400 && error.status < 500 &&
      error.code !== "OUT_OF_ORDER_SEQUENCE_NUMBER" && error.code !== "REQUEST_TIMED_OUT";
    if (notAppended && this.#next.get(k) === seq.baseSequence + count) {
      this.#next.set(k, seq.baseSequence);
      return error;
    }
    // Unknown outcome or a sequence gap: start over with a new identity.
    this.#identity = null;
    this.#current = null;
    this.#next.clear();
    this.#acked.clear();
    if (error instanceof RillError && error.code === "OUT_OF_ORDER_SEQUENCE_NUMBER") {
      return new RillError(
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        `The broker refused batch sequence ${seq.baseSequence} of producer ${seq.producerId} on ${where} as out of order (${error.message}); its ${count} record(s) were not written, and the producer starts over with a new identity`,
        error.details,
      );
    }
    return error;
  }
}
