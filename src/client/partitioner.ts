/**
 * The producer's partition choice, as Kafka's default partitioner:
 *
 * - an explicit `partition` wins;
 * - a keyed record goes to `toPositive(murmur2(key)) % partitions`, so the same key lands
 *   on the same partition as with any Kafka client (kafkajs's DefaultPartitioner included);
 * - keyless records stick to one partition until its batch is closed, then move to another
 *   one at random (KIP-480's sticky partitioner): big batches, spread evenly over time.
 *
 * @module
 */
import { partitionForKey } from "../protocol/murmur2.ts";

/**
 * Picks partitions for one producer.
 *
 * @example
 * ```ts
 * const p = new Partitioner();
 * p.partition("orders", new TextEncoder().encode("user-1"), 3); // same as Kafka
 * p.partition("orders", null, 3); // the topic's sticky partition
 * ```
 */
export class Partitioner {
  readonly #sticky = new Map<string, number>();
  readonly #random: () => number;

  /**
   * @param random a source of numbers in [0, 1) (injectable for tests)
   */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /**
   * The partition of a record without an explicit partition.
   *
   * @param topic the topic
   * @param key the key bytes, or null
   * @param partitions the topic's partition count
   * @returns a partition in [0, partitions)
   */
  partition(topic: string, key: Uint8Array | null, partitions: number): number {
    if (key !== null) return partitionForKey(key, partitions);
    let p = this.#sticky.get(topic);
    if (p === undefined || p >= partitions) {
      p = Math.floor(this.#random() * partitions);
      this.#sticky.set(topic, p);
    }
    return p;
  }

  /**
   * Tells the partitioner that a batch of `topic`/`partition` was closed: if keyless records
   * stuck to that partition, they move to another one (different when there are several).
   *
   * @param topic the topic
   * @param partition the partition whose batch closed
   * @param partitions the topic's partition count
   */
  batchClosed(topic: string, partition: number, partitions: number): void {
    if (this.#sticky.get(topic) !== partition) return;
    let next = Math.floor(this.#random() * partitions);
    if (partitions > 1 && next === partition) next = (next + 1) % partitions;
    this.#sticky.set(topic, next);
  }
}
