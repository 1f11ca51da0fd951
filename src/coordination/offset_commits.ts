/**
 * Offset commits coalesced: commits that arrive at a broker while its previous commit write is
 * in flight wait for it and then go to Deno KV together, as one read of each group they touch
 * and one atomic write. A consumer that commits after every batch then costs KV a fraction of
 * an operation per commit instead of a read and a write (KV does about a thousand atomic
 * operations a second here, ARCHITECTURE.md), and a burst of commits does not queue behind
 * itself. The first commit after a quiet moment goes at once: no timer adds latency.
 *
 * Fencing is kept: each commit is decided on its group's state read in the same round
 * ({@linkcode planCommit}, the rules atop group_offsets.ts), and the one write checks the
 * versionstamps every decision relied on. A commit refused by its decision is answered with
 * its own error and leaves the others alone. When the write's checks fail (a member joined,
 * heartbeated or left meanwhile), each commit of the round is run alone, read-decide-write
 * with retries, so one commit's conflict cannot fail another. Every commit is answered only
 * once the write that holds it is durable (KV's commit resolved).
 *
 * @module
 */
import type { RillError } from "../protocol/errors.ts";
import { type CommittedOffset, groupMetaKey } from "./group_keys.ts";
import {
  commitAtomic,
  CONFLICT,
  type GroupSnapshot,
  markGroupsChanged,
  readGroup,
  withConflictRetry,
} from "./group_store.ts";
import type { GroupMeta } from "./group_keys.ts";

/** What one commit writes, decided on a snapshot of its group. */
export interface CommitPlan {
  /** the versionstamps the decision relied on */
  checks: Deno.AtomicCheck[];
  /** the group meta to create (a simple commit to a new group), if any */
  meta: GroupMeta | null;
  /** the offsets to write */
  sets: [Deno.KvKey, CommittedOffset][];
}

/** Decides a commit on a snapshot: its plan, or a thrown RillError (fencing, bad request). */
export type PlanCommit<R> = (
  groupId: string,
  req: R,
  snap: GroupSnapshot,
  now: number,
) => CommitPlan;

/** Most checks in one coalesced write (Deno KV allows 100 per atomic operation). */
const MAX_CHECKS = 90;
/** Most offsets in one coalesced write (Deno KV allows 1000 mutations). */
const MAX_SETS = 900;

/** A KV key as text, to tell keys apart (bigint parts too, which JSON.stringify refuses). */
function keyText(key: Deno.KvKey): string {
  return JSON.stringify(key, (_, v) => typeof v === "bigint" ? ["bigint", v.toString()] : v);
}

interface Queued<R> {
  groupId: string;
  req: R;
  size: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Counts of what the coalescer did, for the benchmark and tests. */
export interface CommitStats {
  /** commits answered */
  commits: number;
  /** KV atomic writes made */
  writes: number;
  /** group state reads made */
  reads: number;
  /** rounds whose write's checks failed (each commit was then run alone) */
  conflicts: number;
}

/**
 * Coalesces the offset commits of one broker.
 *
 * @example
 * ```ts
 * const commits = new CommitCoalescer(kv, planCommit);
 * await commits.commit("g", { memberId, generation, offsets });
 * ```
 */
export class CommitCoalescer<R extends { offsets: readonly unknown[] }> {
  readonly #kv: Deno.Kv;
  readonly #plan: PlanCommit<R>;
  readonly #now: () => number;
  #queue: Queued<R>[] = [];
  #running = false;
  readonly #coalesce: boolean;
  readonly #read: (groupId: string) => Promise<GroupSnapshot>;
  /** what the coalescer did so far */
  readonly stats: CommitStats = { commits: 0, writes: 0, reads: 0, conflicts: 0 };

  /**
   * @param kv the KV store
   * @param plan decides one commit on a snapshot of its group
   * @param now the clock
   * @param coalesce false: each commit reads and writes alone (the benchmark's baseline)
   * @param read how a round reads a group (default: from KV); a snapshot kept from an earlier
   *   round is safe, since the write checks the versionstamps the decision relied on and a
   *   failed check runs each commit alone on a fresh read
   */
  constructor(
    kv: Deno.Kv,
    plan: PlanCommit<R>,
    now: () => number = Date.now,
    coalesce = true,
    read?: (groupId: string) => Promise<GroupSnapshot>,
  ) {
    this.#kv = kv;
    this.#plan = plan;
    this.#now = now;
    this.#coalesce = coalesce;
    this.#read = read ?? ((groupId) => readGroup(kv, groupId));
  }

