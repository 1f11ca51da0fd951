/**
 * A broker's Prometheus metrics: one {@linkcode Metrics} per broker, holding a prom-client
 * registry (npm `prom-client`) and every metric the broker and its skins count. `GET /metrics`
 * renders it in the Prometheus text format (`Metrics.render`).
 *
 * Rules (docs/metrics.md has the table; /work/METRICS_HOWTO.md-style notes are in
 * docs/metrics.md's "Adding a metric"):
 * - names start with `rill_`; counters end in `_total`, durations are `_seconds`, sizes
 *   `_bytes` ({@linkcode checkMetricName} refuses others at registration);
 * - the hot path counts once per request or batch, never per record: a record count is
 *   added as one number;
 * - what the broker already knows (offsets, sizes, ISR, lag) is read at scrape time by a
 *   gauge's `collect` callback, never kept up to date on the hot path;
 * - series that grow with the partitions (per topic, per partition, per follower, per group)
 *   are {@linkcode Metrics.table}s: rendered straight to text at scrape time, without
 *   prom-client's per-series label objects, hashing and formatting, which made a scrape of a
 *   broker with 1,000 partitions cost about 30 ms of CPU.
 *
 * Subsystems add their own metrics through {@linkcode Metrics.counter},
 * {@linkcode Metrics.gauge} and {@linkcode Metrics.histogram} on the broker's instance
 * (`broker.metrics`).
 *
 * @module
 */
import client from "prom-client";
import { EventLoopDelay } from "./event_loop.ts";
import { labelText, renderTable, type TableSpec } from "./metrics_text.ts";
import { FastCounter, FastHistogram } from "./fast_series.ts";

export { escapeLabelValue, labelText, type TableSpec } from "./metrics_text.ts";
export type { CounterSeries, HistogramSeries } from "./fast_series.ts";

/** Latency buckets (seconds) for request histograms: 0.5 ms to 30 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

/** Latency buckets (seconds) for KV operations: 0.1 ms to 5 s. */
export const KV_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  1,
  5,
];

/**
 * Checks a metric name against Rill's conventions.
 *
 * @param name the metric name
 * @param type the metric type
 * @throws {Error} when the name lacks the `rill_` prefix, a counter lacks `_total`, or a
 *   name is not a valid Prometheus name
 * @example
 * ```ts
 * checkMetricName("rill_kafka_requests_total", "counter"); // fine
 * ```
 */
export function checkMetricName(name: string, type: "counter" | "gauge" | "histogram"): void {
  if (!/^rill_[a-z0-9_]+$/.test(name)) {
    throw new Error(`Metric "${name}" must match rill_[a-z0-9_]+`);
  }
  if (type === "counter" && !name.endsWith("_total")) {
    throw new Error(`Counter "${name}" must end in _total`);
  }
  if (type !== "counter" && name.endsWith("_total")) {
    throw new Error(`Only counters end in _total, not the ${type} "${name}"`);
  }
}

/** What a metric is declared with (prom-client's configuration, minus the registry). */
export interface MetricSpec<L extends string> {
  /** the name (`rill_…`) */
  name: string;
  /** one sentence: what it counts or measures, and its unit */
  help: string;
  /** the label names */
  labelNames?: readonly L[];
}

/** A gauge read at scrape time. */
export interface LazyGaugeSpec<L extends string> extends MetricSpec<L> {
  /**
   * Called at each scrape: set the gauge's values (`gauge.set(labels, v)`); the gauge was
   * reset just before, so series that are gone disappear.
   */
  collect: (gauge: client.Gauge<L>) => void | Promise<void>;
}

/** A topic's traffic sums since the broker started. */
interface TopicTraffic {
  inBytes: number;
  inRecords: number;
  outBytes: number;
  outRecords: number;
}

/** The labels of per-request counts. */
export type Api = "http" | "kafka" | "ws";

/**
 * The metrics of one broker.
 *
 * @example
 * ```ts
 * const m = new Metrics();
 * m.produced("orders", 1024, 10);
 * const text = await m.render();
 * ```
 */
