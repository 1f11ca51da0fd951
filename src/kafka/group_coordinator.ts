/**
 * The classic consumer-group protocol (client-side assignment) for Kafka clients:
 * JoinGroup waits until every known member has rejoined (or the rebalance timeout passes),
 * the leader's SyncGroup hands out the assignment, heartbeats keep sessions alive and
 * learn of rebalances (REBALANCE_IN_PROGRESS), fencing by generation (ILLEGAL_GENERATION)
 * and member id (UNKNOWN_MEMBER_ID). States: Empty → PreparingRebalance →
 * CompletingRebalance → Stable, as in Kafka's group coordinator.
 *
 * The state lives in the memory of the group's coordinator broker (FindCoordinator names
 * one per group) and is mirrored into the KV group store (coordination/group_classic.ts)
 * once a generation is assigned, on membership changes and on heartbeats, so Rill's
 * describe, lag and offsets see it; those writes go behind the answers, and the HTTP API's
 * reads of the group on this broker wait for them (coordination/group_writes_behind.ts). A
 * coordinator that restarts forgets its groups; their members get UNKNOWN_MEMBER_ID and
 * rejoin, as after a Kafka coordinator move.
 *
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import {
  checkNotRillGroup,
  type ClassicMetaHints,
  mirrorClassicGroup,
  touchClassicMember,
} from "../coordination/group_classic.ts";
import type { TopicPartitions } from "../coordination/group_keys.ts";
import { RillError } from "../protocol/errors.ts";
import { KAFKA_ERROR, kafkaCode } from "./errors.ts";
import { Reader } from "./wire.ts";

/** A group's state. */
export type ClassicState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable";

/** What a JoinGroup answers. */
export interface JoinAnswer {
  /** 0 or a Kafka error code */
  errorCode: number;
  /** the generation */
  generationId: number;
  /** the protocol type */
  protocolType: string | null;
  /** the chosen protocol */
  protocolName: string | null;
  /** the leader's member id */
  leader: string;
  /** the member's id */
  memberId: string;
  /** for the leader: every member's metadata */
  members: { memberId: string; groupInstanceId: string | null; metadata: Uint8Array }[];
}

/** What a SyncGroup answers. */
export interface SyncAnswer {
  /** 0 or a Kafka error code */
  errorCode: number;
  /** the protocol type */
  protocolType: string | null;
  /** the chosen protocol */
  protocolName: string | null;
  /** the member's assignment */
  assignment: Uint8Array;
}

/** A member of a classic group. */
export interface ClassicMember {
  /** its id */
  memberId: string;
  /** the client id */
  clientId: string;
  /** the client's address */
  clientHost: string;
  /** the session timeout */
  sessionTimeoutMs: number;
  /** the rebalance timeout */
  rebalanceTimeoutMs: number;
  /** the protocols it supports, in its preference order */
  protocols: { name: string; metadata: Uint8Array }[];
  /** its assignment of the current generation */
  assignment: Uint8Array;
  /** last heartbeat or join */
  lastHeartbeatMs: number;
  /** when it joined */
  joinedAtMs: number;
  /** a JoinGroup waiting for the rebalance to complete */
  joinWaiter: ((a: JoinAnswer) => void) | null;
  /** a SyncGroup waiting for the leader's assignment */
  syncWaiter: ((a: SyncAnswer) => void) | null;
}

/** A classic group. */
export interface ClassicGroup {
  /** the group id */
  groupId: string;
  /** the state */
  state: ClassicState;
  /** the generation */
  generation: number;
  /** the protocol type of its members */
  protocolType: string | null;
  /** the protocol chosen for the generation */
  protocolName: string | null;
  /** the leader's member id */
  leader: string | null;
  /** the members */
  members: Map<string, ClassicMember>;
  /** ends the rebalance when members fail to rejoin in time */
  rebalanceTimer: ReturnType<typeof setTimeout> | null;
  /** the KV mirror writes, in order */
  mirror: Promise<void>;
}

const EMPTY = new Uint8Array(0);
const SWEEP_MS = 250;

