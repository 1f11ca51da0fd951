/**
 * The writer of a partition log: the queue of appends and exclusive operations, and the
 * group commit that writes whatever appends are queued when the previous write finished
 * with one write call (assigning offsets in place, checking idempotent producers' sequences,
 * recording new leader epochs, rolling the active segment when it is full or old).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, POS } from "../protocol/record_batch.ts";
import type { LogState } from "./log_state.ts";
import type { ProducerBatch } from "./producer_state.ts";
import { type BatchPosition, WRITTEN } from "./segment.ts";

/** The outcome of an append. */
export interface AppendResult {
  /** offset of the first record appended */
  baseOffset: number;
  /** offset of the last record appended */
  lastOffset: number;
  /** the largest maxTimestamp of the batches appended */
  maxTimestamp: number;
  /**
   * true if the batch was a retry of one of its producer's last 5 batches: nothing was
   * written, and the offsets are those the original got
   */
  duplicate?: boolean;
}

/** Options of {@linkcode PartitionLog.append}. */
export interface AppendOptions {
  /** write baseOffset (and the leader epoch) into each batch; default true */
  assignOffsets?: boolean;
  /** the partitionLeaderEpoch to write when assigning offsets; default -1 */
  leaderEpoch?: number;
  /**
   * the batches' framing as the caller read it while it checked them (the produce path's
   * checks read every header already), so that the bytes are not walked again; each entry
   * is changed in place as the append assigns offsets. Default: read from the bytes.
   */
  framed?: BatchPosition[];
}

interface PendingAppend {
  kind: "append";
  bytes: Uint8Array;
  batches: BatchPosition[];
  assignOffsets: boolean;
  leaderEpoch: number;
  /** the producer fields of an idempotent batch appended by the leader, else null */
  producer: ProducerBatch | null;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

interface PendingOp {
  kind: "op";
  run: () => Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** The most bytes one group commit writes with one call. */
const MAX_GROUP_BYTES = 16 * 1024 * 1024;
/** A group of at most this many bytes is copied into one buffer and written with one call. */
const COALESCE_BYTES = 64 * 1024;
const MAX_RELATIVE_OFFSET = 0x7fffffff;

function corrupt(message: string): RillError {
  return new RillError("CORRUPT_MESSAGE", message);
}

function readI64(view: DataView, pos: number): number {
  return view.getInt32(pos) * 4294967296 + view.getUint32(pos + 4);
}

/** The producer fields of the batch at `pos`, or null if it is not idempotent. */
function producerOf(view: DataView, b: BatchPosition): ProducerBatch | null {
  const producerId = readI64(view, b.position + POS.producerId);
  const baseSequence = view.getInt32(b.position + POS.baseSequence);
  if (producerId < 0 || baseSequence < 0) return null;
  return {
    producerId,
    producerEpoch: view.getInt16(b.position + POS.producerEpoch),
    baseSequence,
    lastOffsetDelta: b.lastOffset - b.baseOffset,
  };
}

/**
 * Reads the framing of the batches in `bytes` (no CRC: the caller validated them).
 *
 * @param bytes one or more whole batches
 * @returns each batch's position in `bytes`, offsets and max timestamp
 * @throws {RillError} CORRUPT_MESSAGE if the bytes are not whole v2 batches
 */
function frameBatches(bytes: Uint8Array): BatchPosition[] {
  if (bytes.length === 0) throw corrupt("Append needs at least one batch, got 0 bytes");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: BatchPosition[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const remain = bytes.length - pos;
    if (remain < BATCH_HEADER_SIZE) {
      throw corrupt(`Batch ${out.length} is cut short: ${remain} bytes, less than a header`);
    }
    const size = view.getInt32(pos + POS.batchLength) + LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE || size > remain) {
      throw corrupt(`Batch ${out.length} says it is ${size} bytes but ${remain} remain`);
    }
    if (bytes[pos + POS.magic] !== MAGIC_V2) {
      throw corrupt(`Batch ${out.length} has magic ${bytes[pos + POS.magic]}, only 2 is supported`);
    }
    const lastOffsetDelta = view.getInt32(pos + POS.lastOffsetDelta);
    if (lastOffsetDelta < 0) throw corrupt(`Batch ${out.length} has a negative lastOffsetDelta`);
    const baseOffset = view.getInt32(pos) * 4294967296 + view.getUint32(pos + 4);
    out.push({
      position: pos,
      size,
      baseOffset,
      lastOffset: baseOffset + lastOffsetDelta,
      maxTimestamp: view.getInt32(pos + POS.maxTimestamp) * 4294967296 +
        view.getUint32(pos + POS.maxTimestamp + 4),
      attributes: view.getInt16(pos + POS.attributes),
    });
    pos += size;
  }
  return out;
}

/** Appends and exclusive operations of one log, one at a time, in call order. */
export class LogWriter {
  readonly #s: LogState;
  #queue: (PendingAppend | PendingOp)[] = [];
  #draining = false;

