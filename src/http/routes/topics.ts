/**
 * Topic admin routes, mounted at `/v1/topics`:
 *
 * ```
 * GET    /              {"topics":[{"name","partitions","replicationFactor"}]}
 * POST   /              {"name","partitions"?,"replicationFactor"?,"configs"?} → 201 description
 * GET    /{topic}       description
 * PATCH  /{topic}       {"partitions"?,"configs"?} → 200 description (a null config removes it)
 * POST   /{topic}/reassign  {"partitions":[{"partition","replicas":[ids]}]} → 202 description
 *                      (the move completes in the background: see "targetReplicas")
 * DELETE /{topic}       204
 * ```
 *
 * A description: `{"name","topicId","replicationFactor","configs","partitions":[{"partition",
 * "leader","replicas","isr","leaderEpoch","logStartOffset","highWatermark","logEndOffset",
 * "logFailure"}]}` (`logFailure`: why this broker's log of the partition failed, else null);
 * the offsets are those of this broker's replica (null where it hosts none): a follower's
 * lag behind its leader shows as the difference of their logEndOffsets.
 *
 * @module
 */
import { Hono } from "hono";
import type { Broker, TopicDescription } from "../../broker/broker.ts";
import { CLUSTER_RESOURCE } from "../../coordination/acls.ts";
import { validateTopicName } from "../../coordination/topics.ts";
import { RillError } from "../../protocol/errors.ts";
import { authorize, canDescribe } from "../auth.ts";
import { onError } from "../errors.ts";
import { readJsonObject } from "../params.ts";

function checkFields(body: Record<string, unknown>, allowed: string[]): void {
  for (const k in body) {
    if (!allowed.includes(k)) {
      throw new RillError(
        "INVALID_REQUEST",
        `Unknown field "${k.slice(0, 50)}"; expected ${allowed.map((a) => `"${a}"`).join(", ")}`,
      );
    }
  }
}

function optionalNumber(body: Record<string, unknown>, name: string): number | undefined {
  const v = body[name];
  if (v === undefined) return undefined;
  if (typeof v !== "number") throw new RillError("INVALID_REQUEST", `"${name}" must be a number`);
  return v;
}

/**
 * A topic description as JSON.
 *
 * @param d the description
 * @returns the response body
 * @example
 * ```ts
 * c.json(describeJson(await broker.describeTopic("orders")));
 * ```
 */
export function describeJson(d: TopicDescription): Record<string, unknown> {
  return {
    name: d.meta.name,
    topicId: d.meta.topicId,
    replicationFactor: d.meta.replicationFactor,
    configs: d.meta.configs,
    partitions: d.meta.partitions.map((p, i) => ({
      partition: p.partition,
      leader: p.leader,
      replicas: p.replicas,
      isr: p.isr,
      leaderEpoch: p.leaderEpoch,
      ...(p.targetReplicas ? { targetReplicas: p.targetReplicas } : {}),
      logStartOffset: d.offsets[i]?.logStartOffset ?? null,
      highWatermark: d.offsets[i]?.highWatermark ?? null,
      logEndOffset: d.offsets[i]?.logEndOffset ?? null,
      logFailure: d.offsets[i]?.logFailure ?? null,
    })),
  };
}

/**
 * The topic admin routes.
 *
 * @param broker the broker
 * @returns a Hono app to mount at `/v1/topics`
 * @example
 * ```ts
 * app.route("/v1/topics", topicRoutes(broker));
 * ```
 */
export function topicRoutes(broker: Broker): Hono {
  const app = new Hono();
  app.onError(onError);
  const limit = broker.config.maxRequestBytes;

  app.get("/", async (c) => {
    const topics = await broker.listTopics();
    return c.json({
      topics: topics.filter((t) => canDescribe(c, { type: "topic", name: t.name })).map((t) => ({
        name: t.name,
        partitions: t.partitions.length,
        replicationFactor: t.replicationFactor,
      })),
    });
  });

  app.post("/", async (c) => {
    const body = await readJsonObject(c, limit);
    checkFields(body, ["name", "partitions", "replicationFactor", "configs"]);
    if (body.name === undefined) throw new RillError("INVALID_REQUEST", `"name" is required`);
    if (typeof body.name !== "string") {
      throw new RillError("INVALID_REQUEST", `"name" must be a string`);
    }
    const name = validateTopicName(body.name);
    authorize(c, { type: "topic", name }, "create");
    await broker.createTopic({
      name,
      partitions: optionalNumber(body, "partitions"),
      replicationFactor: optionalNumber(body, "replicationFactor"),
      configs: body.configs as Record<string, string> | undefined,
    });
    return c.json(describeJson(await broker.describeTopic(name)), 201);
  });

  app.get("/:topic", async (c) => {
    authorize(c, { type: "topic", name: c.req.param("topic") }, "describe");
    const name = validateTopicName(c.req.param("topic"));
    return c.json(describeJson(await broker.describeTopic(name)));
  });

  app.patch("/:topic", async (c) => {
    authorize(c, { type: "topic", name: c.req.param("topic") }, "alter");
    const name = validateTopicName(c.req.param("topic"));
    const body = await readJsonObject(c, limit);
    checkFields(body, ["partitions", "configs"]);
    if (body.configs !== undefined && (body.configs === null || typeof body.configs !== "object")) {
      throw new RillError("INVALID_REQUEST", `"configs" must be an object`);
    }
    await broker.alterTopic(name, {
      partitions: optionalNumber(body, "partitions"),
      configs: body.configs as Record<string, string | null> | undefined,
    });
    return c.json(describeJson(await broker.describeTopic(name)));
  });

  app.post("/:topic/reassign", async (c) => {
    // Moving replicas is a cluster operation (Kafka: AlterPartitionReassignments needs ALTER on
    // the cluster).
    authorize(c, { type: "cluster", name: CLUSTER_RESOURCE }, "alter");
    const name = validateTopicName(c.req.param("topic"));
    const body = await readJsonObject(c, limit);
    checkFields(body, ["partitions"]);
    if (!Array.isArray(body.partitions) || body.partitions.length === 0) {
      throw new RillError(
        "INVALID_REQUEST",
        `"partitions" must be a non-empty array of {"partition","replicas"}`,
      );
    }
    const moves = body.partitions.map((m: unknown, i: number) => {
      const o = m as { partition?: unknown; replicas?: unknown };
      if (
        typeof o !== "object" || o === null || !Number.isSafeInteger(o.partition) ||
        (o.partition as number) < 0 || !Array.isArray(o.replicas) ||
        !o.replicas.every((id) => Number.isSafeInteger(id) && id >= 0)
      ) {
        throw new RillError(
          "INVALID_REQUEST",
          `partitions[${i}] must be {"partition": <int>, "replicas": [<broker id>, …]}`,
        );
      }
      return { partition: o.partition as number, replicas: o.replicas as number[] };
    });
    await broker.reassignPartitions(name, moves);
    return c.json(describeJson(await broker.describeTopic(name)), 202);
  });

  app.delete("/:topic", async (c) => {
    authorize(c, { type: "topic", name: c.req.param("topic") }, "delete");
    const name = validateTopicName(c.req.param("topic"));
    await broker.deleteTopic(name);
    return c.body(null, 204);
  });

  return app;
}
