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
 * Files: the settings are `log_config.ts`'s, the shared state `log_state.ts`'s, appends and
 * group commit `log_writer.ts`'s, reads `log_reads.ts`'s, truncation `log_truncation.ts`'s,
 * deletion and retention `log_retention.ts`'s, compaction `log_compaction.ts`'s; this file
 * opens, closes and flushes the log and holds its API.
 *
 * @module
 */
import { syncDir, writeCheckpoint } from "./checkpoint.ts";
import {
  CLEAN_SHUTDOWN_MARKER,
  joinPath,
  LOG_START_OFFSET_CHECKPOINT,
  RECOVERY_POINT_CHECKPOINT,
} from "./file_names.ts";
import type { EpochEndOffset, EpochEntry } from "./leader_epoch_cache.ts";
import { loadLog, type RecoveryReport } from "./log_loader.ts";
import type { CleanResult } from "./log_cleaner.ts";
import { loadLogState, lockDir, unlockDir } from "./log_state_loader.ts";
import type { ProducerStateEntry } from "./producer_state.ts";
import { checkConfig, DEFAULT_LOG_CONFIG, type LogConfig } from "./log_config.ts";
import { LogState } from "./log_state.ts";
import { type AppendOptions, type AppendResult, LogWriter } from "./log_writer.ts";
import { offsetForTimestamp, type ReadOptions, type ReadResult, readSync } from "./log_reads.ts";
import { truncateFullyAndStartAt, truncateTo } from "./log_truncation.ts";
import { applyRetention, deleteRecordsBefore } from "./log_retention.ts";
import { clean } from "./log_compaction.ts";

