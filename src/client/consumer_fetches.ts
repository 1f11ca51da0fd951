/**
 * The consumer's partition fetches: the state of each assigned partition (fetch offset,
 * position, epochs), one fetch loop per partition (long-polling fetches from the fetch
 * offset, at most `maxBufferedBatches` results waiting, offset reset on
 * OFFSET_OUT_OF_RANGE, retries), and the queue of fetched chunks waiting for delivery.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { Admin } from "./admin.ts";
import type { ConsumerOptions, TopicPartitionOffset } from "./consumer_types.ts";
import { fetchPartition } from "./fetcher.ts";
import { decodePartition, type RawPartitionAnswer } from "./multi_fetch.ts";
import { SessionFetcher, type SessionFetcherHost } from "./session_fetcher.ts";
import type { ConsumedMessage } from "./message.ts";
import { toOffset } from "./offsets.ts";
import { delay, isRetriable, retryDelay } from "./retry.ts";
import type { Transport } from "./transport.ts";

/** One assigned partition's fetch and delivery state. */
/**
 * How long the share of the WebSocket connections taken for an offset look-up is kept if the
 * consumer does not start running (it usually does at once, and fetches over the same
 * connection).
 */
const STREAMS_IDLE_MS = 1000;

export interface PartitionState {
  topic: string;
  partition: number;
  /** next offset to fetch */
  fetchOffset: number;
  /** next offset to deliver (the consumer's position) */
  position: number;
  /** bumped by seek/unassign: results of an older epoch are dropped */
  epoch: number;
  /** bumped whenever a fetch loop starts or must end: only the newest loop runs */
  loop: number;
  abort: AbortController | null;
  buffered: number;
  spaceWaiter: (() => void) | null;
  assigned: boolean;
  /** a handler call on this partition in progress (groups wait for it before handing over) */
  busy: HandlerCall | null;
  /** session fetcher: consecutive failed fetches, and no fetch before this time */
  failures: number;
  retryAt: number;
}

/**
 * A partition's fetch state when it is (re)assigned, fetching from `offset`.
 *
 * @param topic the topic
 * @param partition the partition
 * @param offset where fetching and delivery start
 * @returns the state
 */
export function newPartitionState(
  topic: string,
  partition: number,
  offset: number,
): PartitionState {
  return {
    topic,
    partition,
    fetchOffset: offset,
    position: offset,
    epoch: 0,
    loop: 0,
    abort: null,
    buffered: 0,
    spaceWaiter: null,
    assigned: true,
    busy: null,
    failures: 0,
    retryAt: 0,
  };
}

/**
 * A handler call in progress on a partition, for a rebalance to wait for: its promise is made
 * only when something waits (most calls end unwatched, and a promise per delivered chunk is
 * garbage for nothing).
 */
export class HandlerCall {
  #promise: Promise<void> | null = null;
  #resolve: (() => void) | null = null;
  #done = false;

  /** Settles once the call ended ({@linkcode end}). */
  get promise(): Promise<void> {
    if (this.#done) return Promise.resolve();
    return this.#promise ??= new Promise<void>((resolve) => (this.#resolve = resolve));
  }

  /** The call ended: whatever waits goes on. */
  end(): void {
    this.#done = true;
    this.#resolve?.();
  }
}

/** One fetch result waiting for (or in) delivery. */
export interface Chunk {
  state: PartitionState;
  epoch: number;
  loop: number;
  messages: ConsumedMessage[];
  /**
   * batches fetched and not decoded yet (the session fetcher's answers: decoded when the chunk
   * is taken for delivery, so the next fetch is on the wire meanwhile), or null
   */
  raw: { answer: RawPartitionAnswer; offset: number } | null;
  highWatermark: number;
  index: number;
  /** records delivered in this turn (fairness, {@linkcode TURN_RECORDS}) */
  turn: number;
  /** put back in the queue by {@linkcode PartitionFetches.yieldTurn}: not released yet */
  requeued: boolean;
}

/**
 * The most records of one partition delivered in a row while other partitions' records wait
 * (issue 14, D5: a 4,000-record chunk must not hold a quiet partition back).
 */
export const TURN_RECORDS = 100;

/** The fetch settings of a consumer (its options with their defaults). */
export type FetchSettings = Required<
  Pick<
    ConsumerOptions,
    | "maxWaitMs"
    | "minBytes"
    | "maxBytes"
    | "maxBufferedBatches"
    | "checkCrcs"
    | "autoOffsetReset"
    | "fetchMaxBytes"
    | "fetchSessions"
  >
>;

/**
 * The map key of a partition.
 *
 * @param topic the topic
 * @param partition the partition
 * @returns the key
 */
export const key = (topic: string, partition: number): string => topic + "\u0000" + partition;

/** The assigned partitions, their fetch loops and the fetched chunks. */
export class PartitionFetches {
  /** the assigned partitions by {@linkcode key} */
  readonly states: Map<string, PartitionState> = new Map();
  /** partitions paused by `pause()` */
  readonly paused: Set<string> = new Set();
  /** whether fetch loops run (the consumer runs) */
  running = false;
  /** the error that stopped the consumer */
  error: unknown = undefined;
  readonly #t: Transport;
  /** the consumer's share of the transport's WebSocket connections, while it runs */
  #streams: (() => void) | undefined;
  /** gives the share back if the consumer does not start after an offset look-up */
  #idleStreams: ReturnType<typeof setTimeout> | undefined;
  readonly #admin: Admin;
  readonly #opts: FetchSettings;
  readonly #ready: Chunk[] = [];
  #readyWaiter: (() => void) | null = null;
  /** set when the session fetcher handed records to a delivery loop waiting for some */
  #wokeDelivery = false;
  /** the session fetcher waiting for those records to reach the handler (handedOver) */
  #handedWaiters: (() => void)[] = [];
  /** one long poll per broker (session_fetcher.ts) while running with `fetchSessions` */
  #fetcher: SessionFetcher<PartitionState> | null = null;
  /** settles once the stopped fetcher closed its sessions */
  fetcherStopped: Promise<void> = Promise.resolve();

