/**
 * Metadata (API 3): the live brokers' Kafka addresses and racks (`--rack`, v1+), and per topic
 * its partitions' leader, replicas, ISR and leader epoch, from the broker's metadata cache. Topics the
 * principal may not describe are left out of "all topics" and answered
 * TOPIC_AUTHORIZATION_FAILED when named. Unknown topics are not created (Rill creates
 * topics only on request).
 *
 * @module
 */
import type { TopicMetadata } from "../coordination/topics.ts";
import { allowed, type KafkaContext, type Session } from "./context.ts";
import { KAFKA_ERROR } from "./errors.ts";
import { splitHostPort } from "./listener.ts";
import { uuidBytes, uuidHex, ZERO_ID } from "./topic_ids.ts";

/** A broker as Metadata and FindCoordinator give it. */
export interface KafkaNode {
  /** the broker id */
  nodeId: number;
  /** the host */
  host: string;
  /** the port */
  port: number;
  /** "broker" (may coordinate groups) or "follower" */
  role: "broker" | "follower";
  /** the rack (`--rack`) it declared, or null */
  rack: string | null;
}

/**
 * The live brokers with a Kafka listener (this one always included).
 *
 * @param ctx the context
 * @returns nodes sorted by id
 */
export async function kafkaNodes(ctx: KafkaContext): Promise<KafkaNode[]> {
  const self: KafkaNode = {
    nodeId: ctx.broker.id,
    host: ctx.advertisedHost,
    port: ctx.advertisedPort,
    role: ctx.broker.role,
    rack: ctx.broker.rack ?? null,
  };
  const out: KafkaNode[] = [];
  for (const b of await ctx.broker.brokers()) {
    if (b.id === self.nodeId) continue;
    if (!b.alive || !b.kafka) continue;
    try {
      const [host, port] = splitHostPort(b.kafka);
      out.push({ nodeId: b.id, host, port, role: b.role, rack: b.rack ?? null });
    } catch {
      // a malformed registration is skipped
    }
  }
  out.push(self);
  return out.sort((a, b) => a.nodeId - b.nodeId);
}

/** A topic as a follower presents it: itself the leader of each partition it copies. */
async function ownCopies(ctx: KafkaContext, meta: TopicMetadata): Promise<TopicMetadata> {
  const id = ctx.broker.id;
  const partitions = await Promise.all(meta.partitions.map(async (p) => {
    try {
      await ctx.broker.readableReplica(meta.name, p.partition);
      return { ...p, leader: id, replicas: [id], isr: [id] };
    } catch {
      return { ...p, leader: -1, replicas: [], isr: [] };
    }
  }));
  return { ...meta, partitions };
}

function topicAnswer(meta: TopicMetadata, nodes: Set<number>) {
  return {
    errorCode: 0,
    name: meta.name,
    topicId: uuidBytes(meta.topicId),
    isInternal: false,
    partitions: meta.partitions.map((p) => ({
      errorCode: p.leader < 0 || !nodes.has(p.leader) ? KAFKA_ERROR.LEADER_NOT_AVAILABLE : 0,
      partitionIndex: p.partition,
      leaderId: p.leader,
      leaderEpoch: p.leaderEpoch,
      replicaNodes: p.replicas,
      isrNodes: p.isr,
      offlineReplicas: p.replicas.filter((r) => !nodes.has(r)),
    })),
    topicAuthorizedOperations: -2147483648,
  };
}

/**
 * Metadata.
 *
 * @param ctx the context
 * @param s the session
 * @param version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleMetadata(
  ctx: KafkaContext,
  s: Session,
  version: number,
  // deno-lint-ignore no-explicit-any
  req: any,
): Promise<Record<string, unknown>> {
  // A follower (observer) is read-only: it lists itself alone, as the leader of the copies it
  // serves, so consumers bootstrapped at it fetch from it; produce requests get
  // NOT_LEADER_OR_FOLLOWER. A connection whose fetches name the follower's rack is a KIP-392
  // client the leader sent here (preferred read replica): it gets the cluster's Metadata, as
  // from any broker, so it keeps the real leaders (librdkafka refreshes metadata from the
  // connection it uses most, which is this one) and goes back to them when this copy lags.
  const follower = ctx.broker.role === "follower" &&
    !(s.clientRack !== undefined && s.clientRack === ctx.broker.rack);
  const nodes = follower
    ? (await kafkaNodes(ctx)).filter((n) => n.nodeId === ctx.broker.id)
    : await kafkaNodes(ctx);
  const live = new Set(nodes.map((n) => n.nodeId));
  let all = await ctx.broker.listTopics();
  if (follower) all = await Promise.all(all.map((t) => ownCopies(ctx, t)));
  const byName = new Map(all.map((t) => [t.name, t]));
  const wanted: { name: string | null; topicId: Uint8Array | null }[] | null = req.topics;
  const topics = [];
  if (wanted === null || (version === 0 && wanted.length === 0)) {
    for (const t of all) {
      if (allowed(ctx, s, { type: "topic", name: t.name }, "describe", false)) {
        topics.push(topicAnswer(t, live));
      }
    }
  } else {
    for (const w of wanted) {
      let meta = w.name !== null ? byName.get(w.name) : undefined;
      // v10+ may name a topic by id alone (name null); an id no topic has is UNKNOWN_TOPIC_ID.
      const byId = w.name === null && w.topicId !== null && uuidHex(w.topicId) !== ZERO_ID;
      if (byId) {
        const hex = uuidHex(w.topicId!);
        meta = all.find((t) => uuidHex(uuidBytes(t.topicId)) === hex);
      }
      const name = meta?.name ?? w.name ?? "";
      if (byId && !meta) {
        topics.push({
          errorCode: KAFKA_ERROR.UNKNOWN_TOPIC_ID,
          name: version >= 12 ? null : "", // nullable from v12
          topicId: w.topicId,
          partitions: [],
        });
      } else if (!allowed(ctx, s, { type: "topic", name }, "describe")) {
        topics.push({
          errorCode: KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED,
          name,
          topicId: w.topicId,
          partitions: [],
        });
      } else if (!meta) {
        topics.push({
          errorCode: KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION,
          name: w.name,
          topicId: w.topicId,
          partitions: [],
        });
      } else topics.push(topicAnswer(meta, live));
    }
  }
  return {
    throttleTimeMs: 0,
    brokers: nodes.map((n) => ({ nodeId: n.nodeId, host: n.host, port: n.port, rack: n.rack })),
    clusterId: ctx.broker.clusterId,
    controllerId: nodes[0]?.nodeId ?? ctx.broker.id,
    topics,
    clusterAuthorizedOperations: -2147483648,
  };
}
