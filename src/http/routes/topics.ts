/**
 * Topic admin routes, mounted at `/v1/topics`:
 *
 * ```
 * GET    /              {"topics":[{"name","partitions","replicationFactor"}]}
 * POST   /              {"name","partitions"?,"replicationFactor"?,"configs"?} → 201 description
 * GET    /{topic}       description
 * PATCH  /{topic}       {"partitions"?,"configs"?} → 200 description (a null config removes it)
 * DELETE /{topic}       204
 * ```
 *
 * A description: `{"name","topicId","replicationFactor","configs","partitions":[{"partition",
 * "leader","replicas","isr","leaderEpoch","logStartOffset","highWatermark"}]}`; the offsets
 * are null for partitions this broker does not host.
 *
 * @module
 */
import { Hono } from "hono";
import type { Broker, TopicDescription } from "../../broker/broker.ts";
import { validateTopicName } from "../../coordination/topics.ts";
import { RillError } from "../../protocol/errors.ts";
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
      logStartOffset: d.offsets[i]?.logStartOffset ?? null,
      highWatermark: d.offsets[i]?.highWatermark ?? null,
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
      topics: topics.map((t) => ({
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
    await broker.createTopic({
      name,
      partitions: optionalNumber(body, "partitions"),
      replicationFactor: optionalNumber(body, "replicationFactor"),
      configs: body.configs as Record<string, string> | undefined,
    });
    return c.json(describeJson(await broker.describeTopic(name)), 201);
  });

  app.get("/:topic", async (c) => {
    const name = validateTopicName(c.req.param("topic"));
    return c.json(describeJson(await broker.describeTopic(name)));
  });

  app.patch("/:topic", async (c) => {
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

  app.delete("/:topic", async (c) => {
    const name = validateTopicName(c.req.param("topic"));
    await broker.deleteTopic(name);
    return c.body(null, 204);
  });

  return app;
}
