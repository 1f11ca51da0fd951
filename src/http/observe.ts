/**
 * What the HTTP skin tells the broker's metrics and logs about each request: one middleware,
 * mounted first, that after the answer counts the request (route, status), its error code,
 * a throttling, the produce latency by acks and the fetch latency by kind, and writes the
 * request log line at debug level. One count per request, never per record.
 *
 * `GET /metrics` ({@linkcode metricsRoute}) renders the broker's metrics; with auth on it
 * needs `describe` on the cluster (or a separate `rill broker --metrics-listen` address,
 * {@linkcode metricsHandler}).
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { RillError } from "../protocol/errors.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { CounterSeries, HistogramSeries } from "../observability/fast_series.ts";
import type { Logger } from "../observability/log.ts";
import { authorize } from "./auth.ts";
import { CLUSTER_RESOURCE } from "../coordination/acls.ts";

/** Routes whose requests have their own latency histograms. */
export const PRODUCE_ROUTE = "/v1/topics/:topic/records";
/** The consumer and replica fetch route. */
export const FETCH_ROUTE = "/v1/topics/:topic/partitions/:partition/records";

/** The `acks` label of each valid query value (a Map: `acks=constructor` is "invalid" too). */
const ACKS = new Map([["all", "all"], ["-1", "all"], ["1", "1"], ["0", "0"]]);

function errorCode(c: Context, status: number): string {
  const err = c.error;
  if (err instanceof RillError) return err.code;
  switch (status) {
    case 404:
      return "NOT_FOUND";
    case 429:
      return "THROTTLING_QUOTA_EXCEEDED";
    case 401:
      return "UNAUTHENTICATED";
    case 503:
      return "BROKER_NOT_AVAILABLE";
    default:
      return status >= 500 ? "UNKNOWN_SERVER_ERROR" : "INVALID_REQUEST";
  }
}

/**
 * The metrics and request-log middleware. Mount it before every other middleware.
 *
 * @param metrics the broker's metrics
 * @param logger the broker's logger (request lines at debug level)
 * @returns the middleware
 * @example
 * ```ts
 * app.use("*", observeRequests(broker.metrics, broker.logger));
 * ```
 */
export function observeRequests(metrics: Metrics, logger: Logger): MiddlewareHandler {
  return async (c, next) => {
    const start = performance.now();
    await next();
    const seconds = (performance.now() - start) / 1000;
    const status = c.res.status;
    const route = status === 404 && !(c.error instanceof RillError) ? "unmatched" : c.req.routePath;
    metrics.requests.inc({ api: "http", route, status: String(status) });
    const method = c.req.method;
    if (route === PRODUCE_ROUTE && method === "POST") {
      metrics.produceDuration.observe(
        { api: "http", acks: ACKS.get(c.req.query("acks") ?? "all") ?? "invalid" },
        seconds,
      );
    } else if (route === FETCH_ROUTE && method === "GET") {
      const accept = c.req.header("accept") ?? "";
      // An SSE answer is a stream that outlives the handler: counted, not timed.
      if (!accept.includes("text/event-stream")) {
        const kind = c.req.query("replicaId") !== undefined ? "replica" : "consumer";
        metrics.fetchDuration.observe({ api: "http", kind }, seconds);
      }
    }
    let code: string | undefined;
    if (status >= 400) {
      code = errorCode(c, status);
      metrics.requestErrors.inc({ api: "http", code });
      if (status === 429) metrics.throttled.inc({ api: "http" });
    }
    if (logger.enabled("debug")) {
      const topic = c.req.param("topic");
      const partition = c.req.param("partition");
      logger.debug(`${method} ${c.req.path} ${status}`, {
        durationMs: Math.round(seconds * 1e4) / 10,
        topic,
        partition: partition !== undefined && /^\d+$/.test(partition)
          ? Number(partition)
          : undefined,
        code,
      });
    }
  };
}

/** The route label of the multi-partition fetch (routes/fetch.ts). */
export const MULTI_FETCH_ROUTE = "/v1/fetch";

/**
 * Counts a follower's multi-partition fetch answered by the session fetch lane
 * (session_fetch_lane.ts, which skips the middleware), as the app counts that route.
 *
 * @param metrics the broker's metrics
 * @param answer the lane's answer
 * @returns the same answer
 */
export async function observeSessionLane(
  metrics: Metrics,
  answer: Promise<Response>,
): Promise<Response> {
  const res = await answer;
  metrics.requests.inc({ api: "http", route: MULTI_FETCH_ROUTE, status: String(res.status) });
  if (res.status >= 400) {
    metrics.requestErrors.inc({ api: "http", code: await answerCode(res) });
  }
  return res;
}

/**
 * Counts a follower's fetch answered by the replica fetch lane (which skips the middleware).
 *
 * @param metrics the broker's metrics
 * @param answer the lane's answer
 * @param start `performance.now()` when it arrived
 * @returns the same answer
 */
