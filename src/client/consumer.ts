/**
 * The consumer: partitions assigned by hand (`assign`), read with long-polling fetches (or
 * push subscriptions of a broker's WebSocket connection, push_loop.ts), delivered through `for await` or `run({ eachMessage | eachBatch })` in kafkajs's shape.
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
 *   `onRevoked` called, then a heartbeat is sent at once to confirm. For newly assigned
 *   partitions `onAssigned` is called, then they start at their committed offset (else
 *   `fromBeginning`/`autoOffsetReset`). Rebalance listener calls never overlap: an
 *   `onAssigned` waits for every `onRevoked` begun before it.
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
 * Files: the public types are `consumer_types.ts`'s, the partition fetch loops
 * `consumer_fetches.ts`'s, group membership and heartbeats `consumer_group_session.ts`'s,
 * commits `consumer_commits.ts`'s; this file holds the API and the delivery to handlers.
 *
 * @module
 */
import type { Admin } from "./admin.ts";
import { consumerScopeOwner, runAsConsumer } from "./consumer_scope.ts";
import {
  HandlerCall,
  key,
  newPartitionState,
  PartitionFetches,
  TURN_RECORDS,
} from "./consumer_fetches.ts";
import { GroupSession } from "./consumer_group_session.ts";
import { deliverBatch, deliverMessages, type DeliveryContext } from "./consumer_delivery.ts";
import type {
  ConsumerOptions,
  RebalanceListener,
  RunOptions,
  SubscribeOptions,
  TopicPartitionOffset,
} from "./consumer_types.ts";
import type { ConsumedMessage } from "./message.ts";
import { toOffset } from "./offsets.ts";
import { delay, retryDelay } from "./retry.ts";
import type { Transport } from "./transport.ts";

