/**
 * The log of one partition replica (Kafka's `UnifiedLog`/`LocalLog`): a directory of
 * segments (`segment.ts`) with the offsets, rolling, retention, truncation, flushing and
 * group commit around them.
 *
 * Directory layout (see `file_names.ts`): `<baseOffset, 20 digits>.log|.index|.timeindex`
 * per segment, `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
 * `leader-epoch-checkpoint` (`leader_epoch_cache.ts`), producer state snapshots
 * `<offset, 20 digits>.snapshot` (`producer_state.ts`), the `.clean-shutdown` marker,
 * present only between a clean close and the next open, and `.lock`, locked (`flock`,
 * exclusive) while the log is open, so that a second process (or a second open in the same
 * process) fails at once instead of corrupting the log.
 *
 * State beside the segments: the leader epoch cache (an entry whenever a batch carries a
 * partitionLeaderEpoch above the latest) and the idempotent producer state (checked before
 * a leader append, in queue order, against the state including the appends of the same
 * group commit; a duplicate is answered with its original offsets and not written).
 *
 * Operations: `append` (leader: assign offsets; replica: keep the leader's), `read` /
 * `readSync`, `offsetForTimestamp`, `roll`, `flush`, `truncateTo` (remove the records at
 * and after an offset), `truncateFullyAndStartAt` (delete every segment and restart the log,
 * empty, at an offset: a follower behind the leader's log start), `deleteRecordsBefore`,
 * `applyRetention`, `settled`, `close`, `delete`.
 *
 * Writing: one writer per log. `append()` calls queue up; whatever is queued when the
 * previous write finishes goes out in one write call (group commit). Offsets are assigned
 * by writing each batch's baseOffset and partitionLeaderEpoch in place, when its group is
 * written. Readers see a batch only once its write has completed.
 *
 * Durability (`flush` policy): `"os"` (default) resolves an append once the bytes are in
 * the file (the write system call returned): a killed process loses nothing acknowledged;
 * an operating-system crash may lose what the OS had not written back. The recovery point
 * advances when data is known on disk: at each roll (the old segment is fsynced in the
 * background), `flush()` and `close()`. `"always"` fdatasyncs each group before its appends
 * resolve. `"interval"` fsyncs every `ms` milliseconds.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, POS } from "../protocol/record_batch.ts";
import { readCheckpoint, syncDir, writeCheckpoint } from "./checkpoint.ts";
import {
  CLEAN_SHUTDOWN_MARKER,
  joinPath,
  LOG_START_OFFSET_CHECKPOINT,
  RECOVERY_POINT_CHECKPOINT,
} from "./file_names.ts";
import { type EpochEndOffset, type EpochEntry, LeaderEpochCache } from "./leader_epoch_cache.ts";
import { loadLog, type RecoveryReport } from "./log_loader.ts";
import {
  buildOffsetMap,
  CLEANER_OFFSET_CHECKPOINT,
  cleanGroup,
  type CleaningSource,
  type CleanResult,
  DEFAULT_CLEANER_CONFIG,
  discardCleaned,
  groupForCleaning,
  installCleaned,
  planCleaning,
} from "./log_cleaner.ts";
import { loadLogState, loadProducerState, lockDir, unlockDir } from "./log_state_loader.ts";
import {
  DEFAULT_PRODUCER_ID_EXPIRATION_MS,
  type ProducerBatch,
  type ProducerStateEntry,
  ProducerStateManager,
} from "./producer_state.ts";
import { type BatchPosition, LogSegment, type ReadBuffer } from "./segment.ts";
import type { LogSegments } from "./segments.ts";

export type { RecoveryReport } from "./log_loader.ts";
export type { CleanResult } from "./log_cleaner.ts";

/** When appended data is fsynced. */
export type FlushPolicy = { mode: "always" } | { mode: "interval"; ms: number } | {
  mode: "os";
};

/** A log's settings (Kafka's topic configs of the same names). */
export interface LogConfig {
  /** roll the active segment before it would exceed this many bytes (segment.bytes) */
  segmentBytes: number;
  /**
   * roll the active segment once this many ms have passed since its first append (by the
   * log's clock; for a segment found on disk at open, since its first batch's timestamp, as
   * Kafka) (segment.ms)
   */
  segmentMs: number;
  /** delete closed segments whose newest record is older than this; -1 = keep (retention.ms) */
  retentionMs: number;
  /** delete oldest closed segments while the log is bigger than this; -1 = no limit */
  retentionBytes: number;
  /** bytes appended between two offset index entries (index.interval.bytes) */
  indexIntervalBytes: number;
  /** when to fsync */
  flush: FlushPolicy;
  /**
   * forget an idempotent producer whose newest batch's timestamp is older than this, when
   * retention is applied (producer.id.expiration.ms); default one day
   */
  producerIdExpirationMs?: number;
  /** keep only the latest record per key (cleanup.policy includes compact); default false */
  compact?: boolean;
  /** compact once dirty bytes / (clean + dirty bytes) reach this (min.cleanable.dirty.ratio); 0.5 */
  minCleanableDirtyRatio?: number;
  /** how long a tombstone is kept after its segment was first compacted (delete.retention.ms); 1 d */
  deleteRetentionMs?: number;
  /** a record is not compacted until its segment is this old (min.compaction.lag.ms); 0 */
  minCompactionLagMs?: number;
}

