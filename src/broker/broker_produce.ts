/**
 * The broker's produce path: JSON-born records (partitioned and encoded here) and raw
 * RecordBatch v2 bodies (checked, then appended as they are), each appended by the
 * partition's leader replica, waiting for the high watermark with `acks=all`; idempotent
 * batches that arrive ahead of their predecessor are held a while (sequence_holds.ts).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import {
  applyTopicCompression,
  checkProducedBatches,
  type ProducedBatches,
  stampLogAppendTime,
} from "./batch_checks.ts";
import {
  expectedSequence,
  isAheadOfSequence,
  SEQUENCE_HOLD_MS,
  SequenceHolds,
} from "./sequence_holds.ts";
import type { AppendResult, BatchPosition } from "../storage/mod.ts";
import { checkBatchKeys, checkRecordKeys } from "./compaction_checks.ts";
import {
  type Acks,
  assignPartitions,
  type BatchAppendResult,
  encodeRecords,
  type ProduceRecord,
  type RecordOffset,
  unknownPartition,
} from "./produce.ts";
import type { BrokerConfig } from "./config.ts";
import type { TopicState } from "./local_topics.ts";
import { TimeSlice } from "./time_slice.ts";
import type { PartitionLookup } from "./partition_lookup.ts";
import type { Replica } from "./replica.ts";

/** A produce's batches after the checks: what is appended, and what its answer says. */
interface PreparedBatches {
  /** the bytes to append (compressed as the topic says, LogAppendTime stamped) */
  body: Uint8Array;
  /** the checks' reading of the batches */
  checked: ProducedBatches;
  /** the LogAppendTime stamped, or -1 */
  logAppendTime: number;
  /**
   * the framing of `body`'s batches as the checks read it, for the log's append (so that it
   * does not walk them again); undefined when the body was recompressed or stamped
   */
  framed: BatchPosition[] | undefined;
}

/** What {@linkcode ProducePath} needs from its broker. */
export interface ProducePathContext {
  /** this broker's id */
  brokerId: number;
  /** the broker settings (ackTimeoutMs) */
  config: BrokerConfig;
  /** finds topics and replicas */
  lookup: PartitionLookup;
  /** whether the broker is shutting down */
  draining: () => boolean;
  /** keeps an append in flight until it settles (close waits for it) */
  track: <T>(p: Promise<T>) => Promise<T>;
  /** reports a line */
  log: (line: string) => void;
  /** refuses a produce while the disk is below its free-space floor (disk_space.ts) */
  checkDisk: () => void;
  /** told of each batch appended as leader (bytes, records), for metrics */
  onAppend?: (topic: string, bytes: number, records: number) => void;
}

/** Appends what producers send to the partitions this broker leads. */
export class ProducePath {
  readonly #c: ProducePathContext;
  /** idempotent batches that arrived before their predecessor (see sequence_holds.ts) */
  readonly #holds = new SequenceHolds();

  constructor(context: ProducePathContext) {
    this.#c = context;
  }