export class Metrics {
  /** the prom-client registry (one per broker: several brokers may share a process) */
  readonly registry: client.Registry = new client.Registry();

  // ---- traffic (counted once per request or batch) ----
  // rill_topic_{in,out}_{bytes,records}_total: see produced() and fetched()
  /** bytes sent to followers, per topic */
  readonly replicationOutBytes: FastCounter<"topic">;
  /** bytes this broker copied from leaders as a follower, per topic */
  readonly replicationInBytes: FastCounter<"topic">;
  /** produce requests by API and acks (count and latency) */
  readonly produceDuration: FastHistogram<"api" | "acks">;
  /** fetch requests by API and kind (consumer or replica), including the long-poll wait */
  readonly fetchDuration: FastHistogram<"api" | "kind">;
  /** every request by API, route and status */
  readonly requests: FastCounter<"api" | "route" | "status">;
  /** failed requests by API and error code */
  readonly requestErrors: FastCounter<"api" | "code">;
  /** requests refused by a quota or the stream caps */
  readonly throttled: FastCounter<"api">;

  // ---- coordination ----
  /** KV operations by kind (count and latency) */
  readonly kvDuration: FastHistogram<"op">;
  /** KV operations that failed, by kind and reason */
  readonly kvErrors: client.Counter<"op" | "reason">;
  /** atomic KV commits refused by a check (another broker changed the entry first) */
  readonly kvConflicts: client.Counter;
  /** ISR shrinks decided by this broker as leader */
  readonly isrShrinks: client.Counter;
  /** ISR expands decided by this broker as leader */
  readonly isrExpands: client.Counter;
  /** consumer group generation bumps this broker committed */
  readonly groupRebalances: client.Counter<"group">;
  /** producer ids handed out by this broker */
  readonly producerIds: client.Counter;

  /** per-topic traffic sums, added to per request and read into the counters at scrape */
  readonly #traffic = new Map<string, TopicTraffic>();
  /** what is written straight to text after prom-client's registry ({@linkcode table}s, …) */
  readonly #texts: (() => string | Promise<string>)[] = [];
  readonly #tableNames = new Set<string>();
  #eventLoop: EventLoopDelay | null = null;
  #gcCycles = 0;
  #gcRegistry: FinalizationRegistry<number> | null = null;

