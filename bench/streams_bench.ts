/**
 * Issue 6's benchmarks, against a broker process on loopback (spawned in a temp dir):
 *
 * - stateless map pipeline topic → topic through the streams API (a bounded job:
 *   `mapValues` then `to`): records/s, and its ratio to a plain consume-then-produce loop
 *   (a group consumer's `eachBatch` sending the mapped records with the producer and
 *   awaiting the acks, keyed records going to their murmur2 partition as the sink does) over
 *   the same topic in the same run, each timed as a whole job from joining to leaving
 *   (target ≥ 0.8);
 * - word count (flatMapValues → groupBy → count → to, through a repartition topic and a
 *   changelog) as a bounded job: input lines/s;
 * - idempotent vs plain producer: records/s of 100-byte records, acks=all, phases of
 *   `RILL_BENCH_SECONDS` each, and the ratio (target ≥ 0.9).
 *
 * Trustworthy figures on a noisy machine: the compared phases run in `RILL_BENCH_ROUNDS`
 * (default 5) interleaved rounds (A B, B A, …) after an uncounted warm-up round; each phase
 * writes to a fresh topic that is deleted after it (so every phase writes the same amount
 * into an empty topic and no phase pays for the writeback of another's data), with a
 * `sync` before it. Each figure is the median over the rounds, each ratio the median of the
 * per-round ratios. Word count is the median of three jobs.
 *
 * `RILL_BENCH_SECONDS` (default 3) sets the producer phases; `RILL_BENCH_RECORDS` (default
 * 200,000) the size of the pipeline input.
 *
 * @module
 */
import { interleaved, logRounds, median, pairedRatio, type Reporter, settle } from "./_report.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";
import { type Producer, Rill, Serdes, StreamsBuilder } from "../mod.ts";

