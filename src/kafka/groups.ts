/**
 * The group APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12), LeaveGroup (13),
 * SyncGroup (14), OffsetCommit (8), OffsetFetch (9), DescribeGroups (15), ListGroups (16),
 * DeleteGroups (42).
 * Membership and rebalances run in group_coordinator.ts on the group's coordinator (one
 * live broker per group, picked by a hash of the group id); committed offsets are the KV
 * group store's, shared with Rill consumers.
 *
 * @module
 */
import { commitClassicOffsets, readCommittedOffsets } from "../coordination/group_classic.ts";
import { GroupMembership } from "../coordination/group_membership.ts";
import { GroupOffsets, pendingKey } from "../coordination/group_offsets.ts";
import { RillError } from "../protocol/errors.ts";
import { allowed, type KafkaContext, type Session } from "./context.ts";
import { KAFKA_ERROR, kafkaCode, kafkaMessage } from "./errors.ts";
import { type KafkaNode, kafkaNodes } from "./metadata.ts";

// deno-lint-ignore no-explicit-any
type Body = any;

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The coordinator of a group: one of the live brokers (not followers) with a Kafka
 * listener, by a hash of the group id.
 *
 * @param ctx the context
 * @param groupId the group
 * @returns the node, or null when there is none
 */
export async function coordinatorOf(ctx: KafkaContext, groupId: string): Promise<KafkaNode | null> {
  const nodes = (await kafkaNodes(ctx)).filter((n) => n.role === "broker");
  if (nodes.length === 0) return null;
  return nodes[fnv1a(groupId) % nodes.length];
}

async function isCoordinator(ctx: KafkaContext, groupId: string): Promise<boolean> {
  return (await coordinatorOf(ctx, groupId))?.nodeId === ctx.broker.id;
}

