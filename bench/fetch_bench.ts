/**
 * `deno task bench fetch`: one fetch for many partitions (issue 17) against one per
 * partition, measured side by side in the same run.
 *
 * - **64-partition consumer**: the topic is filled first ({@linkcode RECORDS_PER_PARTITION}
 *   100-byte records a partition, `RILL_BENCH_SECONDS` scales it), then each round a new
 *   consumer assigns all 64 partitions from offset 0 and is timed until it has delivered every
 *   record: the consumer is the bottleneck, not a producer. The consumer either holds one
 *   long poll per partition (`fetchSessions: false`, the client before issue 17) or one per
 *   broker in a fetch session (the default). Figures: records/s delivered, and the broker
 *   process's CPU (user + system, from /proc of the spawned broker) per MB of record values
 *   delivered; the consumer's own CPU per MB is printed per round too. Rounds alternate the
 *   two shapes (A B, B A, …) after an uncounted warm-up; the ratios are medians of the
 *   per-round ratios.
 *
 * @module
 */
import { interleaved, logRounds, median, pairedRatio, type Reporter, settle } from "./_report.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";
import { Rill } from "../mod.ts";

const SUITE = "fetch";
const SECONDS = Math.max(0.5, Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3") || 3);
const ROUNDS = 4;
const PARTITIONS = 64;
const VALUE_BYTES = 100;
/**
 * records per partition pre-produced (1 s of RILL_BENCH_SECONDS: 15,000 a partition, 96 MB of
 * values over the topic): a round lasts about a second or more, so /proc's 10 ms CPU ticks
 * are fine enough
 */
const RECORDS_PER_PARTITION = Math.round(15_000 * SECONDS);
/** records per send while filling: each send is one batch of one partition */
const SEND_RECORDS = 500;
/**
 * `RILL_BENCH_FETCH_TRANSPORT=http|ws`: how the client speaks to the broker (default: the
 * client's default, WebSocket in Deno; `http` is the client before the WebSocket transport).
 */
const TRANSPORT = (Deno.env.get("RILL_BENCH_FETCH_TRANSPORT") || undefined) as
  | "http"
  | "ws"
  | undefined;
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

interface ConsumeRound {
  recordsPerSec: number;
  cpuMsPerMb: number;
  clientCpuMsPerMb: number;
}

/** Fills every partition with RECORDS_PER_PARTITION records (8 sends in flight). */
async function fill(url: string, topic: string): Promise<number> {
  const rill = new Rill({ brokers: [url], transport: TRANSPORT });
  const producer = rill.producer({ lingerMs: 0 });
  const value = new Uint8Array(VALUE_BYTES).fill(7);
  const pending = new Set<Promise<void>>();
  let produced = 0;
  for (let done = 0; done < RECORDS_PER_PARTITION; done += SEND_RECORDS) {
    const n = Math.min(SEND_RECORDS, RECORDS_PER_PARTITION - done);
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const messages = Array.from({ length: n }, () => ({ value, partition }));
      const p: Promise<void> = producer.send({ topic, messages, acks: 1 }).then((r) => {
        produced += r.length;
        pending.delete(p);
      });
      pending.add(p);
      if (pending.size >= 8) await Promise.race(pending);
    }
  }
  await Promise.all(pending);
  await producer.disconnect();
  return produced;
}

/** One round: a new consumer reads every partition from offset 0 to the end. */
async function consumeRound(
  url: string,
  pid: number,
  topic: string,
  total: number,
  fetchSessions: boolean,
): Promise<ConsumeRound> {
  const rill = new Rill({ brokers: [url], transport: TRANSPORT });
  const consumer = rill.consumer({ maxWaitMs: 500, fetchSessions, checkCrcs: true });
  let consumed = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const cpu0 = cpuSeconds(pid);
  const self0 = cpuSeconds(Deno.pid);
  const t0 = performance.now();
  await consumer.assign(
    Array.from({ length: PARTITIONS }, (_, p) => ({ topic, partition: p, offset: 0 })),
  );
  await consumer.run({
    eachBatch: ({ batch }) => {
      consumed += batch.messages.length;
      if (consumed >= total) done();
    },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`fetch bench: consumed ${consumed} of ${total} in 300 s`)),
      300_000,
    );
  });
  try {
    await Promise.race([all, limit]);
  } finally {
    clearTimeout(timer);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const self = cpuSeconds(Deno.pid) - self0;
  await consumer.stop();
  const mb = (consumed * VALUE_BYTES) / 1e6;
  return {
    recordsPerSec: consumed / seconds,
    cpuMsPerMb: (cpu * 1000) / mb,
    clientCpuMsPerMb: (self * 1000) / mb,
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
  const total = await fill(broker.url, topic);
  console.error(`${SUITE}: filled ${PARTITIONS} partitions with ${total} records`);
  const rounds: Record<"partition" | "session", ConsumeRound[]> = { partition: [], session: [] };
  const phase = (fetchSessions: boolean) => async (round: number) => {
    await settle();
    const r = await consumeRound(broker.url, broker.pid, topic, total, fetchSessions);
    if (round >= 0) rounds[fetchSessions ? "session" : "partition"].push(r);
    return r.recordsPerSec;
  };
  await interleaved(ROUNDS, { partition: phase(false), session: phase(true) });
  const rate = (k: "partition" | "session") => rounds[k].map((r) => r.recordsPerSec);
  const cpu = (k: "partition" | "session") => rounds[k].map((r) => r.cpuMsPerMb);
  logRounds(SUITE, {
    "per-partition polls records/s": rate("partition"),
    "session records/s": rate("session"),
    "per-partition polls broker CPU ms/MB": cpu("partition"),
    "session broker CPU ms/MB": cpu("session"),
    "per-partition polls consumer CPU ms/MB": rounds.partition.map((r) => r.clientCpuMsPerMb),
    "session consumer CPU ms/MB": rounds.session.map((r) => r.clientCpuMsPerMb),
  });
  const how = `transport ${TRANSPORT ?? "default"}`;
  report({
    suite: SUITE,
    name: `64-partition consumer from offset 0, one long poll per partition (baseline, ${how})`,
    value: median(rate("partition")),
    unit: "records/s",
  });
  const rateRatio = pairedRatio(rate("session"), rate("partition"));
  report({
    suite: SUITE,
    name: `64-partition consumer from offset 0, one fetch session per broker (${how})`,
    value: median(rate("session")),
    unit: "records/s",
    ratio: rateRatio,
    baseline: "per-partition polls",
    target: ">= 1.5x",
    met: rateRatio >= 1.5,
  });
  report({
    suite: SUITE,
    name: `broker CPU per MB delivered, one long poll per partition (baseline, ${how})`,
    value: median(cpu("partition")),
    unit: "ms/MB",
  });
  const cpuRatio = pairedRatio(cpu("session"), cpu("partition"));
  report({
    suite: SUITE,
    name: `broker CPU per MB delivered, one fetch session per broker (${how})`,
    value: median(cpu("session")),
    unit: "ms/MB",
    ratio: cpuRatio,
    baseline: "per-partition polls",
    target: "<= 0.7x",
    met: cpuRatio <= 0.7,
  });
}