/** Kafka's defaults: 1 GiB segments, 7 days, no size limit, 4 KiB index interval, OS flush. */
export const DEFAULT_LOG_CONFIG: LogConfig = Object.freeze({
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * 24 * 60 * 60 * 1000,
  retentionMs: 7 * 24 * 60 * 60 * 1000,
  retentionBytes: -1,
  indexIntervalBytes: 4096,
  flush: Object.freeze({ mode: "os" }) as FlushPolicy,
});

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

/** The outcome of a read. */
export interface ReadResult {
  /** whole batches, the first holding the offset asked for (it may start before it) */
  bytes: Uint8Array;
  /** the offset after the last record returned (the offset asked for if none) */
  nextOffset: number;
}

/** Options of {@linkcode PartitionLog.read}. */
export interface ReadOptions {
  /** exclusive bound on the offsets returned (the high watermark); default the log end */
  maxOffset?: number;
  /**
   * where the bytes are read (a reused buffer, see segment.ts's ReadBuffer); default a new
   * buffer for each read
   */
  alloc?: ReadBuffer;
}

/** Options of {@linkcode PartitionLog.append}. */
export interface AppendOptions {
  /** write baseOffset (and the leader epoch) into each batch; default true */
  assignOffsets?: boolean;
  /** the partitionLeaderEpoch to write when assigning offsets; default -1 */
  leaderEpoch?: number;
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
const MAX_RELATIVE_OFFSET = 0x7fffffff;
const EMPTY = new Uint8Array(0);

function corrupt(message: string): RillError {
  return new RillError("CORRUPT_MESSAGE", message);
}

function checkConfig(config: LogConfig): void {
  const positive = (name: keyof LogConfig, v: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isSafeInteger(v) || v < 1 || v > max) {
      throw new RillError(
        "INVALID_CONFIG",
        `Log config ${name} must be an integer in 1..${max}, got ${v}`,
      );
    }
  };
  positive("segmentBytes", config.segmentBytes, 0x7fffffff);
  positive("segmentMs", config.segmentMs);
  positive("indexIntervalBytes", config.indexIntervalBytes, 0x7fffffff);
  if (config.producerIdExpirationMs !== undefined) {
    positive("producerIdExpirationMs", config.producerIdExpirationMs);
  }
  for (const name of ["retentionMs", "retentionBytes"] as const) {
    const v = config[name];
    if (!Number.isSafeInteger(v) || v < -1) {
      throw new RillError(
        "INVALID_CONFIG",
        `Log config ${name} must be -1 or a non-negative integer, got ${v}`,
      );
    }
  }
  const f = config.flush;
  if (!f || !["always", "interval", "os"].includes(f.mode)) {
    throw new RillError(
      "INVALID_CONFIG",
      `Log config flush.mode must be "always", "interval" or "os"`,
    );
  }
  if (f.mode === "interval" && (!Number.isSafeInteger(f.ms) || f.ms < 1)) {
    throw new RillError(
      "INVALID_CONFIG",
      `Log config flush.ms must be a positive integer, got ${f.ms}`,
    );
  }
}