/**
 * FindCoordinator: groups only (transactions are not supported).
 *
 * @param ctx the context
 * @param s the session
 * @param version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleFindCoordinator(
  ctx: KafkaContext,
  s: Session,
  version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const keys: string[] = version >= 4 ? req.coordinatorKeys : [req.key];
  const coordinators = [];
  for (const key of keys) {
    const out = {
      key,
      nodeId: -1,
      host: "",
      port: -1,
      errorCode: 0,
      errorMessage: null as string | null,
    };
    if (req.keyType !== 0) {
      out.errorCode = KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE;
      out.errorMessage = "Only consumer groups have coordinators (no transactions or share groups)";
    } else if (!allowed(ctx, s, { type: "group", name: key }, "describe")) {
      out.errorCode = KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED;
      out.errorMessage = `Not authorized to use group "${key}"`;
    } else {
      const node = await coordinatorOf(ctx, key);
      if (!node) out.errorCode = KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE;
      else Object.assign(out, { nodeId: node.nodeId, host: node.host, port: node.port });
    }
    coordinators.push(out);
  }
  return { throttleTimeMs: 0, ...coordinators[0], coordinators };
}

/**
 * JoinGroup.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleJoinGroup(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const fail = (errorCode: number) => ({
    throttleTimeMs: 0,
    errorCode,
    generationId: -1,
    protocolType: null,
    protocolName: null,
    leader: "",
    memberId: req.memberId,
    members: [],
  });
  if (!allowed(ctx, s, { type: "group", name: req.groupId }, "read")) {
    return fail(KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED);
  }
  if (!(await isCoordinator(ctx, req.groupId))) return fail(KAFKA_ERROR.NOT_COORDINATOR);
  const a = await ctx.groups.join({
    groupId: req.groupId,
    memberId: req.memberId,
    clientId: s.clientId,
    clientHost: s.peer,
    sessionTimeoutMs: req.sessionTimeoutMs,
    rebalanceTimeoutMs: req.rebalanceTimeoutMs,
    protocolType: req.protocolType,
    protocols: req.protocols,
  });
  return { throttleTimeMs: 0, ...a };
}

/**
 * SyncGroup.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleSyncGroup(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  if (!allowed(ctx, s, { type: "group", name: req.groupId }, "read")) {
    return { errorCode: KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED, assignment: new Uint8Array(0) };
  }
  if (!(await isCoordinator(ctx, req.groupId))) {
    return { errorCode: KAFKA_ERROR.NOT_COORDINATOR, assignment: new Uint8Array(0) };
  }
  return { throttleTimeMs: 0, ...await ctx.groups.sync(req) };
}

/**
 * Heartbeat.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleHeartbeat(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  if (!allowed(ctx, s, { type: "group", name: req.groupId }, "read")) {
    return { throttleTimeMs: 0, errorCode: KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED };
  }
  if (!ctx.groups.get(req.groupId) && !(await isCoordinator(ctx, req.groupId))) {
    return { throttleTimeMs: 0, errorCode: KAFKA_ERROR.NOT_COORDINATOR };
  }
  return {
    throttleTimeMs: 0,
    errorCode: ctx.groups.heartbeat(req.groupId, req.memberId, req.generationId),
  };
}

/**
 * LeaveGroup (v0–2 one member, v3+ a list).
 *
 * @param ctx the context
 * @param s the session
 * @param version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleLeaveGroup(
  ctx: KafkaContext,
  s: Session,
  version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  if (!allowed(ctx, s, { type: "group", name: req.groupId }, "read")) {
    return { throttleTimeMs: 0, errorCode: KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED, members: [] };
  }
  if (!ctx.groups.get(req.groupId) && !(await isCoordinator(ctx, req.groupId))) {
    return { throttleTimeMs: 0, errorCode: KAFKA_ERROR.NOT_COORDINATOR, members: [] };
  }
  if (version < 3) {
    return { throttleTimeMs: 0, errorCode: ctx.groups.leave(req.groupId, req.memberId) };
  }
  const members = (req.members as { memberId: string; groupInstanceId: string | null }[]).map(
    (m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      errorCode: ctx.groups.leave(req.groupId, m.memberId),
    }),
  );
  return { throttleTimeMs: 0, errorCode: 0, members };
}

/**
 * OffsetCommit: fenced by the coordinator (member, generation); a member's commit is answered
 * once in the broker's offset commit log, which copies it into the shared offset records
 * behind the answer (broker/offset_commit_log.ts); a simple commit is written there first.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleOffsetCommit(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const topics = req.topics as {
    name: string;
    partitions: {
      partitionIndex: number;
      committedOffset: number;
      committedMetadata: string | null;
    }[];
  }[];
  const answer = (code: (topic: string, partition: number) => number) => ({
    throttleTimeMs: 0,
    topics: topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        errorCode: code(t.name, p.partitionIndex),
      })),
    })),
  });
  if (!allowed(ctx, s, { type: "group", name: req.groupId }, "read")) {
    return answer(() => KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED);
  }
  if (!ctx.groups.get(req.groupId) && !(await isCoordinator(ctx, req.groupId))) {
    return answer(() => KAFKA_ERROR.NOT_COORDINATOR);
  }
  const fenced = ctx.groups.checkCommit(req.groupId, req.memberId, req.generationId);
  if (fenced !== 0) return answer(() => fenced);
  const errors = new Map<string, number>();
  const offsets = [];
  for (const t of topics) {
    const mayRead = allowed(ctx, s, { type: "topic", name: t.name }, "read");
    const count = mayRead ? await ctx.broker.partitionCount(t.name) : null;
    for (const p of t.partitions) {
      const k = `${t.name}\u0000${p.partitionIndex}`;
      if (!mayRead) errors.set(k, KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED);
      else if (count === null || p.partitionIndex < 0 || p.partitionIndex >= count) {
        errors.set(k, KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION);
      } else {
        offsets.push({
          topic: t.name,
          partition: p.partitionIndex,
          offset: p.committedOffset,
          metadata: (p.committedMetadata ?? "").slice(0, 4096),
        });
      }
    }
  }
  let failure = 0;
  const log = ctx.broker.offsetCommits;
  // A member's commit, accepted by the coordinator above, is answered once it is in the
  // broker's offset commit log (no fsync, as an acknowledged record); the log copies it into
  // KV behind the answer. A simple commit (or one the log could not write) goes to KV here.
  const logged = offsets.length > 0 && req.generationId >= 0 &&
    log.append({
      groupId: req.groupId,
      memberId: req.memberId,
      generation: req.generationId,
      timestampMs: Date.now(),
      offsets,
    });
  if (offsets.length > 0 && !logged) {
    try {
      // Commits of the group still on their way into KV go first: this one is newer.
      await log.settled(req.groupId);
      for (let i = 0; i < offsets.length; i += 500) {
        await commitClassicOffsets(
          ctx.broker.kv,
          req.groupId,
          offsets.slice(i, i + 500),
          req.generationId >= 0 ? { memberId: req.memberId, generation: req.generationId } : null,
          Date.now(),
          ctx.groups.metaHints,
        );
      }
    } catch (e) {
      failure = kafkaCode(e);
      if (!(e instanceof RillError)) ctx.log(`kafka: offset commit failed: ${e}`);
    }
  }
  return answer((topic, partition) => errors.get(`${topic}\u0000${partition}`) ?? failure);
}

/**
 * OffsetFetch: the committed offsets (those not yet copied from the broker's offset commit
 * log included), −1 where none; one group (v0–7) or several (v8+, each answered on its own: a
 * group this broker does not coordinate gets NOT_COORDINATOR).
 *
 * @param ctx the context
 * @param s the session
 * @param version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleOffsetFetch(
  ctx: KafkaContext,
  s: Session,
  version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  if (version < 8) {
    const one = await offsetsOfGroup(ctx, s, req.groupId, req.topics);
    return { throttleTimeMs: 0, topics: one.topics, errorCode: one.errorCode };
  }
  const groups = [];
  for (
    const g of req.groups as {
      groupId: string;
      topics: { name: string; partitionIndexes: number[] }[] | null;
    }[]
  ) {
    groups.push({ groupId: g.groupId, ...await offsetsOfGroup(ctx, s, g.groupId, g.topics) });
  }
  return { throttleTimeMs: 0, groups };
}

async function offsetsOfGroup(
  ctx: KafkaContext,
  s: Session,
  groupId: string,
  wanted: { name: string; partitionIndexes: number[] }[] | null,
): Promise<{ topics: unknown[]; errorCode: number }> {
  if (!allowed(ctx, s, { type: "group", name: groupId }, "describe")) {
    return { topics: [], errorCode: KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED };
  }
  if (!ctx.groups.get(groupId) && !(await isCoordinator(ctx, groupId))) {
    return { topics: [], errorCode: KAFKA_ERROR.NOT_COORDINATOR };
  }
  const committed = await readCommittedOffsets(
    ctx.broker.kv,
    groupId,
    wanted === null ? null : wanted.map((t) => ({ topic: t.name, partitions: t.partitionIndexes })),
  );
  // Commits answered but not yet copied into KV are the newest.
  const pending = ctx.broker.offsetCommits.pendingOf(groupId);
  if (pending) {
    const asked = wanted === null
      ? null
      : new Set(wanted.flatMap((t) => t.partitionIndexes.map((p) => pendingKey(t.name, p))));
    for (const [k, p] of pending) if (asked === null || asked.has(k)) committed.set(k, p.value);
  }
  const list = wanted ?? groupByTopic([...committed.keys()]);
  const topics = list.map((t) => {
    const mayRead = allowed(ctx, s, { type: "topic", name: t.name }, "describe");
    return {
      name: t.name,
      partitions: t.partitionIndexes.map((p) => {
        const c = mayRead ? committed.get(`${t.name}\u0000${p}`) : undefined;
        return {
          partitionIndex: p,
          committedOffset: c?.offset ?? -1,
          committedLeaderEpoch: -1,
          metadata: c?.metadata ?? "",
          errorCode: mayRead ? 0 : KAFKA_ERROR.TOPIC_AUTHORIZATION_FAILED,
        };
      }),
    };
  });
  return { topics, errorCode: 0 };
}

function groupByTopic(keys: string[]): { name: string; partitionIndexes: number[] }[] {
  const m = new Map<string, number[]>();
  for (const k of keys) {
    const [topic, p] = k.split("\u0000");
    m.set(topic, [...(m.get(topic) ?? []), Number(p)]);
  }
  return [...m].map(([name, partitionIndexes]) => ({ name, partitionIndexes }));
}

const STATE_NAMES: Record<string, string> = {
  Empty: "Empty",
  PreparingRebalance: "PreparingRebalance",
  CompletingRebalance: "CompletingRebalance",
  Stable: "Stable",
  Reconciling: "PreparingRebalance",
};

/**
 * DescribeGroups: a Kafka group from its coordinator's memory; a Rill group from the KV
 * store (protocol type "rill", no member metadata).
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleDescribeGroups(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const groups = [];
  for (const groupId of req.groups as string[]) {
    const out = {
      errorCode: 0,
      groupId,
      groupState: "Dead",
      protocolType: "",
      protocolData: "",
      members: [] as unknown[],
      authorizedOperations: -2147483648,
    };
    if (!allowed(ctx, s, { type: "group", name: groupId }, "describe")) {
      out.errorCode = KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED;
    } else if (!(await isCoordinator(ctx, groupId)) && !ctx.groups.get(groupId)) {
      out.errorCode = KAFKA_ERROR.NOT_COORDINATOR;
    } else {
      const g = ctx.groups.get(groupId);
      if (g && g.members.size > 0) {
        out.groupState = g.state;
        out.protocolType = g.protocolType ?? "";
        out.protocolData = g.protocolName ?? "";
        out.members = [...g.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: null,
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberMetadata: m.protocols.find((p) => p.name === g.protocolName)?.metadata ??
            new Uint8Array(0),
          memberAssignment: m.assignment,
        }));
      } else {
        try {
          const d = await membership(ctx).describe(groupId);
          out.groupState = STATE_NAMES[d.state] ?? d.state;
          out.protocolType = d.members.length > 0 ? "rill" : "consumer";
          out.protocolData = d.assignor;
          out.members = d.members.map((m) => ({
            memberId: m.memberId,
            groupInstanceId: null,
            clientId: m.clientId,
            clientHost: "",
            memberMetadata: new Uint8Array(0),
            memberAssignment: new Uint8Array(0),
          }));
        } catch (e) {
          if (e instanceof RillError && e.code === "GROUP_ID_NOT_FOUND") out.groupState = "Dead";
          else {
            out.errorCode = kafkaCode(e);
            ctx.log(`kafka: describe group "${groupId}": ${kafkaMessage(e)}`);
          }
        }
      }
    }
    groups.push(out);
  }
  return { throttleTimeMs: 0, groups };
}

function membership(ctx: KafkaContext): GroupMembership {
  return new GroupMembership({
    kv: ctx.broker.kv,
    partitionCount: (t) => ctx.broker.partitionCount(t),
  });
}

/**
 * ListGroups: every group of the store (Kafka's and Rill's), or those in the states (v4+)
 * and of the types (v5+) asked for.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleListGroups(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const list = await membership(ctx).list();
  // v4+ filters by state, v5+ by type (both case-insensitive, as Kafka's); empty: all.
  const states = new Set((req.statesFilter as string[]).map((x) => x.toLowerCase()));
  const types = new Set((req.typesFilter as string[]).map((x) => x.toLowerCase()));
  const groups = list.filter((g) =>
    allowed(ctx, s, { type: "group", name: g.groupId }, "describe", false)
  ).map((g) => ({
    groupId: g.groupId,
    protocolType: "consumer",
    // A group this broker coordinates: its state now (the store's copy is written after).
    groupState: ctx.groups.get(g.groupId)?.state ?? STATE_NAMES[g.state] ?? g.state,
    groupType: "classic",
  })).filter((g) =>
    (states.size === 0 || states.has(g.groupState.toLowerCase())) &&
    (types.size === 0 || types.has(g.groupType))
  );
  return { throttleTimeMs: 0, errorCode: 0, groups };
}

/**
 * DeleteGroups: a group with no members is deleted with its committed offsets (the same
 * store operation as `DELETE /v1/groups/{g}`); one with members gets NON_EMPTY_GROUP, an
 * unknown one GROUP_ID_NOT_FOUND.
 *
 * @param ctx the context
 * @param s the session
 * @param _version the request version
 * @param req the decoded request
 * @returns the answer body
 */
