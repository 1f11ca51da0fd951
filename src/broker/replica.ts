/**
 * One partition replica on this broker: it owns the partition's log, its high watermark,
 * its role (leader, follower or observer) and the fetches and produce requests waiting on
 * it. Produce and fetch for the partition go through here.
 *
 * - As leader it appends with offsets and its leader epoch, tracks each follower's log end
 *   offset (isr.ts), advances the high watermark to the smallest log end offset over the
 *   ISR, wakes consumer fetches and `acks=all` waiters when it moves, and proposes ISR
 *   changes (written to KV by the broker). With no other replica in the ISR, the high
 *   watermark is the log end offset after each append (replication factor 1).
 * - As follower it appends the leader's batches as they are (offsets and epochs from the
 *   batch headers) and takes the high watermark the leader reports, capped at its own log
 *   end offset. An observer does the same but copies only committed batches.
 *
 * Everything here is memory and segment files; KV is touched only by the broker when the
 * ISR changes.
 *
 * @module
 */
import { PartitionLog } from "../storage/mod.ts";
import type {
  AppendResult,
  BatchPosition,
  CleanResult,
  LogConfig,
  ReadBuffer,
  ReadResult,
} from "../storage/mod.ts";
import { RillError } from "../protocol/errors.ts";
import { removeDir } from "./data_dir.ts";
import { CommitWaiters } from "./commit_waiters.ts";
import { FetchWaiters } from "./fetch_waiters.ts";
import { TailReads } from "./tail_reads.ts";
import {
  caughtUpFollowers,
  type FollowerState,
  highWatermarkOf,
  laggingFollowers,
  newFollower,
  recordFetch,
} from "./isr.ts";
import type {
  FetchResult,
  IsrChangeRequest,
  ReplicaOptions,
  ReplicaRole,
} from "./replica_types.ts";

