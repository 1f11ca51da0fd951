/**
 * The HTTP calls a group consumer makes (HTTP_API.md, "Consumer groups"): join, heartbeat,
 * leave, commit and read committed offsets. No policy lives here: when to call what is the
 * consumer's business (consumer.ts, following the contract atop
 * `src/http/routes/groups.ts`).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { Transport } from "./transport.ts";
import { readJson } from "./http_answers.ts";

/**
 * The longest a group call (join, commit, leave, committed offsets) waits for the broker,
 * retries included, before it fails with REQUEST_TIMED_OUT (Kafka's `request.timeout.ms`
 * default): a broker or connection that stops answering cannot hold a consumer's
 * `stop()`/`disconnect()` forever.
 */
export const GROUP_REQUEST_TIMEOUT_MS = 30_000;

/**
 * A topic partition.
 *
 * @example
 * ```ts
 * const tp: TopicPartitionRef = { topic: "orders", partition: 0 };
 * ```
 */
export interface TopicPartitionRef {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
}

/**
 * The broker's answer to a join or heartbeat.
 *
 * @example
 * ```ts
 * const a: GroupAnswer = await member.heartbeat("m-1", 3);
 * ```
 */
export interface GroupAnswer {
  /** the member id */
  memberId: string;
  /** the generation to heartbeat and commit with */
  generation: number;
  /** the partitions the member may work on */
  assignment: TopicPartitionRef[];
  /** the partitions to stop, commit, then confirm by heartbeating with `generation` */
  pendingRevocation: TopicPartitionRef[];
  /** partitions of the member's target still owned by another member */
  pendingAssignment: TopicPartitionRef[];
  /** how often to heartbeat */
  heartbeatIntervalMs: number;
  /** the member's session timeout */
  sessionTimeoutMs: number;
  /** the group's state */
  state: string;
}

/**
 * One offset to commit.
 *
 * @example
 * ```ts
 * const c: OffsetToCommit = { topic: "orders", partition: 0, offset: 42 };
 * ```
 */
export interface OffsetToCommit {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the next offset to read */
  offset: number;
  /** free text stored with the offset */
  metadata?: string;
}

/**
 * Join options.
 *
 * @example
 * ```ts
 * await member.join({ topics: ["orders"], sessionTimeoutMs: 10_000 });
 * ```
 */
export interface JoinOptions {
  /** subscribed topics */
  topics: string[];
  /** the session timeout to ask for */
  sessionTimeoutMs?: number;
  /** "range", "roundrobin" or "sticky" */
  assignor?: string;
  /** a name shown by describe */
  clientId?: string;
}

/**
 * The group calls of one group, over the client's transport.
 *
 * @example
 * ```ts
 * const member = new GroupMember(transport, "billing");
 * const answer = await member.join({ topics: ["orders"] });
 * ```
 */
export class GroupMember {
  readonly #t: Transport;
  readonly #path: string;
  /** the group id */
  readonly groupId: string;

  /**
   * @param transport the client's transport
   * @param groupId the group
   */
  constructor(transport: Transport, groupId: string) {
    this.#t = transport;
    this.groupId = groupId;
    this.#path = `/v1/groups/${encodeURIComponent(groupId)}`;
  }

