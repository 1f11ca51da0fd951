/**
 * A group consumer's session: joining, the heartbeat timer (independent of handlers), the
 * serial processing of the group's answers (revoke: stop, wait for the handler, commit,
 * `onRevoked`, confirm; then grant: committed offsets or reset, `onAssigned`, start
 * fetching), the session rule (no heartbeat answered within the session timeout stops all
 * work), and leaving. The handover contract is stated atop `src/http/routes/groups.ts`.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { Admin } from "./admin.ts";
import { GroupCommits } from "./consumer_commits.ts";
import { key, newPartitionState, type PartitionFetches } from "./consumer_fetches.ts";
import type { RebalanceListener } from "./consumer_types.ts";
import { type GroupAnswer, GroupMember, tpKey } from "./group_member.ts";
import { delay } from "./retry.ts";
import type { Transport } from "./transport.ts";

/** The group settings of a consumer. */
export interface GroupConfig {
  /** the group id */
  groupId: string;
  /** the session timeout asked of the broker */
  sessionTimeoutMs?: number;
  /** the heartbeat interval (default the broker's) */
  heartbeatIntervalMs?: number;
  /** the assignor asked for */
  assignor?: string;
  /** where partitions without a committed offset start */
  reset: "earliest" | "latest" | "none";
}

