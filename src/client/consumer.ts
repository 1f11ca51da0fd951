/**
 * The consumer: partitions assigned by hand (`assign`), read with long-polling fetches,
 * delivered through `for await` or `run({ eachMessage | eachBatch })` in kafkajs's shape.
 *
 * Each assigned partition has its own fetch loop: it fetches from the partition's fetch
 * offset with `maxWaitMs` (the broker answers the moment records arrive), and keeps at most
 * `maxBufferedBatches` fetch results waiting for the application, so memory stays bounded
 * while the next fetch overlaps the processing of the previous one. Records of one
 * partition are delivered in offset order.
 *
 * **Consumer groups.** With `groupId`, the consumer `subscribe`s to topics instead of
 * `assign`ing partitions: it joins the group when `run()` (or `for await`) starts, works on
 * the partitions the broker assigns, and commits its positions. It follows the client's
 * side of the handover contract stated atop `src/http/routes/groups.ts`:
 *
 * - Heartbeats run on their own timer (every `heartbeatIntervalMs`, default the broker's
 *   third of the session timeout), independent of handler time, and carry the generation of
 *   the last answer fully processed.
 * - An answer's `pendingRevocation` partitions are stopped (no new handler call; a handler
 *   in progress is awaited), their positions committed with the answer's generation,
 *   `onRevoked` called, then a heartbeat is sent at once to confirm. Newly assigned
 *   partitions start at their committed offset (else `fromBeginning`/`autoOffsetReset`),
 *   then `onAssigned` is called.
 * - Session rule: when no heartbeat sent in the last `sessionTimeoutMs` has been answered,
 *   all work stops (`onRevoked` with every partition) before anything else; the next
 *   answer starts over from the committed offsets.
 * - A commit answered ILLEGAL_GENERATION/REBALANCE_IN_PROGRESS makes the consumer heartbeat
 *   at once; UNKNOWN_MEMBER_ID on a heartbeat stops all work and joins again.
 * - `stop()`/`disconnect()` stop work, wait for the handler call in progress, commit (with
 *   `autoCommit`), call `onRevoked`, and leave the group, so the partitions move at once;
 *   the promise resolves after all of that (called from inside a handler: at once, and the
 *   rest follows when the handler returns).
 *
 * Delivery is at-least-once: a record is committed only after its handler returned, so a
 * member that dies redelivers, through another member, what it had not committed.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { Admin } from "./admin.ts";
import { consumerScopeOwner, runAsConsumer } from "./consumer_scope.ts";
import { fetchPartition } from "./fetcher.ts";
import { type GroupAnswer, GroupMember, type OffsetToCommit, tpKey } from "./group_member.ts";
import type { ConsumedMessage } from "./message.ts";
import { toOffset } from "./offsets.ts";
import { delay, isRetriable, retryDelay } from "./retry.ts";
import type { Transport } from "./transport.ts";

/**
 * Options of `rill.consumer()`.
 *
 * @example
 * ```ts
 * const consumer = rill.consumer({ maxWaitMs: 1000, maxBytes: 4 << 20, autoOffsetReset: "latest" });
 * ```
 */
export interface ConsumerOptions {
  /** the consumer group: use `subscribe()` and the group's assignment instead of `assign()` */
  groupId?: string;
  /** groups: the session timeout asked of the broker, ms (default the broker's, 10,000) */
  sessionTimeoutMs?: number;
  /** groups: how often to heartbeat, ms (default the broker's: a third of the session) */
  heartbeatIntervalMs?: number;
  /** groups: the server-side assignor, "range", "roundrobin" or "sticky" (default the
   * broker's) */
  assignor?: "range" | "roundrobin" | "sticky";
  /** groups: called with the partitions granted to this member, before their records are
   * delivered (same as `consumer.on("assigned", fn)`) */
  onAssigned?: RebalanceListener;
  /** groups: called with the partitions taken from this member, after their work stopped and
   * their offsets were committed (same as `consumer.on("revoked", fn)`) */
  onRevoked?: RebalanceListener;
  /** how long a fetch may wait for records (long poll), in ms (default 5,000) */
  maxWaitMs?: number;
  /** the bytes a fetch waits for (default 1) */
  minBytes?: number;
  /** the most bytes one fetch of one partition returns (default 1 MiB) */
  maxBytes?: number;
  /** fetch results buffered per partition ahead of the application (default 2) */
  maxBufferedBatches?: number;
  /** check each batch's CRC-32C (default true) */
  checkCrcs?: boolean;
  /** what to do when the position falls outside the log (e.g. deleted by retention), as
   * Kafka's `auto.offset.reset`: "earliest" jumps to the log start, "latest" to the high
   * watermark, "none" fails (default "earliest"). In a group it also says where a
   * partition without a committed offset starts, unless `subscribe({ fromBeginning: true })`
   * (default there "latest", as kafkajs) */
  autoOffsetReset?: "earliest" | "latest" | "none";
}

/**
 * A rebalance listener: receives the partitions granted (`onAssigned`) or taken
 * (`onRevoked`). The rebalance waits for it; an error it throws is logged and ignored.
 *
 * @example
 * ```ts
 * const onAssigned: RebalanceListener = (partitions) => console.log("got", partitions);
 * ```
 */
export type RebalanceListener = (
  partitions: { topic: string; partition: number }[],
) => void | Promise<void>;

/**
 * What `subscribe()` takes.
 *
 * @example
 * ```ts
 * await consumer.subscribe({ topics: ["orders"], fromBeginning: true });
 * ```
 */
export interface SubscribeOptions {
  /** the topics */
  topics?: string[];
  /** one topic (kafkajs's older shape) */
  topic?: string;
  /** partitions without a committed offset start at the earliest offset (default false:
   * at the latest, or at `autoOffsetReset` when given) */
  fromBeginning?: boolean;
}

/**
 * Where to start reading a partition.
 *
 * @example
 * ```ts
 * await consumer.assign([{ topic: "orders", partition: 0, offset: 42 }]);
 * ```
 */
export interface TopicPartitionOffset {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** an offset (number, bigint or decimal string), or "earliest"/"latest" (default "latest") */
  offset?: number | bigint | string;
  /** instead of an offset: the first record whose timestamp is at or after this (ms) */
  timestamp?: number;
}

/**
 * What `eachMessage` receives.
 *
 * @example
 * ```ts
 * await consumer.run({ eachMessage: ({ topic, partition, message }) => console.log(topic, partition, message.offset) });
 * ```
 */
export interface EachMessagePayload {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the record */
  message: ConsumedMessage;
  /** kept for kafkajs's shape; does nothing without groups */
  heartbeat(): Promise<void>;
}

