/**
 * Set operations on {@linkcode TopicPartitions} (`{ topic: [sorted partitions] }`), the
 * compact partition sets that group state is made of.
 *
 * @module
 */
import type { TopicPartitions } from "./group_keys.ts";

/** One partition of one topic, as the HTTP API spells it. */
export interface TopicPartition {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
}

/**
 * The partitions of a set as a list sorted by topic, then partition.
 *
 * @param set the set
 * @returns the list
 * @example
 * ```ts
 * toList({ b: [0], a: [1, 0] }); // [{a,0},{a,1},{b,0}]
 * ```
 */
export function toList(set: TopicPartitions): TopicPartition[] {
  const out: TopicPartition[] = [];
  for (const topic of Object.keys(set).sort()) {
    for (const partition of [...set[topic]].sort((a, b) => a - b)) out.push({ topic, partition });
  }
  return out;
}

/**
 * Builds a set from a list (duplicates collapse).
 *
 * @param list the partitions
 * @returns the set
 */
export function fromList(list: Iterable<TopicPartition>): TopicPartitions {
  const m = new Map<string, Set<number>>();
  for (const { topic, partition } of list) {
    let s = m.get(topic);
    if (!s) m.set(topic, s = new Set());
    s.add(partition);
  }
  const out: TopicPartitions = {};
  for (const topic of [...m.keys()].sort()) out[topic] = [...m.get(topic)!].sort((a, b) => a - b);
  return out;
}

/**
 * Whether a set holds a partition.
 *
 * @param set the set
 * @param topic the topic
 * @param partition the partition
 * @returns true when it does
 */
export function has(set: TopicPartitions, topic: string, partition: number): boolean {
  return set[topic]?.includes(partition) ?? false;
}

/**
 * The partitions of `a` that are not in `b`.
 *
 * @param a the set
 * @param b the partitions to take away
 * @returns `a − b`
 */
export function minus(a: TopicPartitions, b: TopicPartitions): TopicPartitions {
  return fromList(toList(a).filter((tp) => !has(b, tp.topic, tp.partition)));
}

/**
 * The partitions in both sets.
 *
 * @param a a set
 * @param b another set
 * @returns `a ∩ b`
 */
export function intersect(a: TopicPartitions, b: TopicPartitions): TopicPartitions {
  return fromList(toList(a).filter((tp) => has(b, tp.topic, tp.partition)));
}

/**
 * The partitions in either set.
 *
 * @param a a set
 * @param b another set
 * @returns `a ∪ b`
 */
export function union(a: TopicPartitions, b: TopicPartitions): TopicPartitions {
  return fromList([...toList(a), ...toList(b)]);
}

/**
 * How many partitions a set holds.
 *
 * @param set the set
 * @returns the count
 */
export function size(set: TopicPartitions): number {
  let n = 0;
  for (const ps of Object.values(set)) n += ps.length;
  return n;
}

/**
 * Whether two sets hold the same partitions.
 *
 * @param a a set
 * @param b another set
 * @returns true when equal
 */
export function equal(a: TopicPartitions, b: TopicPartitions): boolean {
  return size(a) === size(b) && size(minus(a, b)) === 0;
}

/**
 * A string key for one partition, for maps: `"<partition>@<topic>"`.
 *
 * @param topic the topic
 * @param partition the partition
 * @returns the key
 */
export function tpKey(topic: string, partition: number): string {
  return `${partition}@${topic}`;
}
