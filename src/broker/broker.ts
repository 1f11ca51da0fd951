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
import { type BrokerRole, type BrokerStatus, ClusterStore } from "../coordination/cluster.ts";
import type { TopicConfigs } from "../coordination/topic_configs.ts";
import { type TopicMetadata, TopicStore } from "../coordination/topics.ts";
import { LeaseStore } from "../coordination/leases.ts";
import { KvHealth, watchKvHealth } from "../coordination/kv_health.ts";
import { GroupLiveness } from "../coordination/group_liveness.ts";
import { GroupWritesBehind } from "../coordination/group_writes_behind.ts";
import { PartitionStateStore } from "../coordination/partition_states.ts";
import { Controller } from "./controller.ts";
import { Membership } from "./membership.ts";
import { ReplicationManager } from "./replication.ts";
import { RillError } from "../protocol/errors.ts";
import { ReadBufferPool } from "./read_buffers.ts";
import { installNativeCodecs } from "./native_codecs.ts";
import type { Acks, BatchAppendResult, ProduceRecord, RecordOffset } from "./produce.ts";
import { type BrokerConfig, type BrokerOptions, DEFAULT_BROKER_CONFIG } from "./config.ts";
import { checkMetaProperties, join, lockDataDir, unlockDataDir } from "./data_dir.ts";
import { DiskGuard } from "./disk_space.ts";
import { LogUpkeep } from "./log_upkeep.ts";
import { LocalTopics } from "./local_topics.ts";
import type { FetchResult, Replica } from "./replica.ts";
import { BackgroundTasks } from "./background_tasks.ts";
import { PartitionLookup } from "./partition_lookup.ts";
import { TopicAdmin, type TopicDescription } from "./broker_topics.ts";
import { ProducePath } from "./broker_produce.ts";
import { ClusterAdmin } from "./cluster_admin.ts";
import { MoveStore } from "../coordination/moves.ts";
import { LeaderFigures } from "./leader_figures.ts";
import { type FetchOptions, FetchPath, type OffsetSpec } from "./broker_fetch.ts";
import { type FetchManyRequest, type FetchManyResult, FetchSessions } from "./fetch_session.ts";
import { instrumentKv } from "../coordination/kv_instrument.ts";
import { countBatchRecords, Metrics } from "../observability/metrics.ts";
import { type LogFields, Logger } from "../observability/log.ts";
import { installBrokerGauges } from "./broker_metrics.ts";
import { OffsetCommitLog } from "./offset_commit_log.ts";
import { MetadataRefresh } from "./metadata_refresh.ts";

