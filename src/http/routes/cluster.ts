/**
 * Cluster routes, mounted at `/v1/cluster`:
 *
 * ```
 * GET  /                 {"clusterId","controllerId","brokers":[{"id","url","role","alive","rack"}]}
 * GET  /status           balance and move progress (cluster_admin.ts's ClusterStatus)
 * POST /elect-leaders    {"topic"?}             → {"elected":[…],"notEligible":[…]}
 * POST /rebalance        {"execute"?: boolean}  → {"moves","before","after","executed"}
 * POST /decommission     {"brokerId","execute"?} → the same
 * POST /cancel-moves     {}                     → {"dropped","rolledBack","notRolledBack","decommissioned"}
 * POST /recommission     {"brokerId"}           → the same
 * ```
 *
 * The POSTs need `alter` on the cluster; `status` needs `describe`.
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
import { intField, readJsonObject } from "../params.ts";
import { RillError } from "../../protocol/errors.ts";

const BODY_LIMIT = 64 * 1024;

function bool(v: unknown, name: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== "boolean") {
    throw new RillError("INVALID_REQUEST", `"${name}" must be true or false`);
  }
  return v;
}

function onlyFields(body: Record<string, unknown>, allowed: string[]): void {
  const extra = Object.keys(body).find((k) => !allowed.includes(k));
  if (extra !== undefined) {
    throw new RillError(
      "INVALID_REQUEST",
      allowed.length === 0
        ? `Unknown field "${extra}"; this request takes no fields`
        : `Unknown field "${extra}"; expected ${allowed.join(", ")}`,
    );
  }
}

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
        rack: b.rack ?? null,
      })),
    });
  });
  app.get("/status", async (c) => {
    authorize(c, { type: "cluster", name: CLUSTER_RESOURCE }, "describe");
    return c.json(await broker.clusterAdmin.status());
  });
  app.post("/elect-leaders", async (c) => {
    authorize(c, { type: "cluster", name: CLUSTER_RESOURCE }, "alter");
    const body = await readJsonObject(c, BODY_LIMIT);
    onlyFields(body, ["topic"]);
    if (body.topic !== undefined && (typeof body.topic !== "string" || body.topic === "")) {
      throw new RillError("INVALID_REQUEST", `"topic" must be a topic name`);
    }
    const result = await broker.clusterAdmin.electLeaders(body.topic as string | undefined);
    await broker.refresh();
    return c.json(result);
  });
  app.post("/rebalance", async (c) => {
    authorize(c, { type: "cluster", name: CLUSTER_RESOURCE }, "alter");
    const body = await readJsonObject(c, BODY_LIMIT);
    onlyFields(body, ["execute"]);
    return c.json(await broker.clusterAdmin.rebalance(bool(body.execute, "execute")));
  });
  app.post("/decommission", async (c) => {
    authorize(c, { type: "cluster", name: CLUSTER_RESOURCE }, "alter");
    const body = await readJsonObject(c, BODY_LIMIT);
    onlyFields(body, ["brokerId", "execute"]);
    const id = intField(body.brokerId, "brokerId", { min: 0 });
    const execute = body.execute === undefined ? true : bool(body.execute, "execute");
    return c.json(await broker.clusterAdmin.decommission(id, execute));
  });
  app.post("/cancel-moves", async (c) => {
    authorize(c, { type: "cluster", name: CLUSTER_RESOURCE }, "alter");
    const body = await readJsonObject(c, BODY_LIMIT);
    onlyFields(body, []);
    const result = await broker.clusterAdmin.cancelMoves();
    await broker.refresh();
    return c.json(result);
  });
  app.post("/recommission", async (c) => {
    authorize(c, { type: "cluster", name: CLUSTER_RESOURCE }, "alter");
    const body = await readJsonObject(c, BODY_LIMIT);
    onlyFields(body, ["brokerId"]);
    const id = intField(body.brokerId, "brokerId", { min: 0 });
    const result = await broker.clusterAdmin.recommission(id);
    await broker.refresh();
    return c.json(result);
  });
  return app;
}