  /**
   * Declares the metrics and the process metrics (prom-client's default metrics with the
   * `rill_` prefix, plus a GC cycle count).
   *
   * @param opts `process: false` leaves out the process metrics (tests making many)
   */
  constructor(opts: { process?: boolean } = {}) {
    const c = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
      this.counter({ name, help, labelNames });
    // Per-request series: counted with plain numbers, written at scrape (fast_series.ts).
    const fc = <L extends string>(name: string, help: string, labelNames: L[]) =>
      this.#fast(name, "counter", new FastCounter<L>(name, help, labelNames));
    const fh = <L extends string>(name: string, help: string, labelNames: L[], b: number[]) =>
      this.#fast(name, "histogram", new FastHistogram<L>(name, help, labelNames, b));
    // The hot path adds to plain per-topic sums; the counters read them at scrape time.
    const sums = this.#traffic;
    this.table({
      type: "counter",
      families: [
        { name: "rill_topic_in_bytes_total", help: "Bytes appended as leader." },
        { name: "rill_topic_in_records_total", help: "Records appended as leader." },
        { name: "rill_topic_out_bytes_total", help: "Bytes fetched by consumers." },
        {
          name: "rill_topic_out_records_total",
          help: "Records in the batches fetched by consumers.",
        },
      ],
      collect(row) {
        const v = [0, 0, 0, 0];
        for (const [topic, t] of sums) {
          // A series appears once it counted something (as prom-client's counters did).
          v[0] = t.inBytes > 0 ? t.inBytes : NaN;
          v[1] = t.inRecords > 0 ? t.inRecords : NaN;
          v[2] = t.outBytes > 0 ? t.outBytes : NaN;
          v[3] = t.outRecords > 0 ? t.outRecords : NaN;
          row(labelText(["topic"], [topic]), v);
        }
      },
    });
    this.replicationOutBytes = fc(
      "rill_replication_out_bytes_total",
      "Bytes fetched by followers from this leader.",
      ["topic"],
    );
    this.replicationInBytes = fc(
      "rill_replication_in_bytes_total",
      "Bytes this broker copied from leaders as a follower.",
      ["topic"],
    );
    this.produceDuration = fh(
      "rill_produce_request_duration_seconds",
      "Produce requests: time from the request to its answer, by API and acks.",
      ["api", "acks"],
      [...LATENCY_BUCKETS],
    );
    this.fetchDuration = fh(
      "rill_fetch_request_duration_seconds",
      "Fetch requests (consumer or replica), including the long-poll wait.",
      ["api", "kind"],
      [...LATENCY_BUCKETS],
    );
    this.requests = fc(
      "rill_requests_total",
      "Requests answered, by API, route and HTTP status.",
      ["api", "route", "status"],
    );
    this.requestErrors = fc(
      "rill_request_errors_total",
      "Requests answered with an error, by API and error code.",
      ["api", "code"],
    );
    this.throttled = fc(
      "rill_throttled_requests_total",
      "Requests refused by a quota or the long-poll/stream caps (429).",
      ["api"],
    );
    this.kvDuration = fh(
      "rill_kv_operation_duration_seconds",
      "Deno KV operations by kind (get, get_many, list, set, delete, commit, watch).",
      ["op"],
      [...KV_BUCKETS],
    );
    this.kvErrors = c(
      "rill_kv_errors_total",
      "Deno KV operations that threw, by kind and reason (locked, other).",
      ["op", "reason"],
    );
    this.kvConflicts = c(
      "rill_kv_commit_conflicts_total",
      "Atomic KV commits refused because a checked entry had changed.",
    );
    this.isrShrinks = c("rill_isr_shrinks_total", "ISR shrinks requested by this leader.");
    this.isrExpands = c("rill_isr_expands_total", "ISR expands requested by this leader.");
    this.groupRebalances = c(
      "rill_group_rebalances_total",
      "Consumer group generation bumps committed by this broker.",
      ["group"],
    );
    this.producerIds = c("rill_producer_ids_total", "Producer ids handed out by this broker.");
    if (opts.process !== false) this.#processMetrics();
  }

  // ---- declaring metrics (for every subsystem) ----

  /**
   * Declares a counter on this broker's registry.
   *
   * @param spec name (`rill_…_total`), help and label names
   * @returns the counter
   * @example
   * ```ts
   * const frames = broker.metrics.counter({ name: "rill_ws_frames_total", help: "…", labelNames: ["dir"] });
   * frames.inc({ dir: "in" }, n);
   * ```
   */
  counter<L extends string = never>(
    spec: MetricSpec<L> & { collect?: (this: client.Counter<L>) => void },
  ): client.Counter<L> {
    checkMetricName(spec.name, "counter");
    this.#unique(spec.name);
    return new client.Counter<L>({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labelNames ?? [],
      registers: [this.registry],
      collect: spec.collect,
    });
  }

  /**
   * Declares a histogram on this broker's registry.
   *
   * @param spec name (`rill_…_seconds` or `_bytes`), help, label names and buckets
   * @returns the histogram
   */
  histogram<L extends string = never>(
    spec: MetricSpec<L> & { buckets?: readonly number[] },
  ): client.Histogram<L> {
    checkMetricName(spec.name, "histogram");
    this.#unique(spec.name);
    return new client.Histogram<L>({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labelNames ?? [],
      buckets: [...(spec.buckets ?? LATENCY_BUCKETS)],
      registers: [this.registry],
    });
  }

  /**
   * Declares a gauge read at scrape time: `collect` sets its values from what the broker
   * already knows, so nothing is kept up to date on the hot path.
   *
   * @param spec name, help, label names and the collect callback
   * @returns the gauge
   * @example
   * ```ts
   * broker.metrics.gauge({ name: "rill_ws_connections", help: "…", collect: (g) => g.set(open.size) });
   * ```
   */
  gauge<L extends string = never>(spec: LazyGaugeSpec<L>): client.Gauge<L> {
    checkMetricName(spec.name, "gauge");
    this.#unique(spec.name);
    const read = spec.collect;
    return new client.Gauge<L>({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labelNames ?? [],
      registers: [this.registry],
      collect(this: client.Gauge<L>) {
        this.reset();
        return read(this);
      },
    });
  }

