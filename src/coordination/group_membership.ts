/**
 * Consumer group membership on Deno KV: join, heartbeat, leave, lazy session expiry,
 * describe and list. Any broker serves any group; there is no coordinator process, only
 * conditional KV writes (key layout in group_keys.ts).
 *
 * **Generations.** Every membership change (a member joins or leaves, changes its
 * subscription, is expired, or a subscribed topic's partition count changes) bumps the
 * group's generation and recomputes the target assignment (group_assignors.ts), in one
 * atomic write checked on the meta's versionstamp: two brokers racing cannot both decide it.
 *
 * **Handover** (cooperative; the full rule is in group_reconcile.ts): an answer lists the
 * partitions a member may work on (`assignment`) and those it must stop and then confirm
 * (`pendingRevocation`); it confirms by heartbeating with the answer's `generation`. A
 * partition reaches its new owner only after the old owner confirmed, left, expired, or let
 * the revocation time out.
 *
 * **States.** Empty (no members), Reconciling (some member has not reached its target at
 * the group's generation), Stable. They are computed from the records, not stored.
 *
 * **Expiry** is lazy: a join, heartbeat, leave or describe of a group first removes members
 * silent for longer than their session timeout (time from the injectable `now()`); a member
 * vouched for by a broker is silent when that broker says so (its own sweep) or when that
 * broker is dead (group_liveness.ts). A member
 * that heartbeats after its session expired is removed and answered UNKNOWN_MEMBER_ID.
 *
 * **Why two brokers cannot double-grant.** Within one meta version a partition has a single
 * target owner, and other members can only release it, so a grant decided on a snapshot
 * stays right as long as the meta is unchanged — every write checks the meta's versionstamp.
 * A write that changes the meta (join, leave, expiry, partition growth) also checks every
 * member record it read, so it cannot overwrite a grant made meanwhile under the old meta.
 * Heartbeats that grant check every record as well (belt and braces; it costs only
 * contention during rebalances). Hence at most {@linkcode MAX_GROUP_MEMBERS} members.
 *
 * **Clocks.** Session expiry and revocation timeouts use the serving broker's `now()`;
 * brokers sharing a group should keep their clocks in sync (NTP): skew between brokers eats
 * into the session timeout's safety margin.
 *
 * **KV cost.** With a broker's {@linkcode GroupLiveness} (group_liveness.ts), a heartbeat that
 * changes nothing costs no KV call: the broker vouches for the member's liveness in memory and
 * answers from its snapshot of the group while the group change marker has not moved. A
 * heartbeat after a change elsewhere reads the group once (one `list()`) and writes only if
 * the member's record changes. Without it (in-process uses), a heartbeat is one `list()` and
 * one atomic write that checks the meta and the member's own record and sets that record.
 *
 * Answers ({@linkcode MemberAnswer}) carry, beyond the contract's `generation`,
 * `assignment` and `heartbeatIntervalMs`: `memberId`, `pendingRevocation`,
 * `pendingAssignment` (target partitions still owned by another member), `sessionTimeoutMs`
 * and the group `state`. Heartbeats answer 409 UNKNOWN_MEMBER_ID for a member the group
 * does not have (left, expired, or never joined; rejoin), 409 ILLEGAL_GENERATION for a
 * generation the member was never given, and 409 REBALANCE_IN_PROGRESS (retriable) only
 * when concurrent changes kept defeating the conditional write.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { ASSIGNORS } from "./group_assignors.ts";
import {
  afterGroupKey,
  type AssignorName,
  groupMemberKey,
  type GroupMeta,
  groupMetaKey,
  type MemberState,
} from "./group_keys.ts";
import { toList, type TopicPartition } from "./group_partitions.ts";
import { reconcileMember } from "./group_reconcile.ts";
import {
  bumpGeneration,
  checkAll,
  CONFLICT,
  expiredMembers,
  type GroupSnapshot,
  groupState,
  type GroupStateName,
  type LivenessJudge,
  markGroupsChanged,
  MAX_GROUP_MEMBERS,
  newMeta,
  readGroup,
  withConflictRetry,
} from "./group_store.ts";
import { groupsPrefix } from "./kv_keys.ts";
import { kvRetry } from "./kv_retry.ts";
import type { GroupLiveness } from "./group_liveness.ts";

/** Default session timeout (Kafka's consumer default is 45 s; Rill's issue asks 10 s). */
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
/** Smallest session timeout accepted. */
export const MIN_SESSION_TIMEOUT_MS = 100;
/** Largest session timeout accepted (Kafka's group.max.session.timeout.ms default). */
export const MAX_SESSION_TIMEOUT_MS = 1_800_000;
/** Most topics in one subscription. */
export const MAX_SUBSCRIBED_TOPICS = 1000;
/** Most groups {@linkcode GroupMembership.list} returns. */
export const MAX_LISTED_GROUPS = 10_000;

