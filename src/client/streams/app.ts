/**
 * A streams application (Kafka Streams' `KafkaStreams`): runs a topology with the
 * instances of one `applicationId` sharing the work through a consumer group
 * (`groupId = applicationId`, range assignment so that partition `p` of every source topic
 * goes to the same instance: task `p`).
 *
 * Lifecycle: `build(builder)` → `start()` (creates internal topics, joins) → `close()`.
 * On assignment a task restores its stores from their changelogs and finds what it already
 * wrote (task.ts) before any of its records are processed; on revocation its state is
 * dropped after its offsets were committed.
 *
 * **Processing guarantee.** Each fetched batch of an input partition is processed, then
 * everything it wrote (changelog, repartition and sink records, acks=all, idempotent
 * producer per task) is acknowledged, and only then are the batch's offsets marked for
 * commit (committed every `commitIntervalMs` and on revocation/close). So:
 *
 * - `at_least_once` (default): state stores are exact (a crash never counts an input record
 *   twice in a store: see task.ts), repartition topics hold each record once, and sink
 *   topics may hold records written again after a crash (the output of input records
 *   processed after the last commit). A table written to a sink (`count().toStream().to()`)
 *   still ends with the right latest value per key.
 * - `exactly_once`: additionally, sink records already written are not written again
 *   after a crash or a move to another instance, so each sink record appears once.
 *
 * What exactly-once promises precisely, and when it breaks:
 * - It holds when processing is deterministic: the same input records, from the committed
 *   offsets, with the same restored state, produce the same outputs in the same order (no
 *   wall-clock time, randomness or outside lookups in your functions). Batching does not
 *   matter: deduplication goes by provenance, not by batch.
 * - A destination partition is compared by the provenance of one input topic: a sink
 *   partition fed from two input topics of one task (e.g. a `merge` of two source topics,
 *   or the two sides of a join emitting to the same sink) is deduplicated for one of them
 *   only (at-least-once for the other).
 * - It relies on the broker's idempotent-producer state of the task's producer id (stable
 *   per `applicationId` and task), which expires after `producer.id.expiration.ms` (a day)
 *   without writes, and on the destination's last batch still being readable (not deleted
 *   by retention).
 * - A zombie instance (one that lost its group session but still runs) is fenced by the
 *   producer epoch only from the new owner's first write to each partition; the consumer
 *   stops all work itself once its session is lost, which closes most of that window.
 * - Stream time (for window grace) after a restore is the largest timestamp in the restored
 *   state, not the exact stream time at the commit: a record late by a hair may be taken
 *   after a restart where it would have been dropped.
 * - Changelogs are compacted (`cleanup.policy=compact`; a windowed store's
 *   `compact,delete` with `retention.ms` of its window, grace and a day, as Kafka Streams)
 *   with `min.compaction.lag.ms` of a day: a task that restarts more than a day after a crash may find that the cleaner
 *   removed a key's committed value in favour of a newer, uncommitted one, which a restore
 *   skips; that key's state is then lost.
 * - There are no transactions: a consumer reading a sink sees records before the
 *   application committed its input (Kafka's read_uncommitted), and outputs of several
 *   partitions are not atomic together.
 *
 * **Bounded mode** (`stopAtEnd: true`): the application reads its source topics up to the
 * end offsets they had when it started, then its repartition topics until their ends stop
 * moving once every source is done and every output is acked, commits and stops
 * (`finished()` resolves). Run one instance in this mode (an instance only knows the
 * positions of the partitions it was assigned).
 *
 * **Failures.** A record whose processing throws, or an output that fails for good (a
 * task's producer then refuses every later send, so no destination gets a gap), stops the
 * application: `finished()` rejects and nothing more is processed or committed in this
 * process. Start it again: its tasks restore the state as of the last commit.
 *
 * @module
 */
