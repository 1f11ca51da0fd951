/**
 * Fetch (API 1), ListOffsets (API 2) and OffsetForLeaderEpoch (API 23): reads through the
 * broker (committed batches up to the high watermark, whole batches served byte for byte,
 * long-polling on max wait / min bytes), per-partition errors from the RillError codes.
 * There are no transactions, so the last stable offset is the high watermark and no
 * transaction is ever aborted.
 *
 * Fetch from follower (KIP-392): a Fetch v11+ to a partition's leader naming the consumer's
 * rack (`client.rack`) gets, for each partition an observer in that rack can serve, no records
 * and that observer as `preferred_read_replica` (read_replica.ts chooses), and the client
 * fetches from it; an answer with such a partition does not wait (as Kafka's).
 *
 * @module
 */
import type { FetchManyResult, FetchPartitionRequest } from "../broker/fetch_session.ts";
import { preferredReadReplica, type ReadReplicaNode } from "../broker/read_replica.ts";
import { RillError } from "../protocol/errors.ts";
import { allowed, type KafkaContext, type Session } from "./context.ts";
import { KAFKA_ERROR, kafkaCode } from "./errors.ts";
import { topicIds, uuidHex, ZERO_ID } from "./topic_ids.ts";

interface FetchPartitionReq {
  partition: number;
  fetchOffset: number;
  partitionMaxBytes: number;
}

/** Set on an answer body whose bytes are lent: called once the answer was written. */
export const RELEASE: unique symbol = Symbol("release");

/**
 * Fetch, on the broker's fetch-session core (`Broker.fetchMany`): one wait over all the
 * partitions, per-partition byte limits and the request's total, KIP-227 sessions when the
 * client opens one (session id 0 with epoch −1 is a one-off full fetch). From v13 topics are
 * named by id (topic_ids.ts): an id no topic has answers UNKNOWN_TOPIC_ID for its partitions.
 *
 * @param ctx the context
 * @param s the session
 * @param version the request version
 * @param req the decoded request
 * @returns the answer body (its bytes are lent until {@linkcode RELEASE} is called)
 */