/**
 * The classic groups this broker coordinates.
 *
 * @example
 * ```ts
 * const groups = new ClassicGroups(broker, console.error);
 * const a = await groups.join({ groupId: "g", memberId: "", ... });
 * ```
 */
export class ClassicGroups {
  readonly #broker: Broker;
  readonly #log: (line: string) => void;
  readonly #groups = new Map<string, ClassicGroup>();
  readonly #sweeper: ReturnType<typeof setInterval>;
  #closed = false;
  /** Kafka group metas seen by offset commits (one KV write a commit while unchanged) */
  readonly metaHints: ClassicMetaHints = new Map();
  /** the clock (tests may replace it) */
  now: () => number = Date.now;

  /**
   * @param broker the broker (its KV holds the group store)
   * @param log where one-line reports go
   */
  constructor(broker: Broker, log: (line: string) => void) {
    this.#broker = broker;
    this.#log = log;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
    Deno.unrefTimer(this.#sweeper);
  }

  /** Stops the session sweeper and answers every waiting request. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const g of this.#groups.values()) {
      if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
      g.rebalanceTimer = null;
      for (const m of g.members.values()) {
        m.joinWaiter?.(joinError(KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE, m.memberId));
        m.syncWaiter?.(syncError(KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE));
        m.joinWaiter = m.syncWaiter = null;
      }
    }
  }

  /**
   * A group, or undefined when this broker does not know it.
   *
   * @param groupId the group
   * @returns the group
   */
  get(groupId: string): ClassicGroup | undefined {
    return this.#groups.get(groupId);
  }

  /** Every group this coordinator knows. */
  all(): ClassicGroup[] {
    return [...this.#groups.values()];
  }

  /**
   * JoinGroup: adds or refreshes the member and waits for the rebalance to complete.
   *
   * @param req the request fields
   * @returns the answer (the leader gets every member's metadata)
   */
  async join(req: {
    groupId: string;
    memberId: string;
    clientId: string;
    clientHost: string;
    sessionTimeoutMs: number;
    rebalanceTimeoutMs: number;
    protocolType: string;
    protocols: { name: string; metadata: Uint8Array }[];
  }): Promise<JoinAnswer> {
    if (this.#closed) return joinError(KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE, req.memberId);
    if (req.groupId === "") return joinError(KAFKA_ERROR.INVALID_GROUP_ID, req.memberId);
    if (req.sessionTimeoutMs < 1000 || req.sessionTimeoutMs > 1_800_000) {
      return joinError(KAFKA_ERROR.INVALID_SESSION_TIMEOUT, req.memberId);
    }
    let g = this.#groups.get(req.groupId);
    if (!g || g.members.size === 0) {
      try {
        await checkNotRillGroup(this.#broker.kv, req.groupId, this.now());
      } catch (e) {
        return joinError(kafkaCode(e), req.memberId);
      }
      g = this.#groups.get(req.groupId);
    }
    if (!g) {
      g = {
        groupId: req.groupId,
        state: "Empty",
        generation: 0,
        protocolType: null,
        protocolName: null,
        leader: null,
        members: new Map(),
        rebalanceTimer: null,
        mirror: Promise.resolve(),
      };
      this.#groups.set(req.groupId, g);
    }
    const existing = req.memberId === "" ? undefined : g.members.get(req.memberId);
    if (req.memberId !== "" && !existing) {
      return joinError(KAFKA_ERROR.UNKNOWN_MEMBER_ID, req.memberId);
    }
    if (g.members.size > 0 && !(g.members.size === 1 && existing)) {
      const common = req.protocols.some((p) =>
        [...g!.members.values()].every((m) =>
          m === existing || m.protocols.some((q) => q.name === p.name)
        )
      );
      if (req.protocolType !== g.protocolType || !common) {
        return joinError(KAFKA_ERROR.INCONSISTENT_GROUP_PROTOCOL, req.memberId);
      }
    }
    const now = this.now();
    const member: ClassicMember = existing ?? {
      memberId: `${req.clientId || "member"}-${crypto.randomUUID()}`,
      clientId: req.clientId,
      clientHost: req.clientHost,
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: req.rebalanceTimeoutMs,
      protocols: req.protocols,
      assignment: EMPTY,
      lastHeartbeatMs: now,
      joinedAtMs: now,
      joinWaiter: null,
      syncWaiter: null,
    };
    member.sessionTimeoutMs = req.sessionTimeoutMs;
    member.rebalanceTimeoutMs = req.rebalanceTimeoutMs > 0
      ? req.rebalanceTimeoutMs
      : req.sessionTimeoutMs;
    member.protocols = req.protocols;
    member.lastHeartbeatMs = now;
    g.protocolType = req.protocolType;
    const answer = new Promise<JoinAnswer>((resolve) => {
      // A second join of the same member while one waits: the older one is told to rejoin.
      member.joinWaiter?.(joinError(KAFKA_ERROR.REBALANCE_IN_PROGRESS, member.memberId));
      member.joinWaiter = resolve;
    });
    if (!existing) g.members.set(member.memberId, member);
    if (g.state !== "PreparingRebalance") this.#prepareRebalance(g);
    this.#tryCompleteJoin(g);
    return await answer;
  }

  /**
   * SyncGroup: the leader brings the assignment; everyone gets their part.
   *
   * @param req the request fields
   * @returns the member's assignment
   */
  async sync(req: {
    groupId: string;
    generationId: number;
    memberId: string;
    assignments: { memberId: string; assignment: Uint8Array }[];
  }): Promise<SyncAnswer> {
    if (this.#closed) return syncError(KAFKA_ERROR.COORDINATOR_NOT_AVAILABLE);
    const g = this.#groups.get(req.groupId);
    const m = g?.members.get(req.memberId);
    if (!g || !m) return syncError(KAFKA_ERROR.UNKNOWN_MEMBER_ID);
    if (req.generationId !== g.generation) return syncError(KAFKA_ERROR.ILLEGAL_GENERATION);
    m.lastHeartbeatMs = this.now();
    if (g.state === "PreparingRebalance") return syncError(KAFKA_ERROR.REBALANCE_IN_PROGRESS);
    if (g.state === "Stable") return this.#syncAnswer(g, m);
    const answer = new Promise<SyncAnswer>((resolve) => {
      m.syncWaiter?.(syncError(KAFKA_ERROR.REBALANCE_IN_PROGRESS));
      m.syncWaiter = resolve;
    });
    if (req.memberId === g.leader) {
      const given = new Map(req.assignments.map((a) => [a.memberId, a.assignment]));
      for (const member of g.members.values()) {
        member.assignment = given.get(member.memberId) ?? EMPTY;
      }
      g.state = "Stable";
      const generation = g.generation;
      // The assignment is recorded before anyone is told (so a commit right after it sees
      // the generation in the store).
      await this.#mirror(g).catch(() => {});
      if (g.state === "Stable" && g.generation === generation) {
        for (const member of g.members.values()) {
          const w = member.syncWaiter;
          member.syncWaiter = null;
          w?.(this.#syncAnswer(g, member));
        }
      }
    }
    return await answer;
  }

  /**
   * Heartbeat.
   *
   * @param groupId the group
   * @param memberId the member
   * @param generationId its generation
   * @returns 0 or a Kafka error code
   */
  heartbeat(groupId: string, memberId: string, generationId: number): number {
    const g = this.#groups.get(groupId);
    const m = g?.members.get(memberId);
    if (!g || !m) return KAFKA_ERROR.UNKNOWN_MEMBER_ID;
    if (generationId !== g.generation) return KAFKA_ERROR.ILLEGAL_GENERATION;
    m.lastHeartbeatMs = this.now();
    if (g.state === "PreparingRebalance") return KAFKA_ERROR.REBALANCE_IN_PROGRESS;
    if (g.state === "Stable") {
      const at = m.lastHeartbeatMs;
      g.mirror = g.mirror.then(() =>
        touchClassicMember(this.#broker.kv, groupId, memberId, at).catch(() => {})
      );
    }
    return 0;
  }

  /**
   * LeaveGroup of one member.
   *
   * @param groupId the group
   * @param memberId the member
   * @returns 0 or a Kafka error code
   */
  leave(groupId: string, memberId: string): number {
    const g = this.#groups.get(groupId);
    const m = g?.members.get(memberId);
    if (!g || !m) return KAFKA_ERROR.UNKNOWN_MEMBER_ID;
    this.#remove(g, [m], "left the group");
    return 0;
  }

  /**
   * Checks an OffsetCommit's member and generation.
   *
   * @param groupId the group
   * @param memberId the member ("" with generation −1: a simple commit)
   * @param generationId its generation
   * @returns 0 or a Kafka error code
   */
  checkCommit(groupId: string, memberId: string, generationId: number): number {
    const g = this.#groups.get(groupId);
    if (generationId < 0 && memberId === "") {
      return g && g.members.size > 0 ? KAFKA_ERROR.UNKNOWN_MEMBER_ID : 0;
    }
    const m = g?.members.get(memberId);
    if (!g || !m) return KAFKA_ERROR.UNKNOWN_MEMBER_ID;
    if (generationId !== g.generation) return KAFKA_ERROR.ILLEGAL_GENERATION;
    if (g.state === "CompletingRebalance") return KAFKA_ERROR.REBALANCE_IN_PROGRESS;
    m.lastHeartbeatMs = this.now();
    return 0;
  }

  #syncAnswer(g: ClassicGroup, m: ClassicMember): SyncAnswer {
    return {
      errorCode: 0,
      protocolType: g.protocolType,
      protocolName: g.protocolName,
      assignment: m.assignment,
    };
  }

  #prepareRebalance(g: ClassicGroup): void {
    for (const m of g.members.values()) {
      const w = m.syncWaiter;
      m.syncWaiter = null;
      w?.(syncError(KAFKA_ERROR.REBALANCE_IN_PROGRESS));
    }
    g.state = "PreparingRebalance";
    if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
    const timeout = Math.max(0, ...[...g.members.values()].map((m) => m.rebalanceTimeoutMs));
    g.rebalanceTimer = setTimeout(() => {
      g.rebalanceTimer = null;
      if (g.state !== "PreparingRebalance") return;
      const late = [...g.members.values()].filter((m) => m.joinWaiter === null);
      if (late.length > 0) this.#remove(g, late, "did not rejoin within the rebalance timeout");
      this.#tryCompleteJoin(g);
    }, timeout);
  }

  #tryCompleteJoin(g: ClassicGroup): void {
    if (g.state !== "PreparingRebalance") return;
    const members = [...g.members.values()];
    if (members.some((m) => m.joinWaiter === null)) return;
    if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
    g.rebalanceTimer = null;
    g.generation++;
    if (members.length === 0) {
      g.state = "Empty";
      g.protocolName = null;
      g.leader = null;
      this.#mirror(g).catch(() => {});
      return;
    }
    // The first protocol, in the leader's order, that every member supports.
    if (!g.leader || !g.members.has(g.leader)) g.leader = members[0].memberId;
    const leader = g.members.get(g.leader)!;
    g.protocolName =
      leader.protocols.find((p) => members.every((m) => m.protocols.some((q) => q.name === p.name)))
        ?.name ?? leader.protocols[0]?.name ?? null;
    g.state = "CompletingRebalance";
    const all = members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: null,
      metadata: m.protocols.find((p) => p.name === g.protocolName)?.metadata ?? EMPTY,
    }));
    for (const m of members) {
      const w = m.joinWaiter!;
      m.joinWaiter = null;
      m.lastHeartbeatMs = this.now();
      w({
        errorCode: 0,
        generationId: g.generation,
        protocolType: g.protocolType,
        protocolName: g.protocolName,
        leader: g.leader,
        memberId: m.memberId,
        members: m.memberId === g.leader ? all : [],
      });
    }
  }

  #remove(g: ClassicGroup, gone: ClassicMember[], why: string): void {
    for (const m of gone) {
      g.members.delete(m.memberId);
      m.joinWaiter?.(joinError(KAFKA_ERROR.UNKNOWN_MEMBER_ID, m.memberId));
      m.syncWaiter?.(syncError(KAFKA_ERROR.UNKNOWN_MEMBER_ID));
      m.joinWaiter = m.syncWaiter = null;
      this.#log(`kafka: member ${m.memberId} of group "${g.groupId}" ${why}`);
    }
    if (g.leader !== null && !g.members.has(g.leader)) g.leader = null;
    if (g.members.size === 0) {
      if (g.rebalanceTimer) clearTimeout(g.rebalanceTimer);
      g.rebalanceTimer = null;
      g.state = "Empty";
      g.generation++;
      g.protocolName = null;
      this.#mirror(g).catch(() => {});
      return;
    }
    if (g.state !== "PreparingRebalance") this.#prepareRebalance(g);
    // The members gone leave the store now, not at the end of the rebalance.
    this.#mirror(g).catch(() => {});
    this.#tryCompleteJoin(g);
  }