export type {
  Batch,
  ConsumerOptions,
  EachBatchPayload,
  EachMessagePayload,
  RebalanceListener,
  RunOptions,
  SubscribeOptions,
  TopicPartitionOffset,
} from "./consumer_types.ts";

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
  readonly #f: PartitionFetches;
  #mode: "idle" | "run" | "iterate" = "idle";
  #loop: Promise<void> | null = null;
  #finished: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };
  #finishedObserved = false;
  /** the group join of run() or an iteration while it is on the wire (settles, never rejects) */
  #joining: Promise<void> | null = null;
  #inHandler = false;
  /** a handler's synchronous part is running (tells stop() it is called from there where
   * the runtime cannot trace calls across awaits: consumer_scope.ts) */
  #inHandlerSync = false;
  /** the group session (null without groupId) */
  readonly #group: GroupSession | null = null;
  readonly #delivery: DeliveryContext;

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
    }
    const opts = {
      maxWaitMs: options.maxWaitMs ?? 5000,
      minBytes: options.minBytes ?? 1,
      maxBytes: options.maxBytes ?? 1 << 20,
      maxBufferedBatches: options.maxBufferedBatches ?? 2,
      checkCrcs: options.checkCrcs ?? true,
      autoOffsetReset: options.autoOffsetReset ?? "earliest",
      fetchMaxBytes: options.fetchMaxBytes ?? 8 << 20,
      fetchSessions: options.fetchSessions ?? true,
    };
    for (
      const k of [
        "maxWaitMs",
        "minBytes",
        "maxBytes",
        "maxBufferedBatches",
        "fetchMaxBytes",
      ] as const
    ) {
      const v = opts[k];
      if (!Number.isInteger(v) || v < (k === "maxWaitMs" || k === "minBytes" ? 0 : 1)) {
        throw new RangeError(
          `${k} must be a ${k === "maxWaitMs" ? "non-negative" : "positive"} integer, got ${v}`,
        );
      }
    }
    this.#f = new PartitionFetches(transport, admin, opts);
    if (options.groupId !== undefined) {
      this.#group = new GroupSession(transport, admin, this.#f, {
        groupId: options.groupId,
        reset: options.autoOffsetReset ?? "latest",
        sessionTimeoutMs: options.sessionTimeoutMs,
        heartbeatIntervalMs: options.heartbeatIntervalMs,
        assignor: options.assignor,
      }, () => this.#mode);
      if (options.onAssigned) this.#group.on("assigned", options.onAssigned);
      if (options.onRevoked) this.#group.on("revoked", options.onRevoked);
    }
    this.#delivery = {
      fetches: this.#f,
      group: this.#group,
      inHandlerSync: (on) => (this.#inHandlerSync = on),
    };
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
    const starts = await Promise.all(partitions.map((p) => this.#f.resolveStart(p)));
    const wanted = new Set(partitions.map((p) => key(p.topic, p.partition)));
    for (const [k, s] of this.#f.states) {
      if (!wanted.has(k)) {
        s.assigned = false;
        this.#f.invalidate(s);
        this.#f.states.delete(k);
      }
    }
    partitions.forEach((p, i) => {
      const k = key(p.topic, p.partition);
      const existing = this.#f.states.get(k);
      if (existing) {
        this.#f.moveTo(existing, starts[i]);
        return;
      }
      const s = newPartitionState(p.topic, p.partition, starts[i]);
      this.#f.states.set(k, s);
      if (this.#f.running) this.#f.fetchLoop(s);
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
    return [...this.#f.states.values()].map((s) => ({ topic: s.topic, partition: s.partition }));
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
    if (this.#f.running) throw new TypeError("subscribe() before run(), not while running");
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
    if (this.#group) return this.#group.on(event, listener);
    if (event !== "assigned" && event !== "revoked") {
      throw new TypeError(`Unknown consumer event "${event}"`);
    }
    return () => {}; // without a group there are no rebalances
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
    for (const k of this.#f.expand(topics)) {
      if (this.#f.paused.has(k)) continue;
      this.#f.paused.add(k);
      const s = this.#f.states.get(k);
      if (s) {
        this.#f.halt(s);
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
    for (const k of this.#f.expand(topics)) {
      if (!this.#f.paused.delete(k)) continue;
      const s = this.#f.states.get(k);
      if (s && this.#f.running && s.assigned) {
        s.fetchOffset = s.position;
        this.#f.fetchLoop(s);
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
    return [...this.#f.paused].map((k) => {
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
    await this.#group.commits.commitOffsets(offsets);
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
    return this.#f.state(topic, partition).position;
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
    const s = this.#f.state(target.topic, target.partition);
    if (
      target.timestamp === undefined && target.offset !== "earliest" && target.offset !== "latest"
    ) {
      if (target.offset === undefined) throw new TypeError("seek needs an offset or a timestamp");
      this.#f.moveTo(s, toOffset(target.offset));
      return Promise.resolve();
    }
    return this.#f.resolveStart(target).then((o) => this.#f.moveTo(s, o));
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
      if (this.#group) await this.#join(this.#group);
      while (true) {
        const chunk = await this.#f.nextChunk();
        if (chunk === null) break;
        const { state, messages } = chunk;
        while (
          chunk.index < messages.length && chunk.epoch === state.epoch && this.#f.deliverable(state)
        ) {
          if (++chunk.turn > TURN_RECORDS && this.#f.yieldTurn(chunk)) break;
          const m = messages[chunk.index++];
          this.#f.handed();
          if (!this.#group) {
            state.position = m.offset + 1;
            yield m;
            continue;
          }
          // In a group the record counts as processed once the loop asks for the next one.
          const busy = new HandlerCall();
          state.busy = busy;
          try {
            yield m;
          } finally {
            state.busy = null;
            busy.end();
          }
          if (chunk.epoch !== state.epoch) break;
          state.position = m.offset + 1;
          this.#group.commits.resolved();
          await this.#group.commits.maybeCommit();
        }
        this.#f.release(chunk);
      }
      if (this.#f.error !== undefined) throw this.#f.error;
    } finally {
      if (this.#f.running || this.#group) await this.stop();
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
    this.#group?.commits.configure(options);
    // Everything run() starts (loop, handlers, heartbeats, listeners) is this consumer's
    // work: stop() called from there must not wait for itself.
    await runAsConsumer(this, async () => {
      this.#start("run");
      if (!this.#group) {
        this.#loop = this.#runLoop(options);
        return;
      }
      const group = this.#group;
      await this.#join(group, () => (this.#loop = this.#runLoop(options))).catch((e) => {
        this.#f.running = false;
        this.#mode = "idle";
        throw e;
      });
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
   * Called while `run()` (or an iteration) is joining the group, it waits for the join, then
   * stops and leaves. Group requests give up after 30 s (REQUEST_TIMED_OUT), so it ends even
   * when the broker stops answering (after the handler call in progress returned).
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
    // A join on the wire (run() or an iteration starting) is let finish (group calls are
    // bounded), so that what it started is stopped and the member it made leaves before
    // this resolves. Not from inside: the join waits for the listener calling this.
    if (this.#joining !== null && !fromInside) await this.#joining;
    const runLoop = this.#mode === "run" && !fromInside ? this.#loop : null;
    if (!this.#f.running) {
      // Stopped already (by an error or an earlier call): a run() loop leaves by itself,
      // possibly still finishing a handler call; an iteration leaves here.
      if (fromInside) return;
      if (this.#group && this.#mode !== "run") await this.#group.leave();
      else if (runLoop) await runLoop;
      return;
    }
    this.#f.running = false;
    this.#f.haltAll();
    if (this.#group && this.#mode !== "run") this.#group.leave();
    // In run mode the loop leaves the group once the handler in progress returned.
    if (runLoop) await runLoop;
    else if (this.#group?.leaving && !fromInside) await this.#group.leaving;
    // A run() loop still finishing the handler that called stop() stays "run", so that a
    // stop() from outside meanwhile still waits for it.
    if (!fromInside || this.#mode !== "run") this.#mode = "idle";
    if (!fromInside) await this.#f.fetcherStopped;
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

  /**
   * Joins the group, then calls `joined`; a stop() meanwhile waits until both are done (or
   * the join failed).
   */
  async #join(group: GroupSession, joined: () => void = () => {}): Promise<void> {
    const done = deferred();
    this.#joining = done.promise;
    try {
      await group.join();
      joined();
    } finally {
      if (this.#joining === done.promise) this.#joining = null;
      done.resolve();
    }
  }

  #start(mode: "run" | "iterate"): void {
    if (this.#f.running) {
      throw new TypeError(`The consumer is already running (${this.#mode}); stop() it first`);
    }
    this.#f.running = true;
    this.#mode = mode;
    this.#f.error = undefined;
    this.#finished = deferred();
    for (const s of this.#f.states.values()) this.#f.fetchLoop(s);
  }

  async #runLoop(options: RunOptions): Promise<void> {
    const heartbeat = () => this.#group?.heartbeatIfDue() ?? Promise.resolve();
    try {
      while (this.#f.running) {
        const chunk = await this.#f.nextChunk();
        if (chunk === null) break;
        let attempt = 0;
        const s = chunk.state;
        while (
          this.#f.running && chunk.epoch === s.epoch && chunk.index < chunk.messages.length &&
          this.#f.deliverable(s)
        ) {
          const before = chunk.index;
          this.#inHandler = true;
          const busy = new HandlerCall();
          s.busy = busy;
          try {
            // The handler is called before the first await of either (the fetcher may be
            // waiting for that to send its next request: handed).
            const delivering = options.eachBatch
              ? deliverBatch(this.#delivery, chunk, options, heartbeat)
              : deliverMessages(this.#delivery, chunk, options.eachMessage!, heartbeat);
            this.#f.handed();
            await delivering;
            attempt = 0;
          } catch (e) {
            if (chunk.index > before) attempt = 0;
            // kafkajs: commit what was resolved, then retry or re-throw
            if (this.#group?.commits.autoCommit) await this.#group.commits.commitQuietly();
            if (attempt >= this.#t.retry.retries) throw e;
            await delay(retryDelay(attempt++, this.#t.retry));
          } finally {
            this.#inHandler = false;
            s.busy = null;
            busy.end();
          }
          if (this.#group && options.eachBatch) await this.#group.commits.maybeCommit();
          if (chunk.turn >= TURN_RECORDS && this.#f.yieldTurn(chunk)) break;
        }
        this.#f.release(chunk);
      }
      if (this.#f.error !== undefined) throw this.#f.error;
      if (this.#group) await this.#group.leave();
      this.#finished.resolve();
    } catch (e) {
      this.#f.fail(e);
      this.#mode = "idle";
      if (this.#group) await this.#group.leave().catch(() => {});
      this.#finished.reject(e);
      if (!this.#finishedObserved) {
        // Nobody listens to finished(): say why the consumer stopped rather than stay silent.
        this.#finished.promise.catch(() => {});
        console.error(`rill consumer stopped: ${e instanceof Error ? e.message : e}`);
      }
    }
  }
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
