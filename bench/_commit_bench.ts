/**
 * The offset-commit part of the clients benchmark: 50 committers of one group member (a
 * consumer committing each of its 50 partitions after every batch), each awaiting its commit
 * before the next, against a KV file on disk, as a broker runs them (src/coordination/
 * group_offsets.ts). Coalesced commits (offset_commits.ts) and, as the baseline, each commit
 * reading and writing KV alone, in interleaved rounds: commits/s, p50/p99 and KV operations
 * (group reads + atomic writes) per commit.
 *
 * @module
 */
import { GroupMembership } from "../src/coordination/group_membership.ts";
import { GroupOffsets } from "../src/coordination/group_offsets.ts";
import { interleaved, median, pairedRatio, type Reporter } from "./_report.ts";

const COMMITTERS = 50;

interface Round {
  rate: number;
  p50: number;
  p99: number;
  opsPerCommit: number;
}

async function commitRound(coalesce: boolean, seconds: number): Promise<Round> {
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-commits-" });
  const kv = await Deno.openKv(`${dir}/kv.sqlite`);
  try {
    const deps = {
      kv,
      partitionCount: (t: string) => Promise.resolve(t === "t" ? COMMITTERS : null),
      logStartOffset: () => 0,
      logEndOffset: () => 1e12,
      offsetForTimestamp: () => Promise.resolve(null),
    };
    const membership = new GroupMembership(deps);
    const offsets = new GroupOffsets(deps, membership, coalesce);
    const { memberId, generation } = await membership.join("g", {
      topics: ["t"],
      sessionTimeoutMs: 60_000,
    });
    const latencies: number[] = [];
    const end = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: COMMITTERS }, async (_, partition) => {
      for (let offset = 1; performance.now() < end; offset++) {
        const t = performance.now();
        await offsets.commit("g", {
          memberId,
          generation,
          offsets: [{ topic: "t", partition, offset }],
        });
        latencies.push(performance.now() - t);
      }
    }));
    const elapsed = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const s = offsets.commitStats;
    return {
      rate: latencies.length / elapsed,
      p50: latencies[Math.floor(latencies.length / 2)],
      p99: latencies[Math.floor(latencies.length * 0.99)],
      opsPerCommit: (s.reads + s.writes) / Math.max(1, s.commits),
    };
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs the commit rounds and reports them.
 *
 * @param report receives the figures
 * @param suite the suite name
 * @param seconds each round's length
 */
export async function commitBench(report: Reporter, suite: string, seconds: number): Promise<void> {
  const rounds: Record<"coalesced" | "alone", Round[]> = { coalesced: [], alone: [] };
  await interleaved(2, {
    coalesced: async () => {
      const r = await commitRound(true, seconds);
      rounds.coalesced.push(r);
      return r.rate;
    },
    alone: async () => {
      const r = await commitRound(false, seconds);
      rounds.alone.push(r);
      return r.rate;
    },
  });
  // interleaved() ran one uncounted warm-up round first: drop it.
  const counted = (xs: Round[]) => xs.slice(1);
  const c = counted(rounds.coalesced);
  const a = counted(rounds.alone);
  const fmt = (n: number) => n.toPrecision(3);
  report({
    suite,
    name: `offset commits, ${COMMITTERS} committers awaiting each, coalesced: p50`,
    value: median(c.map((r) => r.p50)),
    unit: `ms, p99 ${fmt(median(c.map((r) => r.p99)))} ms, ${
      Math.round(median(c.map((r) => r.rate)))
    } commits/s, ${fmt(median(c.map((r) => r.opsPerCommit)))} KV ops/commit`,
    ratio: pairedRatio(c.map((r) => r.rate), a.map((r) => r.rate)),
    baseline: "commits/s of each commit alone",
  });
  report({
    suite,
    name: `offset commits, ${COMMITTERS} committers awaiting each, each alone (before): p50`,
    value: median(a.map((r) => r.p50)),
    unit: `ms, p99 ${fmt(median(a.map((r) => r.p99)))} ms, ${
      Math.round(median(a.map((r) => r.rate)))
    } commits/s, ${fmt(median(a.map((r) => r.opsPerCommit)))} KV ops/commit`,
  });
}