export async function handleDeleteGroups(
  ctx: KafkaContext,
  s: Session,
  _version: number,
  req: Body,
): Promise<Record<string, unknown>> {
  const broker = ctx.broker;
  const m = membership(ctx);
  const store = new GroupOffsets({
    kv: broker.kv,
    pending: broker.offsetCommits,
    partitionCount: (t) => broker.partitionCount(t),
    logStartOffset: (t, p) => broker.logStartOffset(t, p),
    logEndOffset: (t, p) => broker.logEndOffset(t, p),
    offsetForTimestamp: (t, p, ts) => broker.offsetForTimestamp(t, p, ts),
  }, m);
  const results = [];
  for (const groupId of req.groupsNames as string[]) {
    let errorCode = 0;
    if (!allowed(ctx, s, { type: "group", name: groupId }, "delete")) {
      errorCode = KAFKA_ERROR.GROUP_AUTHORIZATION_FAILED;
    } else if (!ctx.groups.get(groupId) && !(await isCoordinator(ctx, groupId))) {
      errorCode = KAFKA_ERROR.NOT_COORDINATOR;
    } else if ((ctx.groups.get(groupId)?.members.size ?? 0) > 0) {
      errorCode = KAFKA_ERROR.NON_EMPTY_GROUP;
    } else {
      try {
        // The last member's departure may still be on its way to the store.
        await ctx.groups.get(groupId)?.mirror;
        await store.deleteGroup(groupId);
      } catch (e) {
        errorCode = kafkaCode(e);
        if (!(e instanceof RillError)) ctx.log(`kafka: deleting group ${groupId} failed: ${e}`);
      }
    }
    results.push({ groupId, errorCode });
  }
  return { throttleTimeMs: 0, results };
}
