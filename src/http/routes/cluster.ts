/**
 * Cluster routes, mounted at `/v1/cluster`:
 *
 * ```
 * GET /   {"clusterId","controllerId","brokers":[{"id","url","role","alive"}]}
 * ```
 *
 * Until a controller lease exists (replication), `controllerId` is the lowest id among the
 * live brokers that may lead, or null when none is alive.
 *
 * @module
 */
import { Hono } from "hono";
import type { Broker } from "../../broker/broker.ts";
import { onError } from "../errors.ts";

/**
 * The cluster routes.
 *
 * @param broker the broker
 * @returns a Hono app to mount at `/v1/cluster`
 * @example
 * ```ts
 * app.route("/v1/cluster", clusterRoutes(broker));
 * ```
 */
export function clusterRoutes(broker: Broker): Hono {
  const app = new Hono();
  app.onError(onError);
  app.get("/", async (c) => {
    const brokers = await broker.brokers();
    const leaders = brokers.filter((b) => b.alive && b.role === "broker");
    return c.json({
      clusterId: broker.clusterId,
      controllerId: leaders.length > 0 ? leaders[0].id : null,
      brokers: brokers.map((b) => ({
        id: b.id,
        url: b.url,
        role: b.role,
        alive: b.alive,
        heartbeatMs: b.heartbeatMs,
        startedMs: b.startedMs,
      })),
    });
  });
  return app;
}