  /**
   * Declares families rendered straight to text at scrape time: for series that grow with
   * the partitions (per topic, partition, follower or group). No prom-client object is kept
   * per series: `collect` is called at each scrape and hands out rows.
   *
   * @param spec the type, the families and the collect callback
   * @throws {Error} when a name breaks the conventions or is taken
   * @example
   * ```ts
   * broker.metrics.table({
   *   families: [{ name: "rill_partition_log_end_offset", help: "…" }],
   *   collect: (row) => row(labelText(["topic", "partition"], ["t", "0"]), [42]),
   * });
   * ```
   */
  table(spec: TableSpec): void {
    for (const f of spec.families) {
      checkMetricName(f.name, spec.type ?? "gauge");
      this.#unique(f.name);
    }
    for (const f of spec.families) this.#tableNames.add(f.name);
    this.#texts.push(() => renderTable(spec));
  }

  #fast<T extends { render(): string }>(
    name: string,
    type: "counter" | "histogram",
    series: T,
  ): T {
    checkMetricName(name, type);
    this.#unique(name);
    this.#tableNames.add(name);
    this.#texts.push(() => series.render());
    return series;
  }

  #unique(name: string): void {
    if (this.#tableNames.has(name) || this.registry.getSingleMetric(name) !== undefined) {
      throw new Error(`A metric named ${name} is declared already`);
    }
  }

  // ---- counting (once per request or batch) ----

  /**
   * Counts an append as leader.
   *
   * @param topic the topic
   * @param bytes the batch bytes
   * @param records the records in them
   */
  produced(topic: string, bytes: number, records: number): void {
    const t = this.#topic(topic);
    t.inBytes += bytes;
    t.inRecords += records;
  }

  /**
   * Counts a fetch answer.
   *
   * @param topic the topic
   * @param bytes the batch bytes returned
   * @param records the records in them
   */
  fetched(topic: string, bytes: number, records: number): void {
    if (bytes === 0) return;
    const t = this.#topic(topic);
    t.outBytes += bytes;
    t.outRecords += records;
  }

  #topic(topic: string): TopicTraffic {
    let t = this.#traffic.get(topic);
    if (t === undefined) {
      t = { inBytes: 0, inRecords: 0, outBytes: 0, outRecords: 0 };
      this.#traffic.set(topic, t);
    }
    return t;
  }

  /**
   * Counts one KV operation (the observer given to coordination's `instrumentKv`).
   *
   * @param op the kind (get, get_many, list, set, delete, commit, watch, enqueue)
   * @param seconds how long it took
   * @param outcome ok, conflict (an atomic check failed), locked (database is locked) or error
   */
  readonly kvObserver = (op: string, seconds: number, outcome: string): void => {
    this.kvDuration.observe({ op }, seconds);
    if (outcome === "conflict") this.kvConflicts.inc();
    else if (outcome !== "ok") this.kvErrors.inc({ op, reason: outcome });
  };

  /** The number of GC cycles seen (a sentinel object collected), for tests. */
  get gcCycles(): number {
    return this.#gcCycles;
  }

  /**
   * Renders every metric in the Prometheus text format (version 0.0.4).
   *
   * @returns the exposition text
   */
  async render(): Promise<string> {
    let text = await this.registry.metrics();
    for (const t of this.#texts) text += await t();
    return text;
  }

  /** The Content-Type of {@linkcode render}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops the GC sentinel and the event-loop sampler. */
  close(): void {
    this.#gcRegistry = null;
    this.#eventLoop?.stop();
    this.#eventLoop = null;
  }

  #processMetrics(): void {
    // prom-client's process metrics, but its event-loop lag: under Deno its monitor is a
    // 10 ms JavaScript timer and reading it costs more than the rest of a scrape
    // (event_loop.ts). A precision of a day leaves that monitor asleep; its gauges are
    // dropped and replaced below with a cheaper sampler under the same names.
    client.collectDefaultMetrics({
      register: this.registry,
      prefix: "rill_",
      eventLoopMonitoringPrecision: 86_400_000,
    });
    for (const name of EVENT_LOOP_NAMES) this.registry.removeSingleMetric(`rill_nodejs_${name}`);
    // Its open-file count lists /proc/self/fd at every scrape: 3 ms of CPU with the 2,000
    // files of 1,000 partitions. Counted at most every OPEN_FDS_MAX_AGE_MS instead.
    if (this.registry.getSingleMetric("rill_process_open_fds") !== undefined) {
      this.registry.removeSingleMetric("rill_process_open_fds");
      let counted = -Infinity;
      let fds = 0;
      this.gauge({
        name: "rill_process_open_fds",
        help: `Open file descriptors (counted at most every ${OPEN_FDS_MAX_AGE_MS / 1000} s).`,
        collect: (g) => {
          const now = performance.now();
          if (now - counted >= OPEN_FDS_MAX_AGE_MS) {
            fds = countOpenFds();
            counted = now;
          }
          if (fds >= 0) g.set(fds);
        },
      });
    }
    // Deno emits no "gc" performance entries, so prom-client's GC histogram stays empty:
    // drop it and count GC cycles with a sentinel object instead (below).
    this.registry.removeSingleMetric("rill_nodejs_gc_duration_seconds");
    const loop = this.#eventLoop = new EventLoopDelay();
    this.table({
      families: [
        { name: "rill_nodejs_eventloop_lag_seconds", help: "Event-loop delay, last sample." },
        ...(["min", "max", "mean", "stddev", "p50", "p90", "p99"] as const).map((k) => ({
          name: `rill_nodejs_eventloop_lag_${k}_seconds`,
          help: `Event-loop delay since the previous scrape: ${k} of the samples (every 100 ms).`,
        })),
      ],
      collect(row) {
        const d = loop.read();
        row("", [d.last, d.min, d.max, d.mean, d.stddev, d.p50, d.p90, d.p99]);
      },
    });
    const cycles = this.counter({
      name: "rill_process_gc_cycles_total",
      help:
        "Garbage collections seen: a young sentinel object was collected (at most one a cycle).",
    });
    this.#gcRegistry = new FinalizationRegistry<number>(() => {
      this.#gcCycles++;
      cycles.inc();
      this.#gcSentinel();
    });
    this.#gcSentinel();
  }

  #gcSentinel(): void {
    // An unreachable young object: collected by the next scavenge, whose finalizer makes
    // the next one.
    this.#gcRegistry?.register({}, 0);
  }
}

