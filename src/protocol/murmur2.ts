/**
 * Kafka's default partitioner hash: MurmurHash2 (32-bit, seed 0x9747b28c) as in
 * `org.apache.kafka.common.utils.Utils.murmur2`, so that a key lands on the same partition
 * with Rill as with any Kafka client.
 *
 * @module
 */

const textEncoder = new TextEncoder();

/**
 * Kafka's murmur2 hash of `data`, as a signed 32-bit integer.
 *
 * @param data the key bytes
 * @returns the hash, as Java's `int` would hold it
 * @example
 * ```ts
 * murmur2(new TextEncoder().encode("21")); // -973932308
 * ```
 */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = length & ~3;
  const rest = length % 4;
  if (rest === 3) h ^= data[tail + 2] << 16;
  if (rest >= 2) h ^= data[tail + 1] << 8;
  if (rest >= 1) {
    h ^= data[tail];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * The partition Kafka's default partitioner picks for a key:
 * `toPositive(murmur2(key)) % partitions`.
 *
 * @param key the key, as bytes or as a string (UTF-8)
 * @param partitions the number of partitions of the topic
 * @returns a partition in [0, partitions)
 * @throws {RangeError} if partitions is not a positive integer
 */
export function partitionForKey(key: Uint8Array | string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`Partition count must be a positive integer, got ${partitions}`);
  }
  const bytes = typeof key === "string" ? textEncoder.encode(key) : key;
  return (murmur2(bytes) & 0x7fffffff) % partitions;
}
