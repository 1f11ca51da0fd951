/**
 * The balancing decisions, as pure functions of the metadata, the live brokers and the
 * partitions' sizes (so they are tested without processes):
 *
 * - {@linkcode electPreferredLeader}: leadership back to the first replica once it is alive
 *   and in the ISR (new leader epoch); {@linkcode imbalancedPartitions} picks the
 *   partitions of brokers whose share of lost preferred leaderships is above
 *   `leader.imbalance.per.broker.percentage` (Kafka's rule).
 * - {@linkcode replacementReplicas}: for a partition with replicas on long-dead brokers,
 *   the live brokers that take their place (another rack first, then the least loaded).
 * - {@linkcode planMoves}: a rebalance (or a decommission, which excludes brokers): the
 *   fewest replica moves that leave no replica on an excluded broker, replica counts per
 *   broker within one of each other, bytes within a tolerance, and preferred leaders spread.
 *
 * @module
 */
import type { PartitionState, TopicMetadata } from "../coordination/topics.ts";

/** A broker as the planner sees it. */
export interface PlannedBroker {
  /** the id */
  id: number;
  /** its rack, if declared */
  rack?: string;
}

export type { BrokerLoad, PartitionMove } from "../protocol/cluster_admin_types.ts";
import type { BrokerLoad, PartitionMove } from "../protocol/cluster_admin_types.ts";

/**
 * The state after moving a partition's leadership back to its preferred leader.
 *
 * @param p the current state
 * @param alive the live brokers
 * @returns the new state, or null when the preferred leader already leads, is dead, is not
 *   in the ISR, or a move is under way
 * @example
 * ```ts
 * electPreferredLeader({ partition: 0, leader: 2, replicas: [1, 2], isr: [1, 2], leaderEpoch: 3 },
 *   new Set([1, 2])); // { ..., leader: 1, leaderEpoch: 4 }
 * ```
 */
export function electPreferredLeader(
  p: PartitionState,
  alive: ReadonlySet<number>,
): PartitionState | null {
  const preferred = p.replicas[0];
  if (p.targetReplicas || preferred === undefined || p.leader === preferred) return null;
  if (!alive.has(preferred) || !p.isr.includes(preferred)) return null;
  return { ...p, leader: preferred, leaderEpoch: p.leaderEpoch + 1 };
}

/**
 * Kafka's leader imbalance check: per preferred leader, the share of its partitions led
 * by another broker; above `percentage`, every such partition whose preferred leader may
 * take over again is returned.
 *
 * @param topics the metadata
 * @param alive the live brokers
 * @param percentage leader.imbalance.per.broker.percentage
 * @returns the partitions to elect their preferred leader for
 */
export function imbalancedPartitions(
  topics: readonly TopicMetadata[],
  alive: ReadonlySet<number>,
  percentage: number,
): { topic: string; partition: number }[] {
  const total = new Map<number, number>();
  const notLed = new Map<number, { topic: string; partition: number }[]>();
  for (const t of topics) {
    if (t.replicationFactor < 2) continue;
    for (const p of t.partitions) {
      const preferred = p.replicas[0];
      if (preferred === undefined) continue;
      total.set(preferred, (total.get(preferred) ?? 0) + 1);
      if (p.leader !== preferred) {
        const list = notLed.get(preferred) ?? [];
        list.push({ topic: t.name, partition: p.partition });
        notLed.set(preferred, list);
      }
    }
  }
  const out: { topic: string; partition: number }[] = [];
  for (const [broker, list] of notLed) {
    if (!alive.has(broker)) continue;
    if ((list.length * 100) / total.get(broker)! > percentage) out.push(...list);
  }
  return out;
}

/**
 * Per broker load of an assignment.
 *
 * @param assignment per partition key, the replicas
 * @param brokers the brokers to report (others are ignored)
 * @param sizes per partition key, its bytes (0 when unknown)
 * @returns one load per broker, in `brokers` order
 */
export function loadOf(
  assignment: ReadonlyMap<string, readonly number[]>,
  brokers: readonly number[],
  sizes: ReadonlyMap<string, number>,
): BrokerLoad[] {
  const loads = new Map(
    brokers.map((id) => [id, { id, replicas: 0, preferredLeaders: 0, bytes: 0 }]),
  );
  for (const [k, replicas] of assignment) {
    replicas.forEach((id, i) => {
      const l = loads.get(id);
      if (!l) return;
      l.replicas++;
      if (i === 0) l.preferredLeaders++;
      l.bytes += sizes.get(k) ?? 0;
    });
  }
  return brokers.map((id) => loads.get(id)!);
}

/**
 * The key of a partition in assignments and size maps.
 *
 * @param topic the topic
 * @param partition the partition
 * @returns the key
 */
export const partitionKeyOf = (topic: string, partition: number): string =>
  topic + "\u0000" + partition;

function splitKey(k: string): { topic: string; partition: number } {
  const i = k.lastIndexOf("\u0000");
  return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)) };
}