  #sweep(): void {
    const now = this.now();
    for (const g of this.#groups.values()) {
      // Members waiting in JoinGroup are covered by the rebalance timeout instead.
      const expired = [...g.members.values()].filter((m) =>
        m.joinWaiter === null && now - m.lastHeartbeatMs > m.sessionTimeoutMs
      );
      if (expired.length > 0) this.#remove(g, expired, "let its session expire");
    }
  }

  /** Writes the group into the KV store (chained per group, in order). */
  #mirror(g: ClassicGroup): Promise<void> {
    const snapshot = {
      groupId: g.groupId,
      generation: g.generation,
      protocolType: g.protocolType ?? "",
      protocolName: g.protocolName ?? "",
      members: [...g.members.values()].map((m) => {
        const sub = g.protocolType === "consumer"
          ? parseSubscription(m.protocols.find((p) => p.name === g.protocolName)?.metadata)
          : [];
        return {
          memberId: m.memberId,
          clientId: m.clientId,
          topics: sub,
          sessionTimeoutMs: m.sessionTimeoutMs,
          joinedAtMs: m.joinedAtMs,
          assignment: g.protocolType === "consumer" ? parseAssignment(m.assignment) : {},
          lastHeartbeatMs: m.lastHeartbeatMs,
        };
      }),
    };
    const next = g.mirror.then(() =>
      mirrorClassicGroup(this.#broker.kv, snapshot, this.now()).catch((e) => {
        if (!(e instanceof RillError)) this.#log(`kafka: recording group "${g.groupId}": ${e}`);
      })
    );
    g.mirror = next;
    // The HTTP API's reads of the group on this broker wait for it.
    this.#broker.groupWritesBehind.track(g.groupId, next);
    return next;
  }
}

