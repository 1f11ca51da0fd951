/**
 * The fetch-session core: one fetch over many partitions with one wait, used by every skin
 * that reads (HTTP multi-partition fetch, WebSocket push, the Kafka listener's Fetch,
 * followers). Long-poll wake-ups, byte limits, per-partition errors and fairness live here
 * and nowhere else.
 *
 * A request names partitions (topic, partition, offset, maxBytes each), one `maxWaitMs` and
 * `minBytes`, and optionally a total `maxBytes` (Kafka's `fetch.max.bytes`). It is answered
 * as soon as the bytes available over all its partitions reach `minBytes`, a partition has
 * an error, or `maxWaitMs` passes. The wait is woken by the appends and high-watermark moves
 * themselves (fetch_waiters.ts listeners): no timer on the wake path, no polling. Each
 * partition gets its own result or its own error; one bad partition fails no other.
 *
 * Byte limits follow Kafka (KIP-74): each partition returns at most its `maxBytes`, the whole
 * answer at most the total, except that the first batch of the first partition with data is
 * returned whole even when larger, so a consumer always progresses. Once a partition's next
 * batch does not fit in what the answer has left, the partitions after it are not read for
 * this answer (no file reads whose bytes would be thrown away); they are read first next time.
 *
 * Sessions (Kafka's KIP-227): a full request with `session: {id: 0, epoch: 0}` opens one; the
 * broker remembers the partition set (and the replicas it resolved), and later requests with
 * `{id, epoch: n}` send only the partitions whose offset or size changed, plus `forgotten`.
 * An incremental answer carries only partitions with something new (bytes, an error, or a
 * moved high watermark or log start offset). Partitions that returned bytes move to the end
 * of the session's order, so a busy partition cannot take the whole total `maxBytes` turn
 * after turn (fairness). `{id, epoch: -1}` closes a session. The cache holds at most
 * `maxSessions`; a new session evicts the least recently used one, and sessions idle for
 * `sessionIdleMs` are dropped.
 *
 * Followers (`replicaId` set) read up to the log end offset, report their fetch offset (which
 * moves the high watermark and the ISR), are fenced by `leaderEpoch`, and are woken by data
 * only, as {@linkcode Broker.replicaFetch}.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { FetchResult, Replica } from "./replica.ts";
import { forgetAborted, type WaitListener, whenAborted } from "./fetch_waiters.ts";
import { ReadArena } from "./read_buffers.ts";
import { Deadlines } from "./deadlines.ts";
import { LoopTurn } from "./time_slice.ts";
import type { RepeatedFetch } from "./repeated_fetch.ts";

import {
  DEFAULT_FETCH_SESSION_LIMITS,
  type FetchManyRequest,
  type FetchManyResult,
  type FetchPartitionRequest,
  type FetchSessionLimits,
  type FetchSource,
  type PartitionFetchResult,
} from "./fetch_session_types.ts";

export * from "./fetch_session_types.ts";

/** The deadlines of waiting fetches (deadlines.ts: no timer per wait). */
const waitDeadlines = new Deadlines();

/**
 * How long consumer reads run in one turn of the event loop. 1 ms rather than the 5 ms of
 * other request work: with 5,000 clients (`deno task bench clients`, crowd), 1 ms against
 * 5 ms in alternating runs gave `/healthz` p50 25-32 ms against 39-56 ms, 2,924-3,065 sends/s
 * against 1,713-2,575, and 230-245 µs of broker CPU per send against 297-480 (producers' acks
 * wait less behind deliveries); a 64-partition consumer's rate did not move measurably
 * (`deno task bench fetch`).
 */
export const FETCH_TURN_BUDGET_MS = 1;

/**
 * The turns of the event loop that consumer reads share (time_slice.ts): the answers one
 * append wakes, or that arrive together, are read and sent at most
 * {@linkcode FETCH_TURN_BUDGET_MS} per turn, then the loop turns (`/healthz`, heartbeats,
 * producers' frames, other I/O) before the rest.
 */
export const fetchTurns = new LoopTurn(FETCH_TURN_BUDGET_MS);

const EMPTY = new Uint8Array(0);

