/**
 * Cluster routes, mounted at `/v1/cluster`:
 *
 * ```
 * GET /   {"clusterId","controllerId","brokers":[{"id","url","role","alive"}]}
 * ```
 *
 * `controllerId` is the holder of the controller lease (null while nobody holds it).
 *
 * @module
 */
import { Hono } from "hono";
import type { Broker } from "../../broker/broker.ts";
import { CLUSTER_RESOURCE } from "../../coordination/acls.ts";
import { authorize } from "../auth.ts";
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
    authorize(c, { type: "cluster", name: CLUSTER_RESOURCE }, "describe");
    const brokers = await broker.brokers();
    const lease = await broker.leaseStore.current();
    return c.json({
      clusterId: broker.clusterId,
      controllerId: lease?.holder ?? null,
      brokers: brokers.map((b) => ({
        id: b.id,
        url: b.url,
        role: b.role,
        kafka: b.kafka ?? null,
        alive: b.alive,
        heartbeatMs: b.heartbeatMs,
        startedMs: b.startedMs,
      })),
    });
  });
  return app;
}
