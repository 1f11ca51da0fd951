/**
 * The shapes of the fetch-session core (fetch_session.ts): a fetch over many partitions, its
 * per-partition results, what the core reads through ({@linkcode FetchSource}) and the
 * session cache's limits.
 *
 * @module
 */
import type { RillError } from "../protocol/errors.ts";
import type { Replica } from "./replica.ts";
import type { ReadBufferPool } from "./read_buffers.ts";
import type { RepeatedFetch } from "./repeated_fetch.ts";

/** One partition of a fetch request. */
export interface FetchPartitionRequest {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the first offset wanted */
  offset: number;
  /** the most bytes of this partition (the first batch of the answer is whole regardless) */
  maxBytes: number;
  /** a follower's leader epoch of the partition (-1 or absent: not checked) */
  leaderEpoch?: number;
}

/** A partition named without a position (a session's `forgotten` list). */
export interface TopicPartition {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
}

/** A fetch session as a request names it, or as an answer tells the next request. */
export interface FetchSessionRef {
  /** the session id (0: none / open a new one) */
  id: number;
  /** the request's epoch: 0 opens, n ≥ 1 continues, -1 closes (an answer: the next epoch) */
  epoch: number;
}

/** A fetch over many partitions (see the module description). */
export interface FetchManyRequest {
  /** the partitions (in an incremental session request: only added or changed ones) */
  partitions: readonly FetchPartitionRequest[];
  /** how long to wait for `minBytes` (0 answers at once) */
  maxWaitMs: number;
  /** the bytes, over all partitions, to wait for */
  minBytes: number;
  /** the most bytes of the whole answer (Kafka's fetch.max.bytes); default no limit */
  maxBytes?: number;
  /** ends the wait early (the client went away) */
  signal?: AbortSignal;
  /** set by a follower: its broker id (reads to the log end offset) */
  replicaId?: number;
  /**
   * set by an observer (`rill follower`): its broker id. It reads committed batches as a
   * consumer does; the leader records how far its copy is (KIP-392 read replicas).
   */
  observerId?: number;
  /** the session (KIP-227); absent: a one-off fetch */
  session?: FetchSessionRef;
  /** partitions to drop from the session */
  forgotten?: readonly TopicPartition[];
  /**
   * set by a fetch repeated over the same partitions (a push subscription, repeated_fetch.ts):
   * what it keeps between its fetches. A consumer's, without a session; `maxWaitMs` may be
   * `Infinity` (no deadline: the wait ends with data, a closing partition or `close()`).
   */
  repeat?: RepeatedFetch;
}

/** One partition of a fetch answer. */
export interface PartitionFetchResult {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the offset the request asked for (records below it in the first batch are not wanted) */
  fetchOffset: number;
  /** whole batches (the first may start before the offset asked); empty on error */
  bytes: Uint8Array;
  /** the offset to fetch next (≥ the offset asked) */
  nextOffset: number;
  /** the partition's high watermark (-1 when unknown: error) */
  highWatermark: number;
  /** the partition's log start offset (-1 when unknown: error) */
  logStartOffset: number;
  /** the last stable offset (Rill has no transactions: the high watermark) */
  lastStableOffset: number;
  /** why this partition has no answer, or null */
  error: RillError | null;
}

/** A fetch answer. */
export interface FetchManyResult {
  /** the session and the epoch the next request must name, or null (no session) */
  session: FetchSessionRef | null;
  /** per partition (an incremental answer: only those with something new) */
  partitions: PartitionFetchResult[];
  /** the bytes of all partitions */
  totalBytes: number;
  /** gives the read buffers back: call once the answer no longer reads the bytes */
  release(): void;
}

/** What the core needs of the broker. */
export interface FetchSource {
  /** the replica a consumer may read (leader here, or an observer's copy) */
  readableReplica(topic: string, partition: number): Promise<Replica>;
  /**
   * The replica hosted here for a partition of a topic the metadata cache knows, without a
   * turn (undefined: not known or not hosted; `readableReplica` tells why)
   */
  cachedReplica?(topic: string, partition: number): Replica | undefined;
  /** the leader replica for a follower, fenced by `leaderEpoch` (-1: not checked) */
  leaderReplica(topic: string, partition: number, leaderEpoch: number): Promise<Replica>;
  /** true once the broker drains (no more waiting) */
  draining(): boolean;
  /** the broker's read buffers */
  readonly pool: ReadBufferPool;
  /** the clock */
  now?: () => number;
  /**
   * Told each answer's partitions before the answer is returned (the broker's metrics),
   * with no turn of its own between the read and the answer.
   */
  fetched?(req: FetchManyRequest, partitions: readonly PartitionFetchResult[]): void;
}

/** Limits of the session cache. */
export interface FetchSessionLimits {
  /** the most sessions kept; 1000 (Kafka's max.incremental.fetch.session.cache.slots) */
  maxSessions: number;
  /** a session unused for this long is dropped; 120 s */
  sessionIdleMs: number;
}

/** The default {@linkcode FetchSessionLimits}. */
export const DEFAULT_FETCH_SESSION_LIMITS: Readonly<FetchSessionLimits> = Object.freeze({
  maxSessions: 1000,
  sessionIdleMs: 120_000,
});
