/**
 * `/v1/groups` — consumer groups (HTTP_API.md, "Consumer groups"): a thin skin that parses
 * and validates requests and calls group_membership.ts and group_offsets.ts, where the
 * rules live. Mount with `app.route("/v1/groups", groupRoutes(deps))`.
 *
 * ```
 * GET    /                               {"groups":[{"groupId","state","members","generation"}]}
 * GET    /{group}                        {"groupId","state","generation","assignor","members":[…],"offsets":[…],"totalLag"}
 * DELETE /{group}                        204 | 404 GROUP_ID_NOT_FOUND | 409 NON_EMPTY_GROUP
 * POST   /{group}/members                {"topics","memberId"?,"sessionTimeoutMs"?,"assignor"?,"clientId"?} → 200 answer
 * POST   /{group}/members/{id}/heartbeat {"generation"} → 200 answer | 409 UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION
 * DELETE /{group}/members/{id}           204 | 404 GROUP_ID_NOT_FOUND | 409 UNKNOWN_MEMBER_ID
 * POST   /{group}/offsets                {"memberId"?,"generation"?,"offsets":[{"topic","partition","offset","metadata"?}]}
 *                                        → 200 {"offsets":[{"topic","partition","offset"}]}
 * GET    /{group}/offsets                {"offsets":[{"topic","partition","offset","metadata","logEndOffset","lag","logEndOffsetAgeMs"}],"totalLag"}
 * POST   /{group}/offsets/reset          {"topic","to":"earliest"|"latest"|{"offset"}|{"timestamp"},"partitions"?}
 *                                        → 200 {"offsets":[…]} | 409 NON_EMPTY_GROUP
 * ```
 *
 * A member answer is `{"memberId","generation","assignment","pendingRevocation",
 * "pendingAssignment","heartbeatIntervalMs","sessionTimeoutMs","state"}` (see
 * group_membership.ts for the meaning of the fields beyond the contract).
 *
 * **The client's side of the contract** (what `consumer.subscribe/run` must do):
 * 1. Join; work on `assignment` (call `onAssigned`). Heartbeat every `heartbeatIntervalMs`
 *    with the `generation` of the last answer it has fully processed.
 * 2. On every answer: stop work on `pendingRevocation` partitions, commit their resolved
 *    offsets (with the answer's `generation`), call `onRevoked`, then heartbeat **at once**
 *    with that `generation`: that confirms the revocation and lets the new owner start.
 *    Partitions newly in `assignment` may start right away (`onAssigned`);
 *    `pendingAssignment` ones arrive on a later answer.
 * 3. Commit with `memberId` and the last answer's `generation`. 409 ILLEGAL_GENERATION
 *    (with `notOwned` when the partitions are not its own): heartbeat, drop what the answer
 *    no longer lists. 409 UNKNOWN_MEMBER_ID (left, expired): stop everything, `onRevoked`
 *    all, join again. 409 REBALANCE_IN_PROGRESS is retriable: retry with backoff.
 * 4. Session rule (needed for safety): when no heartbeat *sent* in the last
 *    `sessionTimeoutMs` has been answered, stop all work (`onRevoked` all) before anything
 *    else; the server frees the partitions of a silent member after that time.
 * 5. `disconnect()`: stop work, commit, then `DELETE` the member (its partitions move at
 *    once; a 409 UNKNOWN_MEMBER_ID there means it was already gone).
 * 6. No committed offset for a partition: start from `auto.offset.reset` (earliest/latest).
 *
 * @module
 */
