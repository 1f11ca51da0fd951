/**
 * The upkeep of the logs a broker hosts, run by its background loops: retention (time and
 * size), the log cleaner for compacted topics, and storage recovery after an I/O error
 * (the KV reserve written again once there is room; logs that failed reopened through
 * recovery once the disk is above its free-space floor).
 *
 * @module
 */
import type { BrokerConfig } from "./config.ts";
import type { DiskGuard } from "./disk_space.ts";
import type { LocalTopics } from "./local_topics.ts";
import type { Replica } from "./replica.ts";

/** The least free space at which a log that failed is reopened, even with no floor set. */
const REOPEN_MIN_FREE_BYTES = 4 * 1024 * 1024;

/** What the upkeep works on. */
export interface LogUpkeepOptions {
  /** the hosted replicas */
  local: LocalTopics;
  /** the disk guard, once the broker has opened it */
  disk: () => DiskGuard | null;
  /** the free-space floor (`--min-free-bytes`) and the most dirty bytes a cleaner pass reads */
  config: Pick<BrokerConfig, "minFreeBytes" | "logCleanerMaxDirtyBytes">;
  /** re-applies the metadata (after logs were reopened, so they get their roles back) */
  reapplyMetadata: () => Promise<void>;
  /** the broker's log */
  log: (line: string) => void;
}

/**
 * Retention, compaction and storage recovery over every hosted log.
 *
 * @example
 * ```ts
 * const upkeep = new LogUpkeep({ local, disk: () => guard, config,
 *   reapplyMetadata: () => broker.refresh(), log: console.log });
 * await upkeep.applyRetention();
 * ```
 */
export class LogUpkeep {
  readonly #o: LogUpkeepOptions;

  /** @param options what the upkeep works on */
  constructor(options: LogUpkeepOptions) {
    this.#o = options;
  }

  /**
   * Applies each hosted log's retention settings once.
   *
   * @returns how many segments were deleted
   */
  applyRetention(): Promise<number> {
    return this.#eachLog("retention", (r) => r.applyRetention());
  }

  /**
   * Runs one log cleaner pass (`log_cleaner.ts`) over each hosted log whose topic has
   * `cleanup.policy` with `compact`, one log after another, each bounded to
   * `logCleanerMaxDirtyBytes` and to its high watermark.
   *
   * @returns how many records the pass removed
   */
  cleanLogs(): Promise<number> {
    return this.#eachLog(
      "compaction",
      async (r) => (await r.cleanLog(this.#o.config.logCleanerMaxDirtyBytes))?.recordsRemoved ?? 0,
    );
  }

  /**
   * Storage recovery: writes the KV reserve again once there is room, and — when the disk
   * is above the free-space floor — reopens through recovery the logs that failed on an I/O
   * error such as ENOSPC (local_topics.ts `reopenFailed`), then re-applies the metadata.
   */
  async recoverStorage(): Promise<void> {
    const disk = this.#o.disk();
    await disk?.maintain();
    let failed = false;
    for (const r of this.#o.local.replicas()) if (r.log.failure !== null) failed = true;
    if (!failed) return;
    // Space is back when the disk is above the floor (and has a few MiB even without one).
    const free = disk?.floor.free(true) ?? null;
    if (free !== null && free < Math.max(this.#o.config.minFreeBytes, REOPEN_MIN_FREE_BYTES)) {
      return;
    }
    const reopened = await this.#o.local.reopenFailed();
    if (reopened.length > 0) await this.#o.reapplyMetadata();
  }

  /** Runs `work` on each hosted log in turn; a failure is logged (unless the log is closing). */
  async #eachLog(what: string, work: (r: Replica) => Promise<number>): Promise<number> {
    let total = 0;
    for (const r of [...this.#o.local.replicas()]) {
      try {
        total += await work(r);
      } catch (e) {
        if (!r.closing) this.#o.log(`${what} of ${r.name} failed: ${e}`);
      }
    }
    return total;
  }
}
