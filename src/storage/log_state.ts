/**
 * The state of one open partition log, shared by the parts that work on it (the writer,
 * reads, truncation, retention, the cleaner and `PartitionLog` itself): the segments, the
 * log start offset and recovery point, the leader epoch cache and producer state, the
 * background chains (fsync after a roll, checkpoints, producer snapshots), and the
 * operations on them that several parts use (rolling, checkpoints, the open/failed check).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { writeCheckpoint } from "./checkpoint.ts";
import { RECOVERY_POINT_CHECKPOINT } from "./file_names.ts";
import type { LeaderEpochCache } from "./leader_epoch_cache.ts";
import type { LogConfig } from "./log_config.ts";
import type { ProducerStateManager } from "./producer_state.ts";
import { LogSegment } from "./segment.ts";
import type { LogSegments } from "./segments.ts";

/** The mutable state of an open log. */
export class LogState {
  /** the log directory */
  readonly dir: string;
  /** the current settings (changed in place by `updateConfig`) */
  readonly config: LogConfig;
  /** the directory's last path part, for messages */
  readonly name: string;
  /** the clock */
  readonly now: () => number;
  /** the segments, oldest first; the last is the active one */
  segments: LogSegments;
  /** the first offset that may be read */
  logStartOffset: number;
  /** every offset below it is known to be on disk */
  recoveryPoint: number;
  /** total bytes of the closed segments */
  closedSize = 0;
  /** the fsync of rolled segments, in order */
  flushChain: Promise<void> = Promise.resolve();
  /** checkpoint writes, in order */
  checkpointChain: Promise<void> = Promise.resolve();
  /** producer state snapshots, in order */
  snapshotChain: Promise<void> = Promise.resolve();
  /** the first write failure; the log takes no more writes after one */
  failure: unknown = null;
  /** closed (or closing) */
  closed = false;
  /** group commits written since open */
  writeCalls = 0;
  /** the leader epoch cache */
  readonly epochs: LeaderEpochCache;
  /** the idempotent producers' state */
  readonly producers: ProducerStateManager;
  /** the first dirty offset (cleaner checkpoint), read on the first compaction */
  cleanerCheckpoint: number | null = null;
  /** a cleaner pass is running */
  cleaning = false;

  constructor(
    init: {
      dir: string;
      config: LogConfig;
      now: () => number;
      segments: LogSegments;
      logStartOffset: number;
      recoveryPoint: number;
      epochs: LeaderEpochCache;
      producers: ProducerStateManager;
    },
  ) {
    this.dir = init.dir;
    this.config = init.config;
    this.now = init.now;
    this.name = init.dir.split("/").filter((p) => p !== "").pop() ?? init.dir;
    this.segments = init.segments;
    this.logStartOffset = init.logStartOffset;
    this.recoveryPoint = init.recoveryPoint;
    this.epochs = init.epochs;
    this.producers = init.producers;
    this.updateClosedSize();
  }

  /** The offset the next appended record will get. */
  get logEndOffset(): number {
    return this.segments.last()!.nextOffset;
  }

  /** Total bytes of all segments. */
  get size(): number {
    return this.closedSize + this.segments.last()!.size;
  }

  updateClosedSize(): void {
    this.closedSize = this.segments.totalSize() - this.segments.last()!.size;
  }

  checkOpen(): void {
    if (this.closed) {
      throw new RillError("KAFKA_STORAGE_ERROR", `The log of "${this.name}" is closed`);
    }
    if (this.failure !== null) {
      throw new RillError(
        "KAFKA_STORAGE_ERROR",
        `The log of "${this.name}" failed and takes no more writes: ${
          (this.failure as Error)?.message ?? this.failure
        }`,
      );
    }
  }

  fail(e: unknown): void {
    if (this.failure === null) this.failure = e;
  }

  roll(): void {
    const old = this.segments.last()!;
    if (old.isEmpty) return;
    old.onBecomeInactive();
    old.closed = true;
    const segment = LogSegment.create(this.dir, old.nextOffset, this.config);
    this.segments.add(segment);
    this.updateClosedSize();
    const upTo = old.nextOffset;
    // Kafka takes a producer state snapshot at each roll, so that recovery after a crash
    // replays at most the active segment's batch headers.
    const snapshot = this.producers.serialize();
    this.snapshotChain = this.snapshotChain
      .then(() => this.producers.writeSnapshot(upTo, snapshot))
      .catch((e) => this.fail(e));
    this.flushChain = this.flushChain
      .then(async () => {
        if (!this.isLive(old)) return;
        await old.flush();
        await this.advanceRecoveryPoint(upTo);
      })
      .catch((e) => this.fail(e));
  }

  isLive(segment: LogSegment): boolean {
    const i = this.segments.floorIndex(segment.baseOffset);
    return i >= 0 && this.segments.at(i) === segment;
  }

  async advanceRecoveryPoint(upTo: number): Promise<void> {
    const value = Math.min(upTo, this.logEndOffset);
    if (value <= this.recoveryPoint) return;
    this.recoveryPoint = value;
    await this.writeCheckpoint(RECOVERY_POINT_CHECKPOINT, () => this.recoveryPoint);
  }

  writeCheckpoint(name: string, value: () => number): Promise<void> {
    const run = this.checkpointChain.then(() => writeCheckpoint(this.dir, name, value()));
    this.checkpointChain = run.catch(() => {});
    return run;
  }
}
