/**
 * A Rill broker: joins coordination (topic metadata and membership in Deno KV) and storage
 * (one partition log per hosted replica) behind the operations the HTTP API exposes.
 *
 * Produce and fetch touch only memory and segment files. Metadata is cached in memory and
 * refreshed when the KV metadata version moves: polled every `metadataPollMs`, checked at
 * once on a miss for an unknown topic, and after every admin operation of this broker.
 *
 * Replication (replication.ts, replica.ts, replica_fetcher.ts, controller.ts): each hosted
 * replica leads or follows as the partition state in KV says; followers pull from leaders
 * through {@linkcode Broker.replicaFetch}; `acks=all` waits for the high watermark; the
 * controller (the holder of the KV lease) moves leadership off dead brokers. A restarted
 * broker hands over the leadership it still holds before it serves.
 *
 * Lifecycle: {@linkcode Broker.open} (recover logs, register), serve, then
 * {@linkcode Broker.beginShutdown} (refuse new produce, wake long polls and end SSE
 * streams) and {@linkcode Broker.close} (finish in-flight appends, close logs, which
 * writes their clean-shutdown markers, deregister).
 *
 * @module
 */
import {
  type BrokerRegistration,
  type BrokerRole,
  type BrokerStatus,
  ClusterStore,
} from "../coordination/cluster.ts";
import { type TopicConfigs, validateTopicConfigs } from "../coordination/topic_configs.ts";
import { type TopicMetadata, TopicStore } from "../coordination/topics.ts";
import { LeaseStore } from "../coordination/leases.ts";
import { PartitionStateStore } from "../coordination/partition_states.ts";
import { Controller } from "./controller.ts";
import { resignLeader, startReassignment } from "./election.ts";
import { ReplicationManager } from "./replication.ts";
import { RillError } from "../protocol/errors.ts";
import { checkProducedBatches, stampLogAppendTime } from "./batch_checks.ts";
import {
  expectedSequence,
  isAheadOfSequence,
  SEQUENCE_HOLD_MS,
  SequenceHolds,
} from "./sequence_holds.ts";
import { readBatchHeader } from "../protocol/record_batch.ts";
import type { AppendResult } from "../storage/partition_log.ts";
import type { ReadBuffer } from "../storage/segment.ts";
import { ReadBufferPool } from "./read_buffers.ts";
import { checkBatchKeys, checkRecordKeys } from "./compaction_checks.ts";
import { TimeSlice } from "./time_slice.ts";
import { DiskGuard } from "./disk_space.ts";
import {
  type Acks,
  assignPartitions,
  type BatchAppendResult,
  encodeRecords,
  type ProduceRecord,
  type RecordOffset,
  unknownPartition,
} from "./produce.ts";
import { type BrokerConfig, DEFAULT_BROKER_CONFIG } from "./config.ts";
import { checkMetaProperties, join, lockDataDir, unlockDataDir } from "./data_dir.ts";
import { LocalTopics, type TopicState } from "./local_topics.ts";
import type { FetchResult, Replica } from "./replica.ts";
import { type FetchManyRequest, type FetchManyResult, FetchSessions } from "./fetch_session.ts";

export type { Acks, BatchAppendResult, ProduceRecord, RecordOffset } from "./produce.ts";

/** What {@linkcode Broker.open} needs. */
export interface BrokerOptions {
  /** the broker id (unique in the cluster) */
  id: number;
  /** the data directory: partition logs, meta.properties, and the default KV file */
  dataDir: string;
  /** a KV path or URL (default `<data>/meta.kv`), or an open KV the caller keeps owning */
  kv?: string | Deno.Kv;
  /** the URL clients reach this broker at; when absent, call {@linkcode Broker.register} later */
  advertisedUrl?: string;
  /** "broker" (default) or "follower" (never leads, holds no replica of new topics) */
  role?: BrokerRole;
  /** overrides of the broker defaults */
  config?: Partial<BrokerConfig>;
  /** the clock (for tests) */
  now?: () => number;
  /** where one-line reports go (default: stderr) */
  log?: (line: string) => void;
  /** a follower (observer): the topics to copy (default: all) */
  observeTopics?: readonly string[];
}

/** Options of {@linkcode Broker.fetch}. */
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
   * where the fetch reads its bytes (segment.ts's ReadBuffer, e.g. lent by
   * {@linkcode Broker.readBuffers}): the answer may be a view of a buffer it gave; default a
   * new buffer
   */
  alloc?: ReadBuffer;
}

/** The least free space at which a log that failed is reopened, even with no floor set. */
const REOPEN_MIN_FREE_BYTES = 4 * 1024 * 1024;