import { RillError } from "../../protocol/errors.ts";
import type { Admin, GroupPartitionOffset } from "../admin.ts";
import { Consumer } from "../consumer.ts";
import { fetchPartition } from "../fetcher.ts";
import type { Metadata } from "../metadata.ts";
import { Producer, type RecordMetadata } from "../producer.ts";
import type { Transport } from "../transport.ts";
import type { StreamsBuilder } from "./builder.ts";
import { parseProvenance, SRC_HEADER, StreamTask } from "./task.ts";
import type { StoreDef, Topology } from "./topology.ts";

/** How long changelog records stay uncompacted (`min.compaction.lag.ms`): a day. */
const CHANGELOG_COMPACTION_LAG_MS = 24 * 60 * 60 * 1000;
/** How long a window's changelog records outlive its grace (Kafka Streams' default too). */
const WINDOW_CHANGELOG_EXTRA_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * A store's changelog configs, as Kafka Streams sets them: compacted, since only each key's
 * latest value matters; a windowed store's also deletes what is older than its window,
 * grace and a day (`compact,delete`), since every window is a key of its own and
 * compaction alone would keep them all.
 */
function changelogConfigs(store: StoreDef): { name: string; value: string }[] {
  const configs = [
    // A restore skips the records written after the last commit (task.ts), so a key's
    // committed value must outlive a newer uncommitted one until the task restarts: the
    // cleaner leaves the last day alone.
    { name: "min.compaction.lag.ms", value: String(CHANGELOG_COMPACTION_LAG_MS) },
  ];
  if (!store.windows) return [{ name: "cleanup.policy", value: "compact" }, ...configs];
  const { size, graceMs } = store.windows;
  return [
    { name: "cleanup.policy", value: "compact,delete" },
    ...configs,
    { name: "retention.ms", value: String(size + graceMs + WINDOW_CHANGELOG_EXTRA_RETENTION_MS) },
  ];
}

/** Batches of one input partition whose outputs may be in flight at once. */
const MAX_UNACKED_BATCHES = 4;

/**
 * Options of `rill.streams()`.
 *
 * @example
 * ```ts
 * const app = rill.streams({ applicationId: "word-count", fromBeginning: true });
 * ```
 */
export interface StreamsConfig {
  /** names the consumer group, internal topics and producer ids; instances with the same
   * id share the work */
  applicationId: string;
  /** "at_least_once" (default) or "exactly_once" (see the module documentation) */
  processingGuarantee?: "at_least_once" | "exactly_once";
  /** a new application starts at the beginning of its source topics (default false: at
   * their end) */
  fromBeginning?: boolean;
  /** stop at the end offsets seen at start (a batch job) */
  stopAtEnd?: boolean;
  /** how often input offsets are committed, ms (default 1000) */
  commitIntervalMs?: number;
  /** the group session timeout, ms (default the broker's) */
  sessionTimeoutMs?: number;
  /** long-poll wait of fetches, ms (default 500) */
  maxWaitMs?: number;
}

/**
 * Counters of a running application.
 *
 * @example
 * ```ts
 * console.log(app.metrics().processed);
 * ```
 */
export interface StreamsMetrics {
  /** input records processed (including reprocessing after a restore) */
  processed: number;
  /** records dropped as later than their window's grace period, per store */
  droppedLate: Record<string, number>;
  /** tasks (partition numbers) this instance runs */
  tasks: number[];
}

/**
 * A streams application. Get one from `rill.streams(config)`.
 *
 * @example
 * ```ts
 * const builder = new StreamsBuilder();
 * builder.stream("lines").mapValues((v) => v.toUpperCase()).to("shouts");
 * const app = rill.streams({ applicationId: "shouter" }).build(builder);
 * await app.start();
 * // …
 * await app.close();
 * ```
 */
