/**
 * One partition replica on this broker: it owns the partition's log, its high watermark and
 * the fetches waiting on it. Produce and fetch for the partition go through here, so that
 * replication can later change how the high watermark moves (the smallest log end offset
 * of the in-sync replicas) without touching the HTTP layer.
 *
 * Today every replica is a leader with replication factor 1: the high watermark is the log
 * end offset after each append.
 *
 * @module
 */
import { PartitionLog } from "../storage/mod.ts";
import type { AppendResult, LogConfig, ReadResult } from "../storage/mod.ts";
import { RillError } from "../protocol/errors.ts";
import { removeDir } from "./data_dir.ts";
import { FetchWaiters } from "./fetch_waiters.ts";

/** What {@linkcode Replica.open} needs. */
export interface ReplicaOptions {
  /** the topic name */
  topic: string;
  /** the topic's id (a re-created topic has a new one) */
  topicId: string;
  /** the partition index */
  partition: number;
  /** the directory of the partition's log */
  dir: string;
  /** the leader epoch this replica appends with */
  leaderEpoch: number;
  /** storage settings from the topic's configs */
  logConfig: Partial<LogConfig>;
  /** the clock (for tests) */
  now?: () => number;
}

/** A fetch's result: whole batches plus the offsets a consumer needs. */
export interface FetchResult extends ReadResult {
  /** the offset after the last committed record */
  highWatermark: number;
  /** the first offset still in the log */
  logStartOffset: number;
}

/**
 * A partition replica: log + high watermark + waiting fetches.
 *
 * @example
 * ```ts
 * const r = await Replica.open({ topic: "t", topicId: "…", partition: 0, dir, leaderEpoch: 0, logConfig: {} });
 * const { baseOffset } = await r.append(encodeBatch([{ value: bytes }]));
 * const { bytes: batches } = await r.read(baseOffset, 1 << 20);
 * await r.close();
 * ```
 */
export class Replica {
  /** the topic name */
  readonly topic: string;
  /** the topic id */
  readonly topicId: string;
  /** the partition index */
  readonly partition: number;
  /** the partition's log */
  readonly log: PartitionLog;
  /** fetches waiting for data */
  readonly waiters: FetchWaiters = new FetchWaiters();
  /** the leader epoch written into appended batches */
  leaderEpoch: number;
  #highWatermark: number;
  #closing = false;
  #closed: Promise<void> | null = null;

  private constructor(opts: ReplicaOptions, log: PartitionLog) {
    this.topic = opts.topic;
    this.topicId = opts.topicId;
    this.partition = opts.partition;
    this.leaderEpoch = opts.leaderEpoch;
    this.log = log;
    // RF 1: everything in the log is committed.
    this.#highWatermark = log.logEndOffset;
  }

  /**
   * Opens (recovering if needed) the log of a partition replica.
   *
   * @param opts topic, partition, directory, leader epoch and log settings
   * @returns the open replica
   */
  static async open(opts: ReplicaOptions): Promise<Replica> {
    const log = await PartitionLog.open(opts.dir, opts.logConfig, { now: opts.now });
    return new Replica(opts, log);
  }

  /** The name of the partition, as in messages: `topic-partition`. */
  get name(): string {
    return `${this.topic}-${this.partition}`;
  }

  /** The offset after the last committed record: consumers read below it. */
  get highWatermark(): number {
    return this.#highWatermark;
  }

  /** The first offset still in the log. */
  get logStartOffset(): number {
    return this.log.logStartOffset;
  }

  /** The offset the next appended record gets. */
  get logEndOffset(): number {
    return this.log.logEndOffset;
  }

  /** Whether the replica is closing or closed (appends are refused). */
  get closing(): boolean {
    return this.#closing;
  }

