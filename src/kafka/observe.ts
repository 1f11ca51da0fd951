/**
 * What the Kafka listener tells the broker's metrics (docs/metrics.md), once per request,
 * never per record: `rill_requests_total{api="kafka",route=<API name>,status}`, errors by
 * Kafka error name, the Produce latency by acks and the Fetch latency by kind (the same
 * series the HTTP API and the WebSocket endpoint report, under `api="kafka"`), and the open
 * connections.
 *
 * `status` is `ok`, `error` (the answer carries an error code, at the top or for a topic or
 * partition) or `closed` (the request closed the connection: an API or version the listener
 * does not serve, a body that does not decode, a request before authentication).
 *
 * @module
 */
import type { CounterSeries, HistogramSeries, Metrics } from "../observability/metrics.ts";
import { KafkaDecodeError } from "./wire.ts";
import { API } from "./messages.ts";
import { KAFKA_ERROR } from "./errors.ts";

const API_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(API).map(([name, key]) => [key, name]),
);
const ERROR_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(KAFKA_ERROR).map(([name, code]) => [code, name]),
);
const ACKS: Record<number, string> = { [-1]: "all", 1: "1", 0: "0" };

/** The series of one API key, bound once (a request adds to them without a lookup). */
interface RouteSeries {
  ok: CounterSeries;
  error: CounterSeries;
  closed: CounterSeries;
}

/** The Kafka listener's meter: one per listener. */
export class KafkaMeter {
  readonly #metrics: Metrics;
  readonly #routes: (RouteSeries | undefined)[] = [];
  readonly #produce: Record<string, HistogramSeries> = {};
  readonly #fetch: Record<string, HistogramSeries>;

  /**
   * @param metrics the broker's metrics
   * @param connections the listener's open connections, read at scrape time
   */
  constructor(metrics: Metrics, connections: () => number) {
    this.#metrics = metrics;
    for (const acks of ["all", "1", "0", "invalid"]) {
      this.#produce[acks] = metrics.produceDuration.series({ api: "kafka", acks });
    }
    this.#fetch = {
      consumer: metrics.fetchDuration.series({ api: "kafka", kind: "consumer" }),
      replica: metrics.fetchDuration.series({ api: "kafka", kind: "replica" }),
    };
    // One listener per broker in production; tests may start several, the last one counts.
    metrics.registry.removeSingleMetric("rill_kafka_connections");
    metrics.gauge({
      name: "rill_kafka_connections",
      help: "Connections open on the Kafka listener.",
      collect: (g) => g.set(connections()),
    });
  }

  #series(apiKey: number): RouteSeries {
    const known = apiKey >= 0 && apiKey < 1024;
    let l = known ? this.#routes[apiKey] : undefined;
    if (l === undefined) {
      // Keys the listener does not serve share one series: a peer cannot grow the label set.
      const route = API_NAMES[apiKey] ?? "unknown";
      const r = this.#metrics.requests;
      l = {
        ok: r.series({ api: "kafka", route, status: "ok" }),
        error: r.series({ api: "kafka", route, status: "error" }),
        closed: r.series({ api: "kafka", route, status: "closed" }),
      };
      if (known) this.#routes[apiKey] = l;
    }
    return l;
  }

  /**
   * Counts a request answered (or owed no answer: a Produce with acks=0).
   *
   * @param apiKey the API key
   * @param body the decoded request (null when it was answered before decoding)
   * @param answer the answer body, null when none is owed
   * @param start `performance.now()` when the request arrived
   */
  answered(
    apiKey: number,
    body: Record<string, unknown> | null,
    answer: Record<string, unknown> | null,
    start: number,
  ): void {
    const m = this.#metrics;
    const seconds = (performance.now() - start) / 1000;
    const code = answer === null ? 0 : errorIn(answer);
    const series = this.#series(apiKey);
    (code === 0 ? series.ok : series.error).value++;
    if (code !== 0) {
      const name = ERROR_NAMES[code] ?? `KAFKA_ERROR_${code}`;
      m.requestErrors.inc({ api: "kafka", code: name });
      if (code === KAFKA_ERROR.THROTTLING_QUOTA_EXCEEDED) m.throttled.inc({ api: "kafka" });
    }
    if (apiKey === API.Produce) {
      this.#produce[ACKS[body?.acks as number] ?? "invalid"].observe(seconds);
    } else if (apiKey === API.Fetch) {
      const replica = ((body?.replicaId as number | undefined) ?? -1) >= 0;
      (replica ? this.#fetch.replica : this.#fetch.consumer).observe(seconds);
    }
  }

  /**
   * Counts a request that closed its connection (or failed inside the listener).
   *
   * @param apiKey the API key
   * @param error what was thrown
   */
  closed(apiKey: number, error: unknown): void {
    this.#series(apiKey).closed.value++;
    this.#metrics.requestErrors.inc({
      api: "kafka",
      code: error instanceof KafkaDecodeError ? "INVALID_REQUEST" : "UNKNOWN_SERVER_ERROR",
    });
  }
}

/**
 * The first error code of an answer: its own `errorCode`, or that of an entry of one of its
 * lists (a topic), or of an entry of a list inside one (a partition). Two levels, as every
 * answer of the listener nests them; the work is per topic and partition, not per record.
 *
 * @param answer the answer body
 * @returns the Kafka error code, 0 for none
 */
export function errorIn(answer: Record<string, unknown>): number {
  const top = answer.errorCode;
  if (typeof top === "number" && top !== 0) return top;
  for (const key in answer) {
    const list = answer[key];
    if (!Array.isArray(list)) continue;
    for (const entry of list) {
      if (entry === null || typeof entry !== "object") break;
      const code = (entry as { errorCode?: unknown }).errorCode;
      if (typeof code === "number" && code !== 0) return code;
      for (const inner in entry) {
        const sub = (entry as Record<string, unknown>)[inner];
        if (!Array.isArray(sub)) continue;
        for (const item of sub) {
          if (item === null || typeof item !== "object") break;
          const c = (item as { errorCode?: unknown }).errorCode;
          if (typeof c === "number" && c !== 0) return c;
        }
      }
    }
  }
  return 0;
}