export type {
  FetchResult,
  IsrChangeRequest,
  ReplicaOptions,
  ReplicaRole,
} from "./replica_types.ts";

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
  /** replica fetches (followers) waiting for data (the high watermark reaches them with it) */
  readonly replicaWaiters: FetchWaiters = new FetchWaiters();
  /** the leader epoch written into appended batches (the current epoch of the partition) */
  leaderEpoch: number;
  /** this broker's id */
  readonly brokerId: number;
  /** asked to write an ISR change to KV (set by the broker) */
  onIsrChange: IsrChangeRequest | null = null;
  #highWatermark: number;
  #role: ReplicaRole = "leader";
  #leaderId = -1;
  #replicas: number[] = [];
  #isr: number[] = [];
  #followers = new Map<number, FollowerState>();
  /** as leader: what it knows of the observers (edge followers) copying this partition */
  #observers = new Map<number, FollowerState>();
  /** as observer: the highest high watermark the leader reported */
  #leaderHighWatermark = -1;
  #epochStartOffset = 0;
  #isrChangePending = false;
  /** appended but not yet committed: [offset after the batch, bytes], oldest first */
  #uncommitted: [number, number][] = [];
  readonly #commitWaiters = new CommitWaiters();
  readonly #notEnough = (offset: number, minIsr: number) =>
    this.#notEnoughAfterAppend(offset, minIsr);
  #now: () => number;
  #closing = false;
  #closed: Promise<void> | null = null;
  /** the batches appended last and the last small read, for the reads that follow (read) */
  readonly #tail = new TailReads();

  private constructor(opts: ReplicaOptions, log: PartitionLog) {
    this.topic = opts.topic;
    this.topicId = opts.topicId;
    this.partition = opts.partition;
    this.leaderEpoch = opts.leaderEpoch;
    this.brokerId = opts.brokerId ?? 0;
    this.log = log;
    this.#now = opts.now ?? Date.now;
    // Unreplicated, everything in the log is committed; replicated, the high watermark is
    // not known after a restart and starts low (the leader tells followers, the ISR tells
    // the leader).
    this.#highWatermark = opts.replicated ? log.logStartOffset : log.logEndOffset;
    this.#leaderId = this.brokerId;
    this.#replicas = [this.brokerId];
    this.#isr = [this.brokerId];
    if (opts.replicated) {
      // A replicated partition waits for the broker to say what it is.
      this.#role = "follower";
      this.#leaderId = -1;
      this.#isr = [];
    }
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

  /** The replica's role. */
  get role(): ReplicaRole {
    return this.#role;
  }

  /** The broker id of the partition's leader as this replica knows it (-1: none). */
  get leaderId(): number {
    return this.#leaderId;
  }

  /** The in-sync replicas as the leader tracks them (this replica only, when a follower). */
  get isr(): readonly number[] {
    return this.#isr;
  }

  /**
   * What the leader knows of each follower (empty unless leader).
   *
   * @returns follower id → state
   */
  followers(): ReadonlyMap<number, FollowerState> {
    return this.#followers;
  }

  /**
   * What the leader knows of the observers (`rill follower`) copying this partition, from
   * their fetches (empty unless leader): each one's copied offset and last caught-up time,
   * "caught up" meaning its fetch reached the high watermark (observers copy committed
   * batches only).
   *
   * @returns observer id → state
   */
  observers(): ReadonlyMap<number, FollowerState> {
    return this.#observers;
  }

  /**
   * Records an observer's fetch (its fetch offset is the end of its copy); used to choose a
   * preferred read replica (KIP-392), never for the high watermark or the ISR.
   *
   * @param observerId the observer's broker id
   * @param fetchOffset the offset it fetches from
   */
  recordObserverFetch(observerId: number, fetchOffset: number): void {
    if (this.#role !== "leader") return;
    let f = this.#observers.get(observerId);
    if (!f) this.#observers.set(observerId, f = newFollower(this.#now()));
    recordFetch(f, fetchOffset, this.#highWatermark, this.#now());
  }

  /**
   * Makes this replica the leader for `epoch`: appends from now on carry the epoch, the
   * followers' positions are unknown until they fetch (so the high watermark may lag, as in
   * Kafka), and the ISR is the one in KV.
   *
   * @param epoch the new leader epoch
   * @param replicas the partition's replicas
   * @param isr the partition's ISR
   */
  becomeLeader(epoch: number, replicas: readonly number[], isr: readonly number[]): void {
    const now = this.#now();
    this.#role = "leader";
    this.#leaderId = this.brokerId;
    this.leaderEpoch = epoch;
    this.#replicas = [...replicas];
    this.#isr = isr.includes(this.brokerId) ? [...isr] : [...isr, this.brokerId];
    this.#followers = new Map();
    this.#observers = new Map();
    for (const id of replicas) if (id !== this.brokerId) this.#followers.set(id, newFollower(now));
    this.#epochStartOffset = this.log.logEndOffset;
    this.#isrChangePending = false;
    this.#advanceHighWatermark();
  }

  /**
   * Makes this replica a follower (or observer) of `leaderId` for `epoch`: produce is
   * refused from now on, `acks=all` waiters fail with NOT_LEADER_OR_FOLLOWER, and waiting
   * fetches read again at once (a consumer's then gets NOT_LEADER_OR_FOLLOWER).
   *
   * @param epoch the partition's leader epoch
   * @param leaderId the leader's broker id (-1: none)
   * @param observer whether this is an observer copy
   */
  becomeFollower(epoch: number, leaderId: number, observer = false): void {
    this.#tail.clear();
    this.#role = observer ? "observer" : "follower";
    this.#leaderId = leaderId;
    this.leaderEpoch = epoch;
    this.#followers = new Map();
    this.#observers = new Map();
    this.#isr = [];
    // Fetches waiting here read again at once: a consumer's learns that the leadership moved
    // (NOT_LEADER_OR_FOLLOWER, with the new leader) now, not at its maxWaitMs.
    this.waiters.wakeAll();
    this.replicaWaiters.wakeAll();
    this.#commitWaiters.failAll(
      new RillError(
        "NOT_LEADER_OR_FOLLOWER",
        `Broker ${this.brokerId} is no longer the leader of ${this.name}; its leader is broker ${leaderId}`,
        { leaderId },
      ),
    );
  }

  /**
   * The end offset of `epoch` as this leader answers OffsetsForLeaderEpoch: the current
   * epoch ends at the log end offset even before anything was appended in it.
   *
   * @param epoch the epoch a follower asks about
   * @returns the largest epoch ≤ `epoch` known here and where it ends
   */
  epochEndOffset(epoch: number): { epoch: number; endOffset: number } {
    const leo = this.log.logEndOffset;
    if (epoch >= this.leaderEpoch) return { epoch: this.leaderEpoch, endOffset: leo };
    const latest = this.log.latestEpoch();
    if (latest >= 0 && epoch >= latest) {
      return {
        epoch: latest,
        endOffset: latest === this.leaderEpoch ? leo : this.#epochStartOffset,
      };
    }
    return this.log.endOffsetForEpoch(epoch);
  }

  /**
   * Records a follower's fetch (leader only): its position moves, the high watermark may
   * advance, and a caught-up follower outside the ISR is proposed back in.
   *
   * @param followerId the follower's broker id
   * @param fetchOffset its fetch offset (its log end offset)
   * @throws {RillError} NOT_LEADER_OR_FOLLOWER when not leader, INVALID_REQUEST when the
   *   broker holds no replica of the partition
   */
  recordFollowerFetch(followerId: number, fetchOffset: number): void {
    this.#checkLeader();
    let f = this.#followers.get(followerId);
    if (!f) {
      if (!this.#replicas.includes(followerId)) {
        throw new RillError(
          "INVALID_REQUEST",
          `Broker ${followerId} holds no replica of ${this.name}; replicas are ${
            this.#replicas.join(",")
          }`,
        );
      }
      this.#followers.set(followerId, f = newFollower(this.#now()));
    }
    recordFetch(f, fetchOffset, this.log.logEndOffset, this.#now());
    this.#advanceHighWatermark();
    if (this.#isrChangePending || !this.onIsrChange) return;
    const back = caughtUpFollowers(
      this.#replicas,
      this.#isr,
      this.#followers,
      this.#highWatermark,
      this.#epochStartOffset,
    );
    if (back.length > 0) {
      // The larger ISR counts at once (it only makes the high watermark more careful).
      const next = [...this.#isr, ...back];
      this.#isr = next;
      this.#isrChangePending = true;
      this.onIsrChange(this, next, this.leaderEpoch);
    }
  }

  /**
   * Proposes removing followers not caught up for `lagMaxMs` (leader only; called
   * periodically). Shrinking counts only once written.
   *
   * @param lagMaxMs `replica.lag.time.max.ms`
   */
  checkLaggingFollowers(lagMaxMs: number): void {
    if (this.#role !== "leader" || this.#isrChangePending || !this.onIsrChange) return;
    const out = laggingFollowers(
      this.brokerId,
      this.#isr,
      this.#followers,
      this.#now(),
      lagMaxMs,
    );
    if (out.length === 0) return;
    this.#isrChangePending = true;
    this.onIsrChange(this, this.#isr.filter((id) => !out.includes(id)), this.leaderEpoch);
  }

  /**
   * Called once an ISR change proposed through `onIsrChange` was written (or refused).
   *
   * @param isr the ISR now in KV, or null when the write was refused
   * @param leaderEpoch the epoch it was written for
   */
  isrChanged(isr: readonly number[] | null, leaderEpoch: number): void {
    this.#isrChangePending = false;
    if (isr === null || this.#role !== "leader" || leaderEpoch !== this.leaderEpoch) return;
    this.#isr = [...isr];
    this.#advanceHighWatermark();
  }

  /**
   * Applies the ISR (and replicas) stored in KV (a metadata refresh) while leader.
   *
   * @param isr the ISR in KV
   * @param replicas the replicas in KV (they change during a reassignment)
   */
  syncIsr(isr: readonly number[], replicas?: readonly number[]): void {
    if (this.#role !== "leader") return;
    if (replicas) {
      this.#replicas = [...replicas];
      for (const id of [...this.#followers.keys()]) {
        if (!replicas.includes(id)) this.#followers.delete(id);
      }
    }
    if (this.#isrChangePending) return;
    const next = isr.includes(this.brokerId) ? [...isr] : [...isr, this.brokerId];
    if (next.length === this.#isr.length && next.every((id) => this.#isr.includes(id))) return;
    this.#isr = next;
    this.#advanceHighWatermark();
  }

  /**
   * Waits until the high watermark passes `lastOffset` (acks=all).
   *
   * @param lastOffset the last offset of the appended batch
   * @param timeoutMs how long to wait
   * @param minIsr `min.insync.replicas`: committed with a smaller ISR fails (as Kafka's
   *   NOT_ENOUGH_REPLICAS_AFTER_APPEND)
   * @returns once committed
   * @throws {RillError} REQUEST_TIMED_OUT, NOT_LEADER_OR_FOLLOWER (leadership moved),
   *   NOT_ENOUGH_REPLICAS_AFTER_APPEND
   */
  waitForCommit(lastOffset: number, timeoutMs: number, minIsr = 1): Promise<void> {
    if (this.#highWatermark > lastOffset) {
      return this.#isr.length >= minIsr || this.#role !== "leader"
        ? Promise.resolve()
        : Promise.reject(this.#notEnoughAfterAppend(lastOffset, minIsr));
    }
    if (this.#role !== "leader" || this.#closing) {
      return Promise.reject(
        new RillError("NOT_LEADER_OR_FOLLOWER", `${this.name} is no longer led by this broker`),
      );
    }
    return this.#commitWaiters.add(lastOffset, minIsr, timeoutMs, () =>
      new RillError(
        "REQUEST_TIMED_OUT",
        `Offset ${lastOffset} of ${this.name} was not replicated to the ISR (${
          this.#isr.join(",")
        }) within ${timeoutMs} ms`,
      ));
  }

  /**
   * Appends batches copied from the leader (follower or observer): offsets and leader
   * epochs come from the batch headers.
   *
   * @param batches whole batches starting at the log end offset
   * @param leaderHighWatermark the high watermark the leader reported
   * @returns the append result
   * @throws {RillError} from the log (e.g. OFFSET_OUT_OF_RANGE when they do not follow on)
   */
  async appendAsFollower(
    batches: Uint8Array,
    leaderHighWatermark: number,
  ): Promise<AppendResult | null> {
    let result: AppendResult | null = null;
    if (batches.length > 0) {
      result = await this.log.append(batches, { assignOffsets: false });
      this.#uncommitted.push([result.lastOffset + 1, batches.length]);
      this.replicaWaiters.notify(batches.length);
    }
    this.updateHighWatermark(leaderHighWatermark);
    return result;
  }

  /**
   * Takes the high watermark the leader reported (follower or observer), capped at the
   * log end offset.
   *
   * @param leaderHighWatermark the leader's high watermark
   */
  updateHighWatermark(leaderHighWatermark: number): void {
    if (leaderHighWatermark > this.#leaderHighWatermark) {
      this.#leaderHighWatermark = leaderHighWatermark;
    }
    const hw = Math.min(leaderHighWatermark, this.log.logEndOffset);
    if (hw > this.#highWatermark) this.#setHighWatermark(hw);
  }

  /**
   * Truncates the log (a follower removing a suffix the leader does not have).
   *
   * @param offset the new log end offset
   */
  async truncateTo(offset: number): Promise<void> {
    this.#tail.clear();
    await this.log.truncateTo(offset);
    this.#tail.clear();
    const leo = this.log.logEndOffset;
    if (this.#highWatermark > leo) this.#highWatermark = leo;
    this.#uncommitted = this.#uncommitted.filter(([next]) => next <= leo);
  }

  /**
   * Empties the log and restarts it at `offset` (a follower or observer whose log end
   * offset is below the leader's log start offset, after the leader's retention deleted
   * what it lacks); the high watermark becomes `offset`.
   *
   * @param offset the leader's log start offset
   */
  async truncateFullyAndStartAt(offset: number): Promise<void> {
    this.#tail.clear();
    await this.log.truncateFullyAndStartAt(offset);
    this.#tail.clear();
    this.#uncommitted = [];
    this.#setHighWatermark(this.log.logEndOffset);
  }

  /**
   * Reads batches for a follower: up to the log end offset, not the high watermark.
   *
   * @param offset the follower's fetch offset
   * @param maxBytes the most bytes
   * @param alloc where the bytes are read (segment.ts's ReadBuffer); default a new buffer
   * @returns the batches and offsets
   * @throws {RillError} OFFSET_OUT_OF_RANGE outside [log start, log end]
   */
  async readForFollower(
    offset: number,
    maxBytes: number,
    alloc?: ReadBuffer,
  ): Promise<FetchResult> {
    const result = await this.log.read(offset, maxBytes, { alloc });
    return {
      ...result,
      highWatermark: this.#highWatermark,
      logStartOffset: this.log.logStartOffset,
    };
  }

  #checkLeader(): void {
    if (this.#role !== "leader") {
      throw new RillError(
        "NOT_LEADER_OR_FOLLOWER",
        `Broker ${this.brokerId} does not lead ${this.name}; its leader is broker ${this.#leaderId}`,
        { leaderId: this.#leaderId },
      );
    }
  }

  #advanceHighWatermark(): void {
    if (this.#role !== "leader") return;
    const hw = highWatermarkOf(
      this.brokerId,
      this.log.logEndOffset,
      this.#isr,
      this.#followers,
    );
    if (hw !== null && hw > this.#highWatermark) this.#setHighWatermark(hw);
  }

  #setHighWatermark(hw: number): void {
    this.#highWatermark = hw;
    let bytes = 0;
    let i = 0;
    while (i < this.#uncommitted.length && this.#uncommitted[i][0] <= hw) {
      bytes += this.#uncommitted[i][1];
      i++;
    }
    if (i > 0) this.#uncommitted.splice(0, i);
    this.waiters.notify(Math.max(1, bytes));
    this.#commitWaiters.release(hw, this.#isr.length, this.#notEnough);
  }

  #notEnoughAfterAppend(offset: number, minIsr: number): RillError {
    return new RillError(
      "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
      `Offset ${offset} of ${this.name} was written with ${this.#isr.length} in-sync replica(s), fewer than min.insync.replicas (${minIsr})`,
    );
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
  append(batches: Uint8Array): Promise<AppendResult> {
    // Not an async function: a single-record produce comes through here, and a frame and
    // its await cost allocations on every request.
    try {
      const result = this.appendNow(batches);
      return result instanceof Promise ? result : Promise.resolve(result);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * {@linkcode append}, answered at once when it could be: the result of an append written
   * synchronously (PartitionLog.appendNow: a small append finding the log's writer idle, as
   * a single-record produce does) to a partition no fetch waits on, with the high watermark
   * advanced already; else the promise `append` would return.
   *
   * @param batches one or more whole, validated batches (mutated: offsets written in place)
   * @param framed their framing, read by the caller's checks (see AppendOptions.framed)
   * @returns the offsets assigned and the largest timestamp, or a promise of them
   * @throws {RillError} as {@linkcode append} rejects, for what is found before writing
   */
  appendNow(
    batches: Uint8Array,
    framed?: BatchPosition[],
  ): AppendResult | Promise<AppendResult> {
    if (this.#closing) {
      throw new RillError(
        "NOT_LEADER_OR_FOLLOWER",
        `Partition ${this.name} is closing on this broker`,
      );
    }
    this.#checkLeader();
    const result = this.log.appendNow(batches, {
      assignOffsets: true,
      leaderEpoch: this.leaderEpoch,
      framed,
    });
    if (result instanceof Promise) return result.then((r) => this.#appended(batches, r));
    // Fetches or push subscriptions waiting here are woken a turn later, as after an async
    // write, and the append is answered after that: their records go out before the answer
    // of the append that woke them (a consumer on the producer's connection sees its records
    // first; tests/ws/ws_fetch_test.ts).
    if (this.waiters.size > 0) {
      return Promise.resolve(result).then((r) => this.#appended(batches, r));
    }
    return this.#appended(batches, result);
  }

  /** What a leader append does once its batches are written. */
  #appended(batches: Uint8Array, result: AppendResult): AppendResult {
    if (result.duplicate) return result;
    // Kept for the fetches waiting to read them, or that read within the last appends; a
    // partition no one follows keeps nothing, nor one closing (its tail was given back).
    // Kept even when the high watermark covers them already: appends answered a turn later
    // (fetches wait) find it moved to the log end by the appends written after them, and a
    // batch left out emptied the tail at the next append (the 5,000-client crowd of
    // `deno task bench clients` then read ~5,000 times from the segment files instead).
    if (!this.#closing && (this.waiters.size > 0 || this.#tail.followed)) {
      this.#tail.append(batches, result.baseOffset);
    } else if (this.#tail.bytes > 0) this.#tail.clear();
    const next = result.lastOffset + 1;
    if (next > this.#highWatermark) {
      this.#uncommitted.push([next, batches.length]);
      this.replicaWaiters.notify(batches.length);
      this.#advanceHighWatermark();
    }
    return result;
  }

  /**
   * Reads committed batches from `offset` (below the high watermark only).
   *
   * @param offset the first offset wanted (the first batch may start before it)
   * @param maxBytes the most bytes to return (at least one batch is returned if any)
   * @param alloc where the bytes are read (segment.ts's ReadBuffer); default a new buffer
   * @returns the batches, the next offset, the high watermark and the log start offset; the
   *   bytes may be shared with other reads at the same position (never write them)
   * @throws {RillError} OFFSET_OUT_OF_RANGE with both bounds when `offset` is below the
   *   log start offset or above the high watermark
   */
  read(offset: number, maxBytes: number, alloc?: ReadBuffer): Promise<FetchResult> {
    try {
      return Promise.resolve(this.readSync(offset, maxBytes, alloc));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * {@linkcode read}, synchronously. A read of the tail that the leader keeps while fetches
   * wait on the partition (tail_reads.ts) is answered from memory, not the segment file; its
   * bytes may be shared, never to be written to.
   */
  readSync(offset: number, maxBytes: number, alloc?: ReadBuffer): FetchResult {
    const hw = this.#highWatermark;
    this.checkOffset(offset);
    if (offset >= hw) {
      // A consumer at the log end follows the partition: what comes next is kept for it.
      if (this.#role === "leader") this.#tail.noteRead();
      return {
        bytes: EMPTY,
        nextOffset: offset,
        highWatermark: hw,
        logStartOffset: this.log.logStartOffset,
      };
    }
    // The fetches an append wakes read the tail: from memory while it is kept (tail_reads.ts).
    let result: ReadResult | null = this.#role === "leader"
      ? this.#tail.read(offset, maxBytes, hw, alloc)
      : null;
    if (result !== null) {
      return { ...result, highWatermark: hw, logStartOffset: this.log.logStartOffset };
    }
    try {
      result = this.log.readSync(offset, maxBytes, { maxOffset: hw, alloc });
    } catch (e) {
      // Retention may have moved the log start between the check and the read.
      if (e instanceof RillError && e.code === "OFFSET_OUT_OF_RANGE") this.checkOffset(offset);
      throw e;
    }
    this.#tail.keep(offset, maxBytes, hw, result);
    return { ...result, highWatermark: hw, logStartOffset: this.log.logStartOffset };
  }

  /**
   * Throws OFFSET_OUT_OF_RANGE unless `offset` is within [log start, high watermark]; an
   * observer asked for an offset it has not copied yet but the leader has committed throws
   * OFFSET_NOT_AVAILABLE (retriable: Kafka clients go back to the leader, as KIP-392 wants).
   *
   * @param offset the offset to check
   * @throws {RillError} OFFSET_OUT_OF_RANGE with `logStartOffset` and `highWatermark`;
   *   OFFSET_NOT_AVAILABLE
   */
  checkOffset(offset: number): void {
    const start = this.log.logStartOffset;
    const hw = this.#highWatermark;
    const end = Math.max(hw, this.log.logEndOffset);
    if (this.#role === "observer" && offset > end && offset <= this.#leaderHighWatermark) {
      throw new RillError(
        "OFFSET_NOT_AVAILABLE",
        `Offset ${offset} of partition ${this.name} is committed on its leader (broker ${this.#leaderId}) but not copied to this follower yet (it has up to ${end})`,
        { leaderId: this.#leaderId, highWatermark: hw },
      );
    }
    // Between the high watermark and the log end offset the records exist but are not yet
    // committed (e.g. a new leader whose high watermark lags): the reader waits for them.
    if (offset < start || offset > end) {
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
   * Compacts the log once if its topic asks for it (`PartitionLog.clean`), never at or past
   * the high watermark (a follower's may be truncated away).
   *
   * @param maxDirtyBytes the most dirty bytes one pass maps
   * @returns what the pass did, or null if it did nothing
   */
  async cleanLog(maxDirtyBytes: number): Promise<CleanResult | null> {
    if (this.#closing) return null;
    return await this.log.clean({ maxOffset: this.#highWatermark, maxDirtyBytes });
  }

  /**
   * Stops taking appends, wakes waiting fetches, lets the appends already queued finish and
   * closes the log (which writes its clean-shutdown marker).
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.#tail.clear();
      this.waiters.close();
      this.replicaWaiters.close();
      this.#commitWaiters.failAll(
        new RillError("NOT_LEADER_OR_FOLLOWER", `Partition ${this.name} is closing on this broker`),
      );
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