import { Hono } from "hono";
import { RillError } from "../../protocol/errors.ts";
import { ASSIGNORS } from "../../coordination/group_assignors.ts";
import {
  GroupMembership,
  isAssignorName,
  type JoinRequest,
  MAX_SESSION_TIMEOUT_MS,
  MAX_SUBSCRIBED_TOPICS,
  MIN_SESSION_TIMEOUT_MS,
} from "../../coordination/group_membership.ts";
import {
  type CommitRequest,
  GroupOffsets,
  MAX_COMMIT_PARTITIONS,
  MAX_METADATA_LENGTH,
  type OffsetCommit,
  type PendingCommits,
  type ResetTo,
} from "../../coordination/group_offsets.ts";
import {
  rejectUnknownFields,
  validateGroupId,
  validateMemberId,
  validateTopicName,
} from "../../coordination/group_validate.ts";
import { authorize, authorizeAll, canDescribe, visibleOffsets } from "../auth.ts";
import { notFound, onError } from "../errors.ts";
import { intField, readJsonObject } from "../params.ts";
import type { GroupLiveness } from "../../coordination/group_liveness.ts";

/** What the group routes need from the broker. */
export interface GroupRouteDeps {
  /** the KV store shared by every broker */
  kv: Deno.Kv;
  /** the clock (ms since epoch); default Date.now */
  now?: () => number;
  /**
   * a topic's partition count, or null when the topic does not exist. Called for every
   * subscribed topic on every heartbeat (that is how a topic gaining partitions is noticed):
   * serve it from the broker's in-memory metadata, not from KV.
   */
  partitionCount(topic: string): Promise<number | null>;
  /** told of each generation bump (a rebalance) committed here, for metrics */
  onRebalance?: (groupId: string) => void;
  /** a partition's log start offset */
  logStartOffset(topic: string, partition: number): Promise<number> | number;
  /** a partition's log end offset (for lag and resets) */
  logEndOffset(topic: string, partition: number): Promise<number> | number;
  /** the log end offset for lag from any broker, with its age (null: unknown) */
  lagEndOffset?(
    topic: string,
    partition: number,
  ): Promise<{ offset: number; ageMs: number } | null>;
  /** the first offset whose timestamp is >= ts, or null when there is none */
  offsetForTimestamp(topic: string, partition: number, ts: number): Promise<number | null>;
  /** member liveness kept by the broker (quiet heartbeats need no KV); optional */
  liveness?: GroupLiveness;
  /** Kafka commits answered but not yet in KV, laid over KV's in reads (group_offsets.ts) */
  pending?: PendingCommits;
  /**
   * group state recorded in KV behind answers on this broker (the Kafka coordinator's,
   * group_writes_behind.ts): reads and joins of a group wait for its writes first
   */
  writesBehind?: { settled(groupId?: string): Promise<void> };
}

const BODY_LIMIT = 1024 * 1024;

/**
 * The consumer group sub-app.
 *
 * @param deps KV, clock, partition counts and log bounds
 * @returns a Hono app to mount at `/v1/groups`
 * @example
 * ```ts
 * app.route("/v1/groups", groupRoutes({ kv, partitionCount, logStartOffset, logEndOffset, offsetForTimestamp }));
 * ```
 */
