/**
 * The broker's metadata cache: topic metadata read from KV when the KV metadata version
 * moved, applied to the replicas this broker hosts. Refreshes are coalesced: callers
 * arriving while one runs share the next one, and a refresh that finds the version it
 * already applied reads nothing more.
 *
 * @module
 */
import { groupChangesKey, metadataVersionKey } from "../coordination/kv_keys.ts";
import type { TopicMetadata, TopicStore } from "../coordination/topics.ts";

/** What {@linkcode MetadataRefresh} reads and whom it tells. */
export interface MetadataRefreshDeps {
  /** the cluster's KV */
  kv: Deno.Kv;
  /** topic metadata in KV */
  topics: TopicStore;
  /** told the versionstamp of the group change marker on every refresh */
  observeGroups: (versionstamp: string | null) => void;
  /** applies a new topic snapshot (local replicas, then replication roles) */
  apply: (topics: TopicMetadata[]) => Promise<void>;
  /** whether the broker is stopping (a refresh then does nothing) */
  stopped: () => boolean;
}

/**
 * Coalesced metadata refreshes.
 *
 * @example
 * ```ts
 * const metadata = new MetadataRefresh({ kv, topics, observeGroups, apply, stopped: () => false });
 * await metadata.refresh();
 * ```
 */
export class MetadataRefresh {
  readonly #deps: MetadataRefreshDeps;
  #knownVersion = -1n;
  #snapshot: { version: bigint; topics: TopicMetadata[] } | null = null;
  #queued: Promise<void> | null = null;
  #running: Promise<void> | null = null;

  /** @param deps the KV, the topic store and what a refresh applies */
  constructor(deps: MetadataRefreshDeps) {
    this.#deps = deps;
  }

  /** The topic metadata as last read (null before the first refresh). */
  get snapshot(): { version: bigint; topics: TopicMetadata[] } | null {
    return this.#snapshot;
  }

  /** Makes the next refresh read and apply the metadata even if its version did not move. */
  forget(): void {
    this.#knownVersion = -1n;
  }

  /**
   * Refreshes the metadata if the KV version moved.
   *
   * @returns once the refresh this call joined has run
   */
  refresh(): Promise<void> {
    if (this.#queued) return this.#queued;
    const previous = this.#running ?? Promise.resolve();
    const next: Promise<void> = previous.catch(() => {}).then(async () => {
      this.#queued = null;
      this.#running = next;
      try {
        if (this.#deps.stopped()) return;
        // One read for both change markers: topic metadata, and group state (for the
        // group snapshots of group_liveness.ts).
        const [v, groups] = await this.#deps.kv.getMany<[Deno.KvU64, unknown]>([
          metadataVersionKey(),
          groupChangesKey(),
        ]);
        this.#deps.observeGroups(groups.versionstamp);
        const version = v.value?.value ?? 0n;
        if (version === this.#knownVersion) return;
        const snapshot = await this.#deps.topics.snapshot();
        this.#snapshot = snapshot;
        await this.#deps.apply(snapshot.topics);
        this.#knownVersion = snapshot.version;
      } finally {
        if (this.#running === next) this.#running = null;
      }
    });
    this.#queued = next;
    return next;
  }

  /** Resolves once the running and queued refreshes have ended (failed or not). */
  async settled(): Promise<void> {
    await Promise.allSettled([this.#running, this.#queued]);
  }
}