export class StreamsApp {
  readonly #t: Transport;
  readonly #meta: Metadata;
  readonly #admin: Admin;
  readonly #cfg: Required<Omit<StreamsConfig, "sessionTimeoutMs">> & { sessionTimeoutMs?: number };
  #topology: Topology | null = null;
  #consumer: Consumer | null = null;
  readonly #tasks = new Map<number, { task: StreamTask; producer: Producer; parts: Set<string> }>();
  readonly #counts = new Map<string, number>();
  #partitions = 0;
  #processedClosed = 0;
  readonly #dropped = new Map<string, number>();
  /** bounded mode: end offsets of external sources at start; positions */
  readonly #ends = new Map<string, number>();
  /** "topic\0partition" → the offset after the last input record whose outputs are acked */
  readonly #positions = new Map<string, number>();
  /** what was committed last, per "topic\0partition" */
  readonly #committed = new Map<string, number>();
  /** per input partition: the chain of its chunks' acknowledgements, and how many wait */
  readonly #acks = new Map<string, { chain: Promise<void>; waiting: number }>();
  #commitTimer: ReturnType<typeof setInterval> | undefined;
  /** the commit in progress (commits run one after another) */
  #commitChain: Promise<void> = Promise.resolve();
  #failed: unknown = undefined;
  #checking = false;
  #recheck = false;
  #internalEnds: Map<string, number> | null = null;
  #done: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };
  #stopping: Promise<void> | null = null;