/** A consumer's membership of its group. */
export class GroupSession {
  /** the group member (the broker's group API) */
  readonly member: GroupMember;
  /** the commits */
  readonly commits: GroupCommits;
  /** the subscribed topics */
  topics: string[] | null = null;
  /** start partitions without a committed offset at the beginning */
  fromBeginning = false;
  readonly #config: GroupConfig;
  readonly #fetches: PartitionFetches;
  readonly #admin: Admin;
  readonly #mode: () => "idle" | "run" | "iterate";
  readonly #listeners: { assigned: RebalanceListener[]; revoked: RebalanceListener[] } = {
    assigned: [],
    revoked: [],
  };
  #memberId: string | null = null;
  /** generation of the last answer fully processed: heartbeats carry it */
  #ackGeneration = -1;
  /** generation of the newest answer: commits carry it */
  #commitGeneration = -1;
  #heartbeatMs = 3000;
  #sessionMs = 10_000;
  /** whether the group machinery (heartbeats, watchdog) runs */
  #active = false;
  #heartbeatLoop: Promise<void> | null = null;
  #heartbeatWake: (() => void) | null = null;
  #heartbeatNow = false;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /** the send time of the newest heartbeat (or join) that was answered */
  #lastAnsweredSentAt = 0;
  #lastSentAt = 0;
  #sessionLost = false;
  /** answers wait here for the (serial) answer processor */
  #pendingAnswer: GroupAnswer | null = null;
  #processing: Promise<void> | null = null;
  #leaving: Promise<void> | null = null;
  /** bumped by each leave(): a join answered after it must not revive the session */
  #leaves = 0;
  /** bumped when all work is dropped (session lost, rejoin, leave): stale processing stops */
  #groupEpoch = 0;
  /** the rebalance listener calls in progress: each waits for the one before it */
  #listenerChain: Promise<void> = Promise.resolve();

  /**
   * @param transport the client's transport
   * @param admin offset lookups
   * @param fetches the consumer's partitions
   * @param config the group settings
   * @param mode the consumer's mode ("run" waits for handlers when leaving)
   */
  constructor(
    transport: Transport,
    admin: Admin,
    fetches: PartitionFetches,
    config: GroupConfig,
    mode: () => "idle" | "run" | "iterate",
  ) {
    this.member = new GroupMember(transport, config.groupId);
    this.#config = config;
    this.#fetches = fetches;
    this.#admin = admin;
    this.#mode = mode;
    this.commits = new GroupCommits({
      member: this.member,
      memberId: () => this.#memberId,
      generation: () => this.#commitGeneration,
      sessionLost: () => this.#sessionLost,
      states: () => [...fetches.states.values()],
      wakeHeartbeat: () => this.#wakeHeartbeat(),
    });
  }

  /** The member id, or null when not joined. */
  get memberId(): string | null {
    return this.#memberId;
  }

  /** The leave in progress (or done), or null. */
  get leaving(): Promise<void> | null {
    return this.#leaving;
  }

  /**
   * Adds a rebalance listener.
   *
   * @param event "assigned" or "revoked"
   * @param listener the function
   * @returns a function that removes it
   */
  on(event: "assigned" | "revoked", listener: RebalanceListener): () => void {
    const list = this.#listeners[event];
    if (!list) throw new TypeError(`Unknown consumer event "${event}"`);
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /**
   * Joins (or rejoins) the group and processes the first answer.
   *
   * @param waitProcessed resolve once the answer is processed (its `onAssigned` returned);
   *   false for the heartbeat loop's rejoin, which must keep heartbeating meanwhile
   */
  async join(waitProcessed = true): Promise<void> {
    if (!this.topics) throw new TypeError("Call subscribe({ topics }) before run() or iterating");
    const sentAt = Date.now();
    const leaves = this.#leaves;
    const answer = await this.member.join({
      topics: this.topics,
      sessionTimeoutMs: this.#config.sessionTimeoutMs,
      assignor: this.#config.assignor,
    });
    if (this.#leaves !== leaves) {
      // The consumer left while this (heartbeat loop's) rejoin was on the wire: the member
      // the broker just made must not stay, and nothing may start again (no heartbeat loop,
      // no watchdog). leave() awaits the heartbeat loop, so this is done before it resolves.
      await this.member.leave(answer.memberId).catch((e) =>
        console.error(`rill consumer: leaving the group failed: ${e}`)
      );
      return;
    }
    this.#groupEpoch++;
    this.#memberId = answer.memberId;
    this.#sessionMs = answer.sessionTimeoutMs;
    this.#heartbeatMs = this.#config.heartbeatIntervalMs ?? answer.heartbeatIntervalMs;
    this.#lastAnsweredSentAt = sentAt;
    this.#lastSentAt = sentAt;
    this.#sessionLost = false;
    this.#leaving = null;
    this.commits.reset();
    if (!this.#active) {
      this.#active = true;
      this.#heartbeatLoop = this.#heartbeats();
      this.#watchdog = setInterval(
        () => this.#checkSession(),
        Math.max(10, Math.min(250, Math.floor(this.#sessionMs / 10))),
      );
    }
    const processed = this.#accept(answer);
    if (waitProcessed) await processed;
    else processed.catch((e) => console.error(`rill consumer: rebalance failed: ${e}`));
  }

  /** Queues an answer for the serial processor; resolves once the queue is drained. */
  #accept(answer: GroupAnswer): Promise<void> {
    this.#pendingAnswer = answer;
    this.#commitGeneration = answer.generation;
    if (!this.#processing) {
      this.#processing = (async () => {
        try {
          while (this.#pendingAnswer) {
            const a = this.#pendingAnswer;
            this.#pendingAnswer = null;
            await this.#process(a);
          }
        } finally {
          this.#processing = null;
        }
      })();
    }
    return this.#processing;
  }

  /** Applies one answer: revoke (stop, wait, commit, onRevoked, confirm), then grant. */
  async #process(a: GroupAnswer): Promise<void> {
    const epoch = this.#groupEpoch;
    const live = () => this.#active && this.#groupEpoch === epoch;
    if (!live() || this.#memberId !== a.memberId) return;
    const f = this.#fetches;
    const target = new Set(a.assignment.map((tp) => key(tp.topic, tp.partition)));
    const revoke = [...f.states.values()].filter((s) => !target.has(key(s.topic, s.partition)));
    if (revoke.length > 0) {
      for (const s of revoke) {
        s.assigned = false;
        f.halt(s);
      }
      await Promise.all(revoke.map((s) => s.busy?.promise));
      if (!live()) return;
      const pending = new Set(a.pendingRevocation.map((tp) => key(tp.topic, tp.partition)));
      if (this.commits.autoCommit) {
        await this.commits.commitPositions(
          revoke.filter((s) => pending.has(key(s.topic, s.partition))),
          a.generation,
          false,
        );
      }
      for (const s of revoke) {
        const k = key(s.topic, s.partition);
        if (f.states.get(k) === s) f.states.delete(k);
        this.commits.committed.delete(k);
      }
      await this.#emit("revoked", revoke.map(tpOf));
      if (!live()) return;
    }
    this.#ackGeneration = a.generation;
    if (a.pendingRevocation.length > 0) this.#wakeHeartbeat(); // confirm at once
    const grants = a.assignment.filter((tp) => !f.states.has(key(tp.topic, tp.partition)));
    if (grants.length === 0 || !f.running) return;
    if (!live() || this.#pendingAnswer !== null) return; // a newer answer decides
    // onAssigned first, then the start offsets (Kafka's order): a listener that commits or
    // sets up state from the committed offsets (the streams app restores its stores up to
    // them) and the consumer then start from the same offsets. onAssigned may have waited
    // for an earlier onRevoked (#emit), whose last commits moved them.
    await this.#emit("assigned", grants.map(tpOf));
    // Partitions the listener was given but that will not be worked: take them back.
    const takeBack = () => this.#emit("revoked", grants.map(tpOf));
    if (!live()) return await takeBack(); // all work was dropped (session lost, left) meanwhile
    let starts: number[];
    try {
      const committed = await this.member.committed();
      starts = await Promise.all(grants.map(async (tp) => {
        const c = committed.get(tpKey(tp.topic, tp.partition));
        if (c !== undefined) {
          this.commits.committed.set(key(tp.topic, tp.partition), c);
          return c;
        }
        const reset = this.fromBeginning ? "earliest" : this.#config.reset;
        if (reset === "none") {
          throw new RillError(
            "OFFSET_OUT_OF_RANGE",
            `Group "${this.member.groupId}" has no committed offset for ${tp.topic}-${tp.partition} and autoOffsetReset is "none"`,
          );
        }
        return await this.#admin.fetchOffset(tp.topic, tp.partition, reset);
      }));
    } catch (e) {
      if (e instanceof RillError && e.code === "OFFSET_OUT_OF_RANGE") f.fail(e);
      // else: the next answer lists the same grants and tries again
      return await takeBack();
    }
    if (!live()) return await takeBack();
    // (A newer answer waiting revokes these through the usual path if it must.)
    grants.forEach((tp, i) => {
      const s = newPartitionState(tp.topic, tp.partition, starts[i]);
      f.states.set(key(tp.topic, tp.partition), s);
      if (f.running) f.fetchLoop(s);
    });
  }

  /** The heartbeat timer: independent of handlers; answers go to the processor. */
  async #heartbeats(): Promise<void> {
    while (this.#active) {
      if (!this.#heartbeatNow) {
        const wait = Math.max(0, this.#lastSentAt + this.#heartbeatMs - Date.now());
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.#heartbeatWake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#heartbeatWake = null;
      }
      this.#heartbeatNow = false;
      if (!this.#active) break;
      if (this.#memberId === null) {
        try {
          await this.join(false);
        } catch {
          if (!this.#active) break;
          await delay(Math.min(this.#heartbeatMs, 500));
          this.#heartbeatNow = true;
        }
        continue;
      }
      const memberId = this.#memberId;
      const sentAt = Date.now();
      this.#lastSentAt = sentAt;
      let answer: GroupAnswer;
      try {
        answer = await this.member.heartbeat(
          memberId,
          this.#ackGeneration,
          AbortSignal.timeout(this.#sessionMs),
        );
      } catch (e) {
        if (!this.#active || this.#memberId !== memberId) continue;
        if (
          e instanceof RillError &&
          (e.code === "UNKNOWN_MEMBER_ID" || e.code === "ILLEGAL_GENERATION")
        ) {
          // Left, expired or fenced: stop everything and join again.
          await this.#loseAll();
          this.#memberId = null;
          this.#heartbeatNow = true;
        } else {
          // Unreachable broker or contention: try again soon; the session rule guards.
          await delay(Math.min(this.#heartbeatMs, 200));
          this.#heartbeatNow = true;
        }
        continue;
      }
      if (!this.#active || this.#memberId !== memberId) continue;
      if (Date.now() - sentAt > this.#sessionMs) {
        this.#heartbeatNow = true; // too old to trust after the session rule fired
        continue;
      }
      if (sentAt > this.#lastAnsweredSentAt) this.#lastAnsweredSentAt = sentAt;
      if (this.#sessionLost) {
        this.#sessionLost = false;
        this.#groupEpoch++;
      }
      this.#accept(answer).catch((e) => console.error(`rill consumer: rebalance failed: ${e}`));
      this.commits.maybeCommit(true).catch(() => {});
    }
  }

  #wakeHeartbeat(): void {
    this.#heartbeatNow = true;
    this.#heartbeatWake?.();
  }

  /**
   * The payload's `heartbeat()`: sends one early when due.
   *
   * @returns a resolved promise
   */
  heartbeatIfDue(): Promise<void> {
    if (this.#active && Date.now() - this.#lastSentAt >= this.#heartbeatMs) {
      this.#wakeHeartbeat();
    }
    return Promise.resolve();
  }

  /** The session rule: no heartbeat sent in the last sessionTimeoutMs answered → stop all. */
  #checkSession(): void {
    if (!this.#active || this.#memberId === null || this.#sessionLost) return;
    if (Date.now() - this.#lastAnsweredSentAt > this.#sessionMs) {
      this.#sessionLost = true;
      this.#loseAll().catch(() => {});
    }
  }

  /** Stops every partition without committing (session lost, member unknown). */
  async #loseAll(): Promise<void> {
    this.#groupEpoch++;
    this.#pendingAnswer = null;
    const f = this.#fetches;
    const all = [...f.states.values()];
    for (const s of all) {
      s.assigned = false;
      f.halt(s);
    }
    f.states.clear();
    this.commits.committed.clear();
    if (all.length > 0) await this.#emit("revoked", all.map(tpOf));
  }

  /**
   * disconnect(): stop work, commit, onRevoked, leave.
   *
   * @returns once left (the same promise for every call of one leave)
   */
  leave(): Promise<void> {
    if (this.#leaving) return this.#leaving;
    if (!this.#active) return Promise.resolve();
    this.#leaves++;
    this.#leaving = (async () => {
      this.#active = false;
      this.#groupEpoch++;
      clearInterval(this.#watchdog);
      this.#wakeHeartbeat();
      const f = this.#fetches;
      const all = [...f.states.values()];
      for (const s of all) {
        s.assigned = false;
        f.halt(s);
      }
      if (this.#mode() === "run") await Promise.all(all.map((s) => s.busy?.promise));
      const memberId = this.#memberId;
      if (memberId !== null && this.commits.autoCommit && !this.#sessionLost) {
        await this.commits.commitPositions(all, this.#commitGeneration, false);
      }
      f.states.clear();
      this.commits.committed.clear();
      if (all.length > 0) await this.#emit("revoked", all.map(tpOf));
      this.#memberId = null;
      if (memberId !== null) {
        await this.member.leave(memberId).catch((e) =>
          console.error(`rill consumer: leaving the group failed: ${e}`)
        );
      }
      await this.#heartbeatLoop;
    })();
    return this.#leaving;
  }

  /**
   * Calls the listeners of an event, after every listener call begun before has returned:
   * a revocation that stops all work (the session rule fires outside the answer processor)
   * may still be running its `onRevoked` when the next answer grants the same partitions,
   * and their `onAssigned` (and so their records) must come after it, never alongside.
   */
  #emit(
    event: "assigned" | "revoked",
    partitions: { topic: string; partition: number }[],
  ): Promise<void> {
    const listeners = [...this.#listeners[event]];
    const call = this.#listenerChain.then(async () => {
      for (const fn of listeners) {
        try {
          await fn(partitions);
        } catch (e) {
          console.error(`rill consumer: an "${event}" listener threw: ${e}`);
        }
      }
    });
    this.#listenerChain = call;
    return call;
  }
}

function tpOf(s: { topic: string; partition: number }): { topic: string; partition: number } {
  return { topic: s.topic, partition: s.partition };
}