export async function observeReplicaLane(
  metrics: Metrics,
  answer: Promise<Response>,
  start: number,
): Promise<Response> {
  const res = await answer;
  metrics.requests.inc({ api: "http", route: FETCH_ROUTE, status: String(res.status) });
  metrics.fetchDuration.observe(
    { api: "http", kind: "replica" },
    (performance.now() - start) / 1000,
  );
  if (res.status >= 400) {
    metrics.requestErrors.inc({ api: "http", code: await answerCode(res) });
  }
  return res;
}

/** What the record lane tells the metrics of each answer it makes ({@linkcode recordLaneObserver}). */
export interface RecordLaneObserver {
  /**
   * Counts a produce's answer and its latency.
   *
   * @param acks the request's `acks` query value (undefined when it has none)
   * @param status the answer's status
   * @param start `performance.now()` when the request arrived
   */
  produced(acks: string | undefined, status: number, start: number): void;
  /**
   * Counts a fetch's answer and its latency.
   *
   * @param status the answer's status
   * @param start `performance.now()` when the request arrived
   */
  fetched(status: number, start: number): void;
  /**
   * Counts an error answer's code (and a throttling), beside its request.
   *
   * @param status the answer's status
   * @param code its error code
   */
  failed(status: number, code: string): void;
}

/**
 * Counts a client's raw-batch produce or fetch answered by the record lane (record_lane.ts,
 * which skips the middleware): the request, its latency (produce by acks) and its error,
 * as the app counts them (the same series, names and text). Called by the lane as it makes
 * its answer, with the error code it answers: no continuation of its own and no reading of
 * the answer. The series are bound once per status and acks value (fast_series.ts `series`):
 * a request counts with two additions, no label objects or lookups.
 *
 * @param metrics the broker's metrics
 * @returns the observer
 * @example
 * ```ts
 * const observe = recordLaneObserver(broker.metrics);
 * observe.produced("1", 204, performance.now());
 * ```
 */
export function recordLaneObserver(metrics: Metrics): RecordLaneObserver {
  // status → series, for produce and fetch; acks label → produce latency series.
  const produced = new Map<number, CounterSeries>();
  const fetched = new Map<number, CounterSeries>();
  const produceLatency = new Map<string, HistogramSeries>();
  const fetchLatency = metrics.fetchDuration.series({ api: "http", kind: "consumer" });
  const requestsOf = (produce: boolean, status: number): CounterSeries => {
    const byStatus = produce ? produced : fetched;
    let series = byStatus.get(status);
    if (series === undefined) {
      series = metrics.requests.series({
        api: "http",
        route: produce ? PRODUCE_ROUTE : FETCH_ROUTE,
        status: String(status),
      });
      byStatus.set(status, series);
    }
    return series;
  };
  const produceLatencyOf = (acksValue: string | undefined): HistogramSeries => {
    const acks = ACKS.get(acksValue ?? "all") ?? "invalid";
    let series = produceLatency.get(acks);
    if (series === undefined) {
      series = metrics.produceDuration.series({ api: "http", acks });
      produceLatency.set(acks, series);
    }
    return series;
  };
  return {
    produced(acks, status, start) {
      requestsOf(true, status).inc();
      produceLatencyOf(acks).observe((performance.now() - start) / 1000);
    },
    fetched(status, start) {
      requestsOf(false, status).inc();
      fetchLatency.observe((performance.now() - start) / 1000);
    },
    failed(status, code) {
      metrics.requestErrors.inc({ api: "http", code });
      if (status === 429) metrics.throttled.inc({ api: "http" });
    },
  };
}

/** The error code of a lane's error answer, read from its (small JSON) body. */
async function answerCode(res: Response): Promise<string> {
  try {
    const body = await res.clone().json();
    const code = body?.error?.code;
    if (typeof code === "string") return code;
  } catch {
    // not a JSON error body
  }
  return res.status >= 500 ? "UNKNOWN_SERVER_ERROR" : "INVALID_REQUEST";
}

/**
 * `GET /metrics`: the broker's metrics in the Prometheus text format. With auth on the
 * caller needs `describe` on the cluster.
 *
 * @param metrics the broker's metrics
 * @param auth whether authentication is on
 * @returns the handler
 */
export function metricsRoute(
  metrics: Metrics,
  auth: boolean,
): (c: Context) => Promise<Response> {
  return async (c) => {
    if (auth) authorize(c, { type: "cluster", name: CLUSTER_RESOURCE }, "describe");
    return c.body(await metrics.render(), 200, { "content-type": metrics.contentType });
  };
}

/**
 * The handler of a separate metrics listener (`--metrics-listen`): `GET /metrics` without
 * authentication (bind it to an address only the monitoring system reaches), 404 otherwise.
 *
 * @param metrics the broker's metrics
 * @returns a `Deno.serve` handler
 */
export function metricsHandler(metrics: Metrics): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      return Response.json(
        new RillError("NOT_FOUND", `No route for ${req.method} ${url.pathname}`).toJSON(),
        { status: 404 },
      );
    }
    return new Response(await metrics.render(), {
      headers: { "content-type": metrics.contentType },
    });
  };
}