export function groupRoutes(deps: GroupRouteDeps): Hono {
  const membership = new GroupMembership(deps);
  const offsets = new GroupOffsets(deps, membership);
  const app = new Hono();
  app.onError(onError);
  app.notFound(notFound);

  // What this broker's Kafka coordinator answered is in KV before a read or join of the group.
  const behind = (groupId?: string) => deps.writesBehind?.settled(groupId);

  app.get("/", async (c) => {
    await behind();
    return c.json({
      groups: (await membership.list()).filter((g) =>
        canDescribe(c, { type: "group", name: g.groupId })
      ),
    });
  });

  app.get("/:group", async (c) => {
    authorize(c, { type: "group", name: c.req.param("group") }, "describe");
    const groupId = validateGroupId(c.req.param("group"));
    await behind(groupId);
    const d = await membership.describe(groupId);
    const o = visibleOffsets(c, await offsets.fetch(groupId, false));
    return c.json({ ...d, offsets: o.offsets, totalLag: o.totalLag });
  });

  app.delete("/:group", async (c) => {
    authorize(c, { type: "group", name: c.req.param("group") }, "delete");
    const groupId = validateGroupId(c.req.param("group"));
    await behind(groupId);
    await offsets.deleteGroup(groupId);
    return c.body(null, 204);
  });

  app.post("/:group/members", async (c) => {
    authorize(c, { type: "group", name: c.req.param("group") }, "read");
    const groupId = validateGroupId(c.req.param("group"));
    const body = await readJsonObject(c, BODY_LIMIT);
    const join = parseJoin(body);
    authorizeAll(c, "topic", join.topics, "read");
    await behind(groupId);
    return c.json(await membership.join(groupId, join));
  });

  app.post("/:group/members/:member/heartbeat", async (c) => {
    authorize(c, { type: "group", name: c.req.param("group") }, "read");
    const groupId = validateGroupId(c.req.param("group"));
    const memberId = validateMemberId(c.req.param("member"));
    const body = await readJsonObject(c, BODY_LIMIT);
    rejectUnknownFields(body, ["generation"]);
    if (body.generation === undefined) {
      throw new RillError("INVALID_REQUEST", `"generation" is required`);
    }
    const generation = intField(body.generation, "generation");
    return c.json(await membership.heartbeat(groupId, memberId, generation));
  });

  app.delete("/:group/members/:member", async (c) => {
    authorize(c, { type: "group", name: c.req.param("group") }, "read");
    const groupId = validateGroupId(c.req.param("group"));
    await membership.leave(groupId, validateMemberId(c.req.param("member")));
    return c.body(null, 204);
  });

  app.post("/:group/offsets", async (c) => {
    authorize(c, { type: "group", name: c.req.param("group") }, "read");
    const groupId = validateGroupId(c.req.param("group"));
    const req = parseCommit(await readJsonObject(c, 8 * BODY_LIMIT));
    authorizeAll(c, "topic", req.offsets.map((o) => o.topic), "read");
    await offsets.commit(groupId, req);
    return c.json({
      offsets: req.offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })),
    });
  });

  app.get("/:group/offsets", async (c) => {
    authorize(c, { type: "group", name: c.req.param("group") }, "describe");
    const groupId = validateGroupId(c.req.param("group"));
    await behind(groupId);
    return c.json(visibleOffsets(c, await offsets.fetch(groupId)));
  });

  app.post("/:group/offsets/reset", async (c) => {
    authorize(c, { type: "group", name: c.req.param("group") }, "read");
    const groupId = validateGroupId(c.req.param("group"));
    const body = await readJsonObject(c, BODY_LIMIT);
    rejectUnknownFields(body, ["topic", "to", "partitions"]);
    const topic = validateTopicName(body.topic);
    authorize(c, { type: "topic", name: topic }, "read");
    const to = parseResetTo(body.to);
    let partitions: number[] | undefined;
    if (body.partitions !== undefined) {
      if (!Array.isArray(body.partitions) || body.partitions.length === 0) {
        throw new RillError("INVALID_REQUEST", `"partitions" must be a non-empty array`);
      }
      partitions = [...new Set(body.partitions.map((p, i) => intField(p, `partitions[${i}]`)))];
    }
    return c.json(await offsets.reset(groupId, topic, to, partitions));
  });

  return app;
}

