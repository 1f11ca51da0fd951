/**
 * Admin APIs over the broker's topic operations, and the producer-id API:
 * CreateTopics (19), DeleteTopics (20), CreatePartitions (37), DescribeConfigs (32) and
 * InitProducerId (22, ids from the same KV store as `POST /v1/producers`).
 *
 * @module
 */
import { validateTopicConfigs } from "../coordination/topic_configs.ts";
import { ProducerIdStore } from "../coordination/producer_ids.ts";
import { RillError } from "../protocol/errors.ts";
import { allowed, CLUSTER, type KafkaContext, type Session } from "./context.ts";
import { KAFKA_ERROR, kafkaCode, kafkaMessage } from "./errors.ts";
import { topicIds, uuidBytes } from "./topic_ids.ts";

// deno-lint-ignore no-explicit-any
type Body = any;

/**
 * CreateTopics: partitions −1 means 1 and replication factor −1 means 1 (Rill's defaults);
 * manual replica assignments are refused (INVALID_REQUEST).
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleCreateTopics(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const topics = [];
  for (const t of req.topics as Body[]) {
    const partitions = t.numPartitions === -1 ? 1 : t.numPartitions;
    const replicationFactor = t.replicationFactor === -1 ? 1 : t.replicationFactor;
    const out = {
      name: t.name,
      topicId: null as Uint8Array | null,
      errorCode: 0,
      errorMessage: null as string | null,
      numPartitions: partitions,
      replicationFactor,
      configs: [] as unknown[],
    };
    try {
      if (!allowed(ctx, s, { type: "topic", name: t.name }, "create")) {
        throw new RillError(
          "TOPIC_AUTHORIZATION_FAILED",
          `Not authorized to create topic "${t.name}"`,
        );
      }
      if (t.assignments.length > 0) {
        throw new RillError(
          "INVALID_REQUEST",
          "Manual replica assignments are not supported; give a partition count and replication factor",
        );
      }
      const configs: Record<string, string> = {};
      for (const c of t.configs as { name: string; value: string | null }[]) {
        if (c.value !== null) configs[c.name] = c.value;
      }
      if (req.validateOnly) {
        validateTopicConfigs(configs);
        if ((await ctx.broker.partitionCount(t.name)) !== null) {
          throw new RillError("TOPIC_ALREADY_EXISTS", `Topic "${t.name}" already exists`);
        }
      } else {
        const meta = await ctx.broker.createTopic({
          name: t.name,
          partitions,
          replicationFactor,
          configs,
        });
        out.topicId = uuidBytes(meta.topicId); // v7+
      }
    } catch (e) {
      out.errorCode = kafkaCode(e);
      out.errorMessage = kafkaMessage(e);
    }
    topics.push(out);
  }
  return { throttleTimeMs: 0, topics };
}

/**
 * DeleteTopics: by name (v0–5), or by name or id (v6+; an id no topic has is
 * UNKNOWN_TOPIC_ID).
 *
 * @param ctx the context
 * @param s the session
 * @param version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleDeleteTopics(
  ctx: KafkaContext,
  s: Session,
  version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const wanted: { name: string | null; topicId: Uint8Array | null }[] = version >= 6
    ? req.topics
    : (req.topicNames as string[]).map((name) => ({ name, topicId: null }));
  const ids = topicIds(ctx.broker);
  const responses = [];
  for (const w of wanted) {
    const out = {
      name: w.name,
      topicId: w.topicId,
      errorCode: 0,
      errorMessage: null as string | null,
    };
    try {
      let name = w.name;
      if (name === null) {
        name = await ids.name(w.topicId ?? new Uint8Array(16));
        if (name === null) {
          out.errorCode = KAFKA_ERROR.UNKNOWN_TOPIC_ID;
          out.errorMessage = "No topic has this topic id";
          responses.push(out);
          continue;
        }
        out.name = name;
      } else if (version >= 6) out.topicId = await ids.id(name);
      if (!allowed(ctx, s, { type: "topic", name }, "delete")) {
        throw new RillError("TOPIC_AUTHORIZATION_FAILED", `Not authorized to delete "${name}"`);
      }
      await ctx.broker.deleteTopic(name);
    } catch (e) {
      out.errorCode = kafkaCode(e);
      out.errorMessage = kafkaMessage(e);
    }
    responses.push(out);
  }
  return { throttleTimeMs: 0, responses };
}

/**
 * CreatePartitions: grows a topic to `count` partitions (assignments are refused).
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleCreatePartitions(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const results = [];
  for (const t of req.topics as Body[]) {
    const out = { name: t.name, errorCode: 0, errorMessage: null as string | null };
    try {
      if (!allowed(ctx, s, { type: "topic", name: t.name }, "alter")) {
        throw new RillError("TOPIC_AUTHORIZATION_FAILED", `Not authorized to alter "${t.name}"`);
      }
      if (t.assignments !== null && t.assignments.length > 0) {
        throw new RillError("INVALID_REQUEST", "Manual replica assignments are not supported");
      }
      const current = await ctx.broker.partitionCount(t.name);
      if (current === null) {
        throw new RillError("UNKNOWN_TOPIC_OR_PARTITION", `Topic "${t.name}" does not exist`);
      }
      if (t.count <= current) {
        throw new RillError(
          "INVALID_PARTITIONS",
          `Topic "${t.name}" has ${current} partitions; the new count must be larger, got ${t.count}`,
        );
      }
      if (!req.validateOnly) await ctx.broker.alterTopic(t.name, { partitions: t.count });
    } catch (e) {
      out.errorCode = kafkaCode(e);
      out.errorMessage = kafkaMessage(e);
    }
    results.push(out);
  }
  return { throttleTimeMs: 0, results };
}

const TOPIC = 2;
const BROKER = 4;
const SOURCE_TOPIC = 1;

/**
 * DescribeConfigs: a topic's explicit configs (source TOPIC_CONFIG); a broker resource
 * answers an empty list.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleDescribeConfigs(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const results = [];
  for (const r of req.resources as Body[]) {
    const out = {
      errorCode: 0,
      errorMessage: null as string | null,
      resourceType: r.resourceType,
      resourceName: r.resourceName,
      configs: [] as unknown[],
    };
    try {
      if (r.resourceType === TOPIC) {
        if (!allowed(ctx, s, { type: "topic", name: r.resourceName }, "describe")) {
          throw new RillError(
            "TOPIC_AUTHORIZATION_FAILED",
            `Not authorized to describe "${r.resourceName}"`,
          );
        }
        const d = await ctx.broker.describeTopic(r.resourceName);
        const keys: string[] | null = r.configurationKeys;
        for (const [name, value] of Object.entries(d.meta.configs)) {
          if (keys !== null && keys.length > 0 && !keys.includes(name)) continue;
          out.configs.push({
            name,
            value,
            readOnly: false,
            isDefault: false,
            configSource: SOURCE_TOPIC,
            isSensitive: false,
            synonyms: [],
            configType: 0,
            documentation: null,
          });
        }
      } else if (r.resourceType !== BROKER) {
        throw new RillError(
          "INVALID_REQUEST",
          `Resource type ${r.resourceType} is not supported (2 topic, 4 broker)`,
        );
      }
    } catch (e) {
      out.errorCode = kafkaCode(e);
      out.errorMessage = kafkaMessage(e);
    }
    results.push(out);
  }
  return { throttleTimeMs: 0, results };
}

const stores = new WeakMap<Deno.Kv, ProducerIdStore>();

/**
 * InitProducerId: a producer id and epoch from the cluster's producer-id store (a
 * transactional id acts as a producer key: the same id with the next epoch, fencing the
 * older instance). Needs `idempotent_write` on the cluster or `write` on some topic.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleInitProducerId(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const sec = ctx.security;
  if (
    sec !== null && sec.auth && s.principal && !s.principal.superuser &&
    !sec.allowed(s.principal, CLUSTER, "idempotent_write") &&
    !sec.allowedOnAny(s.principal, "topic", "write")
  ) {
    allowed(ctx, s, CLUSTER, "idempotent_write"); // audits the denial
    return {
      throttleTimeMs: 0,
      errorCode: KAFKA_ERROR.CLUSTER_AUTHORIZATION_FAILED,
      producerId: -1,
      producerEpoch: -1,
    };
  }
  let store = stores.get(ctx.broker.kv);
  if (!store) stores.set(ctx.broker.kv, store = new ProducerIdStore(ctx.broker.kv));
  try {
    const id = await store.allocate(req.transactionalId ?? undefined, s.principal?.name ?? "");
    return { throttleTimeMs: 0, errorCode: 0, ...id };
  } catch (e) {
    return { throttleTimeMs: 0, errorCode: kafkaCode(e), producerId: -1, producerEpoch: -1 };
  }
}