export async function handleFetch(
  ctx: KafkaContext,
  s: Session,
  version: number,
  // deno-lint-ignore no-explicit-any
  req: any,
): Promise<Record<string, unknown>> {
  const broker = ctx.broker;
  const byId = version >= 13;
  const ids = byId ? topicIds(broker) : null;
  const topics = req.topics as {
    topic: string;
    topicId: Uint8Array | null;
    partitions: FetchPartitionReq[];
  }[];
  const failed: { topic: string; partition: number; errorCode: number }[] = [];
  const unknownIds: { topicId: Uint8Array; partitions: number[] }[] = [];
  const partitions: FetchPartitionRequest[] = [];
  for (const t of topics) {
    let name = t.topic;
    if (ids) {
      const found = await ids.name(t.topicId!);
      if (found === null) {
        unknownIds.push({
          topicId: t.topicId!.slice(),
          partitions: t.partitions.map((p) => p.partition),
        });
        continue;
      }
      name = found;
    }
    const mayRead = allowed(ctx, s, { type: "topic", name }, "read");
    for (const p of t.partitions) {
      if (!mayRead) {
        failed.push({
          topic: name,
          partition: p.partition,
          errorCode: KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED,
        });
      } else {
        partitions.push({
          topic: name,
          partition: p.partition,
          offset: p.fetchOffset,
          maxBytes: Math.max(1, p.partitionMaxBytes),
        });
      }
    }
  }
  if (version >= 11 && typeof req.rackId === "string" && req.rackId !== "") {
    s.clientRack = req.rackId;
  }
  const redirected = await readReplicas(ctx, version, req.rackId, partitions);
  if (redirected.length > 0) {
    const moved = new Set(redirected.map((r) => `${r.partition}:${r.topic}`));
    const kept = partitions.filter((p) => !moved.has(`${p.partition}:${p.topic}`));
    partitions.length = 0;
    partitions.push(...kept);
  }
  const forgotten: { topic: string; partition: number }[] = [];
  for (
    const t of req.forgottenTopicsData as {
      topic: string;
      topicId: Uint8Array | null;
      partitions: number[];
    }[]
  ) {
    // A forgotten id no topic has any more: nothing of it is left to forget.
    const name = ids ? await ids.name(t.topicId!) : t.topic;
    if (name !== null) {
      for (const partition of t.partitions) forgotten.push({ topic: name, partition });
    }
  }
  const sessionId = req.sessionId as number, sessionEpoch = req.sessionEpoch as number;
  const session = sessionId === 0 && sessionEpoch === -1
    ? undefined
    : { id: sessionId, epoch: sessionEpoch };
  let result: FetchManyResult;
  try {
    result = await broker.fetchMany({
      partitions,
      maxWaitMs: redirected.length > 0
        ? 0
        : Math.max(0, Math.min(req.maxWaitMs as number, broker.config.fetchMaxWaitLimitMs)),
      minBytes: Math.max(0, req.minBytes as number),
      maxBytes: Math.max(1, Math.min(req.maxBytes as number, broker.config.fetchMaxBytesLimit)),
      session,
      forgotten,
    });
  } catch (e) {
    if (!(e instanceof RillError)) ctx.log(`kafka: fetch failed: ${e}`);
    return { throttleTimeMs: 0, errorCode: kafkaCode(e), sessionId: 0, responses: [] };
  }
  const byTopic = new Map<string, unknown[]>();
  const add = (topic: string, part: unknown) => {
    let list = byTopic.get(topic);
    if (!list) byTopic.set(topic, list = []);
    list.push(part);
  };
  for (const f of failed) add(f.topic, emptyPartition(f.partition, f.errorCode));
  const sent = new Set<string>();
  for (const r of redirected) {
    sent.add(`${r.partition}:${r.topic}`);
    add(r.topic, {
      partitionIndex: r.partition,
      errorCode: 0,
      highWatermark: r.highWatermark,
      lastStableOffset: r.highWatermark,
      logStartOffset: r.logStartOffset,
      abortedTransactions: null,
      preferredReadReplica: r.replicaId,
      records: EMPTY,
    });
  }
  for (const p of result.partitions) {
    // A session may still read a redirected partition: its redirect answers for it.
    if (sent.size > 0 && sent.has(`${p.partition}:${p.topic}`)) continue;
    if (p.error && !(p.error instanceof RillError)) {
      ctx.log(`kafka: fetch of ${p.topic}-${p.partition} failed: ${p.error}`);
    }
    add(p.topic, {
      partitionIndex: p.partition,
      errorCode: p.error ? kafkaCode(p.error) : 0,
      highWatermark: p.highWatermark,
      lastStableOffset: p.lastStableOffset,
      logStartOffset: p.logStartOffset,
      abortedTransactions: null,
      preferredReadReplica: -1,
      records: p.bytes,
    });
  }
  const responses: { topic: string; topicId: Uint8Array | null; partitions: unknown[] }[] = [];
  for (const [topic, parts] of byTopic) {
    // v13+: the answer names topics by id (a session's partitions may be of earlier requests;
    // those of a topic deleted since answer UNKNOWN_TOPIC_ID under the id it had).
    let topicId: Uint8Array | null = null;
    if (ids) {
      topicId = await ids.id(topic);
      if (uuidHex(topicId) === ZERO_ID) {
        topicId = ids.formerId(topic) ?? topicId;
        for (const p of parts as { errorCode: number }[]) {
          p.errorCode = KAFKA_ERROR.UNKNOWN_TOPIC_ID;
        }
      }
    }
    responses.push({ topic, topicId, partitions: parts });
  }
  for (const u of unknownIds) {
    responses.push({
      topic: "",
      topicId: u.topicId,
      partitions: u.partitions.map((p) => emptyPartition(p, KAFKA_ERROR.UNKNOWN_TOPIC_ID)),
    });
  }
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: result.session?.id ?? 0,
    responses,
    [RELEASE]: () => result.release(),
  };
}

/** A partition a consumer is sent to another replica for. */
interface Redirect {
  topic: string;
  partition: number;
  replicaId: number;
  highWatermark: number;
  logStartOffset: number;
}

const NODES_TTL_MS = 1000;
const nodeCache = new WeakMap<KafkaContext, { at: number; nodes: Map<number, ReadReplicaNode> }>();

/** The registrations by id, read at most once a second per listener. */
async function registrations(ctx: KafkaContext): Promise<Map<number, ReadReplicaNode>> {
  const now = Date.now();
  const cached = nodeCache.get(ctx);
  if (cached && now - cached.at < NODES_TTL_MS) return cached.nodes;
  const nodes = new Map<number, ReadReplicaNode>();
  for (const b of await ctx.broker.brokers()) nodes.set(b.id, b);
  nodeCache.set(ctx, { at: now, nodes });
  return nodes;
}

/**
 * The partitions led here that a consumer in `rack` should fetch from an observer in its
 * rack (KIP-392): only for Fetch v11+ naming a rack other than this broker's.
 */
