/**
 * The broker's HTTP API (HTTP_API.md): one Hono app with the error mapping of errors.ts.
 *
 * ```
 * GET /metrics          Prometheus text format (observe.ts; with auth on: describe on the cluster)
 * GET /healthz          {"status":"ok"|"shutting-down","brokerId","role","kv"}   (always 200: a liveness
 *                       probe; "kv": {"reachable","unreachableSince","oldestPendingMs"}, see
 *                       coordination/kv_health.ts; with auth on, only {"status"}, no credentials needed)
 * /v1/auth              routes/auth.ts (API keys and ACLs)
 * /v1/cluster           routes/cluster.ts
 * /v1/topics            routes/topics.ts (admin) and routes/records.ts (produce, fetch, offsets)
 * /v1/groups            routes/groups.ts (consumer groups)
 * /ui                   console.ts (the web console: static files, no credentials needed;
 *                       its data comes from the API with the user's key)
 * ```
 *
 * CORS is open (`Access-Control-Allow-Origin: *`, no credentials) so browser code on any
 * origin can produce and consume; authentication uses bearer tokens or HTTP Basic, not
 * cookies. The security layer (security.ts: URL/header limits, authentication, quotas) is
 * mounted around /healthz; each route authorizes what it touches with auth.ts's
 * `authorize()`.
 *
 * Request bodies are limited to the broker's `maxRequestBytes` (8 MiB by default) by the
 * routes themselves, which read bodies through params.ts, and must arrive within
 * `requestBodyTimeoutMs` (30 s; else 408 REQUEST_BODY_TIMEOUT).
 *
 * @module
 */
import { Hono } from "hono";
import type { Broker } from "../broker/broker.ts";
import { openCors, openCorsHeaders, type OpenCorsOptions } from "./cors.ts";
import { notFound, onError } from "./errors.ts";
import { bodyTimeout } from "./params.ts";
import { recordLane } from "./record_lane.ts";
import { replicaFetchLane } from "./replica_fetch_lane.ts";
import { sessionFetchLane } from "./session_fetch_lane.ts";
import { authRoutes } from "./routes/auth.ts";
import {
  type AppSecurityOptions,
  type InstalledSecurity,
  useLimits,
  useSecurity,
} from "./security.ts";
import type { Security } from "./auth.ts";

const securities = new WeakMap<Hono, Security>();

/**
 * The security state (keys, ACLs, audit) of an app made by {@linkcode createApp}, for other
 * listeners of the same broker (the Kafka listener checks the same keys and ACLs).
 *
 * @param app the app
 * @returns its security state
 */
export function securityOf(app: Hono): Security {
  const s = securities.get(app);
  if (!s) throw new Error("not an app made by createApp()");
  return s;
}
import { clusterRoutes } from "./routes/cluster.ts";
import { consoleRoutes } from "./console.ts";
import { groupRoutes } from "./routes/groups.ts";
import { producerRoutes } from "./routes/producers.ts";
import { recordRoutes } from "./routes/records.ts";
import { fetchRoutes } from "./routes/fetch.ts";
import { topicRoutes } from "./routes/topics.ts";
import {
  metricsRoute,
  observeReplicaLane,
  observeRequests,
  observeSessionLane,
  recordLaneObserver,
} from "./observe.ts";

/** The KV's health as /healthz shows it. */
function kvHealthJson(broker: Broker) {
  const s = broker.kvHealth.status();
  return {
    reachable: s.reachable,
    unreachableSince: s.unreachableSinceMs === null
      ? null
      : new Date(s.unreachableSinceMs).toISOString(),
    oldestPendingMs: Math.round(s.oldestPendingMs),
  };
}

/**
 * Builds the HTTP app of a broker.
 *
 * @param broker the broker it serves
 * @param security auth, cluster secret and quotas (security.ts); default: auth off
 * @param installed the security state, when shared with the WebSocket endpoint (src/ws;
 *   security.ts `buildSecurity`); default: built from `security`
 * @returns the Hono app (`app.fetch` is the handler for `Deno.serve`; give it the handler
 *   info too, as `app.fetch(req, info)`, so large fetch answers are sent without a copy)
 * @example
 * ```ts
 * const app = createApp(broker);
 * const res = await app.request("/healthz");
 * ```
 */