/**
 * A batch of records of one partition, as `eachBatch` receives it.
 *
 * @example
 * ```ts
 * await consumer.run({ eachBatch: ({ batch }) => console.log(batch.partition, batch.firstOffset(), batch.offsetLag()) });
 * ```
 */
export interface Batch {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the partition's high watermark when fetched */
  highWatermark: number;
  /** the records, in offset order */
  messages: ConsumedMessage[];
  /** whether there are no records */
  isEmpty(): boolean;
  /** the first record's offset */
  firstOffset(): number | null;
  /** the last record's offset */
  lastOffset(): number;
  /** records between the last one and the high watermark */
  offsetLag(): number;
}

/**
 * What `eachBatch` receives.
 *
 * @example
 * ```ts
 * await consumer.run({
 *   eachBatch: async ({ batch, resolveOffset, isStale }) => {
 *     for (const m of batch.messages) {
 *       if (isStale()) break;
 *       await handle(m);
 *       resolveOffset(m.offset);
 *     }
 *   },
 * });
 * ```
 */
export interface EachBatchPayload {
  /** the records */
  batch: Batch;
  /** marks every record up to `offset` as processed */
  resolveOffset(offset: number): void;
  /** kept for kafkajs's shape; does nothing without groups */
  heartbeat(): Promise<void>;
  /** whether the consumer is still running */
  isRunning(): boolean;
  /** whether a seek made the rest of this batch obsolete */
  isStale(): boolean;
}

/**
 * What `run()` takes: one of the handlers.
 *
 * @example
 * ```ts
 * const options: RunOptions = { eachMessage: ({ message }) => console.log(message.valueString()) };
 * await consumer.run(options);
 * ```
 */
export interface RunOptions {
  /** called for each record, in order per partition */
  eachMessage?: (payload: EachMessagePayload) => Promise<void> | void;
  /** called for each fetched batch of a partition */
  eachBatch?: (payload: EachBatchPayload) => Promise<void> | void;
  /** after eachBatch returns, treat the whole batch as processed (default true) */
  eachBatchAutoResolve?: boolean;
  /** groups: commit resolved offsets automatically (default true) */
  autoCommit?: boolean;
  /** groups: commit resolved offsets once this many ms passed since the last commit
   * (default 5,000; checked after each handler call and each heartbeat) */
  autoCommitInterval?: number;
  /** groups: also commit once this many records were resolved since the last commit */
  autoCommitThreshold?: number;
}

interface PartitionState {
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
  busy: { promise: Promise<void>; resolve: () => void } | null;
}

/** A partition's fetch state when it is (re)assigned, fetching from `offset`. */
function newPartitionState(topic: string, partition: number, offset: number): PartitionState {
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
  };
}

interface GroupConfig {
  member: GroupMember;
  topics: string[] | null;
  fromBeginning: boolean;
  reset: "earliest" | "latest" | "none";
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  assignor?: string;
  clientId?: string;
}

interface Chunk {
  state: PartitionState;
  epoch: number;
  loop: number;
  messages: ConsumedMessage[];
  highWatermark: number;
  index: number;
}

const key = (topic: string, partition: number) => topic + "\u0000" + partition;

/**
 * Reads assigned partitions. Get one from `rill.consumer()`.
 *
 * Delivery is at-least-once within one process run: a record is delivered again only if
 * you seek back. The handler rules of `run()` are in its documentation.
 *
 * @example
 * ```ts
 * const consumer = new Rill({ brokers: ["http://127.0.0.1:8092"] }).consumer();
 * await consumer.assign([{ topic: "orders", partition: 0, offset: "earliest" }]);
 * for await (const message of consumer) {
 *   console.log(message.offset, message.valueString());
 * }
 * ```
 */