  /** @param state the log's state */
  constructor(state: LogState) {
    this.#s = state;
  }

  /**
   * Appends whole RecordBatch v2 batches (already validated by the caller).
   *
   * With `assignOffsets` (the default) each batch's baseOffset becomes the log end offset at
   * the time it is written (consecutively) and its partitionLeaderEpoch `leaderEpoch`; the
   * buffer is changed in place. Without it (replication) the batches keep their offsets and
   * the first must start at the log end offset.
   *
   * Calls are written in the order they are made; those arriving while a write is in flight
   * go out together in one write call. The promise resolves after the write (and fsync, if
   * the flush policy is "always").
   *
   * Idempotent batches (producerId ≥ 0 and baseSequence ≥ 0): with assignOffsets, such a
   * batch must be appended alone, and is checked against the producer state (including the
   * appends queued before it) when its group is written: a retry of one of the producer's
   * last 5 batches resolves with the original's offsets and `duplicate: true`, and nothing
   * is written (see `producer_state.ts` for the rules). Without assignOffsets (a follower)
   * the state is updated without checks. A batch whose leader epoch (`leaderEpoch`, or each
   * batch's partitionLeaderEpoch without assignOffsets) is above the latest adds an entry
   * to the leader epoch cache.
   *
   * @param batches one or more whole batches, back to back
   * @param options offset assignment
   * @returns the offsets given to the first and last record, and the max timestamp (for a
   *   duplicate: the original's, with `duplicate: true`)
   * @throws {RillError} CORRUPT_MESSAGE if the bytes are not whole v2 batches (or, without
   *   assignOffsets, their offsets do not follow on), OFFSET_OUT_OF_RANGE if they do not
   *   start at the log end offset, INVALID_RECORD if an idempotent batch comes with other
   *   batches, OUT_OF_ORDER_SEQUENCE_NUMBER if its sequence does not follow on,
   *   INVALID_PRODUCER_EPOCH if its producer epoch is older than the known one,
   *   KAFKA_STORAGE_ERROR if the log is closed or failed
   */
  append(batches: Uint8Array, options: AppendOptions = {}): Promise<AppendResult> {
    try {
      const result = this.appendNow(batches, options);
      return result instanceof Promise ? result : Promise.resolve(result);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * {@linkcode append}, answered at once when it could be: a leader append that finds the
   * writer idle and is written synchronously (a small one: see LogSegment.append) returns its
   * result, with no promise or continuation (a single-record produce comes through here);
   * any other returns the promise `append` would.
   *
   * @param batches one or more whole batches, back to back
   * @param options offset assignment
   * @returns the result, or a promise of it
   * @throws {RillError} as {@linkcode append} rejects, for what is found before writing
   */
  appendNow(
    batches: Uint8Array,
    options: AppendOptions = {},
  ): AppendResult | Promise<AppendResult> {
    this.#s.checkOpen();
    const framed = options.framed ?? frameBatches(batches);
    const assignOffsets = options.assignOffsets ?? true;
    let producer: ProducerBatch | null = null;
    if (assignOffsets) {
      const view = new DataView(batches.buffer, batches.byteOffset, batches.byteLength);
      for (const b of framed) {
        const p = producerOf(view, b);
        if (p === null) continue;
        if (framed.length > 1) {
          throw new RillError(
            "INVALID_RECORD",
            `An idempotent batch (producer ${p.producerId}) must be appended alone, not with ${
              framed.length - 1
            } other batches`,
          );
        }
        producer = p;
      }
    } else {
      for (let i = 1; i < framed.length; i++) {
        if (framed[i].baseOffset !== framed[i - 1].lastOffset + 1) {
          throw corrupt(
            `Batch ${i} starts at offset ${framed[i].baseOffset}, not ${
              framed[i - 1].lastOffset + 1
            }`,
          );
        }
      }
    }
    const leaderEpoch = options.leaderEpoch ?? -1;
    if (
      assignOffsets && !this.#draining && this.#queue.length === 0 &&
      leaderEpoch <= this.#s.epochs.latestEpoch && this.#s.config.flush.mode !== "always"
    ) return this.#appendAlone(batches, framed, leaderEpoch, producer);
    return new Promise<AppendResult>((resolve, reject) => {
      this.#enqueue({
        kind: "append",
        bytes: batches,
        batches: framed,
        assignOffsets,
        leaderEpoch,
        producer,
        resolve,
        reject,
      });
    });
  }

