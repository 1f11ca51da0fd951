/**
 * Server-side partition assignment (as in Kafka's KIP-848, the group coordinator computes
 * the target assignment of every generation):
 *
 * - `range` — per topic, the subscribed members (sorted by id) get contiguous ranges; the
 *   first `partitions % members` get one more (Kafka's RangeAssignor).
 * - `roundrobin` — every subscribed partition (sorted by topic, then partition) goes to the
 *   next member, in id order, that subscribes to its topic (Kafka's RoundRobinAssignor).
 * - `sticky` (the default) — members keep what the previous target gave them (when still
 *   subscribed and the partition still exists), free partitions go to the least loaded
 *   eligible member, then single partitions move from the most to the least loaded member
 *   until no member holds two more than another that could take one: balanced, and moving
 *   as few partitions as possible (one per member that joins short of its share; a member
 *   that leaves moves only its own partitions).
 *
 * Every strategy gives each partition to at most one member; members beyond the partition
 * count stay idle. All are deterministic (same input, same output).
 *
 * @module
 */
import type { AssignorName, TopicPartitions } from "./group_keys.ts";
import { fromList, toList, type TopicPartition, tpKey } from "./group_partitions.ts";

/** The input of an assignor. */
export interface AssignorInput {
  /** the members and their subscriptions */
  members: { memberId: string; topics: string[] }[];
  /** partition count of each subscribed topic (0 or absent: no partitions) */
  partitionCounts: Record<string, number>;
  /** the previous target assignment (used by `sticky`) */
  previous?: Record<string, TopicPartitions>;
}

/** The assignor names accepted by the API. */
export const ASSIGNORS: readonly AssignorName[] = ["range", "roundrobin", "sticky"];

/**
 * Computes the target assignment.
 *
 * @param name the strategy
 * @param input members, partition counts and the previous target
 * @returns memberId → partitions, with an entry (maybe empty) for every member
 * @example
 * ```ts
 * assign("range", { members: [{ memberId: "a", topics: ["t"] }], partitionCounts: { t: 2 } });
 * // { a: { t: [0, 1] } }
 * ```
 */
export function assign(name: AssignorName, input: AssignorInput): Record<string, TopicPartitions> {
  const members = [...input.members].sort((a, b) => cmp(a.memberId, b.memberId));
  const owned = new Map<string, TopicPartition[]>(members.map((m) => [m.memberId, []]));
  if (name === "range") rangeAssign(members, input.partitionCounts, owned);
  else if (name === "roundrobin") roundRobinAssign(members, input.partitionCounts, owned);
  else stickyAssign(members, input.partitionCounts, input.previous ?? {}, owned);
  const out: Record<string, TopicPartitions> = {};
  for (const [id, tps] of owned) out[id] = fromList(tps);
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function subscribedTopics(members: AssignorInput["members"]): string[] {
  return [...new Set(members.flatMap((m) => m.topics))].sort(cmp);
}

function allPartitions(
  members: AssignorInput["members"],
  counts: Record<string, number>,
): TopicPartition[] {
  const out: TopicPartition[] = [];
  for (const topic of subscribedTopics(members)) {
    for (let p = 0; p < (counts[topic] ?? 0); p++) out.push({ topic, partition: p });
  }
  return out;
}

function rangeAssign(
  members: AssignorInput["members"],
  counts: Record<string, number>,
  owned: Map<string, TopicPartition[]>,
): void {
  for (const topic of subscribedTopics(members)) {
    const subs = members.filter((m) => m.topics.includes(topic));
    const count = counts[topic] ?? 0;
    const per = Math.floor(count / subs.length);
    const extra = count % subs.length;
    subs.forEach((m, i) => {
      const start = i * per + Math.min(i, extra);
      const len = per + (i < extra ? 1 : 0);
      for (let p = start; p < start + len; p++) {
        owned.get(m.memberId)!.push({ topic, partition: p });
      }
    });
  }
}

function roundRobinAssign(
  members: AssignorInput["members"],
  counts: Record<string, number>,
  owned: Map<string, TopicPartition[]>,
): void {
  let next = 0;
  for (const tp of allPartitions(members, counts)) {
    for (let tries = 0; tries < members.length; tries++) {
      const m = members[next];
      next = (next + 1) % members.length;
      if (m.topics.includes(tp.topic)) {
        owned.get(m.memberId)!.push(tp);
        break;
      }
    }
  }
}

function stickyAssign(
  members: AssignorInput["members"],
  counts: Record<string, number>,
  previous: Record<string, TopicPartitions>,
  owned: Map<string, TopicPartition[]>,
): void {
  const subs = new Map(members.map((m) => [m.memberId, new Set(m.topics)]));
  const taken = new Set<string>();
  // 1. Keep what the previous target gave, where still valid.
  for (const m of members) {
    for (const tp of toList(previous[m.memberId] ?? {})) {
      const k = tpKey(tp.topic, tp.partition);
      if (!subs.get(m.memberId)!.has(tp.topic)) continue;
      if (tp.partition >= (counts[tp.topic] ?? 0) || taken.has(k)) continue;
      taken.add(k);
      owned.get(m.memberId)!.push(tp);
    }
  }
  // 2. Free partitions go to the least loaded eligible member.
  for (const tp of allPartitions(members, counts)) {
    if (taken.has(tpKey(tp.topic, tp.partition))) continue;
    let best: string | null = null;
    for (const m of members) {
      if (!subs.get(m.memberId)!.has(tp.topic)) continue;
      if (best === null || owned.get(m.memberId)!.length < owned.get(best)!.length) {
        best = m.memberId;
      }
    }
    if (best !== null) {
      owned.get(best)!.push(tp);
      taken.add(tpKey(tp.topic, tp.partition));
    }
  }
  // 3. Move single partitions from the most to the least loaded while that narrows the
  // spread. Each move lowers the sum of squared loads, so the loop ends; the bound is a guard.
  const limit = (taken.size + 1) * (members.length + 1);
  for (let i = 0; i < limit; i++) {
    if (!moveOne(members, subs, owned)) break;
  }
}

function moveOne(
  members: AssignorInput["members"],
  subs: Map<string, Set<string>>,
  owned: Map<string, TopicPartition[]>,
): boolean {
  const load = (id: string) => owned.get(id)!.length;
  const desc = [...members].sort((a, b) => load(b.memberId) - load(a.memberId));
  const asc = [...desc].reverse();
  for (const from of desc) {
    for (const to of asc) {
      if (load(from.memberId) <= load(to.memberId) + 1) break;
      const mine = owned.get(from.memberId)!;
      // move the last (highest) partition the receiver can take
      for (let j = mine.length - 1; j >= 0; j--) {
        if (subs.get(to.memberId)!.has(mine[j].topic)) {
          owned.get(to.memberId)!.push(mine[j]);
          mine.splice(j, 1);
          return true;
        }
      }
    }
  }
  return false;
}