function joinError(errorCode: number, memberId: string): JoinAnswer {
  return {
    errorCode,
    generationId: -1,
    protocolType: null,
    protocolName: null,
    leader: "",
    memberId,
    members: [],
  };
}

function syncError(errorCode: number): SyncAnswer {
  return { errorCode, protocolType: null, protocolName: null, assignment: EMPTY };
}

/**
 * The topics of a consumer-protocol subscription (version, topics, user data, …).
 *
 * @param bytes the member's protocol metadata
 * @returns the topics ([] when it does not parse)
 */
export function parseSubscription(bytes: Uint8Array | undefined): string[] {
  if (!bytes || bytes.length < 2) return [];
  try {
    const r = new Reader(bytes);
    r.int16();
    const n = r.int32();
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(r.string(false) ?? "");
    return out;
  } catch {
    return [];
  }
}

/**
 * The partitions of a consumer-protocol assignment (version, [topic, [partition]], …).
 *
 * @param bytes the assignment
 * @returns topic → sorted partitions ({} when it does not parse)
 */
export function parseAssignment(bytes: Uint8Array): TopicPartitions {
  if (bytes.length < 2) return {};
  try {
    const r = new Reader(bytes);
    r.int16();
    const n = r.int32();
    const out: TopicPartitions = {};
    for (let i = 0; i < n; i++) {
      const topic = r.string(false) ?? "";
      const count = r.int32();
      const parts: number[] = [];
      for (let j = 0; j < count; j++) parts.push(r.int32());
      out[topic] = [...new Set([...(out[topic] ?? []), ...parts])].sort((a, b) => a - b);
    }
    return out;
  } catch {
    return {};
  }
}
