/**
 * What the WebSocket endpoint tells the broker's metrics (docs/metrics.md), once per frame,
 * never per record: `rill_requests_total{api="ws",route=<op>,status}` with the HTTP status
 * the same answer has on the HTTP API (200, or the error's), errors by code, the produce
 * latency by acks and the fetch latency (the same series the HTTP API reports, under
 * `api="ws"`), handshakes refused before the upgrade (`route="upgrade"`), and the open
 * connections.
 *
 * @module
 */
import type { CounterSeries, HistogramSeries, Metrics } from "../observability/metrics.ts";
import type { RillError } from "../protocol/errors.ts";

/** The route label of a frame: its op, or `invalid` for a frame that did not decode. */
export type WsRoute =
  | "hello"
  | "produce"
  | "fetch"
  | "subscribe"
  | "credit"
  | "unsubscribe"
  | "offsets"
  | "invalid"
  | "unknown"
  | "upgrade";

/** The acks label of a produce frame's raw `acks` (absent: all, as the protocol says). */
function acksLabel(raw: unknown): string {
  switch (raw) {
    case undefined:
    case -1:
    case "all":
    case "-1":
      return "all";
    case 1:
    case "1":
      return "1";
    case 0:
    case "0":
      return "0";
    default:
      return "invalid";
  }
}

/** The WebSocket endpoint's meter: one per endpoint. */
export class WsMeter {
  readonly #metrics: Metrics;
  /** the series of the answers that succeed, and of the latencies, bound once */
  readonly #ok: Record<string, CounterSeries> = {};
  readonly #produce: Record<string, HistogramSeries> = {};
  readonly #fetch: HistogramSeries;

  /**
   * @param metrics the broker's metrics
   * @param connections the endpoint's open connections, read at scrape time
   */
  constructor(metrics: Metrics, connections: () => number) {
    this.#metrics = metrics;
    for (
      const route of ["hello", "produce", "fetch", "subscribe", "credit", "unsubscribe", "offsets"]
    ) {
      this.#ok[route] = metrics.requests.series({ api: "ws", route, status: "200" });
    }
    for (const acks of ["all", "1", "0", "invalid"]) {
      this.#produce[acks] = metrics.produceDuration.series({ api: "ws", acks });
    }
    this.#fetch = metrics.fetchDuration.series({ api: "ws", kind: "consumer" });
    // One endpoint per broker in production; tests may make several, the last one counts.
    metrics.registry.removeSingleMetric("rill_ws_connections");
    metrics.gauge({
      name: "rill_ws_connections",
      help: "WebSocket connections open on the broker's /v1/ws endpoint.",
      collect: (g) => g.set(connections()),
    });
  }

  /**
   * Counts one answered frame (or a refused handshake).
   *
   * @param route the frame's op
   * @param start `performance.now()` when it arrived
   * @param error the error it was answered with, or null
   * @param acks a produce frame's `acks` as sent
   */
  answered(route: WsRoute, start: number, error: RillError | null, acks?: unknown): void {
    const m = this.#metrics;
    if (error === null) {
      const ok = this.#ok[route];
      if (ok !== undefined) ok.value++;
      else m.requests.inc({ api: "ws", route, status: "200" });
    } else {
      m.requests.inc({ api: "ws", route, status: String(error.status) });
      m.requestErrors.inc({ api: "ws", code: error.code });
      if (error.code === "THROTTLING_QUOTA_EXCEEDED") m.throttled.inc({ api: "ws" });
    }
    if (route === "produce") {
      this.#produce[acksLabel(acks)].observe((performance.now() - start) / 1000);
    } else if (route === "fetch") {
      this.#fetch.observe((performance.now() - start) / 1000);
    }
  }
}