/** What membership needs from the broker. */
export interface GroupMembershipDeps {
  /** the KV store shared by every broker */
  kv: Deno.Kv;
  /** the clock (ms since epoch); default Date.now */
  now?: () => number;
  /** a topic's partition count, or null when the topic does not exist */
  partitionCount(topic: string): Promise<number | null>;
  /** told of each generation bump this process committed (a rebalance; for metrics) */
  onRebalance?: (groupId: string) => void;
  /**
   * member liveness kept by this broker (group_liveness.ts): heartbeats that change nothing
   * are answered without the KV; without it every heartbeat reads and writes the KV
   */
  liveness?: GroupLiveness;
}

/** A join request (validated). */
export interface JoinRequest {
  /** the subscribed topics */
  topics: string[];
  /** a member id to (re)join as; a fresh UUID when absent */
  memberId?: string;
  /** the session timeout; default {@linkcode DEFAULT_SESSION_TIMEOUT_MS} */
  sessionTimeoutMs?: number;
  /** the assignor; only settable while the group has no other member; default sticky */
  assignor?: AssignorName;
  /** free-form client id for describe */
  clientId?: string;
}

/** What join and heartbeat answer. */
export interface MemberAnswer {
  /** the member id */
  memberId: string;
  /** the member's generation: send it with heartbeats and commits */
  generation: number;
  /** the partitions the member may work on */
  assignment: TopicPartition[];
  /** partitions to stop work on, commit, then confirm by heartbeating with `generation` */
  pendingRevocation: TopicPartition[];
  /** partitions of the member's target still owned by another member */
  pendingAssignment: TopicPartition[];
  /** how often to heartbeat (a third of the session timeout) */
  heartbeatIntervalMs: number;
  /** the member's session timeout */
  sessionTimeoutMs: number;
  /** the group state after this call */
  state: GroupStateName;
}

/** One member in a group description. */
export interface MemberDescription {
  /** the member id */
  memberId: string;
  /** the client id given on join */
  clientId: string;
  /** subscribed topics */
  topics: string[];
  /** the session timeout */
  sessionTimeoutMs: number;
  /** the generation the member was last told of */
  generation: number;
  /** partitions it may work on */
  assignment: TopicPartition[];
  /** partitions it must still confirm giving up */
  pendingRevocation: TopicPartition[];
  /** its target in the group's generation */
  targetAssignment: TopicPartition[];
  /** its last heartbeat (ms since epoch) */
  lastHeartbeatMs: number;
}

/** A group description (without offsets; the route adds them). */
export interface GroupDescription {
  /** the group id */
  groupId: string;
  /** Empty, Reconciling or Stable */
  state: GroupStateName;
  /** the generation */
  generation: number;
  /** the assignment strategy */
  assignor: AssignorName;
  /** the members, sorted by id */
  members: MemberDescription[];
}