export type { Acks, BatchAppendResult, ProduceRecord, RecordOffset } from "./produce.ts";
export type { FetchOptions, OffsetSpec } from "./broker_fetch.ts";
export type { TopicDescription } from "./broker_topics.ts";
export type { BrokerOptions } from "./config.ts";

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
  /** the KV shared with the other brokers of the cluster (every call timed by `kvHealth`) */
  readonly kv: Deno.Kv;
  /** whether the KV answers (kv_health.ts): shown by /healthz, logged once per change */
  readonly kvHealth: KvHealth;
  /** liveness of the group members this broker vouches for, and group snapshots */
  readonly groupLiveness: GroupLiveness;
  /** Kafka offset commits: answered once logged here, copied into KV behind the answer */
  readonly offsetCommits: OffsetCommitLog;
  /** group state the Kafka coordinator records in KV behind its answers (HTTP reads wait) */
  readonly groupWritesBehind = new GroupWritesBehind();
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
  /** rebalance, decommission, preferred leader election and cluster status */
  readonly clusterAdmin: ClusterAdmin;
  /** this broker's rack, if declared */
  readonly rack: string | undefined;
  readonly #ownsKv: boolean;
  readonly #lock: Deno.FsFile;
  readonly #local: LocalTopics;
  readonly #log: (line: string, fields?: LogFields) => void;
  /** the Prometheus metrics (`GET /metrics`) */
  readonly metrics: Metrics;
  /** the structured logger */
  readonly logger: Logger;
  readonly #shutdown = new AbortController();
  readonly #membership: Membership;
  /** the topic metadata cache (the controller decides on its snapshot) */
  readonly #metadata: MetadataRefresh;
  readonly #tasks: BackgroundTasks;
  readonly #lookup: PartitionLookup;
  readonly #admin: TopicAdmin;
  /** the free-space floor and the KV reserve (disk_space.ts); null until open() sets it */
  #disk: DiskGuard | null = null;
  readonly #produce: ProducePath;
  readonly #fetch: FetchPath;
  readonly #figures: LeaderFigures;
  readonly #upkeep: LogUpkeep;
  /** Read buffers for fetch answers, reused once each answer is made (read_buffers.ts). */
  readonly readBuffers: ReadBufferPool = new ReadBufferPool();
  /** The fetch-session core (fetch_session.ts): every multi-partition fetch goes through it. */
  readonly fetchSessions: FetchSessions;
  #draining = false;
  #closed: Promise<void> | null = null;

  private constructor(
    opts: BrokerOptions,
    kv: Deno.Kv,
    ownsKv: boolean,
    clusterId: string,
    config: BrokerConfig,
    lock: Deno.FsFile,
  ) {
    installNativeCodecs();
    this.#lock = lock;
    this.fetchSessions = new FetchSessions({
      readableReplica: (topic, partition) => this.readableReplica(topic, partition),
      cachedReplica: (topic, partition) => this.#lookup.cached(topic)?.replicas[partition],
      leaderReplica: (topic, partition, epoch) =>
        this.#fetch.leaderReplica(topic, partition, epoch),
      draining: () => this.#draining,
      pool: this.readBuffers,
      now: opts.now,
      fetched: (req, partitions) => {
        for (const p of partitions) {
          if (p.bytes.length === 0) continue;
          if (req.replicaId !== undefined || req.observerId !== undefined) {
            this.metrics.replicationOutBytes.inc({ topic: p.topic }, p.bytes.length);
          } else this.metrics.fetched(p.topic, p.bytes.length, countBatchRecords(p.bytes));
        }
      },
    }, { maxSessions: config.fetchSessionCacheSlots });
    this.id = opts.id;
    this.role = opts.role ?? "broker";
    this.config = config;
    this.dataDir = opts.dataDir;
    this.#ownsKv = ownsKv;
    this.clusterId = clusterId;
    this.metrics = opts.metrics ?? new Metrics({ process: false });
    this.logger = opts.logger ?? new Logger({ brokerId: this.id, role: this.role });
    this.#log = opts.log ??
      ((line, fields) =>
        this.logger.log(/fail|could not|cannot/i.test(line) ? "warn" : "info", line, fields));
    this.kvHealth = new KvHealth({
      onChange: (s) =>
        this.#log(
          s.reachable
            ? "the KV answers again: coordination resumes"
            : `the KV has not answered for ${
              Math.round(s.oldestPendingMs / 1000)
            } s: produce and fetch go on, leader changes, group changes and commits wait for it`,
        ),
    });
    kv = watchKvHealth(kv, this.kvHealth);
    this.kv = kv;
    this.offsetCommits = OffsetCommitLog.open({ dataDir: opts.dataDir, kv, log: this.#log });
    this.#tasks = new BackgroundTasks(this.#log);
    this.rack = opts.rack;
    this.topicStore = new TopicStore(kv);
    this.clusterStore = new ClusterStore(kv, config.sessionTimeoutMs, opts.now);
    this.partitionStates = new PartitionStateStore(kv);
    this.leaseStore = new LeaseStore(kv, undefined, opts.now);
    this.groupLiveness = new GroupLiveness({
      brokerId: opts.id,
      incarnation: () => this.#membership.registration?.incarnation ?? null,
      registrations: () => this.clusterStore.brokers(),
      brokerSessionTimeoutMs: config.sessionTimeoutMs,
      now: opts.now,
      reachableForMs: () => this.kvHealth.reachableForMs(),
    });
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
      onCopied: (topic, bytes) => this.metrics.replicationInBytes.inc({ topic }, bytes),
      onIsrChange: (shrunk) => (shrunk ? this.metrics.isrShrinks : this.metrics.isrExpands).inc(),
    });
    this.#metadata = new MetadataRefresh({
      kv,
      topics: this.topicStore,
      observeGroups: (versionstamp) => this.groupLiveness.observe(versionstamp),
      apply: async (topics) => {
        await this.#local.apply(topics);
        await this.replication.sync(this.#local.all());
      },
      stopped: () => this.#closed !== null,
    });
    this.#lookup = new PartitionLookup({
      brokerId: opts.id,
      local: this.#local,
      cluster: this.clusterStore,
      refresh: () => this.refresh(),
    });
    this.#admin = new TopicAdmin({
      brokerId: opts.id,
      role: this.role,
      topics: this.topicStore,
      cluster: this.clusterStore,
      states: this.partitionStates,
      local: this.#local,
      lookup: this.#lookup,
      refresh: (force) => {
        if (force) this.#metadata.forget();
        return this.refresh();
      },
      decommissioned: () => this.clusterAdmin.decommissioned(),
    });
    this.#produce = new ProducePath({
      brokerId: opts.id,
      config,
      lookup: this.#lookup,
      draining: () => this.#draining,
      track: (p) => this.#tasks.track(p),
      log: this.#log,
      checkDisk: () => this.#disk?.check(),
      onAppend: (topic, bytes, records) => this.metrics.produced(topic, bytes, records),
    });
    this.#fetch = new FetchPath({
      brokerId: opts.id,
      lookup: this.#lookup,
      draining: () => this.#draining,
      refresh: () => this.refresh(),
      sendThrottle: (r, id) => this.replication.sendThrottle(r, id),
    });
    this.#upkeep = new LogUpkeep({
      local: this.#local,
      disk: () => this.#disk,
      config,
      reapplyMetadata: () => {
        this.#metadata.forget();
        return this.refresh();
      },
      log: this.#log,
    });
    this.#figures = new LeaderFigures({
      brokerId: opts.id,
      kv,
      local: this.#local,
      lookup: this.#lookup,
    });
    const moves = new MoveStore(kv);
    this.clusterAdmin = new ClusterAdmin({
      kv,
      cluster: this.clusterStore,
      topics: this.topicStore,
      states: this.partitionStates,
      moves,
      now: opts.now,
    });
    this.controller = this.role === "broker"
      ? new Controller({
        moves,
        settings: config,
        rebalance: async () => (await this.clusterAdmin.rebalance(true)).moves.length,
        brokerId: opts.id,
        lease: this.leaseStore,
        cluster: this.clusterStore,
        topics: this.topicStore,
        states: this.partitionStates,
        leaseTtlMs: config.sessionTimeoutMs,
        log: this.#log,
        metadata: async () => this.#metadata.snapshot ?? await this.topicStore.snapshot(),
      })
      : null;
    this.#membership = new Membership({
      id: opts.id,
      role: this.role,
      rack: this.rack,
      config,
      cluster: this.clusterStore,
      topics: this.topicStore,
      states: this.partitionStates,
      tasks: this.#tasks,
      figures: this.#figures,
      replication: this.replication,
      controller: this.controller,
      refreshNow: () => {
        this.#metadata.forget();
        return this.refresh();
      },
      log: this.#log,
    });
    installBrokerGauges(this.metrics, {
      id: this.id,
      role: this.role,
      clusterId,
      kv,
      topics: () => this.#local.all(),
      controller: () => this.controller?.active ?? false,
      now: opts.now ?? Date.now,
      kvReachable: () => this.kvHealth.status().reachable,
      kvOldestPendingMs: () => this.kvHealth.status().oldestPendingMs,
    });
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
    // Every KV call of the broker is counted here (kv_instrument.ts).
    opts = { ...opts, metrics: opts.metrics ?? new Metrics({ process: false }) };
    kv = instrumentKv(kv, opts.metrics!.kvObserver);
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
      await broker.offsetCommits.recover();
      let clean = 0, recovered = 0;
      for (const r of broker.#local.replicas()) {
        if (r.log.recovery.clean) clean++;
        else recovered++;
      }
      broker.#log(
        `opened ${clean + recovered} partition log(s): ${clean} clean, ${recovered} recovered`,
      );
      if (opts.advertisedUrl !== undefined) await broker.register(opts.advertisedUrl);
      broker.#tasks.every(config.metadataPollMs, () => broker!.refresh());
      // Members this broker vouches for that went silent: in memory, KV only to remove them.
      broker.#tasks.every(
        Math.min(500, config.metadataPollMs),
        () => broker!.groupLiveness.sweep(),
      );
      broker.#tasks.every(config.retentionCheckIntervalMs, () => broker!.applyRetention());
      broker.#tasks.every(config.logCleanerBackoffMs, () => broker!.cleanLogs());
      broker.#tasks.every(config.metadataPollMs, () => broker!.#upkeep.recoverStorage());
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
    return this.#membership.registration?.url ?? null;
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
   * Registers this broker in the cluster with its URL and starts heartbeating (membership.ts).
   *
   * @param url the advertised URL
   * @param kafka host:port of its Kafka listener, if any
   */
  register(url: string, kafka?: string): Promise<void> {
    return this.#membership.register(url, kafka);
  }

  // ---- metadata ---------------------------------------------------------------------------

  /**
   * Refreshes the metadata cache if the KV version moved (coalesced: callers arriving while
   * a refresh runs share the next one).
   */
  refresh(): Promise<void> {
    return this.#metadata.refresh();
  }

  /** Creates a topic (see {@linkcode TopicAdmin.createTopic}). */
  createTopic(
    req: { name: string; partitions?: number; replicationFactor?: number; configs?: TopicConfigs },
  ): Promise<TopicMetadata> {
    return this.#admin.createTopic(req);
  }

  /** Lists the topics, sorted by name (see {@linkcode TopicAdmin.listTopics}). */
  listTopics(): Promise<TopicMetadata[]> {
    return this.#admin.listTopics();
  }

  /** Describes a topic with the offsets of the partitions hosted here (see {@linkcode TopicAdmin.describeTopic}). */
  describeTopic(name: string): Promise<TopicDescription> {
    return this.#admin.describeTopic(name);
  }

  /** Adds partitions and/or changes configs (see {@linkcode TopicAdmin.alterTopic}). */
  alterTopic(
    name: string,
    req: { partitions?: number; configs?: Record<string, string | null> },
  ): Promise<TopicMetadata> {
    return this.#admin.alterTopic(name, req);
  }

  /** Starts moving partitions to other brokers (see {@linkcode TopicAdmin.reassignPartitions}). */
  reassignPartitions(
    name: string,
    moves: readonly { partition: number; replicas: number[] }[],
  ): Promise<TopicMetadata> {
    return this.#admin.reassignPartitions(name, moves);
  }

  /** Deletes a topic (see {@linkcode TopicAdmin.deleteTopic}). */
  deleteTopic(name: string): Promise<void> {
    return this.#admin.deleteTopic(name);
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

  /** Produces JSON-born records (see {@linkcode ProducePath.produceRecords}). */
  produceRecords(
    topic: string,
    records: readonly ProduceRecord[],
    acks: Acks,
  ): Promise<RecordOffset[] | null> {
    return this.#produce.produceRecords(topic, records, acks);
  }

  /** Produces raw RecordBatch v2 to one partition (see {@linkcode ProducePath.produceBatches}). */
  produceBatches(
    topic: string,
    partition: number,
    body: Uint8Array,
    acks: Acks,
  ): Promise<BatchAppendResult | null> {
    return this.#produce.produceBatches(topic, partition, body, acks);
  }

  /** {@linkcode produceBatches}, answered at once when it could be (ProducePath.produceBatchesNow). */
  produceBatchesNow(
    topic: string,
    partition: number,
    body: Uint8Array,
    acks: Acks,
  ): BatchAppendResult | null | Promise<BatchAppendResult | null> {
    return this.#produce.produceBatchesNow(topic, partition, body, acks);
  }

  // ---- fetch ------------------------------------------------------------------------------

  /** Fetches committed batches, long-polling (see {@linkcode FetchPath.fetch}). */
  fetch(
    topic: string,
    partition: number,
    offset: number,
    opts: FetchOptions,
  ): Promise<FetchResult> {
    return this.#fetch.fetch(topic, partition, offset, opts).then((result) => {
      this.metrics.fetched(topic, result.bytes.length, countBatchRecords(result.bytes));
      return result;
    });
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
    // Counted into the metrics by the session core (FetchSource.fetched): no turn here
    // between the read and the answer.
    return this.fetchSessions.fetch(req);
  }

  /** The hosted replica of a partition, for reading (see {@linkcode PartitionLookup.replica}). */
  replica(topic: string, partition: number): Promise<Replica> {
    return this.#lookup.replica(topic, partition);
  }

  /** The replica a consumer may read (see {@linkcode FetchPath.readableReplica}). */
  readableReplica(topic: string, partition: number): Promise<Replica> {
    return this.#fetch.readableReplica(topic, partition);
  }

  /** A follower's fetch (see {@linkcode FetchPath.replicaFetch}). */
  replicaFetch(
    topic: string,
    partition: number,
    req: { replicaId: number; offset: number; leaderEpoch: number },
    opts: FetchOptions,
  ): Promise<FetchResult> {
    return this.#fetch.replicaFetch(topic, partition, req, opts).then((result) => {
      if (result.bytes.length > 0) {
        this.metrics.replicationOutBytes.inc({ topic }, result.bytes.length);
      }
      return result;
    });
  }

  /** Kafka's OffsetsForLeaderEpoch, answered by the leader (see {@linkcode FetchPath.epochEndOffset}). */
  epochEndOffset(
    topic: string,
    partition: number,
    epoch: number,
  ): Promise<{ epoch: number; endOffset: number; logEndOffset: number }> {
    return this.#fetch.epochEndOffset(topic, partition, epoch);
  }

  /** Resolves an offset spec (see {@linkcode FetchPath.listOffset}). */
  listOffset(topic: string, partition: number, at: OffsetSpec): Promise<number> {
    return this.#fetch.listOffset(topic, partition, at);
  }

  // ---- what consumer groups need ----------------------------------------------------------

  /**
   * The partition count of a topic.
   *
   * @param topic the topic
   * @returns the count, or null when the topic does not exist
   */
  async partitionCount(topic: string): Promise<number | null> {
    return (await this.#topicMeta(topic))?.partitions.length ?? null;
  }

  /**
   * The id of a topic (the UUID it got at creation, kept with its metadata), from the
   * metadata cache (refreshed once on a miss).
   *
   * @param topic the topic
   * @returns the id, or null when the topic does not exist
   */
  async topicId(topic: string): Promise<string | null> {
    return (await this.#topicMeta(topic))?.topicId ?? null;
  }

  /** A topic's cached metadata (refreshed once on a miss), or null when it does not exist. */
  async #topicMeta(topic: string): Promise<TopicMetadata | null> {
    try {
      return (await this.#lookup.topic(topic)).meta;
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

  /**
   * A partition's log end offset as consumers see it, for lag, from any broker (see
   * {@linkcode LeaderFigures.lagEndOffset}).
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the offset and its age in ms (0: live), or null when nobody reported it
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION
   */
  lagEndOffset(
    topic: string,
    partition: number,
  ): Promise<{ offset: number; ageMs: number } | null> {
    return this.#figures.lagEndOffset(topic, partition);
  }

  // ---- background work and lifecycle ------------------------------------------------------

  /**
   * Applies each hosted log's retention settings once (the background loop calls this
   * every `retentionCheckIntervalMs`).
   *
   * @returns how many segments were deleted
   */
  applyRetention(): Promise<number> {
    return this.#upkeep.applyRetention();
  }

  /**
   * Runs one log cleaner pass over each hosted compacted log (see
   * {@linkcode LogUpkeep.cleanLogs}; the background loop calls this every
   * `logCleanerBackoffMs`).
   *
   * @returns how many records the pass removed
   */
  cleanLogs(): Promise<number> {
    return this.#upkeep.cleanLogs();
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
      await this.#tasks.stop();
      await this.#metadata.settled();
      await this.replication.close().catch((e) => this.#log(`stopping replication: ${e}`));
      await this.controller?.resign().catch(() => {});
      await this.#tasks.settleInflight();
      await this.offsetCommits.close();
      await this.#local.closeAll();
      await this.#membership.deregister();
      this.#disk?.close();
      this.kvHealth.close();
      if (this.#ownsKv) this.kv.close();
      unlockDataDir(this.#lock);
    })();
    return this.#closed;
  }

  /** Same as {@linkcode close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
