/**
 * Issue 6's benchmarks, against a broker process on loopback (spawned in a temp dir):
 *
 * - stateless map pipeline topic → topic through the streams API (a bounded job:
 *   `mapValues` then `to`): records/s, and its ratio to a plain consume-then-produce loop
 *   (a group consumer's `eachBatch` sending the mapped records with the producer and
 *   awaiting the acks, keyed records going to their murmur2 partition as the sink does) over
 *   the same topic in the same run, each timed as a whole job from joining to leaving, two
 *   rounds alternating (target ≥ 0.8);
 * - word count (flatMapValues → groupBy → count → to, through a repartition topic and a
 *   changelog) as a bounded job: input lines/s;
 * - idempotent vs plain producer: records/s of 100-byte records, acks=all, alternating four
 *   rounds of `RILL_BENCH_SECONDS` each, and the ratio (target ≥ 0.9).
 *
 * `RILL_BENCH_SECONDS` (default 3) sets the producer phases; `RILL_BENCH_RECORDS` (default
 * 200,000) the size of the pipeline input.
 *
 * @module
 */
import type { Reporter } from "./_report.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";
import { type Producer, Rill, Serdes, StreamsBuilder } from "../mod.ts";

const SUITE = "streams";
const SECONDS = Math.max(0.5, Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3") || 3);
const RECORDS = Math.max(10_000, Number(Deno.env.get("RILL_BENCH_RECORDS") ?? "200000") || 200_000);
const PARTITIONS = 4;

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
  const app = rill.streams({
    applicationId: `bench-map-${run}`,
    fromBeginning: true,
    stopAtEnd: true,
    maxWaitMs: 100,
  })
    .build(b);
  const t0 = performance.now();
  await app.start();
  await app.finished();
  return RECORDS / ((performance.now() - t0) / 1000);
}

async function wordCount(rill: Rill, from: string, to: string): Promise<number> {
  const b = new StreamsBuilder();
  b.stream<string | null, string>(from)
    .flatMapValues((l) => l.split(" "))
    .groupBy((_k, w) => w)
    .count()
    .toStream()
    .to(to, { valueSerde: Serdes.number });
  const app = rill.streams({
    applicationId: "bench-wc",
    fromBeginning: true,
    stopAtEnd: true,
    maxWaitMs: 100,
  })
    .build(b);
  const t0 = performance.now();
  await app.start();
  await app.finished();
  return RECORDS / ((performance.now() - t0) / 1000);
}

async function producerRate(producer: Producer, topic: string): Promise<number> {
  const value = "x".repeat(100);
  let acked = 0;
  const pending = new Set<Promise<void>>();
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
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
  const topics = ["in", "plain-out", "map-out", "lines", "counts", "p-plain", "p-idem"];
  await rill.admin().createTopics({
    topics: topics.map((topic) => ({ topic, numPartitions: PARTITIONS })),
  });
  await fill(rill, "in", (i) =>
    `record number ${i} with some text to map ${
      "."
        .repeat(40)
    }`);
  await fill(rill, "lines", (i) => `w${i % 997} v${i % 89} u${i % 13}`);

  // Two rounds, alternating which goes first; each is a whole job: join, read every
  // record, map, produce with acks=all, commit, leave.
  let plain = 0, map = 0;
  for (let round = 0; round < 2; round++) {
    if (round === 0) {
      plain += await consumeThenProduce(rill, "in", "plain-out", round);
      map += await streamsMap(rill, "in", "map-out", round);
    } else {
      map += await streamsMap(rill, "in", "map-out", round);
      plain += await consumeThenProduce(rill, "in", "plain-out", round);
    }
  }
  plain /= 2;
  map /= 2;
  report({
    suite: SUITE,
    name: "plain consume-then-produce loop (baseline)",
    value: plain,
    unit: "records/s",
  });
  report({
    suite: SUITE,
    name: "streams stateless map topic→topic",
    value: map,
    unit: "records/s",
    ratio: map / plain,
    baseline: "plain consume-then-produce",
    target: ">= 0.8",
    met: map / plain >= 0.8,
  });
  const wc = await wordCount(rill, "lines", "counts");
  report({ suite: SUITE, name: "streams word count (3 words a line)", value: wc, unit: "lines/s" });

  // Alternate the two producers (and which goes first) to even out noise from other
  // processes on the machine.
  const ROUNDS = 4;
  let plainRate = 0, idemRate = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const plain = () => producerRate(rill.producer({ idempotent: false }), "p-plain");
    const idem = () => producerRate(rill.producer({ idempotent: true }), "p-idem");
    if (round % 2 === 0) {
      plainRate += await plain();
      idemRate += await idem();
    } else {
      idemRate += await idem();
      plainRate += await plain();
    }
  }
  report({
    suite: SUITE,
    name: "plain producer, 100 B, acks=all (baseline)",
    value: plainRate / ROUNDS,
    unit: "records/s",
  });
  report({
    suite: SUITE,
    name: "idempotent producer, 100 B, acks=all",
    value: idemRate / ROUNDS,
    unit: "records/s",
    ratio: idemRate / plainRate,
    baseline: "plain producer",
    target: ">= 0.9",
    met: idemRate / plainRate >= 0.9,
  });
}
