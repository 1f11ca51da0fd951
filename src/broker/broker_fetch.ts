/**
 * The broker's fetch path: consumers' fetches (committed batches, long-polling for
 * `minBytes`), followers' replica fetches (which record the follower's position and may
 * advance the high watermark), Kafka's OffsetsForLeaderEpoch and list-offsets, each
 * answered by the partition's replica here.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { ReadBuffer } from "../storage/segment.ts";
import type { PartitionLookup } from "./partition_lookup.ts";
import { unknownPartition } from "./produce.ts";
import type { FetchResult, Replica } from "./replica.ts";
import type { ReplicationThrottle } from "./replication_throttle.ts";

/** Options of {@linkcode FetchPath.fetch}. */
export interface FetchOptions {
  /** the most bytes to return (at least one batch is returned if any) */
  maxBytes: number;
  /** how long to wait for `minBytes` (0 answers at once) */
  maxWaitMs: number;
  /** the bytes to wait for */
  minBytes: number;
  /** aborts the wait (the client went away) */
  signal?: AbortSignal;
  /**
   * where the fetch reads its bytes (segment.ts's ReadBuffer, e.g. lent by the broker's
   * `readBuffers`): the answer may be a view of a buffer it gave; default a new buffer
   */
  alloc?: ReadBuffer;
}

/** Where a list-offsets request points. */
export type OffsetSpec = "earliest" | "latest" | { timestamp: number };

/** What {@linkcode FetchPath} needs from its broker. */
export interface FetchPathContext {
  /** this broker's id */
  brokerId: number;
  /** finds topics and replicas */
  lookup: PartitionLookup;
  /** whether the broker is shutting down */
  draining: () => boolean;
  /** refreshes the metadata cache */
  refresh: () => Promise<void>;
  /**
   * the sender side of the replication throttle: the bucket a leader's answers to
   * `replicaId` take from when a move is adding that replica, else null (replication.ts)
   */
  sendThrottle?: (replica: Replica, replicaId: number) => ReplicationThrottle | null;
}

/** Answers consumers' and followers' reads of the replicas hosted here. */
export class FetchPath {
  readonly #c: FetchPathContext;

  constructor(context: FetchPathContext) {
    this.#c = context;
  }

  /**
   * Fetches committed batches from `offset`, waiting up to `maxWaitMs` for `minBytes`
   * (answered the moment an append brings enough).
   *
   * @param topic the topic
   * @param partition the partition
   * @param offset the first offset wanted
   * @param opts size and long-poll settings
   * @returns whole batches (the first may start before `offset`), nextOffset, high
   *   watermark and log start offset
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER,
   *   OFFSET_OUT_OF_RANGE (with both bounds)
   */
  async fetch(
    topic: string,
    partition: number,
    offset: number,
    opts: FetchOptions,
  ): Promise<FetchResult> {
    const replica = await this.readableReplica(topic, partition);
    let result = await replica.read(offset, opts.maxBytes, opts.alloc);
    if (opts.maxWaitMs <= 0 || result.bytes.length >= opts.minBytes || this.#c.draining()) {
      return result;
    }
    const outcome = await replica.waiters.wait(
      opts.minBytes - result.bytes.length,
      opts.maxWaitMs,
      opts.signal,
    );
    if (outcome === "closed" && replica.closing) return result;
    result = await replica.read(offset, opts.maxBytes, opts.alloc);
    return result;
  }

  /**
   * The replica a consumer may read: the partition's leader here, or this observer's copy.
   * A broker's follower replica refuses consumers (its high watermark lags the leader's).
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the replica
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER with the
   *   leader's id and URL
   */
  async readableReplica(topic: string, partition: number): Promise<Replica> {
    const replica = await this.#c.lookup.replica(topic, partition);
    if (replica.role === "follower") {
      throw await this.#c.lookup.notLeader(await this.#c.lookup.topic(topic), partition);
    }
    return replica;
  }