  /**
   * Produces JSON-born records: picks partitions (explicit, murmur2 of the key, or one
   * round-robin partition for the request's keyless records), encodes each partition's
   * records into batches within max.message.bytes and appends them together, atomically.
   *
   * @param topic the topic
   * @param records the records, in request order
   * @param acks 0, 1 or -1 (all)
   * @returns one offset per record in request order, or null for acks=0 (appended in the
   *   background after the request was validated)
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, MESSAGE_TOO_LARGE, NOT_ENOUGH_REPLICAS,
   *   NOT_LEADER_OR_FOLLOWER, BROKER_NOT_AVAILABLE (shutting down); nothing is appended
   */
  async produceRecords(
    topic: string,
    records: readonly ProduceRecord[],
    acks: Acks,
  ): Promise<RecordOffset[] | null> {
    this.#checkAccepting();
    this.#c.checkDisk();
    const state = await this.#c.lookup.topic(topic);
    if (state.compacted) checkRecordKeys(topic, records);
    // A request may hold 100,000 records: its work runs in turns on the event loop.
    const slice = new TimeSlice();
    const groups = await assignPartitions(state, records, slice);
    const leaders = new Map<number, Replica>();
    for (const p of groups.keys()) leaders.set(p, await this.#leader(state, p, acks));
    const now = Date.now();
    const work = [...groups].map(async ([p, indexes]) => {
      const batch = await encodeRecords(state, records, indexes, now, slice);
      const leader = leaders.get(p)!;
      const result = await leader.append(batch);
      this.#c.onAppend?.(topic, batch.length, indexes.length);
      if (acks === -1) {
        await leader.waitForCommit(
          result.lastOffset,
          this.#c.config.ackTimeoutMs,
          state.minInsyncReplicas,
        );
      }
      return { p, indexes, baseOffset: result.baseOffset };
    });
    const all = this.#c.track(Promise.all(work));
    if (acks === 0) {
      all.catch((e) => this.#c.log(`a produce with acks=0 to ${topic} failed: ${e}`));
      return null;
    }
    const out = new Array<RecordOffset>(records.length);
    for (const { p, indexes, baseOffset } of await all) {
      for (let j = 0; j < indexes.length; j++) {
        if ((j & 1023) === 0 && slice.due) await slice.yield();
        const i = indexes[j];
        out[i] = {
          partition: p,
          offset: baseOffset + j,
          timestamp: state.logAppendTime ? now : records[i].timestamp ?? now,
        };
      }
    }
    return out;
  }

  /**
   * Produces a body of raw RecordBatch v2 (as the client sends them) to one partition:
   * checked (CRC, layout, limits), then appended as is, all batches or none.
   *
   * @param topic the topic
   * @param partition the partition
   * @param body one or more concatenated batches (offsets are written into it in place)
   * @param acks 0, 1 or -1 (all)
   * @returns the offsets assigned, or null for acks=0
   * @throws {RillError} as {@linkcode produceRecords}, plus CORRUPT_MESSAGE, INVALID_RECORD,
   *   UNSUPPORTED_COMPRESSION_TYPE
   */
  produceBatches(
    topic: string,
    partition: number,
    body: Uint8Array,
    acks: Acks,
  ): Promise<BatchAppendResult | null> {
    try {
      const answer = this.produceBatchesNow(topic, partition, body, acks);
      return answer instanceof Promise ? answer : Promise.resolve(answer);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * {@linkcode produceBatches}, answered at once when it could be: the common case of a
   * single-record produce (acks=1 to a cached topic's partition led here, written
   * synchronously: Replica.appendNow) returns its answer with no promise or continuation;
   * any other returns the promise `produceBatches` would.
   *
   * @param topic the topic
   * @param partition the partition
   * @param body one or more concatenated batches (offsets are written into it in place)
   * @param acks 0, 1 or -1 (all)
   * @returns the offsets assigned (null for acks=0), or a promise of them
   * @throws {RillError} as {@linkcode produceBatches} rejects, for what the common case
   *   finds before writing
   */
  produceBatchesNow(
    topic: string,
    partition: number,
    body: Uint8Array,
    acks: Acks,
  ): BatchAppendResult | null | Promise<BatchAppendResult | null> {
    // The same checks as #produceBatches in the same order, without its async frame.
    const state = acks === 1 ? this.#c.lookup.cached(topic) : undefined;
    const leader = state !== undefined && partition < state.meta.partitions.length
      ? this.#leaderHere(state, partition, acks)
      : null;
    if (leader === null) return this.#produceBatches(topic, partition, body, acks);
    this.#checkAccepting();
    this.#c.checkDisk();
    const p = this.#prepare(state!, topic, body);
    // Written synchronously (the log's writer idle, a small append): answered with no
    // continuation between the append and the answer.
    const appended = this.#appendNow(leader, p, topic, partition);
    return appended instanceof Promise
      ? appended.then((result) => this.#answer(p, topic, partition, result))
      : this.#answer(p, topic, partition, appended);
  }

  /**
   * Appends prepared batches, answered at once when written synchronously (Replica.appendNow),
   * else as a promise. An idempotent batch goes through its producer's sequence checks: one
   * that arrived ahead of its predecessor (its sequence past the expected one, same epoch) is
   * held until another batch of its producer lands on the partition, or at most
   * {@linkcode SEQUENCE_HOLD_MS}, and then checked again (see sequence_holds.ts,
   * {@linkcode #retryInSequence}); other appends to the partition go on meanwhile.
   *
   * @throws {RillError} what a plain (not idempotent) append finds before writing
   */
  #appendNow(
    leader: Replica,
    p: PreparedBatches,
    topic: string,
    partition: number,
  ): AppendResult | Promise<AppendResult> {
    // The header read by the checks (the fields read here are not changed by compression
    // or the LogAppendTime stamp).
    const header = p.checked.batches.length === 1 ? p.checked.headers[0] : null;
    if (header === null || header.producerId < 0 || header.baseSequence < 0) {
      const result = leader.appendNow(p.body, p.framed);
      return result instanceof Promise ? this.#c.track(result) : result;
    }
    let result: AppendResult | Promise<AppendResult>;
    try {
      result = leader.appendNow(p.body, p.framed);
    } catch (e) {
      return this.#c.track(this.#retryInSequence(leader, p.body, topic, partition, header, e));
    }
    if (result instanceof Promise) {
      return this.#c.track(result.then(
        (r) => {
          if (!r.duplicate) this.#landed(topic, partition, header.producerId);
          return r;
        },
        (e) => this.#retryInSequence(leader, p.body, topic, partition, header, e),
      ));
    }
    if (!result.duplicate) this.#landed(topic, partition, header.producerId);
    return result;
  }

  /** {@linkcode produceBatches}, any case. */
  async #produceBatches(
    topic: string,
    partition: number,
    body: Uint8Array,
    acks: Acks,
  ): Promise<BatchAppendResult | null> {
    this.#checkAccepting();
    this.#c.checkDisk();
    // A single-record produce costs tens of µs here (the WebSocket and HTTP record lanes):
    // a topic in the cache and a partition led here are taken without a turn of the event
    // loop each.
    const state = this.#c.lookup.cached(topic) ?? await this.#c.lookup.topic(topic);
    const count = state.meta.partitions.length;
    if (partition >= count) throw unknownPartition(topic, partition, count);
    const leader = this.#leaderHere(state, partition, acks) ??
      await this.#leader(state, partition, acks);
    const p = this.#prepare(state, topic, body);
    const append = this.#append(leader, p, topic, partition);
    if (acks === 0) {
      append.then(
        (r) => {
          if (!r.duplicate) this.#c.onAppend?.(topic, p.body.length, p.checked.recordCount);
        },
        (e) => this.#c.log(`a produce with acks=0 to ${topic} failed: ${e}`),
      );
      return null;
    }
    const result = await append;
    if (acks === -1) {
      await leader.waitForCommit(
        result.lastOffset,
        this.#c.config.ackTimeoutMs,
        state.minInsyncReplicas,
      );
    }
    return this.#answer(p, topic, partition, result);
  }

  /** A produce's batches checked, compressed as the topic says and stamped, ready to append. */
  #prepare(state: TopicState, topic: string, body: Uint8Array): PreparedBatches {
    const checked = checkProducedBatches(body, state.maxMessageBytes);
    if (state.compacted) checkBatchKeys(topic, checked.plain);
    const sent = body;
    body = applyTopicCompression(checked, body, state.compression);
    let logAppendTime = -1;
    if (state.logAppendTime) {
      logAppendTime = Date.now();
      for (const b of checked.batches) stampLogAppendTime(b, logAppendTime);
    }
    const framed = body === sent && logAppendTime === -1 ? framingOf(body, checked) : undefined;
    return { body, checked, logAppendTime, framed };
  }