/** A partition a fetch reads: the request's position plus what the session remembers. */
interface Slot {
  topic: string;
  partition: number;
  key: string;
  offset: number;
  maxBytes: number;
  leaderEpoch: number;
  /** the resolved replica (kept by a session while still valid) */
  replica: Replica | null;
  /** what the last answer of the session told about it (-2: never answered) */
  sentHw: number;
  sentLso: number;
  sentError: boolean;
  /** the high watermark (consumers) or log end offset (followers) at the last read */
  seen: number;
}

/** What is left of an answer's byte budget while its slots are read. */
interface Budget {
  remaining: number;
  /** whether a slot returned bytes */
  gotData: boolean;
  /** set once a slot's next batch did not fit: later slots are not read */
  full: boolean;
}

class Session {
  readonly slots = new Map<string, Slot>();
  epoch = 1;
  lastUsed: number;
  constructor(readonly id: number, readonly replicaId: number, now: number) {
    this.lastUsed = now;
  }
}

function keyOf(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}

function newSlot(p: FetchPartitionRequest): Slot {
  return {
    topic: p.topic,
    partition: p.partition,
    key: keyOf(p.topic, p.partition),
    offset: p.offset,
    maxBytes: p.maxBytes,
    leaderEpoch: p.leaderEpoch ?? -1,
    replica: null,
    sentHw: -2,
    sentLso: -2,
    sentError: false,
    seen: -1,
  };
}

function checkPartitionRequest(p: FetchPartitionRequest): void {
  if (typeof p.topic !== "string" || p.topic.length === 0) {
    throw new RillError("INVALID_REQUEST", "Each fetched partition needs a topic name");
  }
  if (!Number.isSafeInteger(p.partition) || p.partition < 0) {
    throw new RillError(
      "INVALID_REQUEST",
      `The partition of topic "${p.topic.slice(0, 100)}" must be an integer ≥ 0`,
    );
  }
  if (!Number.isSafeInteger(p.offset) || p.offset < 0) {
    throw new RillError(
      "INVALID_REQUEST",
      `The offset of ${p.topic.slice(0, 100)}-${p.partition} must be an integer ≥ 0`,
    );
  }
  if (!Number.isSafeInteger(p.maxBytes) || p.maxBytes < 1) {
    throw new RillError(
      "INVALID_REQUEST",
      `The maxBytes of ${p.topic.slice(0, 100)}-${p.partition} must be an integer ≥ 1`,
    );
  }
}

/**
 * The broker's fetch sessions and the multi-partition fetch itself.
 *
 * @example
 * ```ts
 * const answer = await broker.fetchMany({
 *   partitions: [{ topic: "t", partition: 0, offset: 0, maxBytes: 1 << 20 }],
 *   maxWaitMs: 500,
 *   minBytes: 1,
 * });
 * try {
 *   for (const p of answer.partitions) console.log(p.topic, p.partition, p.bytes.length, p.error);
 * } finally {
 *   answer.release();
 * }
 * ```
 */
export class FetchSessions {
  readonly #source: FetchSource;
  readonly #limits: FetchSessionLimits;
  readonly #sessions = new Map<number, Session>();
  readonly #now: () => number;

  /**
   * @param source the broker's side
   * @param limits the session cache limits
   */
  constructor(source: FetchSource, limits: Partial<FetchSessionLimits> = {}) {
    this.#source = source;
    this.#limits = { ...DEFAULT_FETCH_SESSION_LIMITS, ...limits };
    this.#now = source.now ?? Date.now;
  }

  /** How many sessions are cached. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Drops every session (the broker closes). */
  clear(): void {
    this.#sessions.clear();
  }