  /**
   * A follower's fetch (Kafka's replica fetch): records the follower's position (its fetch
   * offset), which may advance the high watermark and the ISR, then answers batches up to
   * the log end offset, long-polling until there is data.
   *
   * @param topic the topic
   * @param partition the partition
   * @param req the follower's id, fetch offset and leader epoch
   * @param opts size and wait
   * @returns batches, high watermark and log start offset
   * @throws {RillError} NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, OFFSET_OUT_OF_RANGE
   */
  async replicaFetch(
    topic: string,
    partition: number,
    req: { replicaId: number; offset: number; leaderEpoch: number },
    opts: FetchOptions,
  ): Promise<FetchResult> {
    const replica = await this.leaderReplica(topic, partition, req.leaderEpoch);
    if (req.offset > replica.logEndOffset) {
      // A follower ahead of its leader must truncate first; it does not count as caught up.
      throw new RillError(
        "OFFSET_OUT_OF_RANGE",
        `Fetch offset ${req.offset} of ${replica.name} is past the leader's log end offset ${replica.logEndOffset}`,
        { logStartOffset: replica.logStartOffset, logEndOffset: replica.logEndOffset },
      );
    }
    replica.recordFollowerFetch(req.replicaId, req.offset);
    // A replica a move is adding reads at most the leader's sending rate (shared by all of
    // them): its fetch waits until the bytes answered so far are paid for, then reserves
    // what it may read (so fetches waiting together do not all read at once) and gives back
    // what it did not read.
    const throttle = this.#c.sendThrottle?.(replica, req.replicaId) ?? null;
    let maxBytes = opts.maxBytes;
    if (throttle) {
      await throttle.ready(opts.signal);
      if (replica.closing || replica.role !== "leader") {
        throw new RillError("NOT_LEADER_OR_FOLLOWER", `${replica.name} is no longer led here`);
      }
      maxBytes = throttle.fetchBytes(maxBytes);
      throttle.take(maxBytes);
    }
    let result: FetchResult;
    try {
      result = await replica.readForFollower(req.offset, maxBytes, opts.alloc);
    } finally {
      throttle?.take(-maxBytes);
    }
    throttle?.take(result.bytes.length);
    // Only data wakes a follower: the high watermark reaches it with the next answer (as in
    // Kafka), so followers do not ping-pong empty fetches after every advance.
    if (result.bytes.length > 0 || opts.maxWaitMs <= 0 || this.#c.draining()) return result;
    await replica.replicaWaiters.wait(1, opts.maxWaitMs, opts.signal);
    if (replica.closing || replica.role !== "leader") return result;
    result = await replica.readForFollower(req.offset, maxBytes, opts.alloc);
    throttle?.take(result.bytes.length);
    return result;
  }

  /**
   * Kafka's OffsetsForLeaderEpoch, answered by the leader: the largest epoch ≤ `epoch` it
   * knows and where that epoch ends in its log.
   *
   * @param topic the topic
   * @param partition the partition
   * @param epoch the follower's latest epoch
   * @returns the epoch, its end offset, and the leader's log end offset
   * @throws {RillError} NOT_LEADER_OR_FOLLOWER
   */
  async epochEndOffset(
    topic: string,
    partition: number,
    epoch: number,
  ): Promise<{ epoch: number; endOffset: number; logEndOffset: number }> {
    const replica = await this.leaderReplica(topic, partition, -1);
    return { ...replica.epochEndOffset(epoch), logEndOffset: replica.logEndOffset };
  }

  /**
   * The replica a follower fetches from: this broker's leader replica of the partition, at
   * the follower's leader epoch (any epoch when `epoch` < 0).
   *
   * @param topic the topic
   * @param partition the partition
   * @param epoch the follower's leader epoch, or -1
   * @returns the replica
   * @throws {RillError} NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH
   */
  async leaderReplica(topic: string, partition: number, epoch: number): Promise<Replica> {
    const state = await this.#c.lookup.topic(topic);
    const count = state.meta.partitions.length;
    if (partition >= count) throw unknownPartition(topic, partition, count);
    const replica = state.replicas[partition];
    if (
      !replica || replica.role !== "leader" ||
      state.meta.partitions[partition].leader !== this.#c.brokerId
    ) {
      throw await this.#c.lookup.notLeader(state, partition);
    }
    if (epoch >= 0 && epoch !== replica.leaderEpoch) {
      // A follower ahead of us means our metadata is stale: look again.
      if (epoch > replica.leaderEpoch) this.#c.refresh().catch(() => {});
      throw new RillError(
        "FENCED_LEADER_EPOCH",
        `The fetch of ${replica.name} names leader epoch ${epoch}; the leader is at epoch ${replica.leaderEpoch}`,
        { leaderEpoch: replica.leaderEpoch },
      );
    }
    return replica;
  }

  /**
   * Resolves an offset spec: the log start offset, the high watermark, or the first offset
   * whose timestamp is at or after a time (the high watermark when none is that recent).
   *
   * @param topic the topic
   * @param partition the partition
   * @param at earliest, latest or a timestamp
   * @returns the offset
   */
  async listOffset(topic: string, partition: number, at: OffsetSpec): Promise<number> {
    const replica = await this.readableReplica(topic, partition);
    if (at === "earliest") return replica.logStartOffset;
    if (at === "latest") return replica.highWatermark;
    return await replica.offsetForTimestamp(at.timestamp);
  }
}