  /** {@linkcode #appendNow}, always as a promise. */
  #append(
    leader: Replica,
    p: PreparedBatches,
    topic: string,
    partition: number,
  ): Promise<AppendResult> {
    try {
      const result = this.#appendNow(leader, p, topic, partition);
      return result instanceof Promise ? result : Promise.resolve(result);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The answer of an appended produce (counted unless it was a duplicate). */
  #answer(
    p: PreparedBatches,
    topic: string,
    partition: number,
    result: AppendResult,
  ): BatchAppendResult {
    if (!result.duplicate) this.#c.onAppend?.(topic, p.body.length, p.checked.recordCount);
    return {
      partition,
      baseOffset: result.baseOffset,
      lastOffset: result.lastOffset,
      recordCount: p.checked.recordCount,
      logAppendTime: p.logAppendTime,
    };
  }

  /** Wakes the batches of a producer held on a partition, if any are held. */
  #landed(topic: string, partition: number, producerId: number): void {
    if (this.#holds.size > 0) this.#holds.appended(SequenceHolds.key(topic, partition, producerId));
  }

  /** {@linkcode #appendNow}'s sequence checks after a first try failed with `first`. */
  async #retryInSequence(
    leader: Replica,
    body: Uint8Array,
    topic: string,
    partition: number,
    batch: { producerId: number; producerEpoch: number; baseSequence: number },
    first: unknown,
  ): Promise<AppendResult> {
    const key = SequenceHolds.key(topic, partition, batch.producerId);
    const deadline = Date.now() + SEQUENCE_HOLD_MS;
    let failure: unknown = first;
    for (;;) {
      if (failure === undefined) {
        try {
          const result = await leader.append(body);
          if (!result.duplicate) this.#holds.appended(key);
          return result;
        } catch (e) {
          failure = e;
        }
      }
      const e = failure;
      failure = undefined;
      const left = deadline - Date.now();
      if (left <= 0 || this.#c.draining() || !isAheadOfSequence(e, batch.baseSequence)) throw e;
      // A batch of the producer may have landed since the check: if so, try again now.
      const expected = expectedSequence(
        leader.log.producerState(batch.producerId),
        batch.producerEpoch,
      );
      if (expected !== (e as RillError).details.expectedSequence) continue;
      const woken = this.#holds.wait(key, left);
      if (woken === null) throw e;
      await woken;
    }
  }

  /** The partition's replica when it leads here with enough in-sync replicas, else null. */
  #leaderHere(state: TopicState, partition: number, acks: Acks): Replica | null {
    const replica = state.replicas[partition];
    if (
      !replica || state.meta.partitions[partition].leader !== this.#c.brokerId ||
      replica.role !== "leader" ||
      (acks === -1 && replica.isr.length < state.minInsyncReplicas)
    ) return null;
    return replica;
  }

  async #leader(state: TopicState, partition: number, acks: Acks): Promise<Replica> {
    const p = state.meta.partitions[partition];
    const replica = state.replicas[partition];
    if (!replica || p.leader !== this.#c.brokerId || replica.role !== "leader") {
      throw await this.#c.lookup.notLeader(state, partition);
    }
    const isr = replica.isr.length;
    if (acks === -1 && isr < state.minInsyncReplicas) {
      throw new RillError(
        "NOT_ENOUGH_REPLICAS",
        `Partition ${replica.name} has ${isr} in-sync replica(s), fewer than min.insync.replicas (${state.minInsyncReplicas})`,
        { isr: [...replica.isr], minInsyncReplicas: state.minInsyncReplicas },
      );
    }
    return replica;
  }

  #checkAccepting(): void {
    if (this.#c.draining()) {
      throw new RillError("BROKER_NOT_AVAILABLE", `Broker ${this.#c.brokerId} is shutting down`);
    }
  }
}

/**
 * The framing of checked batches, from the headers the checks read (what the log's append
 * would read from the bytes again): `body` must hold exactly `checked.batches`.
 */
function framingOf(body: Uint8Array, checked: ProducedBatches): BatchPosition[] {
  const { batches, headers } = checked;
  const out = new Array<BatchPosition>(batches.length);
  for (let i = 0; i < batches.length; i++) {
    const h = headers[i];
    out[i] = {
      position: batches[i].byteOffset - body.byteOffset,
      size: batches[i].byteLength,
      baseOffset: h.baseOffset,
      lastOffset: h.baseOffset + h.lastOffsetDelta,
      maxTimestamp: h.maxTimestamp,
      attributes: h.attributes,
    };
  }
  return out;
}