  /**
   * Fetches from many partitions with one wait.
   *
   * @param req the request
   * @returns per-partition results (call `release()` once done with the bytes)
   * @throws {RillError} INVALID_REQUEST (malformed request), FETCH_SESSION_ID_NOT_FOUND,
   *   INVALID_FETCH_SESSION_EPOCH; partition errors are in the results, not thrown
   */
  async fetch(req: FetchManyRequest): Promise<FetchManyResult> {
    const replicaId = req.replicaId ?? -1;
    const repeat = req.repeat;
    const { slots, session, incremental } = repeat === undefined
      ? this.#slotsOf(req, replicaId)
      : this.#repeatedSlots(req, repeat);
    const arena = repeat === undefined
      ? new ReadArena(this.#source.pool)
      : repeat.arena(this.#source.pool);
    try {
      const totalMax = req.maxBytes ?? Infinity;
      // A repeated fetch caught up (after its last push) waits without reading first.
      const caughtUp = repeat !== undefined && repeat.caughtUp();
      // Consumers' reads share the loop's turns; a follower's (few, and acks wait for them) do not.
      if (replicaId < 0 && !caughtUp) { while (fetchTurns.due) await fetchTurns.next(); }
      const read = caughtUp
        ? []
        : this.#readAll(slots, replicaId, arena, totalMax, true, req.observerId);
      let results = read instanceof Promise ? await read : read;
      let total = sumBytes(results);
      if (
        total < req.minBytes && req.maxWaitMs > 0 && !results.some((r) => r.error !== null) &&
        !this.#source.draining()
      ) {
        const woken = repeat === undefined
          ? await this.#wait(slots, replicaId, req.minBytes - total, req)
          : await repeat.wait(req.minBytes - total, req.maxWaitMs, waitDeadlines);
        if (woken) {
          if (replicaId < 0) { while (fetchTurns.due) await fetchTurns.next(); }
          arena.reset();
          const again = this.#readAll(slots, replicaId, arena, totalMax, false);
          results = again instanceof Promise ? await again : again;
          total = sumBytes(results);
        }
      }
      const answered = session ? this.#account(session, slots, results, incremental) : results;
      this.#source.fetched?.(req, answered);
      return {
        session: session ? { id: session.id, epoch: session.epoch } : null,
        partitions: answered,
        totalBytes: total,
        release: repeat === undefined ? () => arena.release() : repeat.release,
      };
    } catch (e) {
      arena.release();
      throw e;
    }
  }

  /** The slots a request reads, in order, and its session (created, continued or none). */
  #slotsOf(
    req: FetchManyRequest,
    replicaId: number,
  ): { slots: Slot[]; session: Session | null; incremental: boolean } {
    if (!Array.isArray(req.partitions)) {
      throw new RillError("INVALID_REQUEST", "A fetch needs a list of partitions");
    }
    // One partition (a push subscription's fetch, each push) cannot be named twice.
    const seen = req.partitions.length > 1 ? new Set<string>() : null;
    for (const p of req.partitions) {
      checkPartitionRequest(p);
      if (seen === null) continue;
      const key = keyOf(p.topic, p.partition);
      if (seen.has(key)) {
        throw new RillError(
          "INVALID_REQUEST",
          `Partition ${p.topic.slice(0, 100)}-${p.partition} is named twice in one fetch`,
        );
      }
      seen.add(key);
    }
    if (req.maxBytes !== undefined && !(req.maxBytes >= 1)) {
      throw new RillError("INVALID_REQUEST", "A fetch's total maxBytes must be ≥ 1");
    }
    const ref = req.session;
    const fresh = () => req.partitions.map(newSlot);
    if (ref === undefined || (ref.id === 0 && ref.epoch === -1)) {
      return { slots: fresh(), session: null, incremental: false };
    }
    if (!Number.isSafeInteger(ref.id) || !Number.isSafeInteger(ref.epoch) || ref.epoch < -1) {
      throw new RillError("INVALID_REQUEST", "A fetch session needs an integer id and epoch ≥ -1");
    }
    const now = this.#now();
    if (ref.id === 0) {
      if (ref.epoch !== 0) {
        throw new RillError(
          "INVALID_FETCH_SESSION_EPOCH",
          `A new fetch session starts at epoch 0, not ${ref.epoch}`,
        );
      }
      const session = this.#open(replicaId, now);
      for (const s of fresh()) session.slots.set(s.key, s);
      return { slots: [...session.slots.values()], session, incremental: false };
    }
    const session = this.#sessions.get(ref.id);
    if (session === undefined || session.replicaId !== replicaId) {
      throw new RillError(
        "FETCH_SESSION_ID_NOT_FOUND",
        `Fetch session ${ref.id} is not known to this broker (expired or evicted): open a new one`,
      );
    }
    if (ref.epoch === -1) {
      this.#sessions.delete(ref.id);
      return { slots: fresh(), session: null, incremental: false };
    }
    if (ref.epoch !== session.epoch) {
      throw new RillError(
        "INVALID_FETCH_SESSION_EPOCH",
        `Fetch session ${ref.id} expects epoch ${session.epoch}, got ${ref.epoch}`,
      );
    }
    session.epoch++;
    session.lastUsed = now;
    // Most recently used last: eviction takes the first.
    this.#sessions.delete(session.id);
    this.#sessions.set(session.id, session);
    for (const f of req.forgotten ?? []) session.slots.delete(keyOf(f.topic, f.partition));
    for (const p of req.partitions) {
      const key = keyOf(p.topic, p.partition);
      const slot = session.slots.get(key);
      if (slot === undefined) session.slots.set(key, newSlot(p));
      else {
        slot.offset = p.offset;
        slot.maxBytes = p.maxBytes;
        const epoch = p.leaderEpoch ?? -1;
        if (epoch !== slot.leaderEpoch) slot.replica = null;
        slot.leaderEpoch = epoch;
      }
    }
    return { slots: [...session.slots.values()], session, incremental: true };
  }

  /**
   * The slots of a repeated fetch (repeated_fetch.ts): those it kept, at the request's
   * offsets, while it names the same partitions in the same order; else new ones.
   */
  #repeatedSlots(
    req: FetchManyRequest,
    repeat: RepeatedFetch,
  ): { slots: Slot[]; session: null; incremental: false } {
    if (req.replicaId !== undefined || req.observerId !== undefined || req.session) {
      throw new RillError("INVALID_REQUEST", "A repeated fetch is a consumer's, without a session");
    }
    const kept = repeat.slots as Slot[];
    const asked = req.partitions;
    let same = Array.isArray(asked) && kept.length === asked.length;
    for (let i = 0; same && i < asked.length; i++) {
      const p = asked[i];
      same = kept[i].partition === p.partition && kept[i].topic === p.topic &&
        Number.isSafeInteger(p.offset) && p.offset >= 0 && kept[i].maxBytes === p.maxBytes;
    }
    if (!same) {
      repeat.slots = this.#slotsOf(req, -1).slots;
      return { slots: repeat.slots as Slot[], session: null, incremental: false };
    }
    for (let i = 0; i < kept.length; i++) kept[i].offset = asked[i].offset;
    return { slots: kept, session: null, incremental: false };
  }