  /**
   * Commits, coalesced with the commits that arrive while a write is in flight.
   *
   * @param groupId the group
   * @param req the validated request
   * @returns once the commit is durable
   * @throws {RillError} the commit's own refusal (as {@linkcode PlanCommit} throws), or
   *   REBALANCE_IN_PROGRESS when it kept conflicting
   */
  commit(groupId: string, req: R): Promise<void> {
    if (!this.#coalesce) {
      return new Promise<void>((resolve, reject) =>
        this.#alone({ groupId, req, size: req.offsets.length, resolve, reject })
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ groupId, req, size: req.offsets.length, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const round: Queued<R>[] = [];
        let sets = 0;
        const groups = new Set<string>();
        // A member's commit checks 2 versionstamps (its group's meta and its own record).
        while (this.#queue.length > 0 && round.length < MAX_CHECKS / 2) {
          const next = this.#queue[0];
          if (round.length > 0 && sets + next.size > MAX_SETS) break;
          round.push(this.#queue.shift()!);
          sets += next.size;
          groups.add(next.groupId);
        }
        try {
          await this.#round(round, groups);
        } catch (e) {
          // Whatever #round did not answer (an unexpected failure) is refused, never left
          // waiting; answered commits ignore this.
          for (const q of round) q.reject(e);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #round(round: Queued<R>[], groups: Set<string>): Promise<void> {
    let snaps: Map<string, GroupSnapshot>;
    try {
      snaps = new Map(
        await Promise.all([...groups].map(async (g) => [g, await this.#read(g)] as const)),
      );
    } catch (e) {
      for (const q of round) q.reject(e);
      return;
    }
    this.stats.reads += groups.size;
    const now = this.#now();
    const planned: [Queued<R>, CommitPlan][] = [];
    for (const q of round) {
      try {
        planned.push([q, this.#plan(q.groupId, q.req, snaps.get(q.groupId)!, now)]);
      } catch (e) {
        q.reject(e);
      }
    }
    if (planned.length === 0) return;
    const checks = new Map<string, Deno.AtomicCheck>();
    for (const [, plan] of planned) {
      for (const c of plan.checks) checks.set(keyText(c.key), c);
    }
    if (checks.size > MAX_CHECKS) {
      // Simple commits to groups with many members: too many checks for one write.
      await Promise.all(planned.map(([q]) => this.#alone(q)));
      return;
    }
    let ok: boolean;
    try {
      ok = await commitAtomic(() => {
        const op = this.#kv.atomic();
        for (const c of checks.values()) op.check(c);
        const metas = new Set<string>();
        for (const [q, plan] of planned) {
          if (plan.meta !== null && !metas.has(q.groupId)) {
            metas.add(q.groupId);
            markGroupsChanged(op).set(groupMetaKey(q.groupId), plan.meta);
          }
          for (const [key, value] of plan.sets) op.set(key, value);
        }
        return op;
      });
    } catch (e) {
      for (const [q] of planned) q.reject(e);
      return;
    }
    this.stats.writes++;
    if (ok) {
      this.stats.commits += planned.length;
      for (const [q] of planned) q.resolve();
      return;
    }
    this.stats.conflicts++;
    await Promise.all(planned.map(([q]) => this.#alone(q)));
  }

  /** One commit on its own: read, decide, write, again while its checks fail. */
  async #alone(q: Queued<R>): Promise<void> {
    try {
      await withConflictRetry("commit offsets", async () => {
        const snap = await readGroup(this.#kv, q.groupId);
        this.stats.reads++;
        const plan = this.#plan(q.groupId, q.req, snap, this.#now());
        const ok = await commitAtomic(() => {
          const op = this.#kv.atomic();
          for (const c of plan.checks) op.check(c);
          if (plan.meta !== null) markGroupsChanged(op).set(groupMetaKey(q.groupId), plan.meta);
          for (const [key, value] of plan.sets) op.set(key, value);
          return op;
        });
        this.stats.writes++;
        return ok ? true : CONFLICT;
      });
      this.stats.commits++;
      q.resolve();
    } catch (e) {
      q.reject(e as RillError);
    }
  }
}