function parseJoin(body: Record<string, unknown>): JoinRequest {
  rejectUnknownFields(body, ["topics", "memberId", "sessionTimeoutMs", "assignor", "clientId"]);
  if (!Array.isArray(body.topics) || body.topics.length === 0) {
    throw new RillError("INVALID_REQUEST", `"topics" must be a non-empty array of topic names`);
  }
  if (body.topics.length > MAX_SUBSCRIBED_TOPICS) {
    throw new RillError(
      "INVALID_REQUEST",
      `"topics" may list at most ${MAX_SUBSCRIBED_TOPICS} topics`,
    );
  }
  const req: JoinRequest = {
    topics: body.topics.map((t, i) => validateTopicName(t, `topics[${i}]`)),
  };
  if (body.memberId !== undefined) req.memberId = validateMemberId(body.memberId);
  if (body.sessionTimeoutMs !== undefined) {
    req.sessionTimeoutMs = intField(body.sessionTimeoutMs, "sessionTimeoutMs", {
      min: MIN_SESSION_TIMEOUT_MS,
      max: MAX_SESSION_TIMEOUT_MS,
    });
  }
  if (body.assignor !== undefined) {
    if (!isAssignorName(body.assignor)) {
      throw new RillError("INVALID_REQUEST", `"assignor" must be one of ${ASSIGNORS.join(", ")}`);
    }
    req.assignor = body.assignor;
  }
  if (body.clientId !== undefined) {
    if (typeof body.clientId !== "string" || body.clientId.length > 255) {
      throw new RillError(
        "INVALID_REQUEST",
        `"clientId" must be a string of at most 255 characters`,
      );
    }
    req.clientId = body.clientId;
  }
  return req;
}

function parseCommit(body: Record<string, unknown>): CommitRequest {
  rejectUnknownFields(body, ["memberId", "generation", "offsets"]);
  const req: CommitRequest = { offsets: [] };
  if ((body.memberId === undefined) !== (body.generation === undefined)) {
    throw new RillError(
      "INVALID_REQUEST",
      `"memberId" and "generation" go together: give both (a member's commit) or neither (a simple commit)`,
    );
  }
  if (body.memberId !== undefined) {
    req.memberId = validateMemberId(body.memberId);
    req.generation = intField(body.generation, "generation");
  }
  if (!Array.isArray(body.offsets) || body.offsets.length === 0) {
    throw new RillError("INVALID_REQUEST", `"offsets" must be a non-empty array`);
  }
  if (body.offsets.length > MAX_COMMIT_PARTITIONS) {
    throw new RillError(
      "INVALID_REQUEST",
      `One commit may hold at most ${MAX_COMMIT_PARTITIONS} partitions, got ${body.offsets.length}`,
    );
  }
  req.offsets = body.offsets.map((o, i): OffsetCommit => {
    if (o === null || typeof o !== "object" || Array.isArray(o)) {
      throw new RillError("INVALID_REQUEST", `"offsets[${i}]" must be an object`);
    }
    const e = o as Record<string, unknown>;
    rejectUnknownFields(e, ["topic", "partition", "offset", "metadata"], `offsets[${i}]`);
    const out: OffsetCommit = {
      topic: validateTopicName(e.topic, `offsets[${i}].topic`),
      partition: intField(e.partition, `offsets[${i}].partition`, { max: 2 ** 31 - 1 }),
      offset: intField(e.offset, `offsets[${i}].offset`),
    };
    if (e.metadata !== undefined && e.metadata !== null) {
      if (typeof e.metadata !== "string" || e.metadata.length > MAX_METADATA_LENGTH) {
        throw new RillError(
          "INVALID_REQUEST",
          `"offsets[${i}].metadata" must be a string of at most ${MAX_METADATA_LENGTH} characters`,
        );
      }
      out.metadata = e.metadata;
    }
    return out;
  });
  return req;
}

function parseResetTo(to: unknown): ResetTo {
  if (to === "earliest" || to === "latest") return to;
  if (to !== null && typeof to === "object" && !Array.isArray(to)) {
    const o = to as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === "offset") {
      return { offset: intField(o.offset, "to.offset") };
    }
    if (keys.length === 1 && keys[0] === "timestamp") {
      return { timestamp: intField(o.timestamp, "to.timestamp") };
    }
  }
  throw new RillError(
    "INVALID_REQUEST",
    `"to" must be "earliest", "latest", {"offset": N} or {"timestamp": T}`,
  );
}