/**
 * Picks the live brokers that take the place of a partition's replicas on `gone` brokers.
 *
 * @param replicas the current replicas
 * @param gone brokers whose replicas must be replaced
 * @param candidates live brokers that may take replicas
 * @param replicaCounts replicas per broker now (updated with the choice)
 * @returns the new replica list (same order, replaced in place), or null when nothing is on
 *   a gone broker or no candidate is left
 * @example
 * ```ts
 * replacementReplicas([1, 2, 3], new Set([2]), [{ id: 1 }, { id: 3 }, { id: 4 }], new Map());
 * // [1, 4, 3]
 * ```
 */
export function replacementReplicas(
  replicas: readonly number[],
  gone: ReadonlySet<number>,
  candidates: readonly PlannedBroker[],
  replicaCounts: Map<number, number>,
): number[] | null {
  if (!replicas.some((id) => gone.has(id))) return null;
  const racks = new Map(candidates.map((b) => [b.id, b.rack]));
  const out = [...replicas];
  for (let i = 0; i < out.length; i++) {
    if (!gone.has(out[i])) continue;
    const others = out.filter((_, j) => j !== i);
    const pick = pickBroker(others, candidates, racks, replicaCounts, new Map());
    if (pick === null) return null;
    replicaCounts.set(pick, (replicaCounts.get(pick) ?? 0) + 1);
    out[i] = pick;
  }
  return out;
}

/** The best broker to add to a partition holding `replicas`: another rack, fewest replicas. */
function pickBroker(
  replicas: readonly number[],
  candidates: readonly PlannedBroker[],
  racks: ReadonlyMap<number, string | undefined>,
  counts: ReadonlyMap<number, number>,
  bytes: ReadonlyMap<number, number>,
): number | null {
  const usedRacks = new Set(
    replicas.map((id) => racks.get(id)).filter((r): r is string => r !== undefined),
  );
  let best: PlannedBroker | null = null;
  const score = (b: PlannedBroker) => [
    b.rack !== undefined && usedRacks.has(b.rack) ? 1 : 0,
    counts.get(b.id) ?? 0,
    bytes.get(b.id) ?? 0,
    b.id,
  ];
  for (const b of candidates) {
    if (replicas.includes(b.id)) continue;
    if (best === null || less(score(b), score(best))) best = b;
  }
  return best?.id ?? null;
}