  /**
   * @param transport the client's transport
   * @param admin offset lookups
   * @param opts fetch settings
   */
  constructor(transport: Transport, admin: Admin, opts: FetchSettings) {
    this.#t = transport;
    this.#admin = admin;
    this.#opts = opts;
  }

  /**
   * An assigned partition's state.
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the state
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION if it is not assigned
   */
  state(topic: string, partition: number): PartitionState {
    const s = this.states.get(key(topic, partition));
    if (!s) {
      throw new RillError(
        "UNKNOWN_TOPIC_OR_PARTITION",
        `Partition "${topic}-${partition}" is not assigned to this consumer`,
      );
    }
    return s;
  }

  /**
   * Where an assignment or seek starts: its offset, or "earliest"/"latest"/a timestamp
   * looked up.
   *
   * @param p the partition and its start
   * @returns the offset
   */
  async resolveStart(p: TopicPartitionOffset): Promise<number> {
    if (typeof p.topic !== "string" || !Number.isInteger(p.partition) || p.partition < 0) {
      throw new TypeError("Each assignment needs a topic and a non-negative integer partition");
    }
    if (p.timestamp !== undefined) {
      if (!Number.isSafeInteger(p.timestamp)) {
        throw new RangeError(`timestamp must be an integer, got ${p.timestamp}`);
      }
      return await this.#admin.fetchOffset(p.topic, p.partition, { timestamp: p.timestamp });
    }
    const o = p.offset ?? "latest";
    if (o === "earliest" || o === "latest") {
      // Over the WebSocket connection the consumer fetches on next, else over HTTP: a share
      // of the connections is taken now and kept while the consumer runs (or for a moment,
      // if it does not start).
      this.#streams ??= this.#t.useStreams();
      clearTimeout(this.#idleStreams);
      try {
        return await this.#t.listOffset(p.topic, p.partition, o) ??
          await this.#admin.fetchOffset(p.topic, p.partition, o);
      } finally {
        // Counted from the answer: a slow look-up keeps its connection.
        clearTimeout(this.#idleStreams);
        this.#idleStreams = setTimeout(() => this.#releaseStreams(), STREAMS_IDLE_MS);
      }
    }
    return toOffset(o);
  }

  /**
   * Moves a partition to an offset: its fetched records are dropped and its loop restarts.
   *
   * @param s the partition
   * @param offset the new fetch offset and position
   */
  moveTo(s: PartitionState, offset: number): void {
    this.invalidate(s);
    s.fetchOffset = offset;
    s.position = offset;
    if (this.running && s.assigned) this.fetchLoop(s);
  }

  /**
   * Drops a partition's fetched records and aborts its fetch; its loop ends. A handler in
   * progress sees the batch as stale.
   *
   * @param s the partition
   */
  invalidate(s: PartitionState): void {
    s.epoch++;
    this.halt(s);
  }

  /**
   * Ends a partition's fetch loop and drops its fetched records (stop()).
   *
   * @param s the partition
   */
  halt(s: PartitionState): void {
    s.loop++;
    s.abort?.abort();
    s.abort = null;
    // A push subscription re-plans without it at once (its pushes are dropped meanwhile).
    this.#fetcher?.wake();
    for (let i = this.#ready.length - 1; i >= 0; i--) {
      if (this.#ready[i].state === s) this.#ready.splice(i, 1);
    }
    s.buffered = 0;
    s.spaceWaiter?.();
    s.spaceWaiter = null;
  }

  /** Gives the share of the WebSocket connections back once the consumer stopped. */
  #releaseStreams(): void {
    clearTimeout(this.#idleStreams);
    this.#idleStreams = undefined;
    if (this.running) return;
    if (this.#fetcher !== null) {
      this.fetcherStopped = this.#fetcher.stop();
      this.#fetcher = null;
    }
    this.#streams?.();
    this.#streams = undefined;
  }

  /** Halts every partition, drops every chunk and wakes the delivery waiting for one. */
  haltAll(): void {
    this.#releaseStreams();
    for (const s of this.states.values()) this.halt(s);
    this.#ready.length = 0;
    this.#readyWaiter?.();
    this.handed();
  }

  /**
   * Called by the delivery loop once the handler was called with a chunk (its first record
   * or the batch), and whenever it goes back to waiting for one: the session fetcher
   * waiting in {@linkcode handedOver} sends its next request now.
   */
  handed(): void {
    if (this.#handedWaiters.length === 0) return;
    const waiters = this.#handedWaiters;
    this.#handedWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * One loop per partition and epoch: fetch, hand over, repeat.
   *
   * @param s the partition
   */
  async fetchLoop(s: PartitionState): Promise<void> {
    const epoch = s.epoch;
    const loop = ++s.loop;
    if (this.paused.has(key(s.topic, s.partition))) return;
    const o = this.#opts;
    // Fetches go over the client's WebSocket connections while the consumer runs.
    if (this.running) this.#streams ??= this.#t.useStreams();
    if (o.fetchSessions && this.running) {
      // One long poll per broker for all partitions (session_fetcher.ts).
      this.#fetcher ??= new SessionFetcher(this.#t, {
        maxWaitMs: o.maxWaitMs,
        minBytes: o.minBytes,
        maxBytes: o.maxBytes,
        fetchMaxBytes: o.fetchMaxBytes,
        // Pushed where the broker offers it (push_loop.ts); a consumer that waits for more
        // than one byte long-polls, as a push goes out with the first record.
        push: o.minBytes <= 1,
      }, this.#fetchHost());
      this.#fetcher.add(s, loop);
      return;
    }
    let failures = 0;
    // Fetches go over the client's WebSocket connections while the consumer runs.
    if (this.running) this.#streams ??= this.#t.useStreams();
    while (this.running && s.loop === loop) {
      if (s.buffered >= o.maxBufferedBatches) {
        await new Promise<void>((resolve) => (s.spaceWaiter = resolve));
        continue;
      }
      const abort = new AbortController();
      s.abort = abort;
      const started = Date.now();
      try {
        const r = await fetchPartition(this.#t, s.topic, s.partition, s.fetchOffset, {
          maxBytes: o.maxBytes,
          maxWaitMs: o.maxWaitMs,
          minBytes: o.minBytes,
          checkCrcs: o.checkCrcs,
          signal: abort.signal,
        });
        if (s.loop !== loop || !this.running) return;
        failures = 0;
        s.fetchOffset = r.nextOffset;
        if (r.messages.length > 0) {
          s.buffered++;
          this.#ready.push({
            state: s,
            epoch,
            loop,
            messages: r.messages,
            raw: null,
            highWatermark: r.highWatermark,
            index: 0,
            turn: 0,
            requeued: false,
          });
          const w = this.#readyWaiter;
          this.#readyWaiter = null;
          w?.();
        } else if (Date.now() - started < o.maxWaitMs / 2 || o.maxWaitMs === 0) {
          // The broker answered an empty fetch early: do not spin.
          await delay(Math.min(100, Math.max(10, o.maxWaitMs / 2)));
        }
      } catch (e) {
        if (s.loop !== loop || !this.running) return;
        let err: unknown = e;
        if (
          e instanceof RillError && e.code === "OFFSET_OUT_OF_RANGE" && o.autoOffsetReset !== "none"
        ) {
          const start = Number(e.details.logStartOffset);
          const end = Number(e.details.highWatermark);
          let to = -1;
          if (Number.isSafeInteger(start) && Number.isSafeInteger(end)) {
            to = o.autoOffsetReset === "latest" ? end : start;
          } else {
            try {
              to = await this.#admin.fetchOffset(s.topic, s.partition, o.autoOffsetReset);
            } catch (e2) {
              err = e2;
            }
          }
          if (to >= 0) {
            if (s.loop !== loop) return;
            s.fetchOffset = to;
            s.position = to;
            continue;
          }
        }
        if (notCopiedYet(err)) {
          // A follower (readFrom) behind its leader: wait for its copy, as for an empty fetch.
          await delay(retryDelay(0, this.#t.retry));
          continue;
        }
        if (isRetriable(err) && failures < this.#t.retry.retries) {
          await delay(retryDelay(failures++, this.#t.retry));
          continue;
        }
        this.fail(err);
        return;
      } finally {
        if (s.abort === abort) s.abort = null;
      }
    }
  }

  /**
   * Stops the consumer with an error (the first one is kept).
   *
   * @param e the error
   */
  fail(e: unknown): void {
    if (this.error === undefined) this.error = e;
    this.running = false;
    this.#releaseStreams();
    for (const s of this.states.values()) this.halt(s);
    this.#readyWaiter?.();
    this.handed();
  }

  /**
   * The next chunk to deliver, waiting for one while running.
   *
   * @returns the chunk, or null once stopped
   */
  /**
   * Whether records of another partition than `s` wait for delivery.
   *
   * @param s the partition being delivered
   * @returns true if so
   */
  othersWaiting(s: PartitionState): boolean {
    return this.#ready.some((c) => c.state !== s);
  }

  /**
   * Ends a chunk's turn when another partition's records wait (fairness: a hot partition's
   * backlog cannot hold a quiet one back for more than {@linkcode TURN_RECORDS} records): the
   * chunk goes to the back of the queue, with its partition's later chunks behind it.
   *
   * @param chunk the chunk being delivered
   * @returns true when the turn was given away (do not release the chunk)
   */
  yieldTurn(chunk: Chunk): boolean {
    if (chunk.index >= chunk.messages.length || !this.othersWaiting(chunk.state)) return false;
    const later = this.#ready.filter((c) => c.state === chunk.state);
    for (let i = this.#ready.length - 1; i >= 0; i--) {
      if (this.#ready[i].state === chunk.state) this.#ready.splice(i, 1);
    }
    chunk.turn = 0;
    chunk.requeued = true;
    this.#ready.push(chunk, ...later);
    return true;
  }

  nextChunk(): Promise<Chunk | null> | Chunk | null {
    while (this.#ready.length > 0) {
      const c = this.#ready.shift()!;
      c.requeued = false;
      if (c.epoch !== c.state.epoch) continue;
      if (c.raw !== null && !this.#decode(c)) continue;
      return c;
    }
    // Nothing (more) to hand to the handler: a fetcher waiting for that goes on.
    this.handed();
    if (!this.running) return null;
    return new Promise<void>((resolve) => (this.#readyWaiter = resolve)).then(() =>
      this.nextChunk()
    );
  }

  /**
   * A delivered chunk frees its place: its partition's loop may fetch again.
   *
   * @param chunk the chunk
   */
  release(chunk: Chunk): void {
    const s = chunk.state;
    if (chunk.requeued || chunk.loop !== s.loop) return;
    s.buffered--;
    const w = s.spaceWaiter;
    s.spaceWaiter = null;
    w?.();
    if (s.buffered === this.#opts.maxBufferedBatches - 1) this.#fetcher?.wake();
  }

  /**
   * Decodes a chunk the session fetcher handed over undecoded.
   *
   * @returns false when it has nothing to deliver (released) or its batches are corrupt (the
   *   consumer fails: no later record of the partition may be delivered past them)
   */
  #decode(c: Chunk): boolean {
    const { answer, offset } = c.raw!;
    c.raw = null;
    const s = c.state;
    try {
      c.messages = decodePartition(answer, offset, this.#opts.checkCrcs);
    } catch (e) {
      if (c.loop === s.loop && this.running) this.fail(e);
      return false;
    }
    if (c.messages.length === 0) {
      this.release(c);
      return false;
    }
    const after = c.messages[c.messages.length - 1].offset + 1;
    if (c.loop === s.loop && after > s.fetchOffset) {
      // Batches past the broker's next offset (not expected): fetch after them.
      s.fetchOffset = after;
      this.#fetcher?.wake();
    }
    return true;
  }

  /** What the session fetcher asks of the consumer (session_fetcher.ts). */
  #fetchHost(): SessionFetcherHost<PartitionState> {
    const o = this.#opts;
    return {
      fetchOffset: (s, token, evenIfFull) => {
        if (!this.running || s.loop !== token) return "gone";
        if ((!evenIfFull && s.buffered >= o.maxBufferedBatches) || Date.now() < s.retryAt) {
          return "skip";
        }
        return s.fetchOffset;
      },
      heldBack: (s) => s.buffered >= o.maxBufferedBatches,
      deliver: (s, token, answer, offset) => {
        if (s.loop !== token || !this.running) return; // halted, moved or stopped meanwhile
        // An answer to a position left meanwhile (the fetch was sent before it moved).
        if (offset !== s.fetchOffset) return;
        s.failures = 0;
        s.fetchOffset = Math.max(offset, answer.nextOffset);
        if (answer.bytes.length === 0) return;
        // Decoded when taken for delivery (nextChunk): the session fetcher sends its next
        // request first, so the broker reads while this side decodes.
        s.buffered++;
        this.#ready.push({
          state: s,
          epoch: s.epoch,
          loop: token,
          messages: [],
          raw: { answer, offset },
          highWatermark: answer.highWatermark,
          index: 0,
          turn: 0,
          requeued: false,
        });
        const w = this.#readyWaiter;
        this.#readyWaiter = null;
        if (w !== null) {
          this.#wokeDelivery = true;
          w();
        }
      },
      handedOver: (wait) => {
        const woke = this.#wokeDelivery;
        this.#wokeDelivery = false;
        if (!woke || !wait) return null;
        return new Promise<void>((resolve) => this.#handedWaiters.push(resolve));
      },
      partitionError: (s, token, e) => this.#fetchFailed(s, token, e),
      fail: (e) => this.fail(e),
    };
  }

  /** A partition's fetch error under the session fetcher: reset, back off, or fail. */
  async #fetchFailed(s: PartitionState, token: number, e: unknown): Promise<void> {
    const o = this.#opts;
    let err = e;
    if (
      e instanceof RillError && e.code === "OFFSET_OUT_OF_RANGE" && o.autoOffsetReset !== "none"
    ) {
      const start = Number(e.details.logStartOffset);
      const end = Number(e.details.highWatermark);
      let to = -1;
      if (Number.isSafeInteger(start) && Number.isSafeInteger(end)) {
        to = o.autoOffsetReset === "latest" ? end : start;
      } else {
        try {
          to = await this.#admin.fetchOffset(s.topic, s.partition, o.autoOffsetReset);
        } catch (e2) {
          err = e2;
        }
      }
      if (to >= 0) {
        if (s.loop !== token) return;
        s.fetchOffset = to;
        s.position = to;
        this.#fetcher?.wake();
        return;
      }
    }
    if (s.loop !== token || !this.running) return;
    // A follower (readFrom) behind its leader: wait for its copy without counting a failure.
    const lagging = notCopiedYet(err);
    if (lagging || (isRetriable(err) && s.failures < this.#t.retry.retries)) {
      const wait = retryDelay(lagging ? 0 : s.failures++, this.#t.retry);
      const until = Date.now() + wait;
      s.retryAt = until;
      await delay(wait);
      // The backoff ends with this timer, not by the clock: a timer may fire a fraction of a
      // millisecond before Date.now() reaches `retryAt` (the delay is fractional), and a broker
      // loop that planned then would skip the partition and wait for a wake nobody sends.
      if (s.retryAt === until) s.retryAt = 0;
      this.#fetcher?.wake();
      return;
    }
    this.fail(err);
  }

  /**
   * Whether a partition's records may be delivered (assigned and not paused).
   *
   * @param s the partition
   * @returns true if so
   */
  deliverable(s: PartitionState): boolean {
    return s.assigned && (this.paused.size === 0 || !this.paused.has(key(s.topic, s.partition)));
  }

  /**
   * The keys `pause()`/`resume()` name: the listed partitions, or the topic's assigned ones.
   *
   * @param topics the topics and partitions
   * @returns partition keys
   * @throws {TypeError} on a bad argument
   */
  expand(topics: { topic: string; partitions?: number[] }[]): string[] {
    if (!Array.isArray(topics)) {
      throw new TypeError("pause()/resume() take [{ topic, partitions? }]");
    }
    const out: string[] = [];
    for (const t of topics) {
      if (!t || typeof t.topic !== "string") {
        throw new TypeError("pause()/resume() take [{ topic, partitions? }]");
      }
      if (t.partitions) { for (const p of t.partitions) out.push(key(t.topic, p)); }
      else {
        for (const s of this.states.values()) {
          if (s.topic === t.topic) out.push(key(s.topic, s.partition));
        }
      }
    }
    return out;
  }
}

/** An edge follower's OFFSET_NOT_AVAILABLE: the offset is committed but not copied there yet. */
function notCopiedYet(e: unknown): boolean {
  return e instanceof RillError && e.code === "OFFSET_NOT_AVAILABLE";
}