export class Consumer {
  readonly #t: Transport;
  /** this consumer's share of the transport's WebSocket connections, while it runs */
  #streams: (() => void) | undefined;
  readonly #admin: Admin;
  readonly #opts: Required<
    Pick<
      ConsumerOptions,
      "maxWaitMs" | "minBytes" | "maxBytes" | "maxBufferedBatches" | "checkCrcs" | "autoOffsetReset"
    >
  >;
  readonly #states = new Map<string, PartitionState>();
  readonly #ready: Chunk[] = [];
  #readyWaiter: (() => void) | null = null;
  #running = false;
  #mode: "idle" | "run" | "iterate" = "idle";
  #loop: Promise<void> | null = null;
  #error: unknown = undefined;
  #finished: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };
  #finishedObserved = false;
  #inHandler = false;
  /** a handler's synchronous part is running (tells stop() it is called from there where
   * the runtime cannot trace calls across awaits: consumer_scope.ts) */
  #inHandlerSync = false;
  /** partitions paused by `pause()` */
  readonly #paused = new Set<string>();
  // --- consumer groups (null/unused without groupId) ---
  readonly #group: GroupConfig | null = null;
  readonly #listeners: { assigned: RebalanceListener[]; revoked: RebalanceListener[] } = {
    assigned: [],
    revoked: [],
  };
  #memberId: string | null = null;
  /** generation of the last answer fully processed: heartbeats carry it */
  #ackGeneration = -1;
  /** generation of the newest answer: commits carry it */
  #commitGeneration = -1;
  #heartbeatMs = 3000;
  #sessionMs = 10_000;
  /** whether the group machinery (heartbeats, watchdog) runs */
  #groupActive = false;
  #heartbeatLoop: Promise<void> | null = null;
  #heartbeatWake: (() => void) | null = null;
  #heartbeatNow = false;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /** the send time of the newest heartbeat (or join) that was answered */
  #lastAnsweredSentAt = 0;
  #lastSentAt = 0;
  #sessionLost = false;
  /** answers wait here for the (serial) answer processor */
  #pendingAnswer: GroupAnswer | null = null;
  #processing: Promise<void> | null = null;
  /** last committed offset per partition (to skip empty commits) */
  readonly #committed = new Map<string, number>();
  #autoCommit = true;
  #autoCommitInterval = 5000;
  #autoCommitThreshold = 0;
  #resolvedSinceCommit = 0;
  #lastCommitAt = 0;
  #leaving: Promise<void> | null = null;
  /** bumped when all work is dropped (session lost, rejoin, leave): stale processing stops */
  #groupEpoch = 0;

  /**
   * @param transport the client's transport (use `rill.consumer()` rather than this)
   * @param admin an admin on the same transport, to look offsets up
   * @param options fetch sizes, long-poll wait, buffering, offset reset, group settings
   * @throws {TypeError} on a bad groupId; {RangeError} on a bad number
   */
  constructor(transport: Transport, admin: Admin, options: ConsumerOptions = {}) {
    this.#t = transport;
    if (options.groupId !== undefined) {
      if (typeof options.groupId !== "string" || options.groupId === "") {
        throw new TypeError("groupId must be a non-empty string");
      }
      for (const k of ["sessionTimeoutMs", "heartbeatIntervalMs"] as const) {
        const v = options[k];
        if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
          throw new RangeError(`${k} must be a positive integer, got ${v}`);
        }
      }
      this.#group = {
        member: new GroupMember(transport, options.groupId),
        topics: null,
        fromBeginning: false,
        reset: options.autoOffsetReset ?? "latest",
        sessionTimeoutMs: options.sessionTimeoutMs,
        heartbeatIntervalMs: options.heartbeatIntervalMs,
        assignor: options.assignor,
      };
      if (options.onAssigned) this.#listeners.assigned.push(options.onAssigned);
      if (options.onRevoked) this.#listeners.revoked.push(options.onRevoked);
    }
    this.#admin = admin;
    this.#opts = {
      maxWaitMs: options.maxWaitMs ?? 5000,
      minBytes: options.minBytes ?? 1,
      maxBytes: options.maxBytes ?? 1 << 20,
      maxBufferedBatches: options.maxBufferedBatches ?? 2,
      checkCrcs: options.checkCrcs ?? true,
      autoOffsetReset: options.autoOffsetReset ?? "earliest",
    };
    for (const k of ["maxWaitMs", "minBytes", "maxBytes", "maxBufferedBatches"] as const) {
      const v = this.#opts[k];
      if (!Number.isInteger(v) || v < (k === "maxWaitMs" || k === "minBytes" ? 0 : 1)) {
        throw new RangeError(
          `${k} must be a ${k === "maxWaitMs" ? "non-negative" : "positive"} integer, got ${v}`,
        );
      }
    }
    this.#finished = deferred();
  }

  /**
   * Readies the consumer. HTTP needs no connection; kept for kafkajs's shape.
   *
   * @returns a resolved promise
   * @example
   * ```ts
   * await consumer.connect();
   * ```
   */
  connect(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Sets the partitions to read (replacing any earlier assignment) and where to start.
   * "earliest", "latest" and timestamps are looked up now, so records produced after
   * `assign` resolves are seen with "latest".
   *
   * @param partitions the partitions and their start positions
   * @returns a promise that resolves once every start offset is known
   * @throws {RangeError} on a bad offset; {RillError} UNKNOWN_TOPIC_OR_PARTITION
   * @example
   * ```ts
   * await consumer.assign([
   *   { topic: "orders", partition: 0, offset: "earliest" },
   *   { topic: "orders", partition: 1, timestamp: Date.now() - 60_000 },
   * ]);
   * ```
   */
  async assign(partitions: TopicPartitionOffset[]): Promise<void> {
    if (this.#group) {
      throw new TypeError("A consumer with a groupId gets its partitions from subscribe()");
    }
    const starts = await Promise.all(partitions.map((p) => this.#resolveStart(p)));
    const wanted = new Set(partitions.map((p) => key(p.topic, p.partition)));
    for (const [k, s] of this.#states) {
      if (!wanted.has(k)) {
        s.assigned = false;
        this.#invalidate(s);
        this.#states.delete(k);
      }
    }
    partitions.forEach((p, i) => {
      const k = key(p.topic, p.partition);
      const existing = this.#states.get(k);
      if (existing) {
        this.#moveTo(existing, starts[i]);
        return;
      }
      const s = newPartitionState(p.topic, p.partition, starts[i]);
      this.#states.set(k, s);
      if (this.#running) this.#fetchLoop(s);
    });
  }

  /**
   * The partitions currently assigned.
   *
   * @returns topic and partition pairs
   * @example
   * ```ts
   * consumer.assignment(); // [{ topic: "orders", partition: 0 }]
   * ```
   */
  assignment(): { topic: string; partition: number }[] {
    return [...this.#states.values()].map((s) => ({ topic: s.topic, partition: s.partition }));
  }

  /**
   * Sets the topics a group consumer reads (before `run()` or iteration). The group's
   * assignment decides the partitions.
   *
   * @param options `topics` (or `topic`) and `fromBeginning`: where partitions without a
   *   committed offset start
   * @returns a resolved promise
   * @throws {TypeError} without a groupId, while running, or without topics
   * @example
   * ```ts
   * const consumer = rill.consumer({ groupId: "billing" });
   * await consumer.subscribe({ topics: ["orders"], fromBeginning: true });
   * ```
   */
  subscribe(options: SubscribeOptions): Promise<void> {
    if (!this.#group) {
      throw new TypeError("subscribe() needs a consumer with a groupId; use assign() without");
    }
    if (this.#running) throw new TypeError("subscribe() before run(), not while running");
    const topics = [...options.topics ?? [], ...options.topic !== undefined ? [options.topic] : []];
    if (topics.length === 0 || topics.some((t) => typeof t !== "string" || t === "")) {
      throw new TypeError("subscribe() needs topics: a non-empty list of topic names");
    }
    this.#group.topics = [...new Set([...this.#group.topics ?? [], ...topics])];
    if (options.fromBeginning) this.#group.fromBeginning = true;
    return Promise.resolve();
  }

  /**
   * Adds a rebalance listener (groups): "assigned" gets the partitions granted, before their
   * records are delivered; "revoked" gets those taken, after their work stopped and their
   * offsets were committed (also on `disconnect()`, and with every partition when the
   * session is lost).
   *
   * @param event "assigned" or "revoked"
   * @param listener the function
   * @returns a function that removes the listener
   * @example
   * ```ts
   * consumer.on("assigned", (ps) => console.log("now reading", ps));
   * ```
   */
  on(event: "assigned" | "revoked", listener: RebalanceListener): () => void {
    const list = this.#listeners[event];
    if (!list) throw new TypeError(`Unknown consumer event "${event}"`);
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /**
   * Stops fetching and delivering the given partitions (without `partitions`: the topic's
   * partitions this consumer holds now) until `resume()`; a handler in progress finishes
   * its current call. A paused partition stays paused if a rebalance takes it away and
   * brings it back.
   *
   * @param topics the topics and partitions
   * @example
   * ```ts
   * consumer.pause([{ topic: "orders", partitions: [0] }]);
   * ```
   */
  pause(topics: { topic: string; partitions?: number[] }[]): void {
    for (const k of this.#expand(topics)) {
      if (this.#paused.has(k)) continue;
      this.#paused.add(k);
      const s = this.#states.get(k);
      if (s) {
        this.#halt(s);
        s.fetchOffset = s.position;
      }
    }
  }

  /**
   * Resumes paused partitions; reading restarts at their position.
   *
   * @param topics the topics and partitions
   * @example
   * ```ts
   * consumer.resume([{ topic: "orders" }]);
   * ```
   */
  resume(topics: { topic: string; partitions?: number[] }[]): void {
    for (const k of this.#expand(topics)) {
      if (!this.#paused.delete(k)) continue;
      const s = this.#states.get(k);
      if (s && this.#running && s.assigned) {
        s.fetchOffset = s.position;
        this.#fetchLoop(s);
      }
    }
  }

  /**
   * The paused partitions.
   *
   * @returns topic and partition pairs
   * @example
   * ```ts
   * consumer.paused(); // [{ topic: "orders", partition: 0 }]
   * ```
   */
  paused(): { topic: string; partition: number }[] {
    return [...this.#paused].map((k) => {
      const i = k.lastIndexOf("\u0000");
      return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)) };
    });
  }

  /**
   * Commits offsets of a group consumer: the given ones, or the position of every partition
   * it works on (records whose handler returned or that were resolved). A committed offset
   * is the next one the group reads.
   *
   * @param offsets `{ topic, partition, offset }` entries (offset as number or decimal
   *   string, as kafkajs); default every partition's position
   * @returns a promise that resolves once the broker stored them (one atomic write)
   * @throws {TypeError} without a groupId or before joining; {RillError} ILLEGAL_GENERATION
   *   (a rebalance moved on, or a partition is not this member's: `details.notOwned`),
   *   UNKNOWN_MEMBER_ID, INVALID_REQUEST
   * @example
   * ```ts
   * await consumer.commitOffsets([{ topic: "orders", partition: 0, offset: "43" }]);
   * ```
   */
  async commitOffsets(
    offsets?: { topic: string; partition: number; offset: number | string | bigint }[],
  ): Promise<void> {
    if (!this.#group) throw new TypeError("commitOffsets() needs a consumer with a groupId");
    if (this.#memberId === null) {
      throw new TypeError("commitOffsets(): the consumer has not joined");
    }
    if (offsets === undefined) {
      await this.#commitPositions([...this.#states.values()], this.#commitGeneration, true);
      return;
    }
    const list: OffsetToCommit[] = offsets.map((o) => {
      let offset: number;
      try {
        offset = toOffset(o.offset);
      } catch {
        // let the broker name the problem (negative, malformed) with its error code
        offset = (typeof o.offset === "bigint" ? Number(o.offset) : o.offset) as number;
      }
      return { topic: o.topic, partition: o.partition, offset };
    });
    try {
      await this.#group.member.commit(this.#memberId, this.#commitGeneration, list);
    } catch (e) {
      this.#onCommitError(e);
      throw e;
    }
    for (const o of list) this.#committed.set(tpKey(o.topic, o.partition), o.offset);
  }

  /**
   * The next offset the consumer will deliver for a partition (what a group would commit).
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the offset
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION if it is not assigned
   * @example
   * ```ts
   * consumer.position("orders", 0); // 42
   * ```
   */
  position(topic: string, partition: number): number {
    return this.#state(topic, partition).position;
  }

  /**
   * Moves an assigned partition to an offset or a timestamp. Records of that partition
   * already fetched are dropped, and an `eachBatch` in progress sees `isStale()`.
   *
   * @param target the partition and its new offset ("earliest"/"latest" allowed) or timestamp
   * @returns a promise that resolves once the new offset is known (at once for a number)
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION if the partition is not assigned
   * @example
   * ```ts
   * await consumer.seek({ topic: "orders", partition: 0, offset: 100 });
   * await consumer.seek({ topic: "orders", partition: 0, timestamp: Date.now() - 3_600_000 });
   * ```
   */
  seek(target: TopicPartitionOffset): Promise<void> {
    const s = this.#state(target.topic, target.partition);
    if (
      target.timestamp === undefined && target.offset !== "earliest" && target.offset !== "latest"
    ) {
      if (target.offset === undefined) throw new TypeError("seek needs an offset or a timestamp");
      this.#moveTo(s, toOffset(target.offset));
      return Promise.resolve();
    }
    return this.#resolveStart(target).then((o) => this.#moveTo(s, o));
  }

  /**
   * Reads the assigned partitions as an async iterator. Leaving the loop (break, return or a
   * throw) stops the consumer. A fetch error that is not retriable ends the loop with that
   * error.
   *
   * In a group, the loop joins first; a record counts as processed (its offset resolved,
   * and auto-committed when due) once the loop asks for the next one, so the record in hand
   * when the loop is left is not committed and will be delivered again (at-least-once).
   * Offsets are auto-committed with `run()`'s defaults (every 5 s); leaving the loop
   * commits, calls `onRevoked` and leaves the group.
   *
   * @returns an iterator of records
   * @throws {TypeError} if `run()` is active
   * @example
   * ```ts
   * for await (const m of consumer) {
   *   if (m.offset >= 99) break;
   * }
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumedMessage, void, undefined> {
    this.#start("iterate");
    try {
      if (this.#group) await this.#joinGroup();
      while (true) {
        const chunk = await this.#nextChunk();
        if (chunk === null) break;
        const { state, messages } = chunk;
        while (
          chunk.index < messages.length && chunk.epoch === state.epoch && this.#deliverable(state)
        ) {
          const m = messages[chunk.index++];
          if (!this.#group) {
            state.position = m.offset + 1;
            yield m;
            continue;
          }
          // In a group the record counts as processed once the loop asks for the next one.
          const busy = deferred();
          state.busy = busy;
          try {
            yield m;
          } finally {
            state.busy = null;
            busy.resolve();
          }
          if (chunk.epoch !== state.epoch) break;
          state.position = m.offset + 1;
          this.#resolvedSinceCommit++;
          await this.#maybeCommit();
        }
        this.#release(chunk);
      }
      if (this.#error !== undefined) throw this.#error;
    } finally {
      if (this.#running || this.#group) await this.stop();
    }
  }

  /**
   * Starts delivering records to a handler and resolves once started (as kafkajs does);
   * await {@linkcode Consumer.finished} to learn when it ends.
   *
   * The rules (after kafkajs's runner): records of one partition reach the handler in
   * offset order, one call at a time. When `eachMessage` resolves, the position moves past
   * the record. With `eachBatch`, the position moves past every record given to
   * `resolveOffset`, and past the whole batch when the handler resolves (unless
   * `eachBatchAutoResolve` is false). When a handler throws, the unprocessed records are
   * delivered again after a backoff (the transport's retry policy); once the retries are
   * used up the consumer stops and `finished()` rejects with the error.
   *
   * In a group (kafkajs's `runner.js` rules): `run()` first joins the group and resolves
   * once the first answer is processed. After each handler call the offset is resolved as
   * above, then — with `autoCommit` (default true) — the positions are committed when
   * `autoCommitInterval` ms (default 5,000) passed since the last commit or
   * `autoCommitThreshold` records were resolved since then. Heartbeats do not wait for
   * handlers (own timer); `heartbeat()` in the payload only sends one early when due. When a
   * handler throws, what was resolved is committed first, then the retry/stop rule above
   * applies; a consumer stopped by an error leaves the group. A revoked partition gets no
   * new handler call: `eachMessage` stops after the current record, `eachBatch` sees
   * `isStale()`; the revocation waits for the call in progress, commits, and confirms. With
   * `autoCommit: false` nothing is committed but by `commitOffsets()`. A handler call must
   * end within `sessionTimeoutMs` (as Kafka's `max.poll.interval.ms`): a revocation left
   * unconfirmed that long is released by the broker to the partition's next owner.
   *
   * @param options `eachMessage` or `eachBatch`, and the commit policy (groups)
   * @returns a promise that resolves once the consumer runs (in a group: has joined)
   * @throws {TypeError} without a handler, or if already running; {RillError} when joining
   *   fails (UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST, …)
   * @example
   * ```ts
   * await consumer.run({
   *   eachMessage: async ({ message }) => console.log(message.valueString()),
   * });
   * ```
   */
  async run(options: RunOptions): Promise<void> {
    if (!options || (!options.eachMessage && !options.eachBatch)) {
      throw new TypeError("run() needs eachMessage or eachBatch");
    }
    if (this.#group) {
      this.#autoCommit = options.autoCommit ?? true;
      this.#autoCommitInterval = options.autoCommitInterval ?? 5000;
      this.#autoCommitThreshold = options.autoCommitThreshold ?? 0;
      if (!Number.isInteger(this.#autoCommitInterval) || this.#autoCommitInterval < 0) {
        throw new RangeError(`autoCommitInterval must be a non-negative integer`);
      }
      if (!Number.isInteger(this.#autoCommitThreshold) || this.#autoCommitThreshold < 0) {
        throw new RangeError(`autoCommitThreshold must be a non-negative integer`);
      }
    }
    // Everything run() starts (loop, handlers, heartbeats, listeners) is this consumer's
    // work: stop() called from there must not wait for itself.
    await runAsConsumer(this, async () => {
      this.#start("run");
      if (this.#group) {
        try {
          await this.#joinGroup();
        } catch (e) {
          this.#running = false;
          this.#mode = "idle";
          throw e;
        }
      }
      this.#loop = this.#runLoop(options);
    });
  }

  /**
   * Resolves when a `run()` ends after `stop()`/`disconnect()`, or rejects with the error
   * that stopped it.
   *
   * @returns a promise
   * @example
   * ```ts
   * await consumer.run({ eachMessage });
   * await consumer.finished();
   * ```
   */
  finished(): Promise<void> {
    this.#finishedObserved = true;
    return this.#finished.promise;
  }

  /**
   * Stops fetching and delivering. Fetches in flight are aborted; records fetched but not
   * delivered are dropped (the position stays at the last delivered record). A `run()`
   * handler call in progress is awaited, and its record counts as processed (as kafkajs).
   * In a group it then commits (with `autoCommit`), calls `onRevoked` and leaves the group,
   * and the promise resolves after that: the commit is stored and the member gone.
   *
   * Called from inside a handler (or a rebalance listener), it cannot wait for the handler:
   * it resolves at once, and the commit and leave follow when the handler returns (await
   * `finished()` outside to learn when). Such a call is recognised across `await`s where
   * the runtime has `AsyncLocalStorage` (Deno, Node, Bun); elsewhere (browsers) only in the
   * handler's synchronous part, so there call it without awaiting it after an `await`.
   *
   * @returns a promise that resolves once the consumer stopped (in a group: committed and
   *   left), or at once when called from inside a handler
   * @example
   * ```ts
   * await consumer.stop();
   * ```
   */
  async stop(): Promise<void> {
    const fromInside = this.#inHandlerSync || consumerScopeOwner() === this;
    const runLoop = this.#mode === "run" && !fromInside ? this.#loop : null;
    if (!this.#running) {
      // Stopped already (by an error or an earlier call): a run() loop leaves by itself,
      // possibly still finishing a handler call; an iteration leaves here.
      if (fromInside) return;
      if (this.#group && this.#mode !== "run") await this.#leaveGroup();
      else if (runLoop) await runLoop;
      return;
    }
    this.#running = false;
    this.#streams?.();
    this.#streams = undefined;
    for (const s of this.#states.values()) this.#halt(s);
    this.#ready.length = 0;
    this.#readyWaiter?.();
    if (this.#group && this.#mode !== "run") this.#leaveGroup();
    // In run mode the loop leaves the group once the handler in progress returned.
    if (runLoop) await runLoop;
    else if (this.#leaving && !fromInside) await this.#leaving;
    // A run() loop still finishing the handler that called stop() stays "run", so that a
    // stop() from outside meanwhile still waits for it.
    if (!fromInside || this.#mode !== "run") this.#mode = "idle";
  }

  /**
   * Stops the consumer, as {@linkcode Consumer.stop} (in a group: commit, `onRevoked`, leave).
   *
   * @returns a promise
   * @example
   * ```ts
   * await consumer.disconnect();
   * ```
   */
  disconnect(): Promise<void> {
    return this.stop();
  }

  #state(topic: string, partition: number): PartitionState {
    const s = this.#states.get(key(topic, partition));
    if (!s) {
      throw new RillError(
        "UNKNOWN_TOPIC_OR_PARTITION",
        `Partition "${topic}-${partition}" is not assigned to this consumer`,
      );
    }
    return s;
  }

  async #resolveStart(p: TopicPartitionOffset): Promise<number> {
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
      return await this.#admin.fetchOffset(p.topic, p.partition, o);
    }
    return toOffset(o);
  }

  #moveTo(s: PartitionState, offset: number): void {
    this.#invalidate(s);
    s.fetchOffset = offset;
    s.position = offset;
    if (this.#running && s.assigned) this.#fetchLoop(s);
  }

  /** Drops a partition's fetched records and aborts its fetch; its loop ends. A handler in
   * progress sees the batch as stale. */
  #invalidate(s: PartitionState): void {
    s.epoch++;
    this.#halt(s);
  }

  /** Ends a partition's fetch loop and drops its fetched records (stop()). */
  #halt(s: PartitionState): void {
    s.loop++;
    s.abort?.abort();
    s.abort = null;
    for (let i = this.#ready.length - 1; i >= 0; i--) {
      if (this.#ready[i].state === s) this.#ready.splice(i, 1);
    }
    s.buffered = 0;
    s.spaceWaiter?.();
    s.spaceWaiter = null;
  }

  #start(mode: "run" | "iterate"): void {
    if (this.#running) {
      throw new TypeError(`The consumer is already running (${this.#mode}); stop() it first`);
    }
    this.#running = true;
    this.#mode = mode;
    this.#error = undefined;
    this.#finished = deferred();
    for (const s of this.#states.values()) this.#fetchLoop(s);
  }

  /** One loop per partition and epoch: fetch, hand over, repeat. */
  async #fetchLoop(s: PartitionState): Promise<void> {
    const epoch = s.epoch;
    const loop = ++s.loop;
    if (this.#paused.has(key(s.topic, s.partition))) return;
    const o = this.#opts;
    let failures = 0;
    // Fetches go over the client's WebSocket connections while this consumer runs.
    if (this.#running) this.#streams ??= this.#t.useStreams();
    while (this.#running && s.loop === loop) {
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
        if (s.loop !== loop || !this.#running) return;
        failures = 0;
        s.fetchOffset = r.nextOffset;
        if (r.messages.length > 0) {
          s.buffered++;
          this.#ready.push({
            state: s,
            epoch,
            loop,
            messages: r.messages,
            highWatermark: r.highWatermark,
            index: 0,
          });
          const w = this.#readyWaiter;
          this.#readyWaiter = null;
          w?.();
        } else if (Date.now() - started < o.maxWaitMs / 2 || o.maxWaitMs === 0) {
          // The broker answered an empty fetch early: do not spin.
          await delay(Math.min(100, Math.max(10, o.maxWaitMs / 2)));
        }
      } catch (e) {
        if (s.loop !== loop || !this.#running) return;
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
        if (isRetriable(err) && failures < this.#t.retry.retries) {
          await delay(retryDelay(failures++, this.#t.retry));
          continue;
        }
        this.#fail(err);
        return;
      } finally {
        if (s.abort === abort) s.abort = null;
      }
    }
  }

  #fail(e: unknown): void {
    if (this.#error === undefined) this.#error = e;
    this.#running = false;
    this.#streams?.();
    this.#streams = undefined;
    for (const s of this.#states.values()) this.#halt(s);
    this.#readyWaiter?.();
  }

  #nextChunk(): Promise<Chunk | null> | Chunk | null {
    while (this.#ready.length > 0) {
      const c = this.#ready.shift()!;
      if (c.epoch === c.state.epoch) return c;
    }
    if (!this.#running) return null;
    return new Promise<void>((resolve) => (this.#readyWaiter = resolve)).then(() =>
      this.#nextChunk()
    );
  }

  #release(chunk: Chunk): void {
    const s = chunk.state;
    if (chunk.loop !== s.loop) return;
    s.buffered--;
    const w = s.spaceWaiter;
    s.spaceWaiter = null;
    w?.();
  }

  async #runLoop(options: RunOptions): Promise<void> {
    const heartbeat = () => this.#heartbeatIfDue();
    try {
      while (this.#running) {
        const chunk = await this.#nextChunk();
        if (chunk === null) break;
        let attempt = 0;
        const s = chunk.state;
        while (
          this.#running && chunk.epoch === s.epoch && chunk.index < chunk.messages.length &&
          this.#deliverable(s)
        ) {
          const before = chunk.index;
          this.#inHandler = true;
          const busy = deferred();
          s.busy = busy;
          try {
            if (options.eachBatch) await this.#deliverBatch(chunk, options, heartbeat);
            else await this.#deliverMessages(chunk, options.eachMessage!, heartbeat);
            attempt = 0;
          } catch (e) {
            if (chunk.index > before) attempt = 0;
            // kafkajs: commit what was resolved, then retry or re-throw
            if (this.#group && this.#autoCommit) await this.#commitQuietly();
            if (attempt >= this.#t.retry.retries) throw e;
            await delay(retryDelay(attempt++, this.#t.retry));
          } finally {
            this.#inHandler = false;
            s.busy = null;
            busy.resolve();
          }
          if (this.#group && options.eachBatch) await this.#maybeCommit();
        }
        this.#release(chunk);
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#group) await this.#leaveGroup();
      this.#finished.resolve();
    } catch (e) {
      this.#fail(e);
      this.#mode = "idle";
      if (this.#group) await this.#leaveGroup().catch(() => {});
      this.#finished.reject(e);
      if (!this.#finishedObserved) {
        // Nobody listens to finished(): say why the consumer stopped rather than stay silent.
        this.#finished.promise.catch(() => {});
        console.error(`rill consumer stopped: ${e instanceof Error ? e.message : e}`);
      }
    }
  }

  async #deliverMessages(
    chunk: Chunk,
    eachMessage: NonNullable<RunOptions["eachMessage"]>,
    heartbeat: () => Promise<void>,
  ): Promise<void> {
    const { state, messages, epoch } = chunk;
    while (
      chunk.index < messages.length && state.epoch === epoch && this.#running &&
      this.#deliverable(state)
    ) {
      const message = messages[chunk.index];
      let called;
      this.#inHandlerSync = true;
      try {
        called = eachMessage({
          topic: state.topic,
          partition: state.partition,
          message,
          heartbeat,
        });
      } finally {
        this.#inHandlerSync = false;
      }
      await called;
      if (state.epoch !== epoch) return;
      chunk.index++;
      state.position = message.offset + 1;
      if (this.#group) {
        this.#resolvedSinceCommit++;
        await this.#maybeCommit();
      }
    }
  }

  async #deliverBatch(
    chunk: Chunk,
    options: RunOptions,
    heartbeat: () => Promise<void>,
  ): Promise<void> {
    const { state, epoch } = chunk;
    const messages = chunk.index === 0 ? chunk.messages : chunk.messages.slice(chunk.index);
    const hw = chunk.highWatermark;
    const batch: Batch = {
      topic: state.topic,
      partition: state.partition,
      highWatermark: hw,
      messages,
      isEmpty: () => messages.length === 0,
      firstOffset: () => messages.length > 0 ? messages[0].offset : null,
      lastOffset: () => messages.length > 0 ? messages[messages.length - 1].offset : hw - 1,
      offsetLag: () =>
        Math.max(0, hw - 1 - (messages.length > 0 ? messages[messages.length - 1].offset : hw - 1)),
    };
    const resolveOffset = (offset: number) => {
      if (state.epoch !== epoch) return;
      let i = chunk.index;
      while (i < chunk.messages.length && chunk.messages[i].offset <= offset) i++;
      if (i > chunk.index) {
        this.#resolvedSinceCommit += i - chunk.index;
        chunk.index = i;
        state.position = chunk.messages[i - 1].offset + 1;
      }
    };
    let called;
    this.#inHandlerSync = true;
    try {
      called = options.eachBatch!({
        batch,
        resolveOffset,
        heartbeat,
        isRunning: () => this.#running,
        isStale: () => state.epoch !== epoch || !this.#deliverable(state),
      });
    } finally {
      this.#inHandlerSync = false;
    }
    await called;
    if (state.epoch !== epoch) return;
    if (options.eachBatchAutoResolve !== false && messages.length > 0) {
      resolveOffset(messages[messages.length - 1].offset);
    }
    // The handler returned: the batch is done even if not all of it was resolved (as in
    // kafkajs); the position stays at the last resolved record.
    chunk.index = chunk.messages.length;
  }

  // ---------------------------------------------------------------- consumer groups

  #deliverable(s: PartitionState): boolean {
    return s.assigned && (this.#paused.size === 0 || !this.#paused.has(key(s.topic, s.partition)));
  }

  #expand(topics: { topic: string; partitions?: number[] }[]): string[] {
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
        for (const s of this.#states.values()) {
          if (s.topic === t.topic) out.push(key(s.topic, s.partition));
        }
      }
    }
    return out;
  }

  /** Joins (or rejoins) the group and processes the first answer. */
  async #joinGroup(): Promise<void> {
    const g = this.#group!;
    if (!g.topics) throw new TypeError("Call subscribe({ topics }) before run() or iterating");
    const sentAt = Date.now();
    const answer = await g.member.join({
      topics: g.topics,
      sessionTimeoutMs: g.sessionTimeoutMs,
      assignor: g.assignor,
    });
    this.#groupEpoch++;
    this.#memberId = answer.memberId;
    this.#sessionMs = answer.sessionTimeoutMs;
    this.#heartbeatMs = g.heartbeatIntervalMs ?? answer.heartbeatIntervalMs;
    this.#lastAnsweredSentAt = sentAt;
    this.#lastSentAt = sentAt;
    this.#sessionLost = false;
    this.#leaving = null;
    this.#committed.clear();
    this.#lastCommitAt = Date.now();
    if (!this.#groupActive) {
      this.#groupActive = true;
      this.#heartbeatLoop = this.#heartbeats();
      this.#watchdog = setInterval(
        () => this.#checkSession(),
        Math.max(10, Math.min(250, Math.floor(this.#sessionMs / 10))),
      );
    }
    await this.#accept(answer);
  }

  /** Queues an answer for the serial processor; resolves once the queue is drained. */
  #accept(answer: GroupAnswer): Promise<void> {
    this.#pendingAnswer = answer;
    this.#commitGeneration = answer.generation;
    if (!this.#processing) {
      this.#processing = (async () => {
        try {
          while (this.#pendingAnswer) {
            const a = this.#pendingAnswer;
            this.#pendingAnswer = null;
            await this.#process(a);
          }
        } finally {
          this.#processing = null;
        }
      })();
    }
    return this.#processing;
  }

  /** Applies one answer: revoke (stop, wait, commit, onRevoked, confirm), then grant. */
  async #process(a: GroupAnswer): Promise<void> {
    const epoch = this.#groupEpoch;
    const live = () => this.#groupActive && this.#groupEpoch === epoch;
    if (!live() || this.#memberId !== a.memberId) return;
    const g = this.#group!;
    const target = new Set(a.assignment.map((tp) => key(tp.topic, tp.partition)));
    const revoke = [...this.#states.values()].filter((s) => !target.has(key(s.topic, s.partition)));
    if (revoke.length > 0) {
      for (const s of revoke) {
        s.assigned = false;
        this.#halt(s);
      }
      await Promise.all(revoke.map((s) => s.busy?.promise));
      if (!live()) return;
      const pending = new Set(a.pendingRevocation.map((tp) => key(tp.topic, tp.partition)));
      if (this.#autoCommit) {
        await this.#commitPositions(
          revoke.filter((s) => pending.has(key(s.topic, s.partition))),
          a.generation,
          false,
        );
      }
      for (const s of revoke) {
        const k = key(s.topic, s.partition);
        if (this.#states.get(k) === s) this.#states.delete(k);
        this.#committed.delete(k);
      }
      await this.#emit("revoked", revoke.map(tpOf));
      if (!live()) return;
    }
    this.#ackGeneration = a.generation;
    if (a.pendingRevocation.length > 0) this.#wakeHeartbeat(); // confirm at once
    const grants = a.assignment.filter((tp) => !this.#states.has(key(tp.topic, tp.partition)));
    if (grants.length === 0 || !this.#running) return;
    let starts: number[];
    try {
      const committed = await g.member.committed();
      starts = await Promise.all(grants.map(async (tp) => {
        const c = committed.get(tpKey(tp.topic, tp.partition));
        if (c !== undefined) {
          this.#committed.set(key(tp.topic, tp.partition), c);
          return c;
        }
        const reset = g.fromBeginning ? "earliest" : g.reset;
        if (reset === "none") {
          throw new RillError(
            "OFFSET_OUT_OF_RANGE",
            `Group "${g.member.groupId}" has no committed offset for ${tp.topic}-${tp.partition} and autoOffsetReset is "none"`,
          );
        }
        return await this.#admin.fetchOffset(tp.topic, tp.partition, reset);
      }));
    } catch (e) {
      if (e instanceof RillError && e.code === "OFFSET_OUT_OF_RANGE") this.#fail(e);
      // else: the next answer lists the same grants and tries again
      return;
    }
    if (!live() || this.#pendingAnswer !== null) return; // a newer answer decides
    await this.#emit("assigned", grants.map(tpOf));
    if (!live() || this.#pendingAnswer !== null) return;
    grants.forEach((tp, i) => {
      const s = newPartitionState(tp.topic, tp.partition, starts[i]);
      this.#states.set(key(tp.topic, tp.partition), s);
      if (this.#running) this.#fetchLoop(s);
    });
  }

  /** The heartbeat timer: independent of handlers; answers go to the processor. */
  async #heartbeats(): Promise<void> {
    const g = this.#group!;
    while (this.#groupActive) {
      if (!this.#heartbeatNow) {
        const wait = Math.max(0, this.#lastSentAt + this.#heartbeatMs - Date.now());
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.#heartbeatWake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#heartbeatWake = null;
      }
      this.#heartbeatNow = false;
      if (!this.#groupActive) break;
      if (this.#memberId === null) {
        try {
          await this.#joinGroup();
        } catch {
          if (!this.#groupActive) break;
          await delay(Math.min(this.#heartbeatMs, 500));
          this.#heartbeatNow = true;
        }
        continue;
      }
      const memberId = this.#memberId;
      const sentAt = Date.now();
      this.#lastSentAt = sentAt;
      let answer: GroupAnswer;
      try {
        answer = await g.member.heartbeat(
          memberId,
          this.#ackGeneration,
          AbortSignal.timeout(this.#sessionMs),
        );
      } catch (e) {
        if (!this.#groupActive || this.#memberId !== memberId) continue;
        if (
          e instanceof RillError &&
          (e.code === "UNKNOWN_MEMBER_ID" || e.code === "ILLEGAL_GENERATION")
        ) {
          // Left, expired or fenced: stop everything and join again.
          await this.#loseAll();
          this.#memberId = null;
          this.#heartbeatNow = true;
        } else {
          // Unreachable broker or contention: try again soon; the session rule guards.
          await delay(Math.min(this.#heartbeatMs, 200));
          this.#heartbeatNow = true;
        }
        continue;
      }
      if (!this.#groupActive || this.#memberId !== memberId) continue;
      if (Date.now() - sentAt > this.#sessionMs) {
        this.#heartbeatNow = true; // too old to trust after the session rule fired
        continue;
      }
      if (sentAt > this.#lastAnsweredSentAt) this.#lastAnsweredSentAt = sentAt;
      if (this.#sessionLost) {
        this.#sessionLost = false;
        this.#groupEpoch++;
      }
      this.#accept(answer).catch((e) => console.error(`rill consumer: rebalance failed: ${e}`));
      this.#maybeCommit(true).catch(() => {});
    }
  }

  #wakeHeartbeat(): void {
    this.#heartbeatNow = true;
    this.#heartbeatWake?.();
  }

  #heartbeatIfDue(): Promise<void> {
    if (this.#group && this.#groupActive && Date.now() - this.#lastSentAt >= this.#heartbeatMs) {
      this.#wakeHeartbeat();
    }
    return Promise.resolve();
  }

  /** The session rule: no heartbeat sent in the last sessionTimeoutMs answered → stop all. */
  #checkSession(): void {
    if (!this.#groupActive || this.#memberId === null || this.#sessionLost) return;
    if (Date.now() - this.#lastAnsweredSentAt > this.#sessionMs) {
      this.#sessionLost = true;
      this.#loseAll().catch(() => {});
    }
  }

  /** Stops every partition without committing (session lost, member unknown). */
  async #loseAll(): Promise<void> {
    this.#groupEpoch++;
    this.#pendingAnswer = null;
    const all = [...this.#states.values()];
    for (const s of all) {
      s.assigned = false;
      this.#halt(s);
    }
    this.#states.clear();
    this.#committed.clear();
    if (all.length > 0) await this.#emit("revoked", all.map(tpOf));
  }

  /** disconnect(): stop work, commit, onRevoked, leave. */
  #leaveGroup(): Promise<void> {
    if (this.#leaving) return this.#leaving;
    if (!this.#groupActive) return Promise.resolve();
    this.#leaving = (async () => {
      this.#groupActive = false;
      this.#groupEpoch++;
      clearInterval(this.#watchdog);
      this.#wakeHeartbeat();
      const all = [...this.#states.values()];
      for (const s of all) {
        s.assigned = false;
        this.#halt(s);
      }
      if (this.#mode === "run") await Promise.all(all.map((s) => s.busy?.promise));
      const memberId = this.#memberId;
      if (memberId !== null && this.#autoCommit && !this.#sessionLost) {
        await this.#commitPositions(all, this.#commitGeneration, false);
      }
      this.#states.clear();
      this.#committed.clear();
      if (all.length > 0) await this.#emit("revoked", all.map(tpOf));
      this.#memberId = null;
      if (memberId !== null) {
        await this.#group!.member.leave(memberId).catch((e) =>
          console.error(`rill consumer: leaving the group failed: ${e}`)
        );
      }
      await this.#heartbeatLoop;
    })();
    return this.#leaving;
  }

  /** Commits the positions of `states` that moved since their last commit. */
  async #commitPositions(
    states: PartitionState[],
    generation: number,
    rethrow: boolean,
  ): Promise<void> {
    const memberId = this.#memberId;
    if (memberId === null) return;
    const offsets: OffsetToCommit[] = [];
    for (const s of states) {
      if (this.#committed.get(key(s.topic, s.partition)) !== s.position) {
        offsets.push({ topic: s.topic, partition: s.partition, offset: s.position });
      }
    }
    this.#resolvedSinceCommit = 0;
    this.#lastCommitAt = Date.now();
    if (offsets.length === 0) return;
    try {
      await this.#group!.member.commit(memberId, generation, offsets);
      for (const o of offsets) this.#committed.set(key(o.topic, o.partition), o.offset);
    } catch (e) {
      this.#onCommitError(e);
      if (rethrow) throw e;
    }
  }

  /** Auto-commit when due (interval or threshold); `idle` commits by interval only. */
  async #maybeCommit(idle = false): Promise<void> {
    if (!this.#group || !this.#autoCommit || this.#memberId === null || this.#sessionLost) return;
    if (this.#resolvedSinceCommit === 0 && idle) return;
    const due = (!idle && this.#autoCommitThreshold > 0 &&
      this.#resolvedSinceCommit >= this.#autoCommitThreshold) ||
      Date.now() - this.#lastCommitAt >= this.#autoCommitInterval;
    if (!due) return;
    await this.#commitPositions([...this.#states.values()], this.#commitGeneration, false);
  }

  #commitQuietly(): Promise<void> {
    return this.#commitPositions([...this.#states.values()], this.#commitGeneration, false);
  }

  #onCommitError(e: unknown): void {
    if (
      e instanceof RillError &&
      (e.code === "ILLEGAL_GENERATION" || e.code === "UNKNOWN_MEMBER_ID" ||
        e.code === "REBALANCE_IN_PROGRESS")
    ) this.#wakeHeartbeat();
  }

  async #emit(
    event: "assigned" | "revoked",
    partitions: { topic: string; partition: number }[],
  ): Promise<void> {
    for (const fn of [...this.#listeners[event]]) {
      try {
        await fn(partitions);
      } catch (e) {
        console.error(`rill consumer: an "${event}" listener threw: ${e}`);
      }
    }
  }
}

function tpOf(s: { topic: string; partition: number }): { topic: string; partition: number } {
  return { topic: s.topic, partition: s.partition };
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