export function createApp(
  broker: Broker,
  security: AppSecurityOptions = {},
  installed?: InstalledSecurity,
): Hono {
  const app = new Hono();
  app.onError(onError);
  app.notFound(notFound);
  // Metrics and the request log see every answer, the refused ones included (observe.ts).
  app.use("*", observeRequests(broker.metrics, broker.logger));
  // URL and header limits first; authentication and quotas after /healthz (security.ts).
  const state = useLimits(app, broker.kv, security, installed);
  securities.set(app, state.security);
  // Browsers on other origins may call the API (the client runs wherever fetch exists);
  // no cookies are involved, and the Rill-* fetch headers are readable.
  const cors: OpenCorsOptions = {
    exposeHeaders: [
      "Rill-Next-Offset",
      "Rill-High-Watermark",
      "Rill-Log-Start-Offset",
      "Rill-Base-Offset",
      "Rill-Last-Offset",
      "Rill-Log-Append-Time",
      "Retry-After",
      "WWW-Authenticate",
    ],
    maxAge: 600,
  };
  app.use("*", openCors(cors));

  app.get("/healthz", (c) =>
    c.json(
      state.security.auth
        // With auth on, a liveness probe tells strangers nothing more.
        ? { status: broker.draining ? "shutting-down" : "ok" }
        : {
          status: broker.draining ? "shutting-down" : "ok",
          brokerId: broker.id,
          role: broker.role,
          kv: kvHealthJson(broker),
        },
    ));
  app.route("/", consoleRoutes());
  useSecurity(app, state);
  app.get("/metrics", metricsRoute(broker.metrics, state.security.auth));
  // One app per broker in production; tests may build several, the last one counts.
  broker.metrics.registry.removeSingleMetric("rill_streams_open");
  broker.metrics.gauge({
    name: "rill_streams_open",
    help: "Long polls (maxWaitMs > 0) and SSE streams open now.",
    collect: (g) => g.set(state.quotas.openStreams),
  });
  app.use("*", bodyTimeout(broker.config.requestBodyTimeoutMs));
  app.route("/v1/auth", authRoutes(state.security));
  app.route("/v1/cluster", clusterRoutes(broker));
  app.route("/v1/producers", producerRoutes(broker));
  app.route("/v1/topics", recordRoutes(broker));
  app.route("/v1/fetch", fetchRoutes(broker));
  app.route("/v1/topics", topicRoutes(broker));
  app.route(
    "/v1/groups",
    groupRoutes({
      kv: broker.kv,
      partitionCount: (topic) => broker.partitionCount(topic),
      logStartOffset: (topic, partition) => broker.logStartOffset(topic, partition),
      logEndOffset: (topic, partition) => broker.logEndOffset(topic, partition),
      lagEndOffset: (topic, partition) => broker.lagEndOffset(topic, partition),
      offsetForTimestamp: (topic, partition, ts) => broker.offsetForTimestamp(topic, partition, ts),
      onRebalance: (group) => broker.metrics.groupRebalances.inc({ group }),
      liveness: broker.groupLiveness,
      pending: broker.offsetCommits,
      writesBehind: broker.groupWritesBehind,
    }),
  );
  // Followers' fetches, the hottest requests between brokers, and clients' raw-batch
  // produce and fetch skip the middleware chain when it would let them through unchanged
  // (replica_fetch_lane.ts, session_fetch_lane.ts, record_lane.ts).
  const corsHeaders = openCorsHeaders(cors);
  const lane = replicaFetchLane(broker, state, corsHeaders);
  const sessions = sessionFetchLane(broker, state, corsHeaders);
  const dispatch = app.fetch;
  const records = recordLane(
    broker,
    state,
    corsHeaders,
    (req, env) => dispatch(req, env),
    recordLaneObserver(broker.metrics),
  );
  // Named parameters, not a rest array: one allocation fewer on every request.
  app.fetch = (req, env, ctx) => {
    const start = performance.now();
    const replica = lane(req, env);
    if (replica) return observeReplicaLane(broker.metrics, replica, start);
    const session = sessions(req, env);
    if (session) return observeSessionLane(broker.metrics, session);
    const record = records(req, env, start);
    if (record) return record;
    return dispatch(req, env, ctx);
  };
  return app;
}
