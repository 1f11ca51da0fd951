/**
 * Fault benchmark (issue 14, D6): how long `acks=all` traffic stalls when a broker fails.
 *
 * Three broker processes (session timeout 3 s, `replica.lag.time.max.ms` 4 s, metadata poll
 * 100 ms), one topic of 2 partitions with replication factor 3 (so one broker leads nothing) and `min.insync.replicas` 2.
 * One sequential producer per partition sends single-record raw batches with acks=all; for
 * each kind of fault the longest gap between two acknowledgements of a partition, over the
 * partitions, is reported, against the longest gap of a same-length window without a fault
 * (the baseline, measured in the same run):
 *
 * - SIGKILL of the broker that leads no partition;
 * - SIGSTOP of a broker that leads no partition, for 8 s;
 * - SIGKILL of a leader.
 *
 * After each fault the broker is restarted (or continued) and the test waits for a full ISR.
 *
 * @module
 */
import type { Reporter } from "./_report.ts";
import { Transport } from "../src/client/transport.ts";
import { batchOf, Cluster } from "../tests/replication/_cluster.ts";

const SUITE = "faults";
const FLAGS = [
  "--session-timeout-ms",
  "3000",
  "--replica-lag-time-max-ms",
  "4000",
  "--metadata-poll-ms",
  "100",
];
const TOPIC = "acks";
const PARTITIONS = 2;
const WINDOW_MS = 12_000;

/**
 * Runs the suite.
 *
 * @param report receives the figures
 */
export async function run(report: Reporter): Promise<void> {
  await using cluster = await Cluster.start(3, FLAGS);
  await cluster.createTopic(TOPIC, PARTITIONS, 3, { "min.insync.replicas": "2" });
  await cluster.waitFor(TOPIC, (ps) => ps.every((p) => p.isr.length === 3), "a full ISR");
  const transport = new Transport({ brokers: cluster.urls(), retry: { retries: 0 } });
  const acks: number[][] = [...Array(PARTITIONS)].map(() => []);
  let stop = false;
  const producers = [...Array(PARTITIONS).keys()].map(async (p) => {
    for (let n = 0; !stop && n < 10_000_000; n++) {
      try {
        const res = await transport.request("POST", `/v1/topics/${TOPIC}/records`, {
          query: { partition: p, acks: "all" },
          headers: { "Content-Type": "application/vnd.rill.batch" },
          body: batchOf(`p${p}-${n}`),
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        acks[p].push(performance.now());
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });

  /** The longest gap between acknowledgements of a partition within [from, to]. */
  const longestGap = (from: number, to: number): number => {
    let longest = 0;
    for (const times of acks) {
      let last = from;
      for (const t of times) {
        if (t < from) continue;
        if (t > to) break;
        longest = Math.max(longest, t - last);
        last = t;
      }
      longest = Math.max(longest, Math.min(to, performance.now()) - last);
    }
    return longest;
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const fullIsr = () =>
    cluster.waitFor(TOPIC, (ps) => ps.every((p) => p.isr.length === 3), "a full ISR", 60_000);

  try {
    await sleep(2000);
    const t0 = performance.now();
    await sleep(WINDOW_MS);
    const baseline = longestGap(t0, t0 + WINDOW_MS);
    const figure = (name: string, gap: number) =>
      report({
        suite: SUITE,
        name: `longest acks=all gap: ${name}`,
        value: gap,
        unit: "ms",
        ratio: gap / baseline,
        baseline: `longest gap without a fault (${baseline.toFixed(0)} ms)`,
      });

    const leaders = async () => new Set((await cluster.describe(TOPIC)).map((p) => p.leader));
    const nonLeader = async (): Promise<number | null> => {
      const led = await leaders();
      return [1, 2, 3].find((id) => !led.has(id)) ?? null;
    };

    // 1. SIGKILL of a broker that leads nothing.
    const victim = await nonLeader();
    if (victim === null) {
      console.error("faults: every broker leads a partition; skipping the non-leader faults");
    } else {
      const t1 = performance.now();
      await cluster.kill(victim);
      await sleep(WINDOW_MS);
      figure(`SIGKILL of broker ${victim}, which leads nothing`, longestGap(t1, t1 + WINDOW_MS));
      await cluster.startBroker(victim);
      await fullIsr();
      await sleep(1000);

      // 2. SIGSTOP of a broker that leads nothing, 8 s.
      const paused = (await nonLeader())!;
      const proc = cluster.procs.get(paused)!;
      const t2 = performance.now();
      proc.kill("SIGSTOP");
      await sleep(8000);
      proc.kill("SIGCONT");
      await sleep(WINDOW_MS - 8000);
      figure(
        `SIGSTOP of broker ${paused} (leads nothing) for 8 s`,
        longestGap(t2, t2 + WINDOW_MS),
      );
      await fullIsr();
      await sleep(1000);
    }

    // 3. SIGKILL of a leader.
    const leader = (await cluster.describe(TOPIC))[0].leader;
    const t3 = performance.now();
    await cluster.kill(leader);
    await sleep(WINDOW_MS);
    figure(`SIGKILL of broker ${leader}, leader of partition 0`, longestGap(t3, t3 + WINDOW_MS));
    await cluster.startBroker(leader);
  } finally {
    stop = true;
    await Promise.all(producers);
  }
}