  #open(replicaId: number, now: number): Session {
    for (const [id, s] of this.#sessions) {
      if (now - s.lastUsed < this.#limits.sessionIdleMs) break;
      this.#sessions.delete(id);
    }
    while (this.#sessions.size >= this.#limits.maxSessions && this.#sessions.size > 0) {
      const oldest = this.#sessions.keys().next().value!;
      this.#sessions.delete(oldest);
    }
    let id = 0;
    const word = new Uint32Array(1);
    while (id === 0 || this.#sessions.has(id)) {
      crypto.getRandomValues(word);
      id = word[0] & 0x7fffffff;
    }
    const session = new Session(id, replicaId, now);
    this.#sessions.set(id, session);
    return session;
  }

  /** Whether a replica kept by a slot still serves this kind of fetch. */
  #valid(r: Replica, slot: Slot, replicaId: number): boolean {
    if (r.closing) return false;
    if (replicaId < 0) return r.role !== "follower";
    return r.role === "leader" && (slot.leaderEpoch < 0 || slot.leaderEpoch === r.leaderEpoch);
  }

  async #resolve(slot: Slot, replicaId: number): Promise<Replica> {
    slot.replica = null;
    const r = replicaId < 0
      ? await this.#source.readableReplica(slot.topic, slot.partition)
      : await this.#source.leaderReplica(slot.topic, slot.partition, slot.leaderEpoch);
    if (r.closing) {
      throw new RillError(
        "NOT_LEADER_OR_FOLLOWER",
        `Partition ${r.name} is closing on this broker`,
      );
    }
    slot.replica = r;
    return r;
  }

  /**
   * Reads every slot once, within the total byte budget: synchronously while the slots are a
   * consumer's with their replicas kept (no turn between a wake-up and its answer), the rest
   * in #readRest.
   */
  #readAll(
    slots: readonly Slot[],
    replicaId: number,
    arena: ReadArena,
    totalMax: number,
    first: boolean,
    observerId?: number,
  ): PartitionFetchResult[] | Promise<PartitionFetchResult[]> {
    const budget: Budget = { remaining: totalMax, gotData: false, full: false };
    const out: PartitionFetchResult[] = [];
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      let kept = slot.replica;
      if (kept === null && replicaId < 0) {
        // A fetch without a session (a push subscription's, each time) finds its replica in
        // the metadata cache without the turns of `readableReplica`: the same replica, which
        // #valid checks as it checks a session's.
        const cached = this.#source.cachedReplica?.(slot.topic, slot.partition);
        if (cached !== undefined) slot.replica = kept = cached;
      }
      if (replicaId >= 0 || kept === null || !this.#valid(kept, slot, replicaId)) {
        return this.#readRest(slots, i, out, replicaId, arena, budget, first, observerId);
      }
      out.push(this.#readConsumer(slot, kept, arena, budget, first, observerId));
    }
    return out;
  }

  /** #readAll from slot `from` on, looking replicas up and reading for followers. */
  async #readRest(
    slots: readonly Slot[],
    from: number,
    out: PartitionFetchResult[],
    replicaId: number,
    arena: ReadArena,
    budget: Budget,
    first: boolean,
    observerId?: number,
  ): Promise<PartitionFetchResult[]> {
    for (let i = from; i < slots.length; i++) {
      const slot = slots[i];
      const kept = slot.replica;
      let replica: Replica;
      if (kept !== null && this.#valid(kept, slot, replicaId)) replica = kept;
      else {
        try {
          replica = await this.#resolve(slot, replicaId);
        } catch (e) {
          out.push(this.#failed(slot, e));
          continue;
        }
      }
      out.push(
        replicaId >= 0
          ? await this.#readFollower(slot, replica, replicaId, arena, budget, first)
          : this.#readConsumer(slot, replica, arena, budget, first, observerId),
      );
    }
    return out;
  }

  /**
   * A consumer's read of one slot: synchronous (a consumer woken at the log end reads the
   * append that woke it from memory: Replica.readSync).
   */
  #readConsumer(
    slot: Slot,
    replica: Replica,
    arena: ReadArena,
    budget: Budget,
    first: boolean,
    observerId?: number,
  ): PartitionFetchResult {
    try {
      slot.seen = replica.highWatermark;
      if (first && observerId !== undefined) replica.recordObserverFetch(observerId, slot.offset);
      replica.checkOffset(slot.offset);
      const max = Math.min(slot.maxBytes, budget.remaining);
      if (max <= 0 || budget.full) return this.#result(slot, this.#nothing(replica, slot));
      const mark = arena.mark();
      const read = replica.readSync(slot.offset, max, arena.alloc);
      return this.#fit(slot, replica, read, arena, mark, budget);
    } catch (e) {
      return this.#failed(slot, e);
    }
  }

  /** A follower's read of one slot: up to the log end offset. */
  async #readFollower(
    slot: Slot,
    replica: Replica,
    replicaId: number,
    arena: ReadArena,
    budget: Budget,
    first: boolean,
  ): Promise<PartitionFetchResult> {
    try {
      if (slot.offset > replica.logEndOffset) {
        throw new RillError(
          "OFFSET_OUT_OF_RANGE",
          `Fetch offset ${slot.offset} of ${replica.name} is past the leader's log end offset ${replica.logEndOffset}`,
          { logStartOffset: replica.logStartOffset, logEndOffset: replica.logEndOffset },
        );
      }
      if (first) replica.recordFollowerFetch(replicaId, slot.offset);
      slot.seen = replica.logEndOffset;
      const max = Math.min(slot.maxBytes, budget.remaining);
      if (max <= 0 || budget.full) return this.#result(slot, this.#nothing(replica, slot));
      const mark = arena.mark();
      const read = await replica.readForFollower(slot.offset, max, arena.alloc);
      return this.#fit(slot, replica, read, arena, mark, budget);
    } catch (e) {
      return this.#failed(slot, e);
    }
  }

  /**
   * A slot's read taken into the answer, within the budget: only the answer's first batch
   * may exceed the total. Once a batch did not fit, the later partitions are not read (their
   * batches would likely not fit either, and each such read is a wasted file read); they come
   * first in the next fetch, as they returned nothing.
   */
  #fit(
    slot: Slot,
    replica: Replica,
    read: FetchResult,
    arena: ReadArena,
    mark: ReturnType<ReadArena["mark"]>,
    budget: Budget,
  ): PartitionFetchResult {
    if (budget.gotData && read.bytes.length > budget.remaining) {
      arena.rollback(mark);
      read = this.#nothing(replica, slot);
      budget.full = true;
    }
    if (read.bytes.length > 0) {
      budget.gotData = true;
      budget.remaining -= read.bytes.length;
    }
    return this.#result(slot, read);
  }

  #result(slot: Slot, read: FetchResult): PartitionFetchResult {
    return {
      topic: slot.topic,
      partition: slot.partition,
      fetchOffset: slot.offset,
      bytes: read.bytes,
      nextOffset: Math.max(slot.offset, read.nextOffset),
      highWatermark: read.highWatermark,
      logStartOffset: read.logStartOffset,
      lastStableOffset: read.highWatermark,
      error: null,
    };
  }

  #failed(slot: Slot, e: unknown): PartitionFetchResult {
    const error = e instanceof RillError
      ? e
      : new RillError("UNKNOWN_SERVER_ERROR", `Reading ${slot.topic}-${slot.partition} failed`);
    if (!(e instanceof RillError)) console.error(e);
    slot.replica = null;
    return {
      topic: slot.topic,
      partition: slot.partition,
      fetchOffset: slot.offset,
      bytes: EMPTY,
      nextOffset: slot.offset,
      highWatermark: -1,
      logStartOffset: -1,
      lastStableOffset: -1,
      error,
    };
  }

  #nothing(replica: Replica, slot: Slot): FetchResult {
    return {
      bytes: EMPTY,
      nextOffset: slot.offset,
      highWatermark: replica.highWatermark,
      logStartOffset: replica.logStartOffset,
    };
  }

  /**
   * Waits until `needed` more bytes are committed over the slots' partitions (appended, for
   * followers), a partition closes, `maxWaitMs` passes or the signal aborts.
   *
   * @returns whether to read again (false: timed out or aborted with nothing new)
   */
  #wait(
    slots: readonly Slot[],
    replicaId: number,
    needed: number,
    req: FetchManyRequest,
  ): Promise<boolean> {
    const follower = replicaId >= 0;
    const replicas: Replica[] = [];
    for (const s of slots) {
      const r = s.replica;
      if (r === null) continue;
      // Data that arrived between the read and now: read again at once.
      if ((follower ? r.logEndOffset : r.highWatermark) !== s.seen || r.closing) {
        return Promise.resolve(true);
      }
      replicas.push(r);
    }
    if (replicas.length === 0 || req.signal?.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let remaining = needed;
      let done = false;
      const finish = (again: boolean) => {
        if (done) return;
        done = true;
        deadline.cancel();
        if (req.signal !== undefined) forgetAborted(req.signal, onAbort);
        for (const r of replicas) (follower ? r.replicaWaiters : r.waiters).unlisten(listener);
        resolve(again);
      };
      const listener: WaitListener = {
        onBytes(bytes) {
          remaining -= bytes;
          if (remaining <= 0) finish(true);
        },
        onClose() {
          finish(true);
        },
      };
      const onAbort = () => finish(false);
      const deadline = waitDeadlines.add(req.maxWaitMs, () => finish(true));
      if (req.signal !== undefined) whenAborted(req.signal, onAbort);
      for (const r of replicas) {
        (follower ? r.replicaWaiters : r.waiters).listen(listener);
        if (done) break;
      }
    });
  }

  /**
   * Records what a session's answer told each partition, keeps in an incremental answer only
   * the partitions with something new, and moves those that returned bytes to the end of the
   * session's order.
   */
  #account(
    session: Session,
    slots: readonly Slot[],
    results: PartitionFetchResult[],
    incremental: boolean,
  ): PartitionFetchResult[] {
    const out: PartitionFetchResult[] = [];
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      const r = results[i];
      const changed = r.bytes.length > 0 || r.error !== null || slot.sentError ||
        r.highWatermark !== slot.sentHw || r.logStartOffset !== slot.sentLso;
      slot.sentHw = r.highWatermark;
      slot.sentLso = r.logStartOffset;
      slot.sentError = r.error !== null;
      if (!incremental || changed) out.push(r);
      if (r.bytes.length > 0 && session.slots.get(slot.key) === slot) {
        session.slots.delete(slot.key);
        session.slots.set(slot.key, slot);
      }
    }
    return out;
  }
}

function sumBytes(results: readonly PartitionFetchResult[]): number {
  let n = 0;
  for (const r of results) n += r.bytes.length;
  return n;
}