/** A topic's description: metadata plus the offsets of the replicas hosted here. */
export interface TopicDescription {
  /** the metadata */
  meta: TopicMetadata;
  /** per partition: its offsets when hosted here, else null */
  offsets: (
    {
      logStartOffset: number;
      highWatermark: number;
      logEndOffset: number;
      /** why the log failed and takes no writes (I/O error; paths left out), else null */
      logFailure: string | null;
    } | null
  )[];
}

/** Where a list-offsets request points. */
export type OffsetSpec = "earliest" | "latest" | { timestamp: number };

/**
 * A broker.
 *
 * @example
 * ```ts
 * const broker = await Broker.open({ id: 1, dataDir: "./data", advertisedUrl: "http://127.0.0.1:8092" });
 * await broker.createTopic({ name: "orders", partitions: 3 });
 * await broker.close();
 * ```
 */
export class Broker {
  /** the broker id */
  readonly id: number;
  /** the broker's role */
  readonly role: BrokerRole;
  /** the effective settings */
  readonly config: BrokerConfig;
  /** the data directory */
  readonly dataDir: string;
  /** the KV shared with the other brokers of the cluster */
  readonly kv: Deno.Kv;
  /** the cluster id */
  readonly clusterId: string;
  /** topic metadata in KV */
  readonly topicStore: TopicStore;
  /** membership in KV */
  readonly clusterStore: ClusterStore;
  /** checked partition state updates (ISR, leader) in KV */
  readonly partitionStates: PartitionStateStore;
  /** the controller lease */
  readonly leaseStore: LeaseStore;
  /** this broker's controller role (null for an observer) */
  readonly controller: Controller | null;
  /** roles, replica fetchers and ISR writes */
  readonly replication: ReplicationManager;
  readonly #ownsKv: boolean;
  readonly #lock: Deno.FsFile;
  readonly #local: LocalTopics;
  readonly #log: (line: string) => void;
  readonly #shutdown = new AbortController();
  #registration: BrokerRegistration | null = null;
  #knownVersion = -1n;
  #refreshQueued: Promise<void> | null = null;
  #refreshRunning: Promise<void> | null = null;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #loopRuns = new Set<Promise<void>>();
  readonly #inflight = new Set<Promise<unknown>>();
  /** idempotent batches that arrived before their predecessor (see sequence_holds.ts) */
  readonly #holds = new SequenceHolds();
  /** Read buffers for fetch answers, reused once each answer is made (read_buffers.ts). */
  readonly readBuffers: ReadBufferPool = new ReadBufferPool();
  /** The fetch-session core (fetch_session.ts): every multi-partition fetch goes through it. */
  readonly fetchSessions: FetchSessions;
  #draining = false;
  #closed: Promise<void> | null = null;
  /** the free-space floor and the KV reserve (disk_space.ts); null until open() sets it */
  #disk: DiskGuard | null = null;

