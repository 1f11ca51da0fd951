/**
 * The cluster's pending partition moves in KV (one key): the moves a rebalance or a
 * decommission planned and the controller has not started yet, and the brokers being
 * decommissioned (they get no new replicas). The controller starts pending moves a few
 * at a time (`--max-concurrent-moves`) through the reassignment path (election.ts); a
 * move under way lives in its partition's state (`targetReplicas`), so a new controller
 * carries on where a dead one stopped.
 *
 * Writing a new plan (or cancelling one, {@linkcode MoveStore.change}) bumps the metadata
 * version, which is how the controller notices it.
 *
 * @module
 */
import { kvRetry } from "./kv_retry.ts";
import { metadataVersionKey, movesKey } from "./kv_keys.ts";

/** One pending move: the replicas a partition should end with, preferred leader first. */
export interface PendingMove {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the target replicas */
  replicas: number[];
}

/** The stored plan. */
export interface MovePlan {
  /** what made it */
  kind: "rebalance" | "decommission";
  /** when, ms since the epoch */
  createdMs: number;
  /** moves not started yet */
  pending: PendingMove[];
  /** moves the plan had when made */
  total: number;
  /** brokers being decommissioned (kept across plans until they hold nothing) */
  decommissioned: number[];
}

/** The plan entry with its versionstamp (for checked updates). */
export interface MovePlanEntry {
  /** the plan (null: none) */
  plan: MovePlan | null;
  /** its versionstamp (null: no entry) */
  versionstamp: string | null;
}

/** Reads and writes the plan. */
export class MoveStore {
  /** @param kv the shared KV */
  constructor(readonly kv: Deno.Kv) {}

  /**
   * Reads the plan.
   *
   * @returns the entry
   */
  async get(): Promise<MovePlanEntry> {
    const e = await this.kv.get<MovePlan>(movesKey());
    return { plan: e.value, versionstamp: e.versionstamp };
  }

  /**
   * Stores a new plan (replacing any) and bumps the metadata version.
   *
   * @param plan the plan
   */
  async put(plan: MovePlan): Promise<void> {
    await kvRetry(() =>
      this.kv.atomic().set(movesKey(), plan).sum(metadataVersionKey(), 1n).commit()
    );
  }

  /**
   * Replaces the plan if it did not change since `entry` was read (the controller's
   * progress; no version bump).
   *
   * @param entry what was read
   * @param plan the new plan
   * @returns whether it was written
   */
  async update(entry: MovePlanEntry, plan: MovePlan): Promise<boolean> {
    const res = await kvRetry(() =>
      this.kv.atomic().check({ key: movesKey(), versionstamp: entry.versionstamp })
        .set(movesKey(), plan).commit()
    );
    return res.ok;
  }

  /**
   * Changes the plan with a check on what was read, retried while another writer (the
   * controller's progress) wins; bumps the metadata version so the controller re-reads it.
   *
   * @param fn the new plan from the current one (null: remove it; undefined: no change)
   * @returns the plan before and after the change
   */
  async change(
    fn: (current: MovePlan | null) => MovePlan | null | undefined,
  ): Promise<{ before: MovePlan | null; after: MovePlan | null }> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const entry = await this.get();
      const next = fn(entry.plan);
      if (next === undefined) return { before: entry.plan, after: entry.plan };
      const res = await kvRetry(() => {
        const op = this.kv.atomic().check({ key: movesKey(), versionstamp: entry.versionstamp });
        if (next === null) op.delete(movesKey());
        else op.set(movesKey(), next);
        return op.sum(metadataVersionKey(), 1n).commit();
      });
      if (res.ok) return { before: entry.plan, after: next };
    }
    throw new Error("The move plan kept changing under 20 attempts to update it");
  }
}