function less(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

/** Options of {@linkcode planMoves}. */
export interface PlanOptions {
  /** brokers that must end with no replica (decommission, dead) */
  exclude?: ReadonlySet<number>;
  /** bytes per broker may differ from the mean by this fraction; 0.1 */
  bytesTolerance?: number;
}

/**
 * Plans a rebalance: first every replica on an excluded broker moves to the best other
 * broker; then, while the replica counts of two brokers differ by more than one, or their
 * bytes by more than the tolerance, one replica (the one that evens bytes best) moves from
 * the fuller to the emptier; then preferred leaders are spread by reordering replicas.
 * Partitions already moving are left alone.
 *
 * @param topics the metadata
 * @param brokers the brokers that may hold replicas (live, not excluded)
 * @param sizes per {@linkcode partitionKeyOf}, the partition's bytes (0 when unknown)
 * @param options excluded brokers and tolerance
 * @returns the moves (only partitions whose replicas or order change)
 */
export function planMoves(
  topics: readonly TopicMetadata[],
  brokers: readonly PlannedBroker[],
  sizes: ReadonlyMap<string, number>,
  options: PlanOptions = {},
): PartitionMove[] {
  const exclude = options.exclude ?? new Set<number>();
  const tolerance = options.bytesTolerance ?? 0.1;
  const eligible = brokers.filter((b) => !exclude.has(b.id));
  const racks = new Map(brokers.map((b) => [b.id, b.rack]));
  const original = new Map<string, number[]>();
  const current = new Map<string, number[]>();
  for (const t of topics) {
    for (const p of t.partitions) {
      if (p.targetReplicas) continue;
      const k = partitionKeyOf(t.name, p.partition);
      original.set(k, p.replicas);
      current.set(k, [...p.replicas]);
    }
  }
  if (eligible.length === 0) return [];
  const counts = new Map<number, number>(eligible.map((b) => [b.id, 0]));
  const bytes = new Map<number, number>(eligible.map((b) => [b.id, 0]));
  const add = (id: number, k: string, sign: number) => {
    if (!counts.has(id)) return;
    counts.set(id, counts.get(id)! + sign);
    bytes.set(id, bytes.get(id)! + sign * (sizes.get(k) ?? 0));
  };
  for (const [k, rs] of current) for (const id of rs) add(id, k, 1);
  // 1. evacuate excluded (and unknown) brokers
  const eligibleIds = new Set(eligible.map((b) => b.id));
  for (const [k, rs] of current) {
    for (let i = 0; i < rs.length; i++) {
      if (eligibleIds.has(rs[i])) continue;
      const pick = pickBroker(rs.filter((_, j) => j !== i), eligible, racks, counts, bytes);
      if (pick === null) break;
      rs[i] = pick;
      add(pick, k, 1);
    }
  }
  // 2. even out counts, then bytes
  const sameRackOk = (rs: readonly number[], from: number, to: number) => {
    const toRack = racks.get(to);
    if (toRack === undefined) return true;
    const others = rs.filter((id) => id !== from).map((id) => racks.get(id));
    return !others.includes(toRack) || others.includes(racks.get(from));
  };
  const totalBytes = [...bytes.values()].reduce((a, b) => a + b, 0);
  const meanBytes = totalBytes / eligible.length;
  for (let step = 0; step < 10 * current.size + 10; step++) {
    const ids = [...counts.keys()];
    const byCount = [...ids].sort((a, b) => counts.get(a)! - counts.get(b)! || a - b);
    const lo = byCount[0], hi = byCount[byCount.length - 1];
    let from: number, to: number;
    if (counts.get(hi)! - counts.get(lo)! > 1) {
      from = hi;
      to = lo;
    } else {
      const byBytes = [...ids].sort((a, b) => bytes.get(a)! - bytes.get(b)! || a - b);
      const bl = byBytes[0], bh = byBytes[byBytes.length - 1];
      if (meanBytes === 0 || (bytes.get(bh)! - bytes.get(bl)!) <= tolerance * meanBytes) break;
      if (counts.get(bh)! <= counts.get(bl)!) {
        // same counts: a swap keeps them; find the pair that evens bytes best
        if (!swapBest(current, bh, bl, sizes, bytes, sameRackOk)) break;
        continue;
      }
      from = bh;
      to = bl;
    }
    // the replica on `from` whose move evens bytes best
    const gap = (bytes.get(from)! - bytes.get(to)!) / 2;
    let bestK: string | null = null;
    let bestErr = Infinity;
    for (const [k, rs] of current) {
      if (!rs.includes(from) || rs.includes(to) || !sameRackOk(rs, from, to)) continue;
      const err = Math.abs(gap - (sizes.get(k) ?? 0));
      if (err < bestErr) {
        bestErr = err;
        bestK = k;
      }
    }
    if (bestK === null) break;
    const rs = current.get(bestK)!;
    rs[rs.indexOf(from)] = to;
    add(from, bestK, -1);
    add(to, bestK, 1);
  }
  // 3. spread preferred leaders: put the replica with the fewest preferred leaderships first
  const preferred = new Map<number, number>(eligible.map((b) => [b.id, 0]));
  const keys = [...current.keys()].sort();
  for (const k of keys) {
    const first = current.get(k)![0];
    if (preferred.has(first)) preferred.set(first, preferred.get(first)! + 1);
  }
  const fair = Math.ceil(keys.length / eligible.length);
  for (const k of keys) {
    const rs = current.get(k)!;
    const first = rs[0];
    if ((preferred.get(first) ?? 0) <= fair) continue;
    let best = -1;
    for (let i = 1; i < rs.length; i++) {
      if ((preferred.get(rs[i]) ?? Infinity) < fair) {
        if (best < 0 || preferred.get(rs[i])! < preferred.get(rs[best])!) best = i;
      }
    }
    if (best < 0) continue;
    preferred.set(first, preferred.get(first)! - 1);
    preferred.set(rs[best], preferred.get(rs[best])! + 1);
    [rs[0], rs[best]] = [rs[best], rs[0]];
  }
  const moves: PartitionMove[] = [];
  for (const [k, rs] of current) {
    const before = original.get(k)!;
    if (before.length === rs.length && before.every((id, i) => id === rs[i])) continue;
    moves.push({ ...splitKey(k), replicas: rs });
  }
  moves.sort((a, b) => a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition);
  return moves;
}

/** Swaps a replica of `hi` with one of `lo` (counts stay) if that evens their bytes. */
function swapBest(
  current: Map<string, number[]>,
  hi: number,
  lo: number,
  sizes: ReadonlyMap<string, number>,
  bytes: Map<number, number>,
  sameRackOk: (rs: readonly number[], from: number, to: number) => boolean,
): boolean {
  const diff = bytes.get(hi)! - bytes.get(lo)!;
  const onHi: [string, number][] = [];
  const onLo: [string, number][] = [];
  for (const [k, rs] of current) {
    if (rs.includes(hi) && !rs.includes(lo) && sameRackOk(rs, hi, lo)) {
      onHi.push([k, sizes.get(k) ?? 0]);
    }
    if (rs.includes(lo) && !rs.includes(hi) && sameRackOk(rs, lo, hi)) {
      onLo.push([k, sizes.get(k) ?? 0]);
    }
  }
  let best: [string, string] | null = null;
  let bestAfter = Math.abs(diff);
  for (const [a, sa] of onHi) {
    for (const [b, sb] of onLo) {
      const after = Math.abs(diff - 2 * (sa - sb));
      if (after < bestAfter) {
        bestAfter = after;
        best = [a, b];
      }
    }
  }
  if (best === null) return false;
  const [a, b] = best;
  const ra = current.get(a)!, rb = current.get(b)!;
  ra[ra.indexOf(hi)] = lo;
  rb[rb.indexOf(lo)] = hi;
  const moved = (sizes.get(a) ?? 0) - (sizes.get(b) ?? 0);
  bytes.set(hi, bytes.get(hi)! - moved);
  bytes.set(lo, bytes.get(lo)! + moved);
  return true;
}