  /**
   * Joins the group (retrying retriable failures).
   *
   * @param options the subscription and session timeout
   * @param signal aborts the request
   * @returns the first answer
   * @throws {RillError} INVALID_REQUEST, UNKNOWN_TOPIC_OR_PARTITION, REQUEST_TIMED_OUT, …
   */
  async join(options: JoinOptions, signal?: AbortSignal): Promise<GroupAnswer> {
    const json: Record<string, unknown> = { topics: options.topics };
    if (options.sessionTimeoutMs !== undefined) json.sessionTimeoutMs = options.sessionTimeoutMs;
    if (options.assignor !== undefined) json.assignor = options.assignor;
    if (options.clientId !== undefined) json.clientId = options.clientId;
    return checkAnswer(
      await this.#bounded(
        "join",
        signal,
        (signal) => this.#t.json<GroupAnswer>("POST", `${this.#path}/members`, { json, signal }),
      ),
    );
  }

  /**
   * One heartbeat (no retry: the caller heartbeats again on its own schedule).
   *
   * @param memberId the member
   * @param generation the generation of the last answer fully processed
   * @param signal aborts the request
   * @returns the answer
   * @throws {RillError} UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, BROKER_NOT_AVAILABLE, …
   */
  async heartbeat(
    memberId: string,
    generation: number,
    signal?: AbortSignal,
  ): Promise<GroupAnswer> {
    const res = await this.#t.request(
      "POST",
      `${this.#path}/members/${encodeURIComponent(memberId)}/heartbeat`,
      { json: { generation }, signal },
    );
    return checkAnswer(await readJson(res) as GroupAnswer);
  }

  /**
   * Leaves the group; a member that is already gone is fine.
   *
   * @param memberId the member
   * @param signal aborts the request
   * @throws {RillError} when the broker cannot be reached or does not answer (REQUEST_TIMED_OUT)
   */
  async leave(memberId: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.#bounded(
        "leave",
        signal,
        (signal) =>
          this.#t.json<void>("DELETE", `${this.#path}/members/${encodeURIComponent(memberId)}`, {
            signal,
          }),
      );
    } catch (e) {
      if (
        e instanceof RillError &&
        (e.code === "UNKNOWN_MEMBER_ID" || e.code === "GROUP_ID_NOT_FOUND")
      ) return;
      throw e;
    }
  }

  /**
   * Commits offsets, fenced by member and generation (one atomic write on the broker).
   *
   * @param memberId the member
   * @param generation the generation of the member's last answer
   * @param offsets the offsets
   * @param signal aborts the request
   * @throws {RillError} ILLEGAL_GENERATION (with `details.notOwned`), UNKNOWN_MEMBER_ID,
   *   REBALANCE_IN_PROGRESS (retried), INVALID_REQUEST, OFFSET_OUT_OF_RANGE, REQUEST_TIMED_OUT
   */
  async commit(
    memberId: string,
    generation: number,
    offsets: OffsetToCommit[],
    signal?: AbortSignal,
  ): Promise<void> {
    await this.#bounded(
      "commit",
      signal,
      (signal) =>
        this.#t.json("POST", `${this.#path}/offsets`, {
          json: { memberId, generation, offsets },
          signal,
        }),
    );
  }

  /**
   * The group's committed offsets.
   *
   * @returns offset by `topic\0partition`
   */
  async committed(): Promise<Map<string, number>> {
    const body = await this.#bounded(
      "offsets",
      undefined,
      (signal) =>
        this.#t.json<{ offsets?: { topic: string; partition: number; offset: number }[] }>(
          "GET",
          `${this.#path}/offsets`,
          { signal },
        ),
    );
    const out = new Map<string, number>();
    for (const o of body?.offsets ?? []) {
      const offset = Number(o.offset);
      if (Number.isSafeInteger(offset) && offset >= 0) out.set(tpKey(o.topic, o.partition), offset);
    }
    return out;
  }

  /**
   * Runs a group call with a deadline: {@linkcode GROUP_REQUEST_TIMEOUT_MS}, or `signal`'s
   * (whichever comes first). A call the deadline cut off fails with REQUEST_TIMED_OUT; one
   * `signal` aborted fails with its reason.
   */
  async #bounded<T>(
    what: string,
    signal: AbortSignal | undefined,
    call: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const deadline = AbortSignal.timeout(GROUP_REQUEST_TIMEOUT_MS);
    try {
      return await call(signal ? AbortSignal.any([signal, deadline]) : deadline);
    } catch (e) {
      if (!deadline.aborted || e instanceof RillError) throw e;
      throw new RillError(
        "REQUEST_TIMED_OUT",
        `The broker did not answer the group ${what} request of "${this.groupId}" within ${GROUP_REQUEST_TIMEOUT_MS} ms`,
      );
    }
  }
}

/**
 * The map key of a topic partition.
 *
 * @param topic the topic
 * @param partition the partition
 * @returns `topic\0partition`
 * @example
 * ```ts
 * tpKey("orders", 0); // "orders\u00000"
 * ```
 */
export function tpKey(topic: string, partition: number): string {
  return topic + "\u0000" + partition;
}

function checkAnswer(a: GroupAnswer): GroupAnswer {
  if (
    !a || typeof a.memberId !== "string" || !Number.isInteger(a.generation) ||
    !Array.isArray(a.assignment)
  ) {
    throw new RillError("UNKNOWN_SERVER_ERROR", "The broker's group answer is malformed");
  }
  a.pendingRevocation = Array.isArray(a.pendingRevocation) ? a.pendingRevocation : [];
  a.pendingAssignment = Array.isArray(a.pendingAssignment) ? a.pendingAssignment : [];
  return a;
}