  private constructor(
    opts: BrokerOptions,
    kv: Deno.Kv,
    ownsKv: boolean,
    clusterId: string,
    config: BrokerConfig,
    lock: Deno.FsFile,
  ) {
    this.#lock = lock;
    this.fetchSessions = new FetchSessions({
      readableReplica: (topic, partition) => this.readableReplica(topic, partition),
      leaderReplica: (topic, partition, epoch) => this.#leaderReplica(topic, partition, epoch),
      draining: () => this.#draining,
      pool: this.readBuffers,
      now: opts.now,
    }, { maxSessions: config.fetchSessionCacheSlots });
    this.id = opts.id;
    this.role = opts.role ?? "broker";
    this.config = config;
    this.dataDir = opts.dataDir;
    this.kv = kv;
    this.#ownsKv = ownsKv;
    this.clusterId = clusterId;
    this.#log = opts.log ?? ((line) => console.error(`rill ${this.role} ${this.id}: ${line}`));
    this.topicStore = new TopicStore(kv);
    this.clusterStore = new ClusterStore(kv, config.sessionTimeoutMs, opts.now);
    this.partitionStates = new PartitionStateStore(kv);
    this.leaseStore = new LeaseStore(kv, undefined, opts.now);
    const observed = opts.observeTopics ? new Set(opts.observeTopics) : null;
    this.#local = new LocalTopics({
      brokerId: opts.id,
      dataDir: opts.dataDir,
      config,
      now: opts.now,
      log: this.#log,
      observe: this.role === "follower"
        ? (topic) => observed === null || observed.has(topic)
        : undefined,
    });
    this.replication = new ReplicationManager({
      brokerId: opts.id,
      observer: this.role === "follower",
      config,
      cluster: this.clusterStore,
      states: this.partitionStates,
      refresh: () => {
        this.refresh().catch((e) => this.#log(`metadata refresh failed: ${e}`));
      },
      log: this.#log,
    });
    this.controller = this.role === "broker"
      ? new Controller({
        brokerId: opts.id,
        lease: this.leaseStore,
        cluster: this.clusterStore,
        topics: this.topicStore,
        states: this.partitionStates,
        leaseTtlMs: config.sessionTimeoutMs,
        log: this.#log,
      })
      : null;
  }

  /**
   * Opens a broker: the KV, the cluster id (created by the first broker), the data
   * directory's identity check, every hosted partition log (recovering after a crash), and
   * the background loops (metadata polling, retention; heartbeats once registered).
   *
   * @param opts id, directories, KV and settings
   * @returns the running broker
   * @throws {Error} when the data directory belongs to another cluster or broker id, or
   *   the KV cannot be opened
   */
  static async open(opts: BrokerOptions): Promise<Broker> {
    if (!Number.isSafeInteger(opts.id) || opts.id < 0) {
      throw new RangeError(`Broker id must be a non-negative integer, got ${opts.id}`);
    }
    const config: BrokerConfig = { ...DEFAULT_BROKER_CONFIG, ...opts.config };
    const lock = await lockDataDir(opts.dataDir);
    const ownsKv = typeof opts.kv !== "object";
    let kv: Deno.Kv;
    try {
      kv = typeof opts.kv === "object"
        ? opts.kv
        : await Deno.openKv(opts.kv ?? join(opts.dataDir, "meta.kv"));
    } catch (e) {
      unlockDataDir(lock);
      throw e;
    }
    let broker: Broker | null = null;
    try {
      const clusterId = await new ClusterStore(kv).ensureClusterId();
      await checkMetaProperties(opts.dataDir, clusterId, opts.id);
      broker = new Broker(opts, kv, ownsKv, clusterId, config, lock);
      const kvPath = typeof opts.kv === "object"
        ? undefined
        : opts.kv === undefined
        ? join(opts.dataDir, "meta.kv")
        : URL.canParse(opts.kv) && /^https?:/.test(opts.kv)
        ? undefined
        : opts.kv;
      broker.#disk = await DiskGuard.open({
        dataDir: opts.dataDir,
        kvPath: kvPath === ":memory:" ? undefined : kvPath,
        brokerId: opts.id,
        minFreeBytes: config.minFreeBytes,
        reserveBytes: config.kvReserveBytes,
      });
      await broker.refresh();
      await broker.#local.removeStrays((await broker.topicStore.snapshot()).topics);
      let clean = 0, recovered = 0;
      for (const r of broker.#local.replicas()) {
        if (r.log.recovery.clean) clean++;
        else recovered++;
      }
      broker.#log(
        `opened ${clean + recovered} partition log(s): ${clean} clean, ${recovered} recovered`,
      );
      if (opts.advertisedUrl !== undefined) await broker.register(opts.advertisedUrl);
      broker.#every(config.metadataPollMs, () => broker!.refresh());
      broker.#every(config.retentionCheckIntervalMs, () => broker!.applyRetention());
      broker.#every(config.logCleanerBackoffMs, () => broker!.cleanLogs());
      broker.#every(config.metadataPollMs, () => broker!.#recoverStorage());
      return broker;
    } catch (e) {
      if (broker) await broker.close().catch(() => {});
      else {
        if (ownsKv) kv.close();
        unlockDataDir(lock);
      }
      throw e;
    }
  }

  /** The URL this broker registered, or null before {@linkcode register}. */
  get advertisedUrl(): string | null {
    return this.#registration?.url ?? null;
  }

  /** Aborted when the broker begins shutting down: long-lived streams end on it. */
  get shutdownSignal(): AbortSignal {
    return this.#shutdown.signal;
  }

  /** Whether the broker is shutting down. */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Registers this broker in the cluster with its URL and starts heartbeating.
   *
   * @param url the advertised URL
   * @param kafka host:port of its Kafka listener, if any
   */
  async register(url: string, kafka?: string): Promise<void> {
    const first = this.#registration === null;
    this.#registration = await this.clusterStore.register({
      id: this.id,
      url,
      role: this.role,
      ...(kafka ? { kafka } : {}),
    });
    if (first) {
      this.#every(this.config.heartbeatIntervalMs, async () => {
        if (this.#registration) {
          this.#registration = await this.clusterStore.heartbeat(this.#registration);
        }
      });
      if (this.role === "broker") await this.#resignStaleLeadership();
      this.replication.enable();
      this.#knownVersion = -1n;
      await this.refresh();
      const controller = this.controller;
      if (controller) {
        await controller.tick().catch((e) => this.#log(`controller: ${e}`));
        this.#every(this.config.controllerIntervalMs, () => controller.tick());
      }
      this.#every(
        Math.max(50, Math.min(1000, Math.floor(this.config.replicaLagTimeMaxMs / 4))),
        () => Promise.resolve(this.replication.checkIsr()),
      );
    }
  }

  // ---- metadata ---------------------------------------------------------------------------

  /**
   * Refreshes the metadata cache if the KV version moved (coalesced: callers arriving while
   * a refresh runs share the next one).
   */
  refresh(): Promise<void> {
    if (this.#refreshQueued) return this.#refreshQueued;
    const previous = this.#refreshRunning ?? Promise.resolve();
    const next: Promise<void> = previous.catch(() => {}).then(async () => {
      this.#refreshQueued = null;
      this.#refreshRunning = next;
      try {
        if (this.#closed) return;
        const version = await this.topicStore.version();
        if (version === this.#knownVersion) return;
        const snapshot = await this.topicStore.snapshot();
        await this.#local.apply(snapshot.topics);
        await this.replication.sync(this.#local.all());
        this.#knownVersion = snapshot.version;
      } finally {
        if (this.#refreshRunning === next) this.#refreshRunning = null;
      }
    });
    this.#refreshQueued = next;
    return next;
  }

  /**
   * Creates a topic, placing its partitions on the live brokers.
   *
   * @param req name, partitions (default 1), replication factor (default 1), configs
   * @returns the topic's metadata
   * @throws {RillError} TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
   *   INVALID_REPLICATION_FACTOR, INVALID_CONFIG
   */
  async createTopic(
    req: { name: string; partitions?: number; replicationFactor?: number; configs?: TopicConfigs },
  ): Promise<TopicMetadata> {
    const configs = validateTopicConfigs(req.configs) as TopicConfigs;
    const replicationFactor = req.replicationFactor ?? 1;
    const meta = await this.topicStore.create({
      name: req.name,
      partitions: req.partitions ?? 1,
      replicationFactor,
      configs,
      brokerIds: await this.#eligibleBrokers(),
    });
    await this.refresh();
    return meta;
  }

  /**
   * Lists the topics (refreshing the cache first if the metadata changed).
   *
   * @returns every topic, sorted by name
   */
  async listTopics(): Promise<TopicMetadata[]> {
    await this.refresh();
    return [...this.#local.all()].map((t) => t.meta).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
  }

  /**
   * Describes a topic with the offsets of its partitions hosted here.
   *
   * @param name the topic
   * @returns metadata and offsets
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION
   */
  async describeTopic(name: string): Promise<TopicDescription> {
    await this.refresh();
    const state = await this.#topic(name);
    return {
      meta: state.meta,
      offsets: state.meta.partitions.map((p) => {
        const r = state.replicas[p.partition];
        return r
          ? {
            logStartOffset: r.logStartOffset,
            highWatermark: r.highWatermark,
            logEndOffset: r.logEndOffset,
            logFailure: r.log.failure?.replace(/\/[^\s'"]*/g, "…") ?? null,
          }
          : null;
      }),
    };
  }

  /**
   * Adds partitions to a topic and/or changes its configs (null removes one).
   *
   * @param name the topic
   * @param req the changes
   * @returns the new metadata
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS, INVALID_CONFIG
   */
  async alterTopic(
    name: string,
    req: { partitions?: number; configs?: Record<string, string | null> },
  ): Promise<TopicMetadata> {
    const configs = req.configs === undefined ? undefined : validateTopicConfigs(req.configs, true);
    const meta = await this.topicStore.alter(name, {
      partitions: req.partitions,
      configs,
      brokerIds: await this.#eligibleBrokers(),
    });
    await this.refresh();
    return meta;
  }

  /**
   * Starts moving partitions to other brokers (Kafka's partition reassignment): the new
   * replicas copy the partition from its leader, and once all of them are in the ISR the
   * controller makes them the replicas (moving leadership if needed) and the replicas left
   * behind are deleted.
   *
   * @param name the topic
   * @param moves per partition, the brokers it should live on (preferred leader first)
   * @returns the metadata once the move has started
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (a broker that is not a
   *   live broker, a repeated id, a wrong count)
   */
  async reassignPartitions(
    name: string,
    moves: readonly { partition: number; replicas: number[] }[],
  ): Promise<TopicMetadata> {
    await this.refresh();
    const state = await this.#topic(name);
    const live = new Set(
      (await this.clusterStore.brokers()).filter((b) => b.alive && b.role === "broker").map((b) =>
        b.id
      ),
    );
    const rf = state.meta.replicationFactor;
    const seen = new Set<number>();
    for (const m of moves) {
      const count = state.meta.partitions.length;
      if (m.partition >= count) throw unknownPartition(name, m.partition, count);
      if (seen.has(m.partition)) {
        throw new RillError("INVALID_REQUEST", `Partition ${m.partition} is listed twice`);
      }
      seen.add(m.partition);
      if (m.replicas.length !== rf || new Set(m.replicas).size !== rf) {
        throw new RillError(
          "INVALID_REQUEST",
          `Partition ${m.partition} needs ${rf} distinct broker ids (the replication factor), got [${m.replicas}]`,
        );
      }
      const dead = m.replicas.find((id) => !live.has(id));
      if (dead !== undefined) {
        throw new RillError(
          "INVALID_REQUEST",
          `Broker ${dead} is not a live broker that may hold replicas`,
        );
      }
    }
    for (const m of moves) {
      await this.partitionStates.update(
        name,
        m.partition,
        (cur) => startReassignment(cur, m.replicas),
      );
    }
    this.#knownVersion = -1n;
    await this.refresh();
    return (await this.#topic(name)).meta;
  }

  /**
   * Deletes a topic; its data here is removed at once, on other brokers at their next poll.
   *
   * @param name the topic
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION
   */
  async deleteTopic(name: string): Promise<void> {
    await this.topicStore.delete(name);
    await this.refresh();
  }

  /**
   * The registered brokers with their liveness.
   *
   * @returns brokers sorted by id
   */
  brokers(): Promise<BrokerStatus[]> {
    return this.clusterStore.brokers();
  }

  // ---- produce ----------------------------------------------------------------------------

  /**
   * Produces JSON-born records: picks partitions (explicit, murmur2 of the key, or one
   * round-robin partition for the request's keyless records), encodes one batch per
   * partition and appends each atomically.
   *
   * @param topic the topic
   * @param records the records, in request order
   * @param acks 0, 1 or -1 (all)
   * @returns one offset per record in request order, or null for acks=0 (appended in the
   *   background after the request was validated)
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, MESSAGE_TOO_LARGE, NOT_ENOUGH_REPLICAS,
   *   NOT_LEADER_OR_FOLLOWER, BROKER_NOT_AVAILABLE (shutting down); nothing is appended
   */
  async produceRecords(
    topic: string,
    records: readonly ProduceRecord[],
    acks: Acks,
  ): Promise<RecordOffset[] | null> {
    this.#checkAccepting();
    this.#disk?.check();
    const state = await this.#topic(topic);
    if (state.compacted) checkRecordKeys(topic, records);
    const slice = new TimeSlice();
    const groups = await assignPartitions(state, records, slice);
    const leaders = new Map<number, Replica>();
    for (const p of groups.keys()) leaders.set(p, await this.#leader(state, p, acks));
    const now = Date.now();
    const work = [...groups].map(async ([p, indexes]) => {
      const batch = await encodeRecords(state, records, indexes, now, slice);
      const leader = leaders.get(p)!;
      const result = await leader.append(batch);
      if (acks === -1) {
        await leader.waitForCommit(
          result.lastOffset,
          this.config.ackTimeoutMs,
          state.minInsyncReplicas,
        );
      }
      return { p, indexes, baseOffset: result.baseOffset };
    });
    const all = this.#track(Promise.all(work));
    if (acks === 0) {
      all.catch((e) => this.#log(`a produce with acks=0 to ${topic} failed: ${e}`));
      return null;
    }
    const out = new Array<RecordOffset>(records.length);
    for (const { p, indexes, baseOffset } of await all) {
      for (let j = 0; j < indexes.length; j++) {
        if ((j & 1023) === 0 && slice.due) await slice.yield();
        const i = indexes[j];
        out[i] = {
          partition: p,
          offset: baseOffset + j,
          timestamp: state.logAppendTime ? now : records[i].timestamp ?? now,
        };
      }
    }
    return out;
  }

  /**
   * Produces a body of raw RecordBatch v2 (as the client sends them) to one partition:
   * checked (CRC, layout, limits), then appended as is, all batches or none.
   *
   * @param topic the topic
   * @param partition the partition
   * @param body one or more concatenated batches (offsets are written into it in place)
   * @param acks 0, 1 or -1 (all)
   * @returns the offsets assigned, or null for acks=0
   * @throws {RillError} as {@linkcode produceRecords}, plus CORRUPT_MESSAGE, INVALID_RECORD,
   *   UNSUPPORTED_COMPRESSION_TYPE
   */
  async produceBatches(
    topic: string,
    partition: number,
    body: Uint8Array,
    acks: Acks,
  ): Promise<BatchAppendResult | null> {
    this.#checkAccepting();
    this.#disk?.check();
    const state = await this.#topic(topic);
    const count = state.meta.partitions.length;
    if (partition >= count) throw unknownPartition(topic, partition, count);
    const leader = await this.#leader(state, partition, acks);
    const checked = checkProducedBatches(body, state.maxMessageBytes);
    if (state.compacted) checkBatchKeys(topic, checked.batches);
    let logAppendTime = -1;
    if (state.logAppendTime) {
      logAppendTime = Date.now();
      for (const b of checked.batches) stampLogAppendTime(b, logAppendTime);
    }
    const header = checked.batches.length === 1 ? readBatchHeader(checked.batches[0]) : null;
    const append = this.#track(
      header !== null && header.producerId >= 0 && header.baseSequence >= 0
        ? this.#appendInSequence(leader, body, topic, partition, header)
        : leader.append(body),
    );
    if (acks === 0) {
      append.catch((e) => this.#log(`a produce with acks=0 to ${topic} failed: ${e}`));
      return null;
    }
    const result = await append;
    if (acks === -1) {
      await leader.waitForCommit(
        result.lastOffset,
        this.config.ackTimeoutMs,
        state.minInsyncReplicas,
      );
    }
    return {
      partition,
      baseOffset: result.baseOffset,
      lastOffset: result.lastOffset,
      recordCount: checked.recordCount,
      logAppendTime,
    };
  }

  /**
   * Appends an idempotent batch; one that arrived ahead of its predecessor (its sequence is
   * past the expected one, same epoch) is held until another batch of its producer lands
   * on the partition, or at most {@linkcode SEQUENCE_HOLD_MS}, and then checked again
   * (see sequence_holds.ts). Other appends to the partition go on meanwhile.
   */
  async #appendInSequence(
    leader: Replica,
    body: Uint8Array,
    topic: string,
    partition: number,
    batch: { producerId: number; producerEpoch: number; baseSequence: number },
  ): Promise<AppendResult> {
    const key = SequenceHolds.key(topic, partition, batch.producerId);
    const deadline = Date.now() + SEQUENCE_HOLD_MS;
    for (;;) {
      try {
        const result = await leader.append(body);
        if (!result.duplicate) this.#holds.appended(key);
        return result;
      } catch (e) {
        const left = deadline - Date.now();
        if (left <= 0 || this.#draining || !isAheadOfSequence(e, batch.baseSequence)) throw e;
        // A batch of the producer may have landed since the check: if so, try again now.
        const expected = expectedSequence(
          leader.log.producerState(batch.producerId),
          batch.producerEpoch,
        );
        if (expected !== (e as RillError).details.expectedSequence) continue;
        const woken = this.#holds.wait(key, left);
        if (woken === null) throw e;
        await woken;
      }
    }
  }

  // ---- fetch ------------------------------------------------------------------------------

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
    if (opts.maxWaitMs <= 0 || result.bytes.length >= opts.minBytes || this.#draining) {
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
   * Fetches from many partitions with one wait (fetch_session.ts): HTTP multi-partition
   * fetch, WebSocket push, the Kafka listener's Fetch and followers all read through it.
   *
   * @param req partitions, wait, sizes, optional session and follower identity
   * @returns per-partition results and errors; call `release()` once done with the bytes
   * @throws {RillError} INVALID_REQUEST, FETCH_SESSION_ID_NOT_FOUND,
   *   INVALID_FETCH_SESSION_EPOCH (partition errors are in the results)
   */
  fetchMany(req: FetchManyRequest): Promise<FetchManyResult> {
    return this.fetchSessions.fetch(req);
  }

  /**
   * The hosted replica of a partition, for reading.
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the replica
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER
   */
  async replica(topic: string, partition: number): Promise<Replica> {
    const state = await this.#topic(topic);
    const count = state.meta.partitions.length;
    if (partition >= count) throw unknownPartition(topic, partition, count);
    const replica = state.replicas[partition];
    if (!replica) throw await this.#notLeader(state, partition);
    return replica;
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
    const replica = await this.replica(topic, partition);
    if (replica.role === "follower") {
      throw await this.#notLeader(await this.#topic(topic), partition);
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
    const replica = await this.#leaderReplica(topic, partition, req.leaderEpoch);
    if (req.offset > replica.logEndOffset) {
      // A follower ahead of its leader must truncate first; it does not count as caught up.
      throw new RillError(
        "OFFSET_OUT_OF_RANGE",
        `Fetch offset ${req.offset} of ${replica.name} is past the leader's log end offset ${replica.logEndOffset}`,
        { logStartOffset: replica.logStartOffset, logEndOffset: replica.logEndOffset },
      );
    }
    replica.recordFollowerFetch(req.replicaId, req.offset);
    let result = await replica.readForFollower(req.offset, opts.maxBytes, opts.alloc);
    // Only data wakes a follower: the high watermark reaches it with the next answer (as in
    // Kafka), so followers do not ping-pong empty fetches after every advance.
    if (result.bytes.length > 0 || opts.maxWaitMs <= 0 || this.#draining) return result;
    await replica.replicaWaiters.wait(1, opts.maxWaitMs, opts.signal);
    if (replica.closing || replica.role !== "leader") return result;
    result = await replica.readForFollower(req.offset, opts.maxBytes, opts.alloc);
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
    const replica = await this.#leaderReplica(topic, partition, -1);
    return { ...replica.epochEndOffset(epoch), logEndOffset: replica.logEndOffset };
  }

  async #leaderReplica(topic: string, partition: number, epoch: number): Promise<Replica> {
    const state = await this.#topic(topic);
    const count = state.meta.partitions.length;
    if (partition >= count) throw unknownPartition(topic, partition, count);
    const replica = state.replicas[partition];
    if (
      !replica || replica.role !== "leader" || state.meta.partitions[partition].leader !== this.id
    ) {
      throw await this.#notLeader(state, partition);
    }
    if (epoch >= 0 && epoch !== replica.leaderEpoch) {
      // A follower ahead of us means our metadata is stale: look again.
      if (epoch > replica.leaderEpoch) this.refresh().catch(() => {});
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

  // ---- what consumer groups need ----------------------------------------------------------

  /**
   * The partition count of a topic.
   *
   * @param topic the topic
   * @returns the count, or null when the topic does not exist
   */
  async partitionCount(topic: string): Promise<number | null> {
    try {
      return (await this.#topic(topic)).meta.partitions.length;
    } catch (e) {
      if (e instanceof RillError && e.code === "UNKNOWN_TOPIC_OR_PARTITION") return null;
      throw e;
    }
  }

  /**
   * The log start offset of a partition.
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the offset
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER
   */
  async logStartOffset(topic: string, partition: number): Promise<number> {
    return (await this.replica(topic, partition)).logStartOffset;
  }

  /**
   * The log end offset a consumer sees: the high watermark.
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the offset
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER
   */
  async logEndOffset(topic: string, partition: number): Promise<number> {
    return (await this.replica(topic, partition)).highWatermark;
  }

  /**
   * The first offset whose timestamp is at or after `timestamp`.
   *
   * @param topic the topic
   * @param partition the partition
   * @param timestamp ms since the epoch
   * @returns the offset, or the high watermark when no record is that recent
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER
   */
  offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    return this.listOffset(topic, partition, { timestamp });
  }

  // ---- background work and lifecycle ------------------------------------------------------

  /**
   * Applies each hosted log's retention settings once (the background loop calls this
   * every `retentionCheckIntervalMs`).
   *
   * @returns how many segments were deleted
   */
  async applyRetention(): Promise<number> {
    let deleted = 0;
    for (const r of [...this.#local.replicas()]) {
      try {
        deleted += await r.applyRetention();
      } catch (e) {
        if (!r.closing) this.#log(`retention of ${r.name} failed: ${e}`);
      }
    }
    return deleted;
  }

  /**
   * Runs one log cleaner pass (`log_cleaner.ts`) over each hosted log whose topic has
   * `cleanup.policy` with `compact`, one log after another, each bounded to
   * `logCleanerMaxDirtyBytes` and to its high watermark (the background loop calls this
   * every `logCleanerBackoffMs`).
   *
   * @returns how many records the pass removed
   */
  async cleanLogs(): Promise<number> {
    let removed = 0;
    for (const r of [...this.#local.replicas()]) {
      try {
        removed += (await r.cleanLog(this.config.logCleanerMaxDirtyBytes))?.recordsRemoved ?? 0;
      } catch (e) {
        if (!r.closing) this.#log(`compaction of ${r.name} failed: ${e}`);
      }
    }
    return removed;
  }

  /**
   * Starts shutting down: new produce requests are refused (BROKER_NOT_AVAILABLE), long
   * polls answer with what they have, and SSE streams end.
   */
  beginShutdown(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#shutdown.abort();
    for (const r of this.#local.replicas()) {
      r.waiters.wakeAll();
      r.replicaWaiters.wakeAll();
    }
  }

  /**
   * Stops the broker: background loops end, in-flight appends finish, every log is closed
   * (writing its clean-shutdown marker), the registration is marked stopped, and an owned
   * KV is closed.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.beginShutdown();
      for (const t of this.#timers) clearTimeout(t);
      this.#timers.clear();
      await Promise.allSettled([...this.#loopRuns]);
      await Promise.allSettled([this.#refreshRunning, this.#refreshQueued]);
      await this.replication.close().catch((e) => this.#log(`stopping replication: ${e}`));
      await this.controller?.resign().catch(() => {});
      await Promise.allSettled([...this.#inflight]);
      await this.#local.closeAll();
      if (this.#registration) {
        await this.clusterStore.deregister(this.#registration).catch((e) =>
          this.#log(`could not mark the registration stopped: ${e}`)
        );
      }
      this.#disk?.close();
      if (this.#ownsKv) this.kv.close();
      unlockDataDir(this.#lock);
    })();
    return this.#closed;
  }

  /** Same as {@linkcode close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Storage upkeep, every metadata poll: writes the KV reserve again once there is room, and
   * — when the disk is above the free-space floor — reopens through recovery the logs that
   * failed on an I/O error such as ENOSPC (local_topics.ts `reopenFailed`), then re-applies
   * the metadata so they get their roles back.
   */
  async #recoverStorage(): Promise<void> {
    await this.#disk?.maintain();
    let failed = false;
    for (const r of this.#local.replicas()) if (r.log.failure !== null) failed = true;
    if (!failed) return;
    // Space is back when the disk is above the floor (and has a few MiB even without one).
    const free = this.#disk?.floor.free(true) ?? null;
    if (free !== null && free < Math.max(this.config.minFreeBytes, REOPEN_MIN_FREE_BYTES)) return;
    const reopened = await this.#local.reopenFailed();
    if (reopened.length > 0) {
      this.#knownVersion = -1n;
      await this.refresh();
    }
  }

  #every(intervalMs: number, fn: () => Promise<unknown>): void {
    const schedule = () => {
      if (this.#closed) return;
      const t = setTimeout(() => {
        this.#timers.delete(t);
        const run = fn().then(
          () => {},
          (e) => this.#log(`background task failed: ${e instanceof Error ? e.message : e}`),
        ).finally(() => {
          this.#loopRuns.delete(run);
          schedule();
        });
        this.#loopRuns.add(run);
      }, intervalMs);
      this.#timers.add(t);
    };
    schedule();
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    const done = () => this.#inflight.delete(p);
    p.then(done, done);
    return p;
  }

  #checkAccepting(): void {
    if (this.#draining) {
      throw new RillError("BROKER_NOT_AVAILABLE", `Broker ${this.id} is shutting down`);
    }
  }

  async #topic(name: string): Promise<TopicState> {
    let state = this.#local.get(name);
    if (state) return state;
    await this.refresh();
    state = this.#local.get(name);
    if (!state) {
      throw new RillError("UNKNOWN_TOPIC_OR_PARTITION", `Topic "${name}" does not exist`);
    }
    return state;
  }

  async #leader(state: TopicState, partition: number, acks: Acks): Promise<Replica> {
    const p = state.meta.partitions[partition];
    const replica = state.replicas[partition];
    if (!replica || p.leader !== this.id || replica.role !== "leader") {
      throw await this.#notLeader(state, partition);
    }
    const isr = replica.isr.length;
    if (acks === -1 && isr < state.minInsyncReplicas) {
      throw new RillError(
        "NOT_ENOUGH_REPLICAS",
        `Partition ${replica.name} has ${isr} in-sync replica(s), fewer than min.insync.replicas (${state.minInsyncReplicas})`,
        { isr: [...replica.isr], minInsyncReplicas: state.minInsyncReplicas },
      );
    }
    return replica;
  }

  async #notLeader(state: TopicState, partition: number): Promise<RillError> {
    const leaderId = state.meta.partitions[partition].leader;
    const leader = (await this.clusterStore.brokers()).find((b) => b.id === leaderId);
    if (leaderId < 0) {
      return new RillError(
        "LEADER_NOT_AVAILABLE",
        `Partition ${state.meta.name}-${partition} has no leader: no in-sync replica is alive`,
        { leaderId, leaderUrl: null },
      );
    }
    return new RillError(
      "NOT_LEADER_OR_FOLLOWER",
      `Broker ${this.id} does not lead partition ${state.meta.name}-${partition}; its leader is broker ${leaderId}${
        leader ? ` at ${leader.url}` : ""
      }`,
      { leaderId, leaderUrl: leader?.alive ? leader.url : null },
    );
  }

  /**
   * After a restart, hands over the leadership this broker still holds in KV (its
   * followers' positions and the high watermark died with the old process): another live
   * ISR member takes it with a new epoch, or this broker keeps it with a new epoch.
   */
  async #resignStaleLeadership(): Promise<void> {
    const alive = new Set(
      (await this.clusterStore.brokers()).filter((b) => b.alive && b.role === "broker").map((b) =>
        b.id
      ),
    );
    alive.add(this.id);
    let changed = 0;
    for (const t of (await this.topicStore.snapshot()).topics) {
      if (t.replicationFactor < 2) continue;
      for (const p of t.partitions) {
        if (p.leader !== this.id) continue;
        const next = await this.partitionStates.update(
          t.name,
          p.partition,
          (cur) => resignLeader(cur, this.id, alive),
        );
        if (next) changed++;
      }
    }
    if (changed > 0) {
      this.#log(`handed over or renewed the leadership of ${changed} partition(s) after a restart`);
    }
  }

  async #eligibleBrokers(): Promise<number[]> {
    const ids = (await this.clusterStore.brokers())
      .filter((b) => b.alive && b.role === "broker")
      .map((b) => b.id);
    if (this.role === "broker" && !ids.includes(this.id)) ids.push(this.id);
    return ids;
  }
}