const SUITE = "streams";
const SECONDS = Math.max(0.5, Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3") || 3);
const RECORDS = Math.max(10_000, Number(Deno.env.get("RILL_BENCH_RECORDS") ?? "200000") || 200_000);
const ROUNDS = Math.max(1, Number(Deno.env.get("RILL_BENCH_ROUNDS") ?? "5") || 5);
const PARTITIONS = 4;

/** Runs `phase` writing to a fresh topic `name`, deleted afterwards with its data. */
async function withTopic(
  rill: Rill,
  name: string,
  phase: (topic: string) => Promise<number>,
): Promise<number> {
  const admin = rill.admin();
  await admin.createTopic({ topic: name, numPartitions: PARTITIONS });
  try {
    return await phase(name);
  } finally {
    await admin.deleteTopic(name);
  }
}

async function fill(rill: Rill, topic: string, make: (i: number) => string): Promise<void> {
  const producer = rill.producer({ lingerMs: 2 });
  const sends = [];
  for (let i = 0; i < RECORDS; i += 5000) {
    const messages = [];
    for (let j = i; j < Math.min(RECORDS, i + 5000); j++) {
      messages.push({ key: `k${j % 1000}`, value: make(j) });
    }
    sends.push(producer.send({ topic, messages, acks: 1 }));
    if (sends.length >= 8) await sends.shift();
  }
  await Promise.all(sends);
  await producer.disconnect();
}

/** The baseline: a plain group consumer that maps and produces each batch, then commits. */
async function consumeThenProduce(
  rill: Rill,
  from: string,
  to: string,
  run: number,
): Promise<number> {
  const t0 = performance.now();
  const producer = rill.producer();
  const consumer = rill.consumer({ groupId: `bench-plain-${run}`, maxWaitMs: 100 });
  await consumer.subscribe({ topics: [from], fromBeginning: true });
  let done = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  await consumer.run({
    autoCommitInterval: 1000,
    eachBatch: async ({ batch }) => {
      const messages = batch.messages.map((m) => ({
        key: m.key,
        value: (m.valueString() ?? "").toUpperCase(),
      })); // keyed: the producer's murmur2 partition, as the streams sink does
      await producer.send({ topic: to, messages, acks: "all" });
      done += messages.length;
      if (done >= RECORDS) finish();
    },
  });
  await all;
  await consumer.disconnect(); // commits and leaves, as the bounded streams job does
  await producer.disconnect();
  return RECORDS / ((performance.now() - t0) / 1000);
}

async function streamsMap(rill: Rill, from: string, to: string, run: number): Promise<number> {
  const b = new StreamsBuilder();
  b.stream(from).mapValues((v) => v.toUpperCase(), Serdes.string).to(to);
  return await timeApp(rill, `bench-map-${run}`, b);
}

async function wordCount(rill: Rill, from: string, to: string, run: number): Promise<number> {
  const b = new StreamsBuilder();
  b.stream<string | null, string>(from)
    .flatMapValues((l) => l.split(" "))
    .groupBy((_k, w) => w)
    .count()
    .toStream()
    .to(to, { valueSerde: Serdes.number });
  return await timeApp(rill, `bench-wc-${run}`, b);
}

/** Runs a bounded streams application over the whole input: records/s from start to end. */
async function timeApp(rill: Rill, applicationId: string, b: StreamsBuilder): Promise<number> {
  const app = rill.streams({ applicationId, fromBeginning: true, stopAtEnd: true, maxWaitMs: 100 })
    .build(b);
  const t0 = performance.now();
  await app.start();
  await app.finished();
  return RECORDS / ((performance.now() - t0) / 1000);
}

/** Deletes the internal topics (repartition, changelog) of an application. */
async function deleteInternal(rill: Rill, applicationId: string): Promise<void> {
  const admin = rill.admin();
  for (const t of await admin.listTopics()) {
    if (t.startsWith(`${applicationId}-`)) await admin.deleteTopic(t);
  }
}

async function producerRate(producer: Producer, topic: string, seconds: number): Promise<number> {
  const value = "x".repeat(100);
  let acked = 0;
  const pending = new Set<Promise<void>>();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    const messages = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}`, value }));
    const p = producer.send({ topic, messages, acks: "all" }).then(() => {
      acked += 1000;
    });
    pending.add(p);
    p.finally(() => pending.delete(p));
    if (pending.size >= 16) await Promise.race(pending);
  }
  await Promise.all(pending);
  const rate = acked / ((performance.now() - t0) / 1000);
  await producer.disconnect();
  return rate;
}

/**
 * Runs the suite.
 *
 * @param report where figures go
 */
export async function run(report: Reporter): Promise<void> {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  await rill.admin().createTopics({
    topics: ["in", "lines"].map((topic) => ({ topic, numPartitions: PARTITIONS })),
  });
  await fill(rill, "in", (i) =>
    `record number ${i} with some text to map ${
      "."
        .repeat(40)
    }`);
  await fill(rill, "lines", (i) => `w${i % 997} v${i % 89} u${i % 13}`);

  // Each phase is a whole job: join, read every record, map, produce with acks=all,
  // commit, leave.
  const jobs = await interleaved(ROUNDS, {
    plain: (r) => withTopic(rill, `plain-out-${r}`, (t) => consumeThenProduce(rill, "in", t, r)),
    map: (r) => withTopic(rill, `map-out-${r}`, (t) => streamsMap(rill, "in", t, r)),
  }, settle);
  logRounds(SUITE, jobs);
  const ratio = pairedRatio(jobs.map, jobs.plain);
  report({
    suite: SUITE,
    name: "plain consume-then-produce loop (baseline)",
    value: median(jobs.plain),
    unit: "records/s",
  });
  report({
    suite: SUITE,
    name: "streams stateless map topic→topic",
    value: median(jobs.map),
    unit: "records/s",
    ratio,
    baseline: "plain consume-then-produce",
    target: ">= 0.8",
    met: ratio >= 0.8,
  });

  const wc: number[] = [];
  for (let i = 0; i < 3; i++) {
    await settle();
    wc.push(await withTopic(rill, `counts-${i}`, (t) => wordCount(rill, "lines", t, i)));
    await deleteInternal(rill, `bench-wc-${i}`);
  }
  logRounds(SUITE, { "word count": wc });
  report({
    suite: SUITE,
    name: "streams word count (3 words a line)",
    value: median(wc),
    unit: "lines/s",
  });

  const seconds = (round: number) => round < 0 ? Math.min(1, SECONDS) : SECONDS; // warm-up: 1 s
  const producers = await interleaved(ROUNDS, {
    plain: (r) =>
      withTopic(
        rill,
        `p-plain-${r}`,
        (t) => producerRate(rill.producer({ idempotent: false }), t, seconds(r)),
      ),
    idem: (r) =>
      withTopic(
        rill,
        `p-idem-${r}`,
        (t) => producerRate(rill.producer({ idempotent: true }), t, seconds(r)),
      ),
  }, settle);
  logRounds(SUITE, producers);
  const idemRatio = pairedRatio(producers.idem, producers.plain);
  report({
    suite: SUITE,
    name: "plain producer, 100 B, acks=all (baseline)",
    value: median(producers.plain),
    unit: "records/s",
  });
  report({
    suite: SUITE,
    name: "idempotent producer, 100 B, acks=all",
    value: median(producers.idem),
    unit: "records/s",
    ratio: idemRatio,
    baseline: "plain producer",
    target: ">= 0.9",
    met: idemRatio >= 0.9,
  });
}
