/**
 * Idempotent producer routes, mounted at `/v1/producers`:
 *
 * ```
 * POST /                        body {} | {"producerKey": "…"} (alias "transactionalId")
 *                               200 {"producerId","producerEpoch"}
 * GET  /{producerId}?topic=T&partition=P
 *                               200 {"producerId","producerEpoch","lastSequence","baseOffset","lastOffset"}
 *                                   the producer's last batch in that partition, as the
 *                                   partition's replica here remembers it
 *                               404 NOT_FOUND when the partition has no state of that producer
 * ```
 *
 * Authorization (with auth on): the POST needs `idempotent_write` on the cluster or `write` on
 * at least one topic, as Kafka's InitProducerId since 3.0 (KIP-679); else 403
 * CLUSTER_AUTHORIZATION_FAILED. The GET needs `read` on the topic.
 *
 * Ids come from the KV counter (coordination/producer_ids.ts): any broker can answer. A
 * producer key gets the same id with the next epoch, fencing the key's older instance. The
 * GET reads the producer state the partition log keeps (rebuilt from the log itself after a
 * restart), which the streams API uses to find what a crashed task already wrote.
 *
 * @module
 */
import { Hono } from "hono";
import type { Broker } from "../../broker/broker.ts";
import { validateTopicName } from "../../coordination/topics.ts";
import { ProducerIdStore } from "../../coordination/producer_ids.ts";
import { RillError } from "../../protocol/errors.ts";
import { authorize, authorizeIdempotentWrite, principalOf } from "../auth.ts";
import { onError } from "../errors.ts";
import { intQuery, partitionParam, readJsonObject } from "../params.ts";

/**
 * The producer routes.
 *
 * @param broker the broker (its KV allocates ids; its replicas hold producer state)
 * @returns a Hono app to mount at `/v1/producers`
 * @example
 * ```ts
 * app.route("/v1/producers", producerRoutes(broker));
 * ```
 */
export function producerRoutes(broker: Broker): Hono {
  const app = new Hono();
  app.onError(onError);
  const store = new ProducerIdStore(broker.kv);

  app.post("/", async (c) => {
    authorizeIdempotentWrite(c);
    const raw = await readJsonObject(c, 64 * 1024);
    for (const k of Object.keys(raw)) {
      if (k !== "producerKey" && k !== "transactionalId") {
        throw new RillError("INVALID_REQUEST", `Unknown field "${k.slice(0, 50)}"`);
      }
    }
    const key = raw.producerKey ?? raw.transactionalId;
    if (key !== undefined && key !== null && typeof key !== "string") {
      throw new RillError("INVALID_REQUEST", `"producerKey" must be a string`);
    }
    // A producer key is scoped to the principal asking (as Kafka guards a transactional id
    // with an ACL): another principal using the same key gets its own id and cannot fence
    // this one by bumping the epoch. With auth off every caller is the same principal.
    const identity = await store.allocate(key ?? undefined, principalOf(c).name);
    broker.metrics.producerIds.inc();
    return c.json(identity);
  });

  app.get("/:producerId", async (c) => {
    authorize(c, { type: "topic", name: c.req.query("topic") ?? "" }, "read");
    const producerId = intQuery(c.req.param("producerId"), "producerId", 0);
    const topicRaw = c.req.query("topic");
    const partitionRaw = c.req.query("partition");
    if (topicRaw === undefined || partitionRaw === undefined) {
      throw new RillError(
        "INVALID_REQUEST",
        `Query parameters "topic" and "partition" are required`,
      );
    }
    const topic = validateTopicName(topicRaw);
    const partition = partitionParam(partitionRaw);
    const replica = await broker.replica(topic, partition);
    const entry = replica.log.producerState(producerId);
    const last = entry?.batches.at(-1);
    if (!entry || !last) {
      throw new RillError(
        "NOT_FOUND",
        `Partition ${topic}-${partition} has no state of producer ${producerId}`,
      );
    }
    return c.json({
      producerId,
      producerEpoch: entry.producerEpoch,
      lastSequence: last.lastSequence,
      baseOffset: last.baseOffset,
      lastOffset: last.lastOffset,
    });
  });

  return app;
}
