/**
 * `deno task bench fetch`: one fetch for many partitions (issue 17) against one per
 * partition, measured side by side in the same run.
 *
 * - **64-partition consumer**: a producer in this process writes 100-byte records to a
 *   64-partition topic as fast as it can (200-record sends, each one batch of one partition,
 *   the partitions in turn, 8 in flight) while a consumer
 *   tails every partition, for `RILL_BENCH_SECONDS` (default 3) a round. The consumer either
 *   holds one long poll per partition (`fetchSessions: false`, the client before issue 17)
 *   or one per broker in a fetch session (the default). Figures: records/s the consumer
 *   delivered, and the broker process's CPU (user + system, /proc) per MB of record values
 *   delivered. Rounds alternate the two modes (A B, B A, …) after an uncounted warm-up; the
 *   ratios are medians of the per-round ratios.
 *
 * @module
 */
import { interleaved, logRounds, median, pairedRatio, type Reporter, settle } from "./_report.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";
import { Rill } from "../mod.ts";

const SUITE = "fetch";
const SECONDS = Math.max(0.5, Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3") || 3);
const ROUNDS = 3;
const PARTITIONS = 64;
const VALUE_BYTES = 100;
/** records per send: each send is one batch of one partition, the partitions in turn */
const SEND_RECORDS = 200;
/** USER_HZ, the unit of /proc CPU times. */
const CLOCK_TICKS = 100;

/** CPU seconds (user + system) a process has used, from /proc; 0 where there is none. */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

interface TailRound {
  recordsPerSec: number;
  cpuMsPerMb: number;
  produced: number;
}

/** One round: produce for SECONDS while a consumer tails all partitions. */
async function tailRound(
  url: string,
  pid: number,
  topic: string,
  fetchSessions: boolean,
): Promise<TailRound> {
  const rill = new Rill({ brokers: [url] });
  const consumer = rill.consumer({ maxWaitMs: 500, fetchSessions, checkCrcs: true });
  await consumer.assign(
    Array.from({ length: PARTITIONS }, (_, p) => ({ topic, partition: p, offset: "latest" })),
  );
  let consumed = 0;
  await consumer.run({
    eachBatch: ({ batch }) => {
      consumed += batch.messages.length;
    },
  });
  const producer = rill.producer({ lingerMs: 2 });
  const value = new Uint8Array(VALUE_BYTES).fill(7);
  const cpu0 = cpuSeconds(pid);
  const consumed0 = consumed;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  const pending = new Set<Promise<void>>();
  let produced = 0;
  let i = 0;
  while (performance.now() < end) {
    const partition = i++ % PARTITIONS;
    const messages = Array.from({ length: SEND_RECORDS }, () => ({ value, partition }));
    const p: Promise<void> = producer.send({ topic, messages, acks: 1 }).then((r) => {
      produced += r.length;
      pending.delete(p);
    });
    pending.add(p);
    if (pending.size >= 8) await Promise.race(pending);
  }
  await Promise.all(pending);
  const seconds = (performance.now() - t0) / 1000;
  const delivered = consumed - consumed0;
  const cpu = cpuSeconds(pid) - cpu0;
  await consumer.stop();
  await producer.disconnect();
  return {
    recordsPerSec: delivered / seconds,
    cpuMsPerMb: (cpu * 1000) / ((delivered * VALUE_BYTES) / 1e6),
    produced,
  };
}

/**
 * Runs the suite.
 *
 * @param report receives the figures
 */
export async function run(report: Reporter): Promise<void> {
  await using broker = await startBroker();
  const admin = new Rill({ brokers: [broker.url] }).admin();
  const topic = "wide64";
  await admin.createTopic({ topic, numPartitions: PARTITIONS });
  const rounds: Record<"partition" | "session", TailRound[]> = { partition: [], session: [] };
  await interleaved(ROUNDS, {
    partition: async (round) => {
      const r = await tailRound(broker.url, broker.pid, topic, false);
      if (round >= 0) rounds.partition.push(r);
      return r.recordsPerSec;
    },
    session: async (round) => {
      const r = await tailRound(broker.url, broker.pid, topic, true);
      if (round >= 0) rounds.session.push(r);
      return r.recordsPerSec;
    },
  }, settle);
  const rate = (k: "partition" | "session") => rounds[k].map((r) => r.recordsPerSec);
  const cpu = (k: "partition" | "session") => rounds[k].map((r) => r.cpuMsPerMb);
  logRounds(SUITE, {
    "per-partition polls records/s": rate("partition"),
    "session records/s": rate("session"),
    "per-partition polls broker CPU ms/MB": cpu("partition"),
    "session broker CPU ms/MB": cpu("session"),
    "per-partition polls produced": rounds.partition.map((r) => r.produced),
    "session produced": rounds.session.map((r) => r.produced),
  });
  report({
    suite: SUITE,
    name: `64-partition consumer tailing a producer, one long poll per partition (baseline)`,
    value: median(rate("partition")),
    unit: "records/s",
  });
  const rateRatio = pairedRatio(rate("session"), rate("partition"));
  report({
    suite: SUITE,
    name: `64-partition consumer tailing a producer, one fetch session per broker`,
    value: median(rate("session")),
    unit: "records/s",
    ratio: rateRatio,
    baseline: "per-partition polls",
    target: ">= 1.5x",
    met: rateRatio >= 1.5,
  });
  report({
    suite: SUITE,
    name: `broker CPU per MB delivered, one long poll per partition (baseline)`,
    value: median(cpu("partition")),
    unit: "ms/MB",
  });
  const cpuRatio = pairedRatio(cpu("session"), cpu("partition"));
  report({
    suite: SUITE,
    name: `broker CPU per MB delivered, one fetch session per broker`,
    value: median(cpu("session")),
    unit: "ms/MB",
    ratio: cpuRatio,
    baseline: "per-partition polls",
    target: "<= 0.7x",
    met: cpuRatio <= 0.7,
  });
}