/** One row of the group list. */
export interface GroupSummary {
  /** the group id */
  groupId: string;
  /** Empty, Reconciling or Stable (members whose session expired are not counted) */
  state: GroupStateName;
  /** how many live members */
  members: number;
  /** the generation */
  generation: number;
}

/**
 * Group membership operations over KV. Stateless: every broker can make its own.
 *
 * @example
 * ```ts
 * const m = new GroupMembership({ kv, partitionCount: async () => 6 });
 * const a = await m.join("g", { topics: ["orders"] });
 * await m.heartbeat("g", a.memberId, a.generation);
 * ```
 */
export class GroupMembership {
  readonly #kv: Deno.Kv;
  readonly #now: () => number;
  readonly #partitionCount: (topic: string) => Promise<number | null>;
  readonly #onRebalance: (groupId: string) => void;
  readonly #liveness: GroupLiveness | null;
  /** judges members a broker vouches for; undefined without liveness */
  readonly judge: LivenessJudge | undefined;

  /** @param deps KV, clock, partition counts and liveness */
  constructor(deps: GroupMembershipDeps) {
    this.#kv = deps.kv;
    this.#now = deps.now ?? Date.now;
    this.#partitionCount = deps.partitionCount;
    this.#onRebalance = deps.onRebalance ?? (() => {});
    const lv = this.#liveness = deps.liveness ?? null;
    this.judge = lv
      ? (g, m, state, timeout) => lv.alive(state.vouchedBy!, g, m, timeout, state.lastHeartbeatMs)
      : undefined;
    lv?.setExpirer((g) => this.expire(g));
  }

  /**
   * Reads a group, noting which change marker the read is at least as new as, and makes
   * sure vouchers in it can be judged.
   */
  async #read(groupId: string): Promise<{ snap: GroupSnapshot; asOf: string | null | undefined }> {
    const asOf = this.#liveness?.changes;
    const snap = await readGroup(this.#kv, groupId);
    await this.prepare(snap);
    return { snap, asOf };
  }

  /**
   * Refreshes what judging the snapshot's vouched members needs (a no-op without liveness).
   *
   * @param snap the snapshot
   */
  async prepare(snap: GroupSnapshot): Promise<void> {
    await this.#liveness?.prepare(snap);
  }

