/**
 * The broker's partition choice for JSON and NDJSON records that name no partition:
 *
 * - a keyed record goes to `toPositive(murmur2(key)) % partitions`, Kafka's default
 *   partitioner, so the same key lands on the same partition as with any Kafka client;
 * - the keyless records of one request stick to one partition (so they form one batch,
 *   appended atomically), and successive requests move round-robin over the partitions.
 *
 * @module
 */
import { partitionForKey } from "../protocol/murmur2.ts";

/**
 * Picks partitions for records of one topic.
 *
 * @example
 * ```ts
 * const p = new TopicPartitioner();
 * const sticky = p.nextKeylessPartition(3); // 0, then 1, 2, 0, … per request
 * p.partitionForKey(new TextEncoder().encode("user-1"), 3); // as Kafka
 * ```
 */
export class TopicPartitioner {
  #next: number;

  /** @param start the first keyless partition (default: random, so brokers spread differently) */
  constructor(start = Math.floor(Math.random() * 1_000_000)) {
    this.#next = start;
  }

  /**
   * The partition for the keyless records of the next request.
   *
   * @param partitions the topic's partition count
   * @returns a partition in [0, partitions)
   */
  nextKeylessPartition(partitions: number): number {
    const p = this.#next % partitions;
    this.#next = (this.#next + 1) % 1_000_000_000;
    return p;
  }

  /**
   * Kafka's partition for a key.
   *
   * @param key the key bytes
   * @param partitions the topic's partition count
   * @returns a partition in [0, partitions)
   */
  partitionForKey(key: Uint8Array, partitions: number): number {
    return partitionForKey(key, partitions);
  }
}
