/**
 * The broker's HTTP API (HTTP_API.md): one Hono app with the error mapping of errors.ts.
 *
 * ```
 * GET /healthz          {"status":"ok"|"shutting-down","brokerId","role"}   (always 200: a liveness probe)
 * /v1/cluster           routes/cluster.ts
 * /v1/topics            routes/topics.ts (admin) and routes/records.ts (produce, fetch, offsets)
 * /v1/groups            routes/groups.ts (consumer groups)
 * ```
 *
 * CORS is open (`Access-Control-Allow-Origin: *`, no credentials) so browser code on any
 * origin can produce and consume; authentication (a later issue) uses bearer tokens, not
 * cookies.
 *
 * Request bodies are limited to the broker's `maxRequestBytes` (8 MiB by default) by the
 * routes themselves, which read bodies through params.ts.
 *
 * @module
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import type { Broker } from "../broker/broker.ts";
import { notFound, onError } from "./errors.ts";
import { clusterRoutes } from "./routes/cluster.ts";
import { groupRoutes } from "./routes/groups.ts";
import { recordRoutes } from "./routes/records.ts";
import { topicRoutes } from "./routes/topics.ts";

/**
 * Builds the HTTP app of a broker.
 *
 * @param broker the broker it serves
 * @returns the Hono app (`app.fetch` is the handler for `Deno.serve`)
 * @example
 * ```ts
 * const app = createApp(broker);
 * const res = await app.request("/healthz");
 * ```
 */
export function createApp(broker: Broker): Hono {
  const app = new Hono();
  app.onError(onError);
  app.notFound(notFound);
  // Browsers on other origins may call the API (the client runs wherever fetch exists);
  // no cookies are involved, and the Rill-* fetch headers are readable.
  app.use(
    "*",
    cors({
      origin: "*",
      exposeHeaders: ["Rill-Next-Offset", "Rill-High-Watermark", "Rill-Log-Start-Offset"],
      maxAge: 600,
    }),
  );
  app.get("/healthz", (c) =>
    c.json({
      status: broker.draining ? "shutting-down" : "ok",
      brokerId: broker.id,
      role: broker.role,
    }));
  app.route("/v1/cluster", clusterRoutes(broker));
  app.route("/v1/topics", recordRoutes(broker));
  app.route("/v1/topics", topicRoutes(broker));
  app.route(
    "/v1/groups",
    groupRoutes({
      kv: broker.kv,
      partitionCount: (topic) => broker.partitionCount(topic),
      logStartOffset: (topic, partition) => broker.logStartOffset(topic, partition),
      logEndOffset: (topic, partition) => broker.logEndOffset(topic, partition),
      offsetForTimestamp: (topic, partition, ts) => broker.offsetForTimestamp(topic, partition, ts),
    }),
  );
  return app;
}