async function readReplicas(
  ctx: KafkaContext,
  version: number,
  rack: unknown,
  partitions: readonly FetchPartitionRequest[],
): Promise<Redirect[]> {
  const broker = ctx.broker;
  if (
    version < 11 || typeof rack !== "string" || rack === "" || broker.role !== "broker" ||
    broker.rack === rack
  ) return [];
  const out: Redirect[] = [];
  let nodes: Map<number, ReadReplicaNode> | null = null;
  const now = Date.now();
  for (const p of partitions) {
    let replica;
    try {
      replica = await broker.replica(p.topic, p.partition);
    } catch {
      continue; // the fetch itself answers the error
    }
    if (replica.role !== "leader" || replica.observers().size === 0) continue;
    // An offset out of range here is answered here (the client resets it, not a replica).
    if (p.offset < replica.logStartOffset || p.offset > replica.highWatermark) continue;
    nodes ??= await registrations(ctx);
    const id = preferredReadReplica({
      clientRack: rack,
      fetchOffset: p.offset,
      leaderRack: broker.rack,
      observers: replica.observers(),
      nodes,
      now,
      lagMaxMs: broker.config.replicaLagTimeMaxMs,
    });
    if (id === null) continue;
    out.push({
      topic: p.topic,
      partition: p.partition,
      replicaId: id,
      highWatermark: replica.highWatermark,
      logStartOffset: replica.logStartOffset,
    });
  }
  return out;
}

function emptyPartition(partition: number, errorCode: number) {
  return {
    partitionIndex: partition,
    errorCode,
    highWatermark: -1,
    lastStableOffset: -1,
    logStartOffset: -1,
    abortedTransactions: null,
    preferredReadReplica: -1,
    records: EMPTY,
  };
}

const EMPTY = new Uint8Array(0);

/**
 * ListOffsets: timestamp −2 is the log start offset, −1 the high watermark, else the first
 * offset whose timestamp is at or after it (the high watermark when none is that recent).
 * The special timestamps of ListOffsets 7+ (−3, −4, −5) answer UNSUPPORTED_VERSION.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleListOffsets(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  // deno-lint-ignore no-explicit-any
  req: any,
): Promise<Record<string, unknown>> {
  const topics = [];
  for (
    const t of req.topics as {
      name: string;
      partitions: { partitionIndex: number; timestamp: number }[];
    }[]
  ) {
    const mayDescribe = allowed(ctx, s, { type: "topic", name: t.name }, "describe");
    const partitions = [];
    for (const p of t.partitions) {
      const out = {
        partitionIndex: p.partitionIndex,
        errorCode: 0,
        oldStyleOffsets: [] as number[],
        timestamp: -1,
        offset: -1,
        leaderEpoch: -1,
      };
      if (!mayDescribe) out.errorCode = KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED;
      else if (p.timestamp < -2) {
        // −3 max timestamp (v7+), −4 earliest local (v8+), −5 latest tiered (v9+): versions
        // not served, so the spec is refused as Kafka refuses it below those versions.
        out.errorCode = KAFKA_ERROR.UNSUPPORTED_VERSION;
      } else {
        try {
          const at = p.timestamp === -2
            ? "earliest"
            : p.timestamp === -1
            ? "latest"
            : { timestamp: p.timestamp };
          out.offset = await ctx.broker.listOffset(t.name, p.partitionIndex, at);
          out.oldStyleOffsets = [out.offset];
          const replica = await ctx.broker.readableReplica(t.name, p.partitionIndex);
          out.leaderEpoch = replica.leaderEpoch;
          if (typeof at === "object") out.timestamp = p.timestamp;
        } catch (e) {
          out.errorCode = kafkaCode(e);
        }
      }
      partitions.push(out);
    }
    topics.push({ name: t.name, partitions });
  }
  return { throttleTimeMs: 0, topics };
}

/**
 * OffsetForLeaderEpoch: the largest epoch ≤ the asked one the leader knows, and where it
 * ends (clients use it to detect log truncation after a leader change).
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleOffsetForLeaderEpoch(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  // deno-lint-ignore no-explicit-any
  req: any,
): Promise<Record<string, unknown>> {
  const topics = [];
  for (
    const t of req.topics as {
      topic: string;
      partitions: { partition: number; leaderEpoch: number }[];
    }[]
  ) {
    const mayDescribe = allowed(ctx, s, { type: "topic", name: t.topic }, "describe");
    const partitions = [];
    for (const p of t.partitions) {
      const out = { errorCode: 0, partition: p.partition, leaderEpoch: -1, endOffset: -1 };
      if (!mayDescribe) out.errorCode = KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED;
      else {
        try {
          const r = await ctx.broker.epochEndOffset(t.topic, p.partition, p.leaderEpoch);
          out.leaderEpoch = r.epoch;
          out.endOffset = r.endOffset;
        } catch (e) {
          out.errorCode = kafkaCode(e);
        }
      }
      partitions.push(out);
    }
    topics.push({ topic: t.topic, partitions });
  }
  return { throttleTimeMs: 0, topics };
}