  /**
   * A leader append that finds the writer idle (nothing queued or being written), no new
   * leader epoch to checkpoint and no fsync per write: what {@linkcode #writeGroup} does for
   * a group of one, without the queue entry, the drain loop's and the group's async frames,
   * arrays and promise executor (a single-record produce comes through here). Written
   * synchronously (a small write), it returns the result itself, with no promise; a
   * duplicate of an idempotent batch likewise.
   */
  #appendAlone(
    bytes: Uint8Array,
    framed: BatchPosition[],
    leaderEpoch: number,
    producer: ProducerBatch | null,
  ): AppendResult | Promise<AppendResult> {
    if (producer !== null) {
      // A gap or an old epoch: thrown to the caller.
      const original = this.#s.producers.check(producer);
      if (original !== null) {
        return {
          baseOffset: original.baseOffset,
          lastOffset: original.lastOffset,
          maxTimestamp: original.maxTimestamp,
          duplicate: true,
        };
      }
    }
    const now = this.#s.now();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const baseOffset = this.#s.logEndOffset;
    let next = baseOffset;
    let maxTimestamp = -1;
    for (let i = 0; i < framed.length; i++) {
      const b = framed[i];
      const delta = b.lastOffset - b.baseOffset;
      view.setInt32(b.position, Math.floor(next / 4294967296));
      view.setUint32(b.position + 4, next >>> 0);
      view.setInt32(b.position + POS.partitionLeaderEpoch, leaderEpoch);
      b.baseOffset = next;
      b.lastOffset = next + delta;
      next = b.lastOffset + 1;
      if (b.maxTimestamp > maxTimestamp) maxTimestamp = b.maxTimestamp;
    }
    const result: AppendResult = { baseOffset, lastOffset: next - 1, maxTimestamp };
    let written: Promise<void>;
    try {
      this.#maybeRoll(bytes.length, framed[0].maxTimestamp, next - 1);
      this.#s.writeCalls++;
      written = this.#s.segments.last()!.append(bytes, framed, this.#s.now());
    } catch (e) {
      throw this.#storageFailure(e);
    }
    // The writer stays busy until the write's promise settles (for a small write, done
    // already: the next microtask), as a group's does: appends made meanwhile queue up and
    // go out together in one write (group commit).
    this.#draining = true;
    if (written === WRITTEN) {
      // Written synchronously: answered now, the writer free again a microtask later.
      if (producer !== null) {
        this.#s.producers.recordWritten(producer, baseOffset, framed[0].maxTimestamp, now);
      }
      queueMicrotask(this.#resumeNow);
      return result;
    }
    return written.then(() => {
      // As a group's txn would (an idempotent batch is appended alone: one batch).
      if (producer !== null) {
        this.#s.producers.recordWritten(producer, baseOffset, framed[0].maxTimestamp, now);
      }
      this.#resume();
      return result;
    }, (e) => {
      const err = this.#storageFailure(e);
      this.#resume();
      throw err;
    });
  }

  /** {@linkcode #resume}, bound once (queued after each synchronous write). */
  readonly #resumeNow = () => this.#resume();

  /** The writer is free again: writes what queued meanwhile. */
  #resume(): void {
    this.#draining = false;
    if (this.#queue.length > 0) void this.#drain();
  }

  /** Fails the log after a write error; the error appends are rejected with. */
  #storageFailure(e: unknown): RillError {
    this.#s.fail(e);
    return new RillError(
      "KAFKA_STORAGE_ERROR",
      `Cannot append to "${this.#s.name}": ${(e as Error)?.message ?? e}`,
    );
  }