  /**
   * Appends record batches as the leader: assigns offsets and the leader epoch in place,
   * writes them (all or none), advances the high watermark and wakes waiting fetches.
   *
   * @param batches one or more whole, validated batches (mutated: offsets written in place)
   * @returns the offsets assigned and the largest timestamp
   * @throws {RillError} NOT_LEADER_OR_FOLLOWER when the replica is closing
   */
  async append(batches: Uint8Array): Promise<AppendResult> {
    if (this.#closing) {
      throw new RillError(
        "NOT_LEADER_OR_FOLLOWER",
        `Partition ${this.name} is closing on this broker`,
      );
    }
    const result = await this.log.append(batches, {
      assignOffsets: true,
      leaderEpoch: this.leaderEpoch,
    });
    const next = result.lastOffset + 1;
    if (next > this.#highWatermark) {
      this.#highWatermark = next;
      this.waiters.notify(batches.length);
    }
    return result;
  }

  /**
   * Reads committed batches from `offset` (below the high watermark only).
   *
   * @param offset the first offset wanted (the first batch may start before it)
   * @param maxBytes the most bytes to return (at least one batch is returned if any)
   * @returns the batches, the next offset, the high watermark and the log start offset
   * @throws {RillError} OFFSET_OUT_OF_RANGE with both bounds when `offset` is below the
   *   log start offset or above the high watermark
   */
  async read(offset: number, maxBytes: number): Promise<FetchResult> {
    const hw = this.#highWatermark;
    this.checkOffset(offset);
    if (offset === hw) {
      return {
        bytes: EMPTY,
        nextOffset: offset,
        highWatermark: hw,
        logStartOffset: this.log.logStartOffset,
      };
    }
    let result: ReadResult;
    try {
      result = await this.log.read(offset, maxBytes, { maxOffset: hw });
    } catch (e) {
      // Retention may have moved the log start between the check and the read.
      if (e instanceof RillError && e.code === "OFFSET_OUT_OF_RANGE") this.checkOffset(offset);
      throw e;
    }
    return { ...result, highWatermark: hw, logStartOffset: this.log.logStartOffset };
  }

  /**
   * Throws OFFSET_OUT_OF_RANGE unless `offset` is within [log start, high watermark].
   *
   * @param offset the offset to check
   * @throws {RillError} OFFSET_OUT_OF_RANGE with `logStartOffset` and `highWatermark`
   */
  checkOffset(offset: number): void {
    const start = this.log.logStartOffset;
    const hw = this.#highWatermark;
    if (offset < start || offset > hw) {
      throw new RillError(
        "OFFSET_OUT_OF_RANGE",
        offset < start
          ? `Cannot read offset ${offset} from partition ${this.name}: log start offset is ${start}`
          : `Cannot read offset ${offset} from partition ${this.name}: high watermark is ${hw}`,
        { logStartOffset: start, highWatermark: hw },
      );
    }
  }

  /**
   * The first offset whose timestamp is at or after `timestamp`, below the high watermark.
   *
   * @param timestamp ms since the epoch
   * @returns the offset, or the high watermark when no committed record is that recent
   */
  async offsetForTimestamp(timestamp: number): Promise<number> {
    const found = await this.log.offsetForTimestamp(timestamp);
    const hw = this.#highWatermark;
    if (found === null || found >= hw) return hw;
    return Math.max(found, this.log.logStartOffset);
  }

  /**
   * Applies the topic's changed settings to the log.
   *
   * @param config the new log settings
   */
  updateConfig(config: Partial<LogConfig>): void {
    this.log.updateConfig(config);
  }

  /**
   * Deletes old segments per the retention settings and wakes nobody (readers of deleted
   * offsets get OFFSET_OUT_OF_RANGE on their next read).
   *
   * @returns how many segments were deleted
   */
  async applyRetention(): Promise<number> {
    if (this.#closing) return 0;
    return await this.log.applyRetention();
  }

  /**
   * Stops taking appends, wakes waiting fetches, lets the appends already queued finish and
   * closes the log (which writes its clean-shutdown marker).
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.waiters.close();
      // The log writes every append queued before close() first.
      await this.log.close();
    })();
    return this.#closed;
  }

  /** Closes the replica and deletes its log directory. */
  async delete(): Promise<void> {
    await this.close();
    await removeDir(this.log.dir);
  }
}

const EMPTY = new Uint8Array(0);