/** How old the open-file count may be (it is costly with many files open). */
const OPEN_FDS_MAX_AGE_MS = 10_000;

/** Counts the process's open files (Linux), -1 where /proc/self/fd cannot be listed. */
function countOpenFds(): number {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return n - 1; // less the descriptor of the listing itself
  } catch {
    return -1;
  }
}

const EVENT_LOOP_NAMES = [
  "eventloop_lag_seconds",
  ...["min", "max", "mean", "stddev", "p50", "p90", "p99"].map((k) => `eventloop_lag_${k}_seconds`),
];

/**
 * Counts the records of a run of RecordBatch v2 bytes from their headers (one read per
 * batch, not per record).
 *
 * @param bytes whole batches back to back
 * @returns the number of records they hold
 * @example
 * ```ts
 * countBatchRecords(result.bytes);
 * ```
 */
export function countBatchRecords(bytes: Uint8Array): number {
  // Read byte by byte: no DataView per call (one per push to each consumer).
  let n = 0;
  for (let pos = 0; pos + 61 <= bytes.byteLength;) {
    const length = bytes[pos + 8] << 24 | bytes[pos + 9] << 16 | bytes[pos + 10] << 8 |
      bytes[pos + 11];
    if (length <= 0) break;
    n += bytes[pos + 57] << 24 | bytes[pos + 58] << 16 | bytes[pos + 59] << 8 | bytes[pos + 60];
    pos += 12 + length;
  }
  return n;
}