export type { RecoveryReport } from "./log_loader.ts";
export type { CleanResult } from "./log_cleaner.ts";
export { DEFAULT_LOG_CONFIG } from "./log_config.ts";
export type { FlushPolicy, LogConfig } from "./log_config.ts";
export type { AppendOptions, AppendResult } from "./log_writer.ts";
export type { ReadOptions, ReadResult } from "./log_reads.ts";

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

  readonly #s: LogState;
  readonly #writer: LogWriter;
  #flushTimer: ReturnType<typeof setInterval> | undefined;
  readonly #lock: Deno.FsFile;

  private constructor(
    dir: string,
    config: LogConfig,
    now: () => number,
    loaded: Awaited<ReturnType<typeof loadLog>>,
    state: Awaited<ReturnType<typeof loadLogState>> & { lock: Deno.FsFile },
  ) {
    this.dir = dir;
    this.config = config;
    this.recovery = loaded.recovery;
    this.#lock = state.lock;
    this.#s = new LogState({
      dir,
      config,
      now,
      segments: loaded.segments,
      logStartOffset: loaded.logStartOffset,
      recoveryPoint: loaded.recoveryPoint,
      epochs: state.epochs,
      producers: state.producers,
    });
    this.#writer = new LogWriter(this.#s);
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
    return this.#s.logStartOffset;
  }

  /**
   * Why the log failed and takes no more writes (an I/O error such as ENOSPC: a write may
   * have been cut short, so only a reopen through recovery makes it writable again), or null.
   */
  get failure(): string | null {
    const f = this.#s.failure;
    if (f === null) return null;
    return (f as Error)?.message ?? String(f);
  }

  /** The offset the next appended record will get. */
  get logEndOffset(): number {
    return this.#s.logEndOffset;
  }

  /** Total bytes of all segments. */
  get size(): number {
    return this.#s.size;
  }

  /** Every offset below it is known to be on disk (fsynced). */
  get recoveryPoint(): number {
    return this.#s.recoveryPoint;
  }

  /**
   * How many group commits (the writes of one group of appends, then its fsync if any) this
   * log has made since it was opened (for tests and metrics).
   */
  get writeCalls(): number {
    return this.#s.writeCalls;
  }

  /** The number of segments. */
  get segmentCount(): number {
    return this.#s.segments.length;
  }

  // ------------------------------------------------------------------ leader epochs, producers

  /**
   * The latest leader epoch appended in (from batches' partitionLeaderEpoch).
   *
   * @returns the epoch, or -1 if no batch carried one
   */
  latestEpoch(): number {
    return this.#s.epochs.latestEpoch;
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
    return this.#s.epochs.endOffsetFor(epoch, this.logEndOffset);
  }

  /**
   * The leader epoch cache's entries (what `leader-epoch-checkpoint` holds).
   *
   * @returns (epoch, startOffset) pairs, oldest first
   */
  leaderEpochEntries(): EpochEntry[] {
    return this.#s.epochs.entries();
  }

  /**
   * An idempotent producer's state in this log (its epoch and last batches).
   *
   * @param producerId the producer id
   * @returns a copy of its state, or undefined if the log knows nothing of it
   */
  producerState(producerId: number): ProducerStateEntry | undefined {
    return this.#s.producers.entry(producerId);
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
    if (f.mode !== "interval" || this.#s.closed) return;
    this.#flushTimer = setInterval(() => {
      this.flush().catch((e) => this.#s.fail(e));
    }, f.ms);
    Deno.unrefTimer(this.#flushTimer);
  }

  // ------------------------------------------------------------------ append

  /**
   * Appends whole RecordBatch v2 batches (already validated by the caller); see
   * {@linkcode LogWriter.append} for offsets, group commit and idempotent producers.
   *
   * @param batches one or more whole batches, back to back
   * @param options offset assignment
   * @returns the offsets given to the first and last record, and the max timestamp (for a
   *   duplicate: the original's, with `duplicate: true`)
   * @throws {RillError} CORRUPT_MESSAGE, OFFSET_OUT_OF_RANGE, INVALID_RECORD,
   *   OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, KAFKA_STORAGE_ERROR
   */
  append(batches: Uint8Array, options: AppendOptions = {}): Promise<AppendResult> {
    return this.#writer.append(batches, options);
  }

  /**
   * {@linkcode append}, answered at once when it could be (see {@linkcode LogWriter.appendNow}):
   * the result of an append written synchronously, else the promise `append` would return.
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
    return this.#writer.appendNow(batches, options);
  }

  // ------------------------------------------------------------------ read

  /**
   * Reads whole batches from the one holding `offset` (see log_reads.ts's `readSync`).
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
      return Promise.resolve(readSync(this.#s, offset, maxBytes, options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * {@linkcode read}, synchronously (file reads are synchronous positioned reads).
   *
   * @param offset the first offset wanted
   * @param maxBytes the most bytes wanted
   * @param options `maxOffset` and `alloc` as {@linkcode read}
   * @returns the bytes and the offset after the last record returned
   * @throws {RillError} OFFSET_OUT_OF_RANGE as {@linkcode read}
   */
  readSync(offset: number, maxBytes: number, options: ReadOptions = {}): ReadResult {
    return readSync(this.#s, offset, maxBytes, options);
  }

  /**
   * The first offset (≥ logStartOffset) whose record timestamp is ≥ `timestamp`.
   *
   * @param timestamp ms since the epoch
   * @returns the offset, or null if no record is that new
   */
  offsetForTimestamp(timestamp: number): Promise<number | null> {
    return offsetForTimestamp(this.#s, timestamp);
  }

  // ------------------------------------------------------------------ truncation, retention

  /**
   * Removes every record at and after `offset`, at a batch boundary (see
   * log_truncation.ts's `truncateTo`).
   *
   * @param offset the first offset to remove
   */
  truncateTo(offset: number): Promise<void> {
    return truncateTo(this.#s, this.#writer, offset);
  }

  /**
   * Deletes every segment and restarts the log, empty, at `offset` (Kafka's
   * `truncateFullyAndStartAt`; see log_truncation.ts).
   *
   * @param offset the new log start (and end) offset
   * @returns once the log has restarted and the checkpoints are written
   * @throws {RangeError} if `offset` is not a non-negative safe integer
   */
  truncateFullyAndStartAt(offset: number): Promise<void> {
    return truncateFullyAndStartAt(this.#s, this.#writer, offset);
  }

  /**
   * Advances the log start offset to `offset` and deletes the segments wholly below it.
   *
   * @param offset the new log start offset
   * @throws {RillError} OFFSET_OUT_OF_RANGE if offset > logEndOffset
   */
  deleteRecordsBefore(offset: number): Promise<void> {
    return deleteRecordsBefore(this.#s, this.#writer, offset);
  }

  /**
   * Applies retention.ms and retention.bytes to whole closed segments (never the active one),
   * oldest first, advancing the log start offset; also forgets producers idle for longer
   * than producerIdExpirationMs.
   *
   * @returns how many segments were deleted
   */
  applyRetention(): Promise<number> {
    return applyRetention(this.#s, this.#writer);
  }

  // ------------------------------------------------------------------ compaction

  /**
   * Compacts the log once, if its config says `compact` and enough of it is dirty (see
   * log_compaction.ts's `clean`). One pass at a time: a call during a pass returns null.
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
  clean(
    options: { maxOffset?: number; maxDirtyBytes?: number } = {},
  ): Promise<CleanResult | null> {
    return clean(this.#s, this.#writer, options);
  }

  /**
   * Rolls: the next append goes to a new segment (no-op if the active segment is empty).
   *
   * @returns once the new segment exists
   */
  roll(): Promise<void> {
    return this.#writer.exclusive(() => {
      this.#s.checkOpen();
      this.#s.roll();
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
    const run = this.#s.flushChain.then(async () => {
      if (this.#s.closed) return;
      const active = this.#s.segments.last()!;
      const upTo = active.nextOffset;
      await active.flush();
      await this.#s.advanceRecoveryPoint(upTo);
    });
    this.#s.flushChain = run.catch(() => {});
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
      const chains = [this.#s.flushChain, this.#s.checkpointChain, this.#s.snapshotChain];
      await Promise.all(chains);
      if (
        chains[0] === this.#s.flushChain && chains[1] === this.#s.checkpointChain &&
        chains[2] === this.#s.snapshotChain
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
    if (this.#s.closed) return Promise.resolve();
    return this.#writer.exclusive(async () => {
      if (this.#s.closed) return;
      this.#s.closed = true;
      this.#startFlushTimer();
      try {
        await this.#s.flushChain;
        await this.#s.checkpointChain;
        await this.#s.snapshotChain;
        const active = this.#s.segments.last()!;
        active.onBecomeInactive();
        if (this.#s.failure === null) {
          await active.flush();
          this.#s.recoveryPoint = active.nextOffset;
          await writeCheckpoint(this.dir, RECOVERY_POINT_CHECKPOINT, this.#s.recoveryPoint);
          await writeCheckpoint(this.dir, LOG_START_OFFSET_CHECKPOINT, this.#s.logStartOffset);
          await this.#s.producers.writeSnapshot(active.nextOffset, this.#s.producers.serialize());
        }
        for (const s of this.#s.segments.all()) s.close();
        if (this.#s.failure === null) {
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