  #enqueue(task: PendingAppend | PendingOp): void {
    this.#queue.push(task);
    if (!this.#draining) void this.#drain();
  }

  exclusive(run: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.#enqueue({ kind: "op", run, resolve, reject })
    );
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#queue.length > 0) {
        const head = this.#queue[0];
        if (head.kind === "op") {
          this.#queue.shift();
          try {
            await head.run();
            head.resolve();
          } catch (e) {
            head.reject(e);
          }
          continue;
        }
        const group: PendingAppend[] = [];
        let bytes = 0;
        while (this.#queue.length > 0 && this.#queue[0].kind === "append") {
          const next = this.#queue[0] as PendingAppend;
          if (group.length > 0 && bytes + next.bytes.length > MAX_GROUP_BYTES) break;
          if (
            group.length > 0 &&
            this.#s.segments.last()!.size + bytes + next.bytes.length > this.#s.config.segmentBytes
          ) break;
          group.push(next);
          this.#queue.shift();
          bytes += next.bytes.length;
        }
        await this.#writeGroup(group, bytes);
      }
    } finally {
      this.#draining = false;
    }
  }

  async #writeGroup(group: PendingAppend[], bytes: number): Promise<void> {
    try {
      this.#s.checkOpen();
    } catch (e) {
      for (const a of group) a.reject(e);
      return;
    }
    // Assign or check offsets, in queue order, against the log end offset; check idempotent
    // batches against the producer state as it will be after the appends before them.
    const accepted: PendingAppend[] = [];
    const results: AppendResult[] = [];
    const duplicates: { a: PendingAppend; result: AppendResult }[] = [];
    const txn = this.#s.producers.begin();
    const now = this.#s.now();
    const newEpochs: { epoch: number; startOffset: number }[] = [];
    let latestEpoch = this.#s.epochs.latestEpoch;
    let next = this.#s.logEndOffset;
    for (const a of group) {
      const first = a.batches[0];
      if (a.producer !== null) {
        let original;
        try {
          original = txn.check(a.producer);
        } catch (e) {
          bytes -= a.bytes.length;
          a.reject(e);
          continue;
        }
        if (original !== null) {
          bytes -= a.bytes.length;
          duplicates.push({
            a,
            result: {
              baseOffset: original.baseOffset,
              lastOffset: original.lastOffset,
              maxTimestamp: original.maxTimestamp,
              duplicate: true,
            },
          });
          continue;
        }
      }
      if (!a.assignOffsets && first.baseOffset !== next) {
        bytes -= a.bytes.length;
        a.reject(
          new RillError(
            first.baseOffset > next ? "OFFSET_OUT_OF_RANGE" : "CORRUPT_MESSAGE",
            `Cannot append batches at offset ${first.baseOffset} to "${this.#s.name}": its log end offset is ${next}`,
            { logStartOffset: this.#s.logStartOffset, logEndOffset: next },
          ),
        );
        continue;
      }
      const view = new DataView(a.bytes.buffer, a.bytes.byteOffset, a.bytes.byteLength);
      let maxTimestamp = -1;
      const baseOffset = next;
      for (const b of a.batches) {
        if (a.assignOffsets) {
          const delta = b.lastOffset - b.baseOffset;
          view.setInt32(b.position, Math.floor(next / 4294967296));
          view.setUint32(b.position + 4, next >>> 0);
          view.setInt32(b.position + POS.partitionLeaderEpoch, a.leaderEpoch);
          b.baseOffset = next;
          b.lastOffset = next + delta;
          if (a.producer !== null) txn.record(a.producer, b.baseOffset, b.maxTimestamp, now);
        } else {
          const epoch = view.getInt32(b.position + POS.partitionLeaderEpoch);
          if (epoch > latestEpoch) {
            newEpochs.push({ epoch, startOffset: b.baseOffset });
            latestEpoch = epoch;
          }
          const p = producerOf(view, b);
          if (p !== null) txn.record(p, b.baseOffset, b.maxTimestamp, now);
        }
        next = b.lastOffset + 1;
        if (b.maxTimestamp > maxTimestamp) maxTimestamp = b.maxTimestamp;
      }
      if (a.assignOffsets && a.leaderEpoch > latestEpoch) {
        newEpochs.push({ epoch: a.leaderEpoch, startOffset: baseOffset });
        latestEpoch = a.leaderEpoch;
      }
      accepted.push(a);
      results.push({ baseOffset, lastOffset: next - 1, maxTimestamp });
    }
    if (accepted.length === 0) {
      for (const d of duplicates) d.a.resolve(d.result);
      return;
    }
    try {
      if (newEpochs.length > 0) {
        // As Kafka: the epoch is checkpointed before its first batch is written; an entry
        // whose batch never made it is cut on open (the cache is truncated to the log end).
        for (const e of newEpochs) this.#s.epochs.assign(e.epoch, e.startOffset);
        await this.#s.epochs.flush();
      }
      this.#maybeRoll(bytes, accepted[0].batches[0].maxTimestamp, next - 1);
      const active = this.#s.segments.last()!;
      let parts: Uint8Array | Uint8Array[];
      let positions: BatchPosition[];
      if (accepted.length === 1) {
        parts = accepted[0].bytes;
        positions = accepted[0].batches;
      } else {
        // Large appends are written one after the other, not copied into one buffer: a copy
        // of a group of 1 MiB produce bodies cost more than the extra write calls. Small
        // ones (many producers' single records) are copied into one write: a write call
        // costs more than copying a few KiB.
        const coalesce = bytes <= COALESCE_BYTES;
        const joined = coalesce ? new Uint8Array(bytes) : null;
        parts = joined ?? [];
        positions = [];
        let at = 0;
        for (const a of accepted) {
          if (joined !== null) joined.set(a.bytes, at);
          else (parts as Uint8Array[]).push(a.bytes);
          for (const b of a.batches) positions.push({ ...b, position: b.position + at });
          at += a.bytes.length;
        }
      }
      this.#s.writeCalls++;
      await active.append(parts, positions, this.#s.now());
      if (this.#s.config.flush.mode === "always") await active.syncLog();
    } catch (e) {
      const err = this.#storageFailure(e);
      for (const a of accepted) a.reject(err);
      for (const d of duplicates) d.a.reject(err);
      return;
    }
    this.#s.producers.commit(txn);
    for (let i = 0; i < accepted.length; i++) accepted[i].resolve(results[i]);
    for (const d of duplicates) d.a.resolve(d.result);
  }

  #maybeRoll(incomingBytes: number, firstTimestamp: number, lastOffset: number): void {
    const active = this.#s.segments.last()!;
    if (active.isEmpty) return;
    const rollTs = active.rollTimestamp ?? firstTimestamp;
    // segment.ms counts from the segment's first append (see LogSegment.rollTimestamp).
    if (
      active.size + incomingBytes > this.#s.config.segmentBytes ||
      this.#s.now() - rollTs > this.#s.config.segmentMs ||
      lastOffset - active.baseOffset > MAX_RELATIVE_OFFSET
    ) this.#s.roll();
  }
}