  /**
   * @param transport the client's transport (use `rill.streams()`)
   * @param metadata the client's metadata cache
   * @param admin an admin client
   * @param config the configuration
   * @throws {TypeError} on a bad applicationId or guarantee
   */
  constructor(transport: Transport, metadata: Metadata, admin: Admin, config: StreamsConfig) {
    if (
      typeof config?.applicationId !== "string" ||
      !/^[a-zA-Z0-9._-]{1,200}$/.test(config.applicationId)
    ) {
      throw new TypeError("applicationId must be 1 to 200 characters of [a-zA-Z0-9._-]");
    }
    const g = config.processingGuarantee ?? "at_least_once";
    if (g !== "at_least_once" && g !== "exactly_once") {
      throw new TypeError(
        `processingGuarantee must be "at_least_once" or "exactly_once", got "${g}"`,
      );
    }
    this.#t = transport;
    this.#meta = metadata;
    this.#admin = admin;
    this.#cfg = {
      applicationId: config.applicationId,
      processingGuarantee: g,
      fromBeginning: config.fromBeginning ?? false,
      stopAtEnd: config.stopAtEnd ?? false,
      commitIntervalMs: config.commitIntervalMs ?? 1000,
      sessionTimeoutMs: config.sessionTimeoutMs,
      maxWaitMs: config.maxWaitMs ?? 500,
    };
    let resolve!: () => void, reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {});
    this.#done = { promise, resolve, reject };
  }

  /**
   * Sets the topology to run.
   *
   * @param builder the builder the topology was described with
   * @returns this application
   * @throws {TypeError} if the topology reads no topic
   * @example
   * ```ts
   * const app = rill.streams({ applicationId: "word-count" }).build(builder);
   * ```
   */
  build(builder: StreamsBuilder): this {
    if (builder.topology.sources.length === 0) throw new TypeError("The topology reads no topic");
    this.#topology = builder.topology;
    return this;
  }

  #name(def: { topic: string; internal: boolean }): string {
    return def.internal ? `${this.#cfg.applicationId}-${def.topic}` : def.topic;
  }

  /**
   * Creates the internal topics (repartition and changelog, as many partitions as the
   * sources; changelogs with `cleanup.policy=compact`), joins the group and starts
   * processing.
   *
   * @returns once the instance has joined and its first tasks are restored
   * @throws {TypeError} without a topology; {RillError} UNKNOWN_TOPIC_OR_PARTITION for a
   *   missing source or sink topic, INVALID_PARTITIONS when sources differ in partitions
   * @example
   * ```ts
   * await app.start();
   * ```
   */
  async start(): Promise<void> {
    const topo = this.#topology;
    if (!topo) throw new TypeError("Call build(builder) before start()");
    if (this.#consumer) throw new TypeError("The application is already started");
    const appId = this.#cfg.applicationId;
    const external = topo.sources.filter((s) => !s.internal).map((s) => s.topic);
    const counts = await Promise.all(external.map((t) => this.#meta.partitionCount(t)));
    const n = counts[0];
    if (counts.some((c) => c !== n)) {
      throw new RillError(
        "INVALID_PARTITIONS",
        `The source topics of "${appId}" must have the same partition count (co-partitioned): ${
          external.map((t, i) => `${t}=${counts[i]}`).join(", ")
        }`,
      );
    }
    this.#partitions = n;
    const repartition = topo.sources.filter((s) => s.internal).map((s) => this.#name(s));
    const changelogs = [...topo.stores.values()].map((store) => ({
      topic: `${appId}-${store.name}-changelog`,
      numPartitions: n,
      configEntries: changelogConfigs(store),
    }));
    const internal = [...repartition, ...changelogs.map((c) => c.topic)];
    await this.#admin.createTopics({
      topics: [...repartition.map((topic) => ({ topic, numPartitions: n })), ...changelogs],
    });
    // Independent lookups, side by side: sink partition counts, committed offsets and (bounded
    // mode) the end offsets of the sources at start.
    const [, committed] = await Promise.all([
      Promise.all(topo.sinks.map(async (s) => {
        const topic = this.#name(s);
        this.#counts.set(topic, await this.#meta.partitionCount(topic));
      })),
      this.#admin.fetchGroupOffsets(appId).catch(() => []),
      this.#cfg.stopAtEnd
        ? Promise.all(external.map(async (topic) => {
          for (const p of await this.#admin.fetchTopicOffsets(topic)) {
            this.#ends.set(`${topic}\u0000${p.partition}`, p.high);
          }
        }))
        : undefined,
    ]);
    for (const t of [...internal, ...external]) this.#counts.set(t, n);
    // Sources without a committed offset start at their end unless fromBeginning; internal
    // topics always from their beginning (the consumer is told fromBeginning and the
    // external ones are moved to their end here, while the group is empty).
    if (!this.#cfg.fromBeginning) {
      for (const topic of external) {
        if (committed.some((o) => o.topic === topic)) continue;
        await this.#admin.resetGroupOffsets(appId, topic, "latest").catch((e) => {
          if (
            !(e instanceof RillError &&
              (e.code === "NON_EMPTY_GROUP" || e.code === "REBALANCE_IN_PROGRESS"))
          ) throw e;
        });
      }
    }
    const consumer = new Consumer(this.#t, this.#admin, {
      groupId: appId,
      assignor: "range",
      sessionTimeoutMs: this.#cfg.sessionTimeoutMs,
      maxWaitMs: this.#cfg.maxWaitMs,
      autoOffsetReset: "earliest",
      onAssigned: (ps) => this.#assigned(ps),
      onRevoked: (ps) => this.#revoked(ps),
    });
    this.#consumer = consumer;
    await consumer.subscribe({
      topics: [...external, ...topo.sources.filter((s) => s.internal).map((s) => this.#name(s))],
      fromBeginning: true,
    });
    await consumer.run({
      autoCommit: false, // offsets are committed once the outputs of their records are acked
      eachBatch: async ({ batch }) => {
        if (this.#failed !== undefined) throw this.#failed; // never process after a failure
        // The consumer delivers a partition's records only after onAssigned (which built its
        // task) returned and before onRevoked (which drops it) is called.
        const entry = this.#tasks.get(batch.partition);
        if (!entry) {
          throw new RillError("UNKNOWN_SERVER_ERROR", `No task for partition ${batch.partition}`);
        }
        if (batch.messages.length === 0) return;
        const { task, producer } = entry;
        try {
          task.processBatch(batch.messages);
        } catch (e) {
          // The task's state holds part of this batch: it must not be processed again in
          // this process (a restart restores the state as of the last commit).
          this.#fail(e);
          throw e;
        }
        const k = `${batch.topic}\u0000${batch.partition}`;
        const next = batch.messages[batch.messages.length - 1].offset + 1;
        // The outputs are sent without waiting, so the next batch is processed while they
        // travel; the offsets move once this batch's and every earlier batch's are acked.
        const sends: Promise<RecordMetadata[]>[] = [];
        for (const [topic, messages] of task.drainOutput()) {
          sends.push(producer.send({ topic, messages, acks: "all" }));
        }
        const acks = this.#acks.get(k) ?? { chain: Promise.resolve(), waiting: 0 };
        this.#acks.set(k, acks);
        acks.waiting++;
        const chain = Promise.all([acks.chain, ...sends]).then(() => {
          acks.waiting--;
          this.#positions.set(k, next);
          if (this.#cfg.stopAtEnd) this.#checkDone();
        });
        chain.catch((e) => this.#fail(e));
        acks.chain = chain.catch(() => {});
        if (acks.waiting > MAX_UNACKED_BATCHES) await chain;
      },
    });
    consumer.finished().catch((e) => this.#fail(e));
    this.#commitTimer = setInterval(() => {
      this.#commit().catch(() => {}); // a rebalance or a lost session: the next one retries
    }, this.#cfg.commitIntervalMs);
    if (this.#cfg.stopAtEnd) this.#checkDone();
  }

  /**
   * Commits the acked positions of `only` (default: every partition) that moved, after the
   * commit in progress: a revocation's commit is the last of its partitions, so no periodic
   * commit lands after their next owner (maybe this instance again) read the offsets.
   */
  #commit(only?: Set<string>): Promise<void> {
    const run = this.#commitChain.then(() => this.#commitNow(only));
    this.#commitChain = run.catch(() => {});
    return run;
  }

  async #commitNow(only?: Set<string>): Promise<void> {
    const consumer = this.#consumer;
    if (!consumer) return;
    const offsets: { topic: string; partition: number; offset: number }[] = [];
    for (const [k, offset] of this.#positions) {
      if (only && !only.has(k)) continue;
      if (this.#committed.get(k) === offset) continue;
      const i = k.indexOf("\u0000");
      offsets.push({ topic: k.slice(0, i), partition: Number(k.slice(i + 1)), offset });
    }
    if (offsets.length === 0) return;
    await consumer.commitOffsets(offsets);
    for (const o of offsets) this.#committed.set(`${o.topic}\u0000${o.partition}`, o.offset);
  }

  /** Builds and restores the tasks of newly assigned partitions. */
  async #assigned(ps: { topic: string; partition: number }[]): Promise<void> {
    const byTask = new Map<number, string[]>();
    for (const tp of ps) {
      const list = byTask.get(tp.partition) ?? [];
      list.push(tp.topic);
      byTask.set(tp.partition, list);
    }
    const fresh: [number, string[]][] = [];
    for (const [p, topics] of byTask) {
      const existing = this.#tasks.get(p);
      if (existing) {
        for (const t of topics) existing.parts.add(t);
      } else {
        fresh.push([p, topics]);
      }
    }
    // Tasks are independent: set them up side by side (and alongside the lookup of the
    // committed offsets), so that processing starts after the slowest one's round trips
    // rather than after all of them in turn.
    const committedList = this.#admin.fetchGroupOffsets(this.#cfg.applicationId);
    committedList.catch(() => {}); // each task awaits it
    const settled = await Promise.allSettled(
      fresh.map(([p, topics]) => this.#newTask(p, topics, committedList)),
    );
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) {
      // A task that could not be set up cannot process its records: stop with the cause
      // (the consumer would otherwise deliver them to no task).
      this.#fail(failed.reason);
      throw failed.reason;
    }
    if (this.#cfg.stopAtEnd) queueMicrotask(() => this.#checkDone());
  }

  /** Builds task `p`: its producer, what it already wrote, its restored stores. */
  async #newTask(
    p: number,
    topics: string[],
    committedOffsets: Promise<GroupPartitionOffset[]>,
  ): Promise<void> {
    const topo = this.#topology!;
    const appId = this.#cfg.applicationId;
    const producer = new Producer(this.#t, this.#meta, {
      producerKey: `${appId}-task-${p}`,
      acks: "all",
    });
    const identity = producer.identity();
    identity.catch(() => {}); // awaited below (or by the first send), after the offsets
    // Where each source partition starts: its committed offset, else its earliest one (asked
    // for at once rather than after the committed offsets are known: one round trip less).
    const earliest = new Map(topo.sources.map((s) => {
      const e = this.#admin.fetchOffset(this.#name(s), p, "earliest");
      e.catch(() => {}); // awaited below when there is no committed offset
      return [s, e];
    }));
    const committedList = await committedOffsets;
    const committed = new Map<string, number>();
    await Promise.all(topo.sources.map(async (s) => {
      const topic = this.#name(s);
      const c = committedList.find((o) => o.topic === topic && o.partition === p);
      const start = c?.offset ?? await earliest.get(s)!;
      committed.set(topic, start);
      this.#positions.set(`${topic}\u0000${p}`, start);
      if (c) this.#committed.set(`${topic}\u0000${p}`, start);
    }));
    const task = new StreamTask({
      topology: topo,
      partition: p,
      topicName: (d) => this.#name(d),
      partitionCount: (t) => this.#counts.get(t) ?? 1,
      exactlyOnce: this.#cfg.processingGuarantee === "exactly_once",
    });
    // What this task's producer already wrote to each deduplicated destination. Without
    // any, the identity asked for above is not waited for here: the producer's first send
    // waits for it, so processing starts meanwhile.
    const dedup = new Set(
      topo.sinks.filter((s) => s.internal || this.#cfg.processingGuarantee === "exactly_once")
        .map((s) => this.#name(s)),
    );
    const id = dedup.size > 0 ? (await identity)! : null;
    const written = [];
    for (const topic of dedup) {
      const count = this.#counts.get(topic) ?? 1;
      for (let q = 0; q < count; q++) {
        written.push(
          this.#lastWritten(id!.producerId, topic, q).then((src) => ({ topic, q, src })),
        );
      }
    }
    for (const { topic, q, src } of await Promise.all(written)) {
      if (src) task.noteWritten(topic, q, src);
    }
    for (const [store, changelog] of task.changelogs) {
      await this.#restore(task, store, changelog, p, committed);
    }
    this.#tasks.set(p, { task, producer, parts: new Set(topics) });
  }

  /** The provenance of the last record `producerId` wrote to a partition, if any. */
  async #lastWritten(producerId: number, topic: string, partition: number) {
    let state: { lastOffset: number };
    try {
      state = await this.#t.json("GET", `/v1/producers/${producerId}`, {
        query: { topic, partition },
      });
    } catch (e) {
      if (e instanceof RillError && e.code === "NOT_FOUND") return null;
      throw e;
    }
    const r = await fetchPartition(this.#t, topic, partition, state.lastOffset, {
      maxBytes: 1 << 20,
      maxWaitMs: 0,
      minBytes: 1,
    });
    const m = r.messages.find((x) => x.offset === state.lastOffset);
    return m ? parseProvenance(m.headerString(SRC_HEADER)) : null;
  }

  async #restore(
    task: StreamTask,
    store: string,
    topic: string,
    p: number,
    committed: Map<string, number>,
  ) {
    let offset = await this.#admin.fetchOffset(topic, p, "earliest");
    const end = await this.#admin.fetchOffset(topic, p, "latest");
    for (let i = 0; offset < end && i < 1_000_000; i++) {
      const r = await fetchPartition(this.#t, topic, p, offset, {
        maxBytes: 4 << 20,
        maxWaitMs: 0,
        minBytes: 1,
      });
      for (const m of r.messages) {
        if (m.offset >= offset && m.offset < end) task.restore(store, m, committed);
      }
      if (r.nextOffset <= offset) break;
      offset = r.nextOffset;
    }
  }

  async #revoked(ps: { topic: string; partition: number }[]): Promise<void> {
    const keys = new Set(ps.map((tp) => `${tp.topic}\u0000${tp.partition}`));
    await Promise.all([...keys].map((k) => this.#acks.get(k)?.chain));
    await this.#commit(keys).catch((e) => {
      // a lost session: the next owner reprocesses from the last commit (at-least-once)
      console.error(`rill streams: committing revoked partitions failed: ${e}`);
    });
    for (const k of keys) {
      this.#acks.delete(k);
      this.#positions.delete(k);
      this.#committed.delete(k);
    }
    for (const tp of ps) {
      const entry = this.#tasks.get(tp.partition);
      if (!entry) continue;
      entry.parts.delete(tp.topic);
      if (entry.parts.size > 0) continue;
      this.#tasks.delete(tp.partition);
      this.#retire(entry.task);
      entry.producer.disconnect().catch(() => {});
    }
  }

  #retire(task: StreamTask): void {
    this.#processedClosed += task.processed;
    for (const [s, n] of task.droppedLate) this.#dropped.set(s, (this.#dropped.get(s) ?? 0) + n);
  }

  async #checkDone(): Promise<void> {
    if (this.#stopping || !this.#consumer) return;
    if (this.#checking) {
      this.#recheck = true; // look again once the check in progress is over
      return;
    }
    this.#checking = true;
    try {
      const reached = (ends: Map<string, number>) =>
        [...ends].every(([k, end]) => (this.#positions.get(k) ?? -1) >= end);
      if (!reached(this.#ends)) return;
      // Every source is done: the internal topics grow no more once everything written is
      // acked and the records read from them produce nothing new (several repartition levels
      // settle one after the other), so wait until their ends stop moving.
      if (this.#internalEnds !== null && !reached(this.#internalEnds)) return;
      for (const { producer } of this.#tasks.values()) await producer.flush();
      const ends = new Map<string, number>();
      for (const s of this.#topology!.sources.filter((x) => x.internal)) {
        const topic = this.#name(s);
        for (const o of await this.#admin.fetchTopicOffsets(topic)) {
          ends.set(`${topic}\u0000${o.partition}`, o.high);
        }
      }
      if (this.#stopping) return;
      this.#internalEnds = ends;
      if (!reached(ends)) return;
    } finally {
      this.#checking = false;
      if (this.#recheck) {
        this.#recheck = false;
        queueMicrotask(() => this.#checkDone());
      }
    }
    await this.close();
    this.#done.resolve();
  }

  #fail(e: unknown): void {
    this.#failed ??= e;
    this.#done.reject(e);
    this.close().catch(() => {});
  }

  /**
   * Resolves when a bounded application (`stopAtEnd`) has processed everything and
   * stopped, or when `close()` was called; rejects with the error that stopped processing.
   *
   * @returns a promise
   * @example
   * ```ts
   * await app.start();
   * await app.finished(); // a stopAtEnd job has processed everything
   * ```
   */
  finished(): Promise<void> {
    return this.#done.promise;
  }

  /**
   * The application's counters.
   *
   * @returns processed records, late records dropped, tasks
   * @example
   * ```ts
   * const { processed, droppedLate } = app.metrics();
   * ```
   */
  metrics(): StreamsMetrics {
    let processed = this.#processedClosed;
    const dropped = new Map(this.#dropped);
    for (const { task } of this.#tasks.values()) {
      processed += task.processed;
      for (const [s, n] of task.droppedLate) dropped.set(s, (dropped.get(s) ?? 0) + n);
    }
    return {
      processed,
      droppedLate: Object.fromEntries(dropped),
      tasks: [...this.#tasks.keys()].sort((a, b) => a - b),
    };
  }

  /**
   * The contents of a store across this instance's tasks (for tests and queries).
   *
   * @param store the store name
   * @returns every key and value held here
   * @example
   * ```ts
   * for (const { key, value } of app.storeEntries("word-counts")) console.log(key, value);
   * ```
   */
  storeEntries(store: string): { key: unknown; value: unknown }[] {
    return [...this.#tasks.values()].flatMap(({ task }) => task.entries(store));
  }

  /**
   * Stops processing: the batch in progress finishes, offsets are committed, the group is
   * left (so another instance takes the tasks at once), producers are flushed.
   *
   * @returns once stopped
   * @example
   * ```ts
   * Deno.addSignalListener("SIGINT", () => app.close());
   * ```
   */
  close(): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#commitTimer);
      const consumer = this.#consumer;
      if (consumer) {
        await consumer.stop();
        await consumer.finished().catch(() => {}); // the last commit and leaving the group
      }
      for (const [p, entry] of this.#tasks) {
        this.#tasks.delete(p);
        this.#retire(entry.task);
        await entry.producer.disconnect().catch(() => {});
      }
      this.#done.resolve();
    })();
    return this.#stopping;
  }
}