  /**
   * Commits a group write that changes meta or member records, marking the change; keeps
   * the snapshot it leaves behind when it succeeds.
   *
   * @returns whether it committed
   */
  async #commit(
    build: () => Deno.AtomicOperation,
    after: (versionstamp: string) => GroupSnapshot,
  ): Promise<boolean> {
    const r = await kvRetry(() => markGroupsChanged(build()).commit());
    if (!r.ok) return false;
    this.#liveness?.remember(after(r.versionstamp), r.versionstamp);
    return true;
  }

  /** A member's record as this broker writes it: vouched for by this broker. */
  #vouch(meta: GroupMeta, memberId: string, state: MemberState): MemberState {
    const me = this.#liveness?.me();
    if (!me) return state;
    this.#liveness!.touch(meta.groupId, memberId, meta.members[memberId].sessionTimeoutMs);
    return { ...state, vouchedBy: me };
  }

  /**
   * Joins (or re-joins) a member: adds it, bumps the generation, and answers its first
   * assignment. A re-join of a live member with the same subscription changes nothing but
   * its session timeout and client id.
   *
   * @param groupId a validated group id
   * @param req the validated request
   * @returns the member's answer
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (assignor mismatch, group
   *   full), REBALANCE_IN_PROGRESS (retriable conflict)
   */
  async join(groupId: string, req: JoinRequest): Promise<MemberAnswer> {
    const topics = [...new Set(req.topics)].sort();
    for (const t of topics) {
      if ((await this.#partitionCount(t)) === null) {
        throw new RillError("UNKNOWN_TOPIC_OR_PARTITION", `Topic "${t}" does not exist`, {
          topic: t,
        });
      }
    }
    const memberId = req.memberId ?? crypto.randomUUID();
    const sessionTimeoutMs = req.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
    return await withConflictRetry("join the group", async () => {
      const { snap } = await this.#read(groupId);
      const now = this.#now();
      const expired = expiredMembers(snap, now, this.judge);
      let meta: GroupMeta = structuredClone(snap.meta ?? newMeta(groupId, now));
      const live = liveStates(snap, expired);
      for (const id of expired) delete meta.members[id];
      const others = [...live.keys()].filter((id) => id !== memberId);
      if (meta.kafka && others.length > 0) {
        throw new RillError(
          "INCONSISTENT_GROUP_PROTOCOL",
          `Group "${groupId}" is in use by ${others.length} Kafka client(s); a group is used by one protocol at a time`,
        );
      }
      delete meta.kafka;
      if (req.assignor !== undefined && req.assignor !== meta.assignor) {
        if (others.length > 0) {
          throw new RillError(
            "INVALID_REQUEST",
            `Group "${groupId}" uses the "${meta.assignor}" assignor; it can change only while the group has no other member`,
          );
        }
        meta.assignor = req.assignor;
      }
      const old = live.has(memberId) ? meta.members[memberId] : undefined;
      if (!old && live.size >= MAX_GROUP_MEMBERS) {
        throw new RillError(
          "INVALID_REQUEST",
          `Group "${groupId}" already has ${live.size} members, the most one group can hold`,
        );
      }
      let bump = expired.length > 0 || !old || old.topics.join("\n") !== topics.join("\n");
      meta.members[memberId] = {
        topics,
        sessionTimeoutMs,
        clientId: req.clientId ?? old?.clientId ?? "",
        joinedAtMs: old?.joinedAtMs ?? now,
      };
      if (!old) {
        live.set(memberId, {
          generation: 0,
          assignment: {},
          pendingRevocation: {},
          lastHeartbeatMs: now,
        });
      }
      const counts = await this.#counts(meta);
      if (!sameCounts(counts, meta.partitionCounts)) {
        meta.partitionCounts = counts;
        bump = true;
      }
      if (bump) meta = bumpGeneration(meta);
      const r = reconcileMember(meta, live, memberId, null, now);
      r.state = this.#vouch(meta, memberId, r.state);
      live.set(memberId, r.state);
      // a re-join that changes nothing leaves the meta (and others' heartbeats) alone
      const writeMeta = bump || JSON.stringify(meta) !== JSON.stringify(snap.meta);
      const ok = await this.#commit(() => {
        const op = checkAll(this.#kv.atomic(), snap);
        if (writeMeta) op.set(groupMetaKey(groupId), meta);
        op.set(groupMemberKey(groupId, memberId), r.state);
        for (const id of expired) if (id !== memberId) op.delete(groupMemberKey(groupId, id));
        return op;
      }, (vs) => after(snap, writeMeta ? meta : null, vs, expired, memberId, r.state));
      if (!ok) return CONFLICT;
      if (bump) this.#onRebalance(groupId);
      for (const id of expired) this.#liveness?.forget(groupId, id);
      return answer(meta, memberId, r.state, r.pendingAssignment, live);
    });
  }

  /**
   * A member's heartbeat: refreshes its session, acknowledges revocations (when
   * `generation` is the member's current one), and answers its current assignment.
   *
   * @param groupId a validated group id
   * @param memberId the member
   * @param generation the generation of the last answer the member processed
   * @returns the member's answer
   * @throws {RillError} UNKNOWN_MEMBER_ID (not a member, or its session expired),
   *   ILLEGAL_GENERATION (a generation it was never given), REBALANCE_IN_PROGRESS
   */
  async heartbeat(groupId: string, memberId: string, generation: number): Promise<MemberAnswer> {
    const cached = this.#liveness?.snapshot(groupId);
    if (cached) {
      const quiet = await this.#quietHeartbeat(cached, memberId, generation);
      if (quiet) return quiet;
    }
    return await withConflictRetry("heartbeat", async () => {
      const { snap, asOf } = await this.#read(groupId);
      const now = this.#now();
      const own = snap.members.get(memberId);
      if (!snap.meta || !own) throw unknownMember(groupId, memberId);
      const expired = expiredMembers(snap, now, this.judge);
      if (expired.includes(memberId)) {
        if (!(await this.#remove(snap, expired))) return CONFLICT;
        throw unknownMember(groupId, memberId, "its session expired");
      }
      if (generation > own.state.generation) {
        throw new RillError(
          "ILLEGAL_GENERATION",
          `Member "${memberId}" of group "${groupId}" was never given generation ${generation}; its generation is ${own.state.generation}`,
          { generation: own.state.generation },
        );
      }
      let meta = snap.meta;
      let metaChanged = false;
      if (expired.length > 0) {
        meta = structuredClone(meta);
        for (const id of expired) delete meta.members[id];
        metaChanged = true;
      }
      const counts = await this.#counts(meta);
      if (!sameCounts(counts, meta.partitionCounts)) {
        meta = { ...structuredClone(meta), partitionCounts: counts };
        metaChanged = true;
      }
      if (metaChanged) meta = bumpGeneration(meta);
      const live = liveStates(snap, expired);
      const r = reconcileMember(meta, live, memberId, generation, now);
      r.state = this.#vouch(meta, memberId, r.state);
      live.set(memberId, r.state);
      if (!metaChanged && !r.granted && this.#liveness && sameState(r.state, own.state)) {
        // Nothing changes and this broker already vouches for the member: no write.
        this.#liveness.remember(snap, asOf);
        return answer(meta, memberId, own.state, r.pendingAssignment, live);
      }
      const ok = await this.#commit(() => {
        const op = this.#kv.atomic();
        if (metaChanged || r.granted) checkAll(op, snap);
        else {
          op.check({ key: groupMetaKey(groupId), versionstamp: snap.metaVersionstamp });
          op.check({ key: groupMemberKey(groupId, memberId), versionstamp: own.versionstamp });
        }
        if (metaChanged) op.set(groupMetaKey(groupId), meta);
        op.set(groupMemberKey(groupId, memberId), r.state);
        for (const id of expired) op.delete(groupMemberKey(groupId, id));
        return op;
      }, (vs) => after(snap, metaChanged ? meta : null, vs, expired, memberId, r.state));
      if (!ok) return CONFLICT;
      if (metaChanged) this.#onRebalance(groupId);
      for (const id of expired) this.#liveness?.forget(groupId, id);
      return answer(meta, memberId, r.state, r.pendingAssignment, live);
    });
  }

  /**
   * A heartbeat answered from this broker's snapshot of the group, when it would change
   * nothing: the member's record is vouched for by this broker, nobody expired, the topics'
   * partition counts are as the meta has them, and the member's state stays as it is.
   *
   * @returns the answer, or null when the heartbeat must go to the KV
   */
  async #quietHeartbeat(
    snap: GroupSnapshot,
    memberId: string,
    generation: number,
  ): Promise<MemberAnswer | null> {
    const lv = this.#liveness!;
    const me = lv.me();
    const own = snap.members.get(memberId);
    const meta = snap.meta;
    if (!me || !meta || !own || generation !== own.state.generation) return null;
    const v = own.state.vouchedBy;
    if (!v || v.broker !== me.broker || v.incarnation !== me.incarnation) return null;
    await lv.prepare(snap, false);
    const now = this.#now();
    if (expiredMembers(snap, now, this.judge).length > 0) return null;
    if (!sameCounts(await this.#counts(meta), meta.partitionCounts)) return null;
    const live = liveStates(snap, []);
    const r = reconcileMember(meta, live, memberId, generation, now);
    if (r.granted || !sameState({ ...r.state, vouchedBy: v }, own.state)) return null;
    lv.touch(snap.groupId, memberId, meta.members[memberId].sessionTimeoutMs);
    return answer(meta, memberId, own.state, r.pendingAssignment, live);
  }

  /**
   * A member leaves: it is removed at once (its partitions are free for the others on their
   * next heartbeat) and the generation is bumped. The member must have stopped work first.
   *
   * @param groupId a validated group id
   * @param memberId the member
   * @throws {RillError} GROUP_ID_NOT_FOUND, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS
   */
  async leave(groupId: string, memberId: string): Promise<void> {
    await withConflictRetry("leave the group", async () => {
      const { snap } = await this.#read(groupId);
      if (!snap.meta) throw groupNotFound(groupId);
      if (!snap.members.has(memberId)) throw unknownMember(groupId, memberId);
      const ids = new Set([...expiredMembers(snap, this.#now(), this.judge), memberId]);
      return (await this.#remove(snap, [...ids])) ? true : CONFLICT;
    });
  }

  /**
   * Removes members whose session expired (lazily, when a group is looked at).
   *
   * @param groupId a validated group id
   * @returns the group's state after the removal
   * @throws {RillError} REBALANCE_IN_PROGRESS
   */
  async expire(groupId: string): Promise<GroupSnapshot> {
    return await withConflictRetry("expire members", async () => {
      const { snap } = await this.#read(groupId);
      const expired = expiredMembers(snap, this.#now(), this.judge);
      if (expired.length === 0) return snap;
      return (await this.#remove(snap, expired)) ? await readGroup(this.#kv, groupId) : CONFLICT;
    });
  }

  /**
   * Describes a group (after removing expired members).
   *
   * @param groupId a validated group id
   * @returns the description
   * @throws {RillError} GROUP_ID_NOT_FOUND
   */
  async describe(groupId: string): Promise<GroupDescription> {
    const snap = await this.expire(groupId);
    const meta = snap.meta;
    if (!meta) throw groupNotFound(groupId);
    const states = liveStates(snap, []);
    return {
      groupId,
      state: groupState(meta, states),
      generation: meta.generation,
      assignor: meta.assignor,
      members: [...states].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([id, s]) => ({
        memberId: id,
        clientId: meta.members[id].clientId,
        topics: meta.members[id].topics,
        sessionTimeoutMs: meta.members[id].sessionTimeoutMs,
        generation: s.generation,
        assignment: toList(s.assignment),
        pendingRevocation: toList(s.pendingRevocation),
        targetAssignment: toList(meta.target[id] ?? {}),
        lastHeartbeatMs: s.lastHeartbeatMs,
      })),
    };
  }

  /**
   * Lists groups (read-only: members whose session expired are not counted, not removed).
   *
   * @returns summaries sorted by group id, at most {@linkcode MAX_LISTED_GROUPS}
   */
  async list(): Promise<GroupSummary[]> {
    const out: GroupSummary[] = [];
    let start: Deno.KvKey | null = null;
    const now = this.#now();
    while (out.length < MAX_LISTED_GROUPS) {
      let groupId: string | null = null;
      const selector = start ? { prefix: groupsPrefix(), start } : { prefix: groupsPrefix() };
      for await (const e of this.#kv.list(selector, { limit: 1 })) {
        groupId = String(e.key[2]);
      }
      if (groupId === null) break;
      const { snap } = await this.#read(groupId);
      if (snap.meta) {
        const live = liveStates(snap, expiredMembers(snap, now, this.judge));
        out.push({
          groupId,
          state: groupState(snap.meta, live),
          members: live.size,
          generation: snap.meta.generation,
        });
      }
      start = afterGroupKey(groupId);
    }
    return out;
  }

  /** Removes members in one generation bump; false when a check failed. */
  async #remove(snap: GroupSnapshot, ids: string[]): Promise<boolean> {
    const meta = structuredClone(snap.meta!);
    for (const id of ids) delete meta.members[id];
    const next = bumpGeneration(meta);
    const ok = await this.#commit(() => {
      const op = checkAll(this.#kv.atomic(), snap);
      op.set(groupMetaKey(snap.groupId), next);
      for (const id of ids) op.delete(groupMemberKey(snap.groupId, id));
      return op;
    }, (vs) => after(snap, next, vs, ids, null, null));
    if (ok) { for (const id of ids) this.#liveness?.forget(snap.groupId, id); }
    if (ok) this.#onRebalance(snap.groupId);
    return ok;
  }

  /** Current partition counts of every topic the members subscribe to (0 when deleted). */
  async #counts(meta: GroupMeta): Promise<Record<string, number>> {
    const topics = [...new Set(Object.values(meta.members).flatMap((m) => m.topics))].sort();
    const out: Record<string, number> = {};
    for (const t of topics) out[t] = (await this.#partitionCount(t)) ?? 0;
    return out;
  }
}

/** Whether a string names an assignor. */
export function isAssignorName(s: unknown): s is AssignorName {
  return typeof s === "string" && (ASSIGNORS as readonly string[]).includes(s);
}

function liveStates(snap: GroupSnapshot, expired: string[]): Map<string, MemberState> {
  const out = new Map<string, MemberState>();
  for (const [id, m] of snap.members) if (!expired.includes(id)) out.set(id, m.state);
  return out;
}

/** Whether two member records say the same, whatever their heartbeat times. */
function sameState(a: MemberState, b: MemberState): boolean {
  const norm = (s: MemberState) =>
    JSON.stringify({
      ...s,
      lastHeartbeatMs: 0,
      revocationStartedMs: s.revocationStartedMs ?? null,
    });
  return norm(a) === norm(b);
}

/** The group as a committed write leaves it (for the broker's snapshot). */
function after(
  snap: GroupSnapshot,
  meta: GroupMeta | null,
  versionstamp: string,
  removed: string[],
  memberId: string | null,
  state: MemberState | null,
): GroupSnapshot {
  const members = new Map(snap.members);
  for (const id of removed) members.delete(id);
  if (memberId !== null && state !== null) members.set(memberId, { state, versionstamp });
  const m = meta ?? snap.meta;
  if (m) { for (const id of [...members.keys()]) if (!m.members[id]) members.delete(id); }
  return {
    groupId: snap.groupId,
    meta: m,
    metaVersionstamp: meta ? versionstamp : snap.metaVersionstamp,
    members,
  };
}

function sameCounts(a: Record<string, number>, b: Record<string, number>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

function answer(
  meta: GroupMeta,
  memberId: string,
  s: MemberState,
  pendingAssignment: Record<string, number[]>,
  live: Map<string, MemberState>,
): MemberAnswer {
  const sessionTimeoutMs = meta.members[memberId].sessionTimeoutMs;
  return {
    memberId,
    generation: s.generation,
    assignment: toList(s.assignment),
    pendingRevocation: toList(s.pendingRevocation),
    pendingAssignment: toList(pendingAssignment),
    heartbeatIntervalMs: Math.floor(sessionTimeoutMs / 3),
    sessionTimeoutMs,
    state: groupState(meta, live),
  };
}

/**
 * The error for an operation naming a member the group does not have.
 *
 * @param groupId the group
 * @param memberId the member
 * @param why an optional reason
 * @returns 409 UNKNOWN_MEMBER_ID
 */
export function unknownMember(groupId: string, memberId: string, why?: string): RillError {
  return new RillError(
    "UNKNOWN_MEMBER_ID",
    `Group "${groupId}" has no member "${memberId}"${why ? ` (${why})` : ""}; join again`,
  );
}

/**
 * The error for a group that does not exist.
 *
 * @param groupId the group
 * @returns 404 GROUP_ID_NOT_FOUND
 */
export function groupNotFound(groupId: string): RillError {
  return new RillError("GROUP_ID_NOT_FOUND", `Group "${groupId}" does not exist`);
}
