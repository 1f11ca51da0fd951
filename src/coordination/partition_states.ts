/**
 * Changes to one partition's replication state (leader, replicas, ISR, leader epoch) in KV,
 * as Kafka's AlterPartition: read the entry, compute the new state, write it with an atomic
 * check on the entry's versionstamp (and bump the metadata version so brokers notice).
 * A leader changing its ISR also states the leader epoch it believes in: if the controller
 * moved leadership meanwhile, the change is refused rather than applied to a newer epoch.
 *
 * @module
 */
import { kvRetry } from "./kv_retry.ts";
import { metadataVersionKey, partitionKey, topicKey } from "./kv_keys.ts";
import type { PartitionState, StoredPartition } from "./topics.ts";

/**
 * Decides the new state of a partition from its current one.
 *
 * @param current the stored state
 * @returns the new state, or null to leave it unchanged
 */
export type PartitionUpdate = (current: StoredPartition) => PartitionState | null;

/**
 * Checked updates of partition states.
 *
 * @example
 * ```ts
 * const states = new PartitionStateStore(kv);
 * await states.update("orders", 0, (p) => ({ ...p, isr: [1, 2] }));
 * ```
 */
export class PartitionStateStore {
  /** @param kv the shared KV */
  constructor(readonly kv: Deno.Kv) {}

  /**
   * Reads one partition's state.
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the state, or null when it does not exist
   */
  async get(topic: string, partition: number): Promise<StoredPartition | null> {
    return (await this.kv.get<StoredPartition>(partitionKey(topic, partition))).value;
  }

  /**
   * Applies `fn` to a partition's state atomically: re-read and re-run while a concurrent
   * writer wins the check.
   *
   * @param topic the topic
   * @param partition the partition
   * @param fn computes the new state (null: no change)
   * @param fence KV entries that must still be as read (the controller's lease; the move
   *   plan a move was started from): a writer that lost one changes nothing
   * @returns the state written, or null when `fn` declined, the partition is gone or a
   *   fence moved
   */
  async update(
    topic: string,
    partition: number,
    fn: PartitionUpdate,
    fence?: Deno.AtomicCheck | readonly Deno.AtomicCheck[],
  ): Promise<PartitionState | null> {
    const fences = fence === undefined ? [] : "key" in fence ? [fence] : fence;
    for (let attempt = 0; attempt < 20; attempt++) {
      // One strong read of both entries (one KV request on a hosted KV).
      const [entry, topicEntry] = await this.kv.getMany<[StoredPartition, unknown]>([
        partitionKey(topic, partition),
        topicKey(topic),
      ]);
      if (entry.value === null || topicEntry.value === null) return null;
      const next = fn(entry.value);
      if (next === null) return null;
      const stored: StoredPartition = { ...next, topicId: entry.value.topicId };
      const res = await kvRetry(() => {
        const op = this.kv.atomic()
          .check(entry)
          .check(topicEntry)
          .set(partitionKey(topic, partition), stored)
          .sum(metadataVersionKey(), 1n);
        if (fences.length > 0) op.check(...fences);
        return op.commit();
      });
      if (res.ok) return next;
      if (fences.length > 0) {
        const now = await this.kv.getMany(fences.map((f) => f.key));
        if (now.some((e, i) => e.versionstamp !== fences[i].versionstamp)) return null;
      }
    }
    return null;
  }
}