/** The compaction settings a log's config sets (the others keep their defaults). */
function definedCleanerConfig(config: LogConfig): Partial<typeof DEFAULT_CLEANER_CONFIG> {
  const out: { -readonly [K in keyof typeof DEFAULT_CLEANER_CONFIG]?: number } = {};
  if (config.minCleanableDirtyRatio !== undefined) {
    out.minCleanableDirtyRatio = config.minCleanableDirtyRatio;
  }
  if (config.deleteRetentionMs !== undefined) out.deleteRetentionMs = config.deleteRetentionMs;
  if (config.minCompactionLagMs !== undefined) out.minCompactionLagMs = config.minCompactionLagMs;
  return out;
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

/**
 * The log of one partition replica.
 *
 * @example
 * ```ts
 * const log = await PartitionLog.open("/data/orders-0");
 * const { baseOffset } = await log.append(encodeBatch([{ value: bytes }]));
 * const { bytes: batches } = await log.read(baseOffset, 1 << 20);
 * await log.close();
 * ```
 */
export class PartitionLog {
  /** The log directory. */
  readonly dir: string;
  /** The current settings (change them with {@linkcode updateConfig}). */
  readonly config: LogConfig;
  /** What {@linkcode open} found and did. */
  readonly recovery: RecoveryReport;

  #name: string;
  #now: () => number;
  #segments: LogSegments;
  #logStartOffset: number;
  #recoveryPoint: number;
  #closedSize = 0;
  #queue: (PendingAppend | PendingOp)[] = [];
  #draining = false;
  #flushChain: Promise<void> = Promise.resolve();
  #checkpointChain: Promise<void> = Promise.resolve();
  #flushTimer: ReturnType<typeof setInterval> | undefined;
  #failure: unknown = null;
  #closed = false;
  #writeCalls = 0;
  #epochs: LeaderEpochCache;
  #producers: ProducerStateManager;
  #snapshotChain: Promise<void> = Promise.resolve();
  #lock: Deno.FsFile;
  /** the first dirty offset (cleaner checkpoint), read on the first compaction */
  #cleanerCheckpoint: number | null = null;
  #cleaning = false;

  private constructor(
    dir: string,
    config: LogConfig,
    now: () => number,
    loaded: Awaited<ReturnType<typeof loadLog>>,
    state: { epochs: LeaderEpochCache; producers: ProducerStateManager; lock: Deno.FsFile },
  ) {
    this.dir = dir;
    this.#epochs = state.epochs;
    this.#producers = state.producers;
    this.#lock = state.lock;
    this.config = config;
    this.#now = now;
    this.#name = dir.split("/").filter((p) => p !== "").pop() ?? dir;
    this.#segments = loaded.segments;
    this.#logStartOffset = loaded.logStartOffset;
    this.#recoveryPoint = loaded.recoveryPoint;
    this.recovery = loaded.recovery;
    this.#updateClosedSize();
    this.#startFlushTimer();
  }

  /**
   * Opens (or creates) the log in `dir`, recovering it if it was not closed cleanly.
   *
   * @param dir the log directory (created if missing)
   * @param config settings; missing ones take {@linkcode DEFAULT_LOG_CONFIG}
   * @param options `now`: the clock for segment.ms and retention.ms (tests inject one)
   * @returns the open log
   * @throws {RillError} INVALID_CONFIG if a setting is out of range, KAFKA_STORAGE_ERROR if
   *   the log is already open (its `.lock` is held by this or another process)
   */
  static async open(
    dir: string,
    config: Partial<LogConfig> = {},
    options: { now?: () => number } = {},
  ): Promise<PartitionLog> {
    const full: LogConfig = { ...DEFAULT_LOG_CONFIG, ...config };
    checkConfig(full);
    const now = options.now ?? Date.now;
    await Deno.mkdir(dir, { recursive: true });
    const lock = lockDir(dir);
    try {
      const loaded = await loadLog(dir, full);
      const messages: string[] = [];
      const state = await loadLogState(
        dir,
        loaded.segments,
        loaded.logStartOffset,
        loaded.recoveredFrom,
        now(),
        messages,
      );
      if (messages.length > 0) {
        const before = loaded.recovery.message;
        loaded.recovery.message = [...(before ? [before] : []), ...messages].join("; ");
      }
      return new PartitionLog(dir, full, now, loaded, { ...state, lock });
    } catch (e) {
      unlockDir(lock);
      throw e;
    }
  }

  /** The first offset that may be read. */
  get logStartOffset(): number {
    return this.#logStartOffset;
  }

  /**
   * Why the log failed and takes no more writes (an I/O error such as ENOSPC: a write may
   * have been cut short, so only a reopen through recovery makes it writable again), or null.
   */
  get failure(): string | null {
    if (this.#failure === null) return null;
    return (this.#failure as Error)?.message ?? String(this.#failure);
  }

  /** The offset the next appended record will get. */
  get logEndOffset(): number {
    return this.#segments.last()!.nextOffset;
  }

  /** Total bytes of all segments. */
  get size(): number {
    return this.#closedSize + this.#segments.last()!.size;
  }

  /** Every offset below it is known to be on disk (fsynced). */
  get recoveryPoint(): number {
    return this.#recoveryPoint;
  }

  /**
   * How many group commits (the writes of one group of appends, then its fsync if any) this
   * log has made since it was opened (for tests and metrics).
   */
  get writeCalls(): number {
    return this.#writeCalls;
  }

  /** The number of segments. */
  get segmentCount(): number {
    return this.#segments.length;
  }

  // ------------------------------------------------------------------ leader epochs, producers

  /**
   * The latest leader epoch appended in (from batches' partitionLeaderEpoch).
   *
   * @returns the epoch, or -1 if no batch carried one
   */
  latestEpoch(): number {
    return this.#epochs.latestEpoch;
  }

  /**
   * Kafka's OffsetsForLeaderEpoch: the largest epoch ≤ `epoch` this log knows and the
   * offset where it ended (the next epoch's start offset, or the log end offset for the
   * latest). A follower truncates to `min(endOffset, its own end for that epoch)`.
   *
   * @param epoch the leader epoch asked for
   * @returns the epoch and end offset; `{ epoch: -1, endOffset: -1 }` if unknown
   * @example
   * ```ts
   * await log.append(batch, { leaderEpoch: 1 }); // offsets 0..9
   * await log.append(batch, { leaderEpoch: 3 }); // offsets 10..19
   * log.endOffsetForEpoch(2); // { epoch: 1, endOffset: 10 }
   * log.endOffsetForEpoch(3); // { epoch: 3, endOffset: 20 }
   * ```
   */
  endOffsetForEpoch(epoch: number): EpochEndOffset {
    return this.#epochs.endOffsetFor(epoch, this.logEndOffset);
  }

  /**
   * The leader epoch cache's entries (what `leader-epoch-checkpoint` holds).
   *
   * @returns (epoch, startOffset) pairs, oldest first
   */
  leaderEpochEntries(): EpochEntry[] {
    return this.#epochs.entries();
  }

  /**
   * An idempotent producer's state in this log (its epoch and last batches).
   *
   * @param producerId the producer id
   * @returns a copy of its state, or undefined if the log knows nothing of it
   */
  producerState(producerId: number): ProducerStateEntry | undefined {
    return this.#producers.entry(producerId);
  }

  /**
   * Changes settings at runtime (topic config changes). Takes effect from the next append.
   *
   * @param config the settings to change
   * @throws {RillError} INVALID_CONFIG if a setting is out of range (nothing changes)
   */
  updateConfig(config: Partial<LogConfig>): void {
    const next = { ...this.config, ...config };
    checkConfig(next);
    Object.assign(this.config, next);
    this.#startFlushTimer();
  }

  #startFlushTimer(): void {
    if (this.#flushTimer !== undefined) clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
    const f = this.config.flush;
    if (f.mode !== "interval" || this.#closed) return;
    this.#flushTimer = setInterval(() => {
      this.flush().catch((e) => this.#fail(e));
    }, f.ms);
    Deno.unrefTimer(this.#flushTimer);
  }

  #updateClosedSize(): void {
    this.#closedSize = this.#segments.totalSize() - this.#segments.last()!.size;
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new RillError("KAFKA_STORAGE_ERROR", `The log of "${this.#name}" is closed`);
    }
    if (this.#failure !== null) {
      throw new RillError(
        "KAFKA_STORAGE_ERROR",
        `The log of "${this.#name}" failed and takes no more writes: ${
          (this.#failure as Error)?.message ?? this.#failure
        }`,
      );
    }
  }

  #fail(e: unknown): void {
    if (this.#failure === null) this.#failure = e;
  }

  // ------------------------------------------------------------------ append

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
      this.#checkOpen();
      const framed = frameBatches(batches);
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
      return new Promise<AppendResult>((resolve, reject) => {
        this.#enqueue({
          kind: "append",
          bytes: batches,
          batches: framed,
          assignOffsets,
          leaderEpoch: options.leaderEpoch ?? -1,
          producer,
          resolve,
          reject,
        });
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #enqueue(task: PendingAppend | PendingOp): void {
    this.#queue.push(task);
    if (!this.#draining) void this.#drain();
  }

  /** Runs an exclusive operation in the write queue, after every write queued before it. */
  #exclusive(run: () => Promise<void>): Promise<void> {
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
            this.#segments.last()!.size + bytes + next.bytes.length > this.config.segmentBytes
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
      this.#checkOpen();
    } catch (e) {
      for (const a of group) a.reject(e);
      return;
    }
    // Assign or check offsets, in queue order, against the log end offset; check idempotent
    // batches against the producer state as it will be after the appends before them.
    const accepted: PendingAppend[] = [];
    const results: AppendResult[] = [];
    const duplicates: { a: PendingAppend; result: AppendResult }[] = [];
    const txn = this.#producers.begin();
    const now = this.#now();
    const newEpochs: { epoch: number; startOffset: number }[] = [];
    let latestEpoch = this.#epochs.latestEpoch;
    let next = this.logEndOffset;
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
            `Cannot append batches at offset ${first.baseOffset} to "${this.#name}": its log end offset is ${next}`,
            { logStartOffset: this.#logStartOffset, logEndOffset: next },
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
        for (const e of newEpochs) this.#epochs.assign(e.epoch, e.startOffset);
        await this.#epochs.flush();
      }
      this.#maybeRoll(bytes, accepted[0].batches[0].maxTimestamp, next - 1);
      const active = this.#segments.last()!;
      let parts: Uint8Array | Uint8Array[];
      let positions: BatchPosition[];
      if (accepted.length === 1) {
        parts = accepted[0].bytes;
        positions = accepted[0].batches;
      } else {
        // Written one after the other, not copied into one buffer: a copy of a group of
        // 1 MiB produce bodies cost more than the extra write calls.
        parts = [];
        positions = [];
        let at = 0;
        for (const a of accepted) {
          parts.push(a.bytes);
          for (const b of a.batches) positions.push({ ...b, position: b.position + at });
          at += a.bytes.length;
        }
      }
      this.#writeCalls++;
      await active.append(parts, positions, this.#now());
      if (this.config.flush.mode === "always") await active.syncLog();
    } catch (e) {
      this.#fail(e);
      const err = new RillError(
        "KAFKA_STORAGE_ERROR",
        `Cannot append to "${this.#name}": ${(e as Error)?.message ?? e}`,
      );
      for (const a of accepted) a.reject(err);
      for (const d of duplicates) d.a.reject(err);
      return;
    }
    this.#producers.commit(txn);
    for (let i = 0; i < accepted.length; i++) accepted[i].resolve(results[i]);
    for (const d of duplicates) d.a.resolve(d.result);
  }

  #maybeRoll(incomingBytes: number, firstTimestamp: number, lastOffset: number): void {
    const active = this.#segments.last()!;
    if (active.isEmpty) return;
    const rollTs = active.rollTimestamp ?? firstTimestamp;
    // segment.ms counts from the segment's first append (see LogSegment.rollTimestamp).
    if (
      active.size + incomingBytes > this.config.segmentBytes ||
      this.#now() - rollTs > this.config.segmentMs ||
      lastOffset - active.baseOffset > MAX_RELATIVE_OFFSET
    ) this.#roll();
  }

  /** Makes a new active segment at the log end offset; the old one is fsynced in the background. */
  #roll(): void {
    const old = this.#segments.last()!;
    if (old.isEmpty) return;
    old.onBecomeInactive();
    old.closed = true;
    const segment = LogSegment.create(this.dir, old.nextOffset, this.config);
    this.#segments.add(segment);
    this.#updateClosedSize();
    const upTo = old.nextOffset;
    // Kafka takes a producer state snapshot at each roll, so that recovery after a crash
    // replays at most the active segment's batch headers.
    const snapshot = this.#producers.serialize();
    this.#snapshotChain = this.#snapshotChain
      .then(() => this.#producers.writeSnapshot(upTo, snapshot))
      .catch((e) => this.#fail(e));
    this.#flushChain = this.#flushChain
      .then(async () => {
        if (!this.#isLive(old)) return;
        await old.flush();
        await this.#advanceRecoveryPoint(upTo);
      })
      .catch((e) => this.#fail(e));
  }

  #isLive(segment: LogSegment): boolean {
    const i = this.#segments.floorIndex(segment.baseOffset);
    return i >= 0 && this.#segments.at(i) === segment;
  }

  // ------------------------------------------------------------------ read

  /**
   * Reads whole batches from the one holding `offset`: up to `maxBytes`, but at least one
   * whole batch if there is one, none holding an offset ≥ `options.maxOffset` (the high
   * watermark), never a half-written batch. Cost: a binary search over segments, one over
   * the segment's index, a walk of at most about one index interval of batch headers, and
   * one positioned read.
   *
   * @param offset the first offset wanted
   * @param maxBytes the most bytes wanted
   * @param options `maxOffset`: exclusive bound on the offsets returned; `alloc`: where the
   *   bytes are read (segment.ts's ReadBuffer; default a new buffer)
   * @returns the bytes and the offset after the last record returned
   * @throws {RillError} OFFSET_OUT_OF_RANGE (with logStartOffset and logEndOffset) if
   *   offset < logStartOffset or offset > logEndOffset
   */
  read(
    offset: number,
    maxBytes: number,
    options: ReadOptions = {},
  ): Promise<ReadResult> {
    try {
      return Promise.resolve(this.readSync(offset, maxBytes, options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * {@linkcode read}, synchronously (file reads are synchronous positioned reads).
   *
   * @param offset the first offset wanted
   * @param maxBytes the most bytes wanted
   * @param options `maxOffset`: exclusive bound on the offsets returned; `alloc`: where the
   *   bytes are read
   * @returns the bytes and the offset after the last record returned
   * @throws {RillError} OFFSET_OUT_OF_RANGE as {@linkcode read}
   */
  readSync(offset: number, maxBytes: number, options: ReadOptions = {}): ReadResult {
    if (this.#closed) {
      throw new RillError("KAFKA_STORAGE_ERROR", `The log of "${this.#name}" is closed`);
    }
    const start = this.#logStartOffset;
    const end = this.logEndOffset;
    if (!Number.isSafeInteger(offset) || offset < start || offset > end) {
      throw new RillError(
        "OFFSET_OUT_OF_RANGE",
        offset < start
          ? `Cannot read offset ${offset} from "${this.#name}": log start offset is ${start}`
          : `Cannot read offset ${offset} from "${this.#name}": log end offset is ${end}`,
        { logStartOffset: start, logEndOffset: end },
      );
    }
    const limit = Math.min(options.maxOffset ?? end, end);
    if (offset >= limit) return { bytes: EMPTY, nextOffset: offset };
    for (let i = Math.max(0, this.#segments.floorIndex(offset)); i < this.#segments.length; i++) {
      const segment = this.#segments.at(i)!;
      const r = segment.read(Math.max(offset, segment.baseOffset), maxBytes, limit, options.alloc);
      if (r) return r.bytes.length > 0 ? r : { bytes: EMPTY, nextOffset: offset };
    }
    return { bytes: EMPTY, nextOffset: offset };
  }

  /**
   * The first offset (≥ logStartOffset) whose record timestamp is ≥ `timestamp`.
   *
   * @param timestamp ms since the epoch
   * @returns the offset, or null if no record is that new
   */
  offsetForTimestamp(timestamp: number): Promise<number | null> {
    try {
      for (const segment of this.#segments.all()) {
        if (segment.nextOffset <= this.#logStartOffset) continue;
        const found = segment.findOffsetByTimestamp(timestamp, this.#logStartOffset);
        if (found !== null) return Promise.resolve(found);
      }
      return Promise.resolve(null);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // ------------------------------------------------------------------ truncation, retention

  /**
   * Removes every record at and after `offset`. The cut is made at a batch boundary: if
   * `offset` falls inside a batch, that whole batch goes too (the log end offset becomes its
   * base offset). If the cut would fall at or below the log start offset, the log is emptied
   * and restarts at the log start offset; below the log start offset, it restarts at
   * `offset` (as Kafka's truncateFullyAndStartAt).
   *
   * The leader epoch cache loses the entries starting at or after the new log end offset;
   * the producer state is reloaded from the newest snapshot at or below it plus the batch
   * headers after that (snapshots above it are deleted). A full restart clears both.
   *
   * @param offset the first offset to remove
   */
  truncateTo(offset: number): Promise<void> {
    return this.#exclusive(async () => {
      this.#checkOpen();
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new RangeError(`Cannot truncate "${this.#name}" to offset ${offset}`);
      }
      if (offset >= this.logEndOffset) return;
      await this.#flushChain;
      let restartAt: number | null = null;
      if (offset < this.#logStartOffset) restartAt = offset;
      else {
        const segment = this.#segments.floor(offset)!;
        const cut = segment.locate(offset)?.baseOffset ?? segment.nextOffset;
        if (cut <= this.#logStartOffset) restartAt = this.#logStartOffset;
      }
      await this.#snapshotChain;
      if (restartAt !== null) {
        await this.#restartAt(restartAt);
        return;
      }
      const segment = this.#segments.floor(offset)!;
      for (const s of this.#segments.removeFrom(segment.baseOffset + 1)) s.delete();
      segment.truncateTo(offset);
      await syncDir(this.dir);
      this.#updateClosedSize();
      this.#recoveryPoint = Math.min(this.#recoveryPoint, this.logEndOffset);
      await this.#writeCheckpoint(RECOVERY_POINT_CHECKPOINT, () => this.#recoveryPoint);
      await this.#writeCheckpoint(LOG_START_OFFSET_CHECKPOINT, () => this.#logStartOffset);
      this.#epochs.truncateFromEnd(this.logEndOffset);
      await this.#epochs.flush();
      await this.#lowerCleanerCheckpoint(this.logEndOffset);
      await loadProducerState(
        this.#producers,
        this.#segments,
        this.#logStartOffset,
        this.#now(),
        [],
      );
    });
  }

  /**
   * Deletes every segment and restarts the log, empty, at `offset` (Kafka's
   * `truncateFullyAndStartAt`): a follower whose log end offset is below the leader's log
   * start offset (the leader's retention deleted what it lacks) does this, then fetches from
   * `offset`. Afterwards logStartOffset = logEndOffset = recoveryPoint = `offset`, the active
   * segment is a new empty one with base offset `offset`, the leader epoch cache and the
   * producer state are empty (their checkpoint and snapshots rewritten or deleted), and the
   * recovery point and log start offset checkpoints say `offset`, so that a crash right
   * after leaves a log that reopens at `offset`. `offset` may be below, at or above the
   * current log end offset.
   *
   * @param offset the new log start (and end) offset
   * @returns once the log has restarted and the checkpoints are written
   * @throws {RangeError} if `offset` is not a non-negative safe integer
   * @example
   * ```ts
   * await log.truncateFullyAndStartAt(leaderLogStartOffset);
   * ```
   */
  truncateFullyAndStartAt(offset: number): Promise<void> {
    return this.#exclusive(async () => {
      this.#checkOpen();
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new RangeError(`Cannot restart "${this.#name}" at offset ${offset}`);
      }
      await this.#flushChain;
      await this.#snapshotChain;
      await this.#restartAt(offset);
    });
  }

  /**
   * Deletes every segment, creates an empty active segment at `offset` and resets the
   * offsets, checkpoints, leader epoch cache and producer state to match. Runs inside an
   * exclusive operation, after the flush and snapshot chains have settled.
   */
  async #restartAt(offset: number): Promise<void> {
    for (const s of this.#segments.removeFirst(this.#segments.length)) s.delete();
    this.#segments.add(LogSegment.create(this.dir, offset, this.config));
    this.#logStartOffset = offset;
    this.#updateClosedSize();
    this.#recoveryPoint = offset;
    await this.#writeCheckpoint(RECOVERY_POINT_CHECKPOINT, () => this.#recoveryPoint);
    await this.#writeCheckpoint(LOG_START_OFFSET_CHECKPOINT, () => this.#logStartOffset);
    this.#epochs.clear();
    await this.#epochs.flush();
    this.#producers.clear();
    await this.#producers.deleteSnapshotsOutside(Infinity, -1);
    await this.#lowerCleanerCheckpoint(offset);
  }

  /**
   * Advances the log start offset to `offset` and deletes the segments wholly below it.
   *
   * @param offset the new log start offset
   * @throws {RillError} OFFSET_OUT_OF_RANGE if offset > logEndOffset
   */
  deleteRecordsBefore(offset: number): Promise<void> {
    return this.#exclusive(async () => {
      this.#checkOpen();
      const end = this.logEndOffset;
      if (!Number.isSafeInteger(offset) || offset > end) {
        throw new RillError(
          "OFFSET_OUT_OF_RANGE",
          `Cannot delete records before offset ${offset} of "${this.#name}": log end offset is ${end}`,
          { logStartOffset: this.#logStartOffset, logEndOffset: end },
        );
      }
      if (offset <= this.#logStartOffset) return;
      this.#logStartOffset = offset;
      await this.#writeCheckpoint(LOG_START_OFFSET_CHECKPOINT, () => this.#logStartOffset);
      if (offset === end) this.#roll();
      let count = 0;
      while (
        count < this.#segments.length - 1 && this.#segments.at(count + 1)!.baseOffset <= offset
      ) {
        count++;
      }
      await this.#deleteOldest(count);
    });
  }

  /**
   * Applies retention.ms and retention.bytes to whole closed segments (never the active one),
   * oldest first, advancing the log start offset; also forgets producers idle for longer
   * than producerIdExpirationMs.
   *
   * @returns how many segments were deleted
   */
  applyRetention(): Promise<number> {
    let deleted = 0;
    return this.#exclusive(async () => {
      this.#checkOpen();
      this.#producers.removeExpired(
        this.#now(),
        this.config.producerIdExpirationMs ?? DEFAULT_PRODUCER_ID_EXPIRATION_MS,
      );
      const closed = this.#segments.length - 1;
      let count = 0;
      if (this.config.retentionMs >= 0) {
        const cutoff = this.#now() - this.config.retentionMs;
        while (count < closed && this.#segments.at(count)!.maxTimestamp < cutoff) count++;
      }
      if (this.config.retentionBytes >= 0) {
        let total = this.size;
        for (let i = 0; i < count; i++) total -= this.#segments.at(i)!.size;
        while (
          count < closed && total - this.#segments.at(count)!.size >= this.config.retentionBytes
        ) {
          total -= this.#segments.at(count)!.size;
          count++;
        }
      }
      if (count === 0) return;
      const newStart = this.#segments.at(count)!.baseOffset;
      if (newStart > this.#logStartOffset) {
        this.#logStartOffset = newStart;
        await this.#writeCheckpoint(LOG_START_OFFSET_CHECKPOINT, () => this.#logStartOffset);
      }
      await this.#deleteOldest(count);
      deleted = count;
    }).then(() => deleted);
  }

  /**
   * Deletes the `count` oldest segments, then moves the leader epoch cache's start to the
   * log start offset and deletes the producer snapshots below the first segment left (the
   * producers' state itself stays, as Kafka's since KIP-360; expiry forgets them).
   */
  async #deleteOldest(count: number): Promise<void> {
    if (count > 0) {
      await this.#flushChain;
      for (const s of this.#segments.removeFirst(count)) s.delete();
      this.#updateClosedSize();
      await syncDir(this.dir);
    }
    if (this.#epochs.truncateFromStart(this.#logStartOffset)) await this.#epochs.flush();
    if (count > 0) {
      await this.#snapshotChain;
      await this.#producers.deleteSnapshotsOutside(
        this.#segments.first()!.baseOffset,
        this.logEndOffset,
      );
    }
  }

  // ------------------------------------------------------------------ compaction

  /**
   * Compacts the log once, if its config says `compact` and enough of it is dirty: keeps,
   * per key, only the latest record of the closed segments (never the active one), up to
   * `maxOffset`. The rules, the files and the crash safety are those of `log_cleaner.ts`.
   * Reading and writing the copies runs beside appends and reads; each group's copy is
   * installed in an exclusive operation (after the writes queued before it), and a group
   * whose segments changed meanwhile (retention, truncation) is not installed. One pass at
   * a time: a call during a pass returns null.
   *
   * @param options `maxOffset`: nothing at or past it is compacted (the high watermark;
   *   default the log end offset); `maxDirtyBytes`: the most dirty bytes mapped (whole
   *   segments, at least one; default 64 MiB)
   * @returns what the pass did, or null if it did nothing
   * @throws {RillError} CORRUPT_MESSAGE if a segment holds a bad batch
   * @example
   * ```ts
   * const log = await PartitionLog.open(dir, { compact: true, segmentBytes: 1 << 20 });
   * await log.clean({ maxOffset: highWatermark });
   * ```
   */
  async clean(
    options: { maxOffset?: number; maxDirtyBytes?: number } = {},
  ): Promise<CleanResult | null> {
    if (!this.config.compact || this.#closed || this.#cleaning) return null;
    this.#cleaning = true;
    try {
      if (this.#cleanerCheckpoint === null) {
        let stored: number | null = null;
        try {
          stored = await readCheckpoint(this.dir, CLEANER_OFFSET_CHECKPOINT);
        } catch (e) {
          if (!(e instanceof RangeError)) throw e; // damaged: clean from the start
        }
        this.#cleanerCheckpoint ??= stored ?? 0;
      }
      if (this.#closed) return null;
      const now = this.#now();
      const config = { ...DEFAULT_CLEANER_CONFIG, ...definedCleanerConfig(this.config) };
      const closed = this.#segments.all().slice(0, -1);
      const firstDirty = Math.max(this.#cleanerCheckpoint!, this.#logStartOffset);
      const plan = planCleaning(closed, firstDirty, {
        ...config,
        now,
        maxOffset: Math.min(options.maxOffset ?? Infinity, this.logEndOffset),
        maxDirtyBytes: options.maxDirtyBytes ?? 64 * 1024 * 1024,
      });
      if (!plan) return null;
      const aborted = () => this.#closed;
      const map = await buildOffsetMap(plan.dirty, firstDirty, plan.endOffset, aborted);
      const sources: CleaningSource[] = plan.sources.map((segment) => ({
        segment,
        wasClean: segment.nextOffset <= firstDirty,
        lastModified: segment.nextOffset <= firstDirty
          ? (Deno.statSync(segment.logPath).mtime?.getTime() ?? 0)
          : now,
      }));
      const result: CleanResult = {
        segmentsCleaned: 0,
        bytesRead: 0,
        bytesWritten: 0,
        recordsRemoved: 0,
        firstDirtyOffset: firstDirty,
      };
      for (const group of groupForCleaning(sources, this.config.segmentBytes)) {
        const segments = group.map((g) => g.segment);
        const sizes = segments.map((s) => s.size);
        const cleaned = await cleanGroup(this.dir, group, map, {
          now,
          deleteRetentionMs: config.deleteRetentionMs,
          indexIntervalBytes: this.config.indexIntervalBytes,
          isProducerTail: (id, lastOffset) =>
            this.#producers.entry(id)?.batches.at(-1)?.lastOffset === lastOffset,
          aborted,
        });
        if (cleaned === null) continue;
        let installed = false;
        await this.#exclusive(async () => {
          if (this.#closed || this.#failure !== null) return;
          await this.#flushChain;
          const start = this.#segments.floorIndex(segments[0].baseOffset);
          for (let i = 0; i < segments.length; i++) {
            const live = this.#segments.at(start + i);
            if (live !== segments[i] || !live.closed || live.size !== sizes[i]) return;
          }
          if (start + segments.length >= this.#segments.length) return; // never the active one
          installCleaned(this.dir, cleaned, segments);
          const copy = LogSegment.open(
            this.dir,
            cleaned.baseOffset,
            cleaned.size,
            cleaned.nextOffset,
            this.config,
          );
          copy.closed = true;
          this.#segments.replace(start, segments.length, copy);
          this.#updateClosedSize();
          installed = true;
        });
        if (!installed) {
          await discardCleaned(this.dir, cleaned.baseOffset);
          return null;
        }
        result.segmentsCleaned += segments.length;
        result.bytesRead += sizes.reduce((a, b) => a + b, 0);
        result.bytesWritten += cleaned.size;
        result.recordsRemoved += cleaned.recordsRemoved;
      }
      if (this.#closed) return null;
      this.#cleanerCheckpoint = Math.max(this.#cleanerCheckpoint!, plan.endOffset);
      result.firstDirtyOffset = this.#cleanerCheckpoint;
      await this.#writeCheckpoint(CLEANER_OFFSET_CHECKPOINT, () => this.#cleanerCheckpoint!);
      return result;
    } catch (e) {
      // Closed, or a segment deleted by retention meanwhile: the next pass starts afresh.
      if (this.#closed || e instanceof Deno.errors.NotFound) return null;
      throw e;
    } finally {
      this.#cleaning = false;
    }
  }

  /** After a truncation: offsets from `offset` on are dirty again. */
  async #lowerCleanerCheckpoint(offset: number): Promise<void> {
    if (this.#cleanerCheckpoint === null) {
      // Not read yet: lower the stored one, if any (it is read on the first pass).
      let stored: number | null = null;
      try {
        stored = await readCheckpoint(this.dir, CLEANER_OFFSET_CHECKPOINT);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
      }
      if (stored === null || stored <= offset) return;
    } else if (this.#cleanerCheckpoint <= offset) return;
    this.#cleanerCheckpoint = offset;
    await this.#writeCheckpoint(CLEANER_OFFSET_CHECKPOINT, () => this.#cleanerCheckpoint!);
  }

  /**
   * Rolls: the next append goes to a new segment (no-op if the active segment is empty).
   *
   * @returns once the new segment exists
   */
  roll(): Promise<void> {
    return this.#exclusive(() => {
      this.#checkOpen();
      this.#roll();
      return Promise.resolve();
    });
  }

  // ------------------------------------------------------------------ flush, close

  /**
   * Fsyncs everything written so far and advances the recovery point checkpoint.
   *
   * @returns once the data is on disk
   */
  flush(): Promise<void> {
    const run = this.#flushChain.then(async () => {
      if (this.#closed) return;
      const active = this.#segments.last()!;
      const upTo = active.nextOffset;
      await active.flush();
      await this.#advanceRecoveryPoint(upTo);
    });
    this.#flushChain = run.catch(() => {});
    return run;
  }

  async #advanceRecoveryPoint(upTo: number): Promise<void> {
    const value = Math.min(upTo, this.logEndOffset);
    if (value <= this.#recoveryPoint) return;
    this.#recoveryPoint = value;
    await this.#writeCheckpoint(RECOVERY_POINT_CHECKPOINT, () => this.#recoveryPoint);
  }

  #writeCheckpoint(name: string, value: () => number): Promise<void> {
    const run = this.#checkpointChain.then(() => writeCheckpoint(this.dir, name, value()));
    this.#checkpointChain = run.catch(() => {});
    return run;
  }

  /**
   * Resolves once the background work started so far is done: the fsync and checkpoint
   * after a roll, and the producer state snapshot taken at a roll. What a crash leaves
   * behind is then predictable (tests copy the directory after this).
   *
   * @example
   * ```ts
   * await log.settled();
   * ```
   */
  async settled(): Promise<void> {
    for (;;) {
      const chains = [this.#flushChain, this.#checkpointChain, this.#snapshotChain];
      await Promise.all(chains);
      if (
        chains[0] === this.#flushChain && chains[1] === this.#checkpointChain &&
        chains[2] === this.#snapshotChain
      ) return;
    }
  }

  /**
   * Flushes, writes the checkpoints and the clean-shutdown marker, and closes the files.
   * Appends queued before the call are written first; later calls fail.
   *
   * @returns once the log is closed
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#exclusive(async () => {
      if (this.#closed) return;
      this.#closed = true;
      this.#startFlushTimer();
      try {
        await this.#flushChain;
        await this.#checkpointChain;
        await this.#snapshotChain;
        const active = this.#segments.last()!;
        active.onBecomeInactive();
        if (this.#failure === null) {
          await active.flush();
          this.#recoveryPoint = active.nextOffset;
          await writeCheckpoint(this.dir, RECOVERY_POINT_CHECKPOINT, this.#recoveryPoint);
          await writeCheckpoint(this.dir, LOG_START_OFFSET_CHECKPOINT, this.#logStartOffset);
          await this.#producers.writeSnapshot(active.nextOffset, this.#producers.serialize());
        }
        for (const s of this.#segments.all()) s.close();
        if (this.#failure === null) {
          const marker = await Deno.open(joinPath(this.dir, CLEAN_SHUTDOWN_MARKER), {
            write: true,
            create: true,
          });
          try {
            await marker.syncData();
          } finally {
            marker.close();
          }
          await syncDir(this.dir);
        }
      } finally {
        unlockDir(this.#lock); // releases the flock before close() resolves
      }
    });
  }

  /**
   * Closes the log and removes its directory.
   *
   * @returns once the files are gone
   */
  async delete(): Promise<void> {
    await this.close();
    await Deno.remove(this.dir, { recursive: true });
  }
}
