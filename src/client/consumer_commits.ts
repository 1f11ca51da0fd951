/**
 * A group consumer's commits: the positions committed (to skip empty commits), the
 * auto-commit policy (interval and threshold, kafkajs's runner rules), explicit
 * `commitOffsets()`, and the heartbeat a stale-generation commit answer triggers.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { type PartitionState } from "./consumer_fetches.ts";
import type { RunOptions } from "./consumer_types.ts";
import { type GroupMember, type OffsetToCommit, tpKey } from "./group_member.ts";
import { toOffset } from "./offsets.ts";

/** What {@linkcode GroupCommits} needs from its group session. */
export interface GroupCommitsContext {
  /** the group member (the broker's group API) */
  member: GroupMember;
  /** the member id, or null when not joined */
  memberId: () => string | null;
  /** the generation commits carry (the newest answer's) */
  generation: () => number;
  /** whether the session was lost (nothing is committed then) */
  sessionLost: () => boolean;
  /** the partitions worked on */
  states: () => PartitionState[];
  /** sends a heartbeat at once (a commit found the generation stale) */
  wakeHeartbeat: () => void;
}

/** Commits of a group consumer. */
export class GroupCommits {
  /** last committed offset per partition (`tpKey`), to skip empty commits */
  readonly committed: Map<string, number> = new Map();
  /** commit resolved offsets automatically */
  autoCommit = true;
  #interval = 5000;
  #threshold = 0;
  #resolvedSinceCommit = 0;
  #lastCommitAt = 0;
  readonly #c: GroupCommitsContext;

  /** @param context the group session's side */
  constructor(context: GroupCommitsContext) {
    this.#c = context;
  }

  /**
   * Takes `run()`'s commit policy.
   *
   * @param options autoCommit, autoCommitInterval, autoCommitThreshold
   * @throws {RangeError} on a bad number
   */
  configure(options: RunOptions): void {
    this.autoCommit = options.autoCommit ?? true;
    this.#interval = options.autoCommitInterval ?? 5000;
    this.#threshold = options.autoCommitThreshold ?? 0;
    if (!Number.isInteger(this.#interval) || this.#interval < 0) {
      throw new RangeError(`autoCommitInterval must be a non-negative integer`);
    }
    if (!Number.isInteger(this.#threshold) || this.#threshold < 0) {
      throw new RangeError(`autoCommitThreshold must be a non-negative integer`);
    }
  }

  /** A (re)join: nothing is known committed, and the interval starts now. */
  reset(): void {
    this.committed.clear();
    this.#lastCommitAt = Date.now();
  }

  /**
   * Counts records resolved since the last commit (for the threshold).
   *
   * @param count how many
   */
  resolved(count = 1): void {
    this.#resolvedSinceCommit += count;
  }

  /**
   * `commitOffsets()`: the given offsets, or every partition's position.
   *
   * @param offsets the offsets, or undefined for the positions
   */
  async commitOffsets(
    offsets?: { topic: string; partition: number; offset: number | string | bigint }[],
  ): Promise<void> {
    const memberId = this.#c.memberId();
    if (memberId === null) {
      throw new TypeError("commitOffsets(): the consumer has not joined");
    }
    if (offsets === undefined) {
      await this.commitPositions(this.#c.states(), this.#c.generation(), true);
      return;
    }
    const list: OffsetToCommit[] = offsets.map((o) => {
      let offset: number;
      try {
        offset = toOffset(o.offset);
      } catch {
        // let the broker name the problem (negative, malformed) with its error code
        offset = (typeof o.offset === "bigint" ? Number(o.offset) : o.offset) as number;
      }
      return { topic: o.topic, partition: o.partition, offset };
    });
    try {
      await this.#c.member.commit(memberId, this.#c.generation(), list);
    } catch (e) {
      this.#onCommitError(e);
      throw e;
    }
    for (const o of list) this.committed.set(tpKey(o.topic, o.partition), o.offset);
  }

  /**
   * Commits the positions of `states` that moved since their last commit.
   *
   * @param states the partitions
   * @param generation the generation the commit carries
   * @param rethrow whether a failed commit throws (else it is only reported to the session)
   */
  async commitPositions(
    states: PartitionState[],
    generation: number,
    rethrow: boolean,
  ): Promise<void> {
    const memberId = this.#c.memberId();
    if (memberId === null) return;
    const offsets: OffsetToCommit[] = [];
    for (const s of states) {
      if (this.committed.get(tpKey(s.topic, s.partition)) !== s.position) {
        offsets.push({ topic: s.topic, partition: s.partition, offset: s.position });
      }
    }
    this.#resolvedSinceCommit = 0;
    this.#lastCommitAt = Date.now();
    if (offsets.length === 0) return;
    try {
      await this.#c.member.commit(memberId, generation, offsets);
      for (const o of offsets) this.committed.set(tpKey(o.topic, o.partition), o.offset);
    } catch (e) {
      this.#onCommitError(e);
      if (rethrow) throw e;
    }
  }

  /**
   * Auto-commit when due (interval or threshold); `idle` commits by interval only.
   *
   * @param idle called from the heartbeat loop rather than after a handler
   */
  async maybeCommit(idle = false): Promise<void> {
    if (!this.commitDue(idle)) return;
    await this.commitPositions(this.#c.states(), this.#c.generation(), false);
  }

  /**
   * Whether {@linkcode maybeCommit} would commit now (checked without a promise, once per
   * delivered record).
   *
   * @param idle asked from the heartbeat loop rather than after a handler
   * @returns true when an auto-commit is due
   */
  commitDue(idle = false): boolean {
    if (!this.autoCommit || this.#c.memberId() === null || this.#c.sessionLost()) return false;
    if (this.#resolvedSinceCommit === 0 && idle) return false;
    return (!idle && this.#threshold > 0 && this.#resolvedSinceCommit >= this.#threshold) ||
      Date.now() - this.#lastCommitAt >= this.#interval;
  }

  /** Commits every position, reporting (not throwing) a failure. */
  commitQuietly(): Promise<void> {
    return this.commitPositions(this.#c.states(), this.#c.generation(), false);
  }

  #onCommitError(e: unknown): void {
    if (
      e instanceof RillError &&
      (e.code === "ILLEGAL_GENERATION" || e.code === "UNKNOWN_MEMBER_ID" ||
        e.code === "REBALANCE_IN_PROGRESS")
    ) this.#c.wakeHeartbeat();
  }
}
