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
 *   `RILL_BENCH_SECONDS` each, and the ratio (target ≥ 0.9). Both producers are built the
 *   same way (default batch size, linger and in-flight limit; only `idempotent` differs),
 *   `connect()`ed before the clock starts (where the idempotent one gets its producer id,
 *   as a Kafka producer does before its first send), and write to a fresh topic of the
 *   same configuration.
 *
 * Trustworthy figures on a noisy machine: the compared phases run in `RILL_BENCH_ROUNDS`
 * (default 5) interleaved rounds (A B, B A, …) after an uncounted warm-up round; each phase
 * writes to a fresh topic that is deleted after it (so every phase writes the same amount
 * into an empty topic and no phase pays for the writeback of another's data), with a
 * `sync` before it. Each figure is the median over the rounds, each ratio the median of the
 * per-round ratios. Word count is the median of three jobs.
 *
 * The producer comparison is CPU-bound (the client takes a core), so it also runs an even
 * number of rounds (each side first equally often), measures the CPU other processes take
 * during each phase (Linux: /proc/stat less this process and the broker) and runs a round
 * again, up to as many times as there are rounds, when the two phases of a round saw
 * outside loads more than {@linkcode OUTSIDE_SKEW} cores apart: such a round compares the
 * machine, not the producers. Both phases of the round are dropped, whichever was hit.
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
/** Counted rounds of the producer comparison: even, so each side goes first equally often. */
const PRODUCER_ROUNDS = 2 * Math.ceil(ROUNDS / 2);
/** The largest difference in outside CPU load (cores) between the phases of a kept round. */
const OUTSIDE_SKEW = 0.15;

/** Runs `phase` writing to a fresh topic `name`, deleted afterwards with its data. */
async function withTopic<T>(
  rill: Rill,
  name: string,
  phase: (topic: string) => Promise<T>,
): Promise<T> {
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

/** CPU seconds (user + system) a process has used, from /proc; NaN where there is none. */
function cpuSeconds(pid: number | "self"): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds the whole machine has been busy (steal included), from /proc/stat; or NaN. */
function machineBusySeconds(): number {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
  } catch {
    return NaN;
  }
}

/** What a producer phase measured. */
interface PhaseLoad<T> {
  /** the phase's result */
  value: T;
  /** CPU seconds of this process (the client) */
  client: number;
  /** CPU seconds of the broker */
  broker: number;
  /** the CPU load (cores) of every other process meanwhile */
  outside: number;
}

/**
 * Runs `phase` and measures the CPU it took in this process and the broker, and the load
 * (cores) other processes put on the machine meanwhile (NaN where /proc is missing).
 */
async function withLoad<T>(brokerPid: number, phase: () => Promise<T>): Promise<PhaseLoad<T>> {
  const busy0 = machineBusySeconds();
  const client0 = cpuSeconds("self");
  const broker0 = cpuSeconds(brokerPid);
  const t0 = performance.now();
  const value = await phase();
  const wall = (performance.now() - t0) / 1000;
  const client = cpuSeconds("self") - client0;
  const broker = cpuSeconds(brokerPid) - broker0;
  return {
    value,
    client,
    broker,
    outside: (machineBusySeconds() - busy0 - client - broker) / wall,
  };
}

/** Sends for `seconds`: records/s acknowledged, and how many. */
async function producerRate(
  producer: Producer,
  topic: string,
  seconds: number,
): Promise<{ rate: number; records: number }> {
  await producer.connect(); // before the clock, for both
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
  return { rate, records: acked };
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

  const producers = await producerRounds(rill, broker.pid);
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

/** A producer phase's records/s, records and CPU. */
type ProducerPhase = PhaseLoad<{ rate: number; records: number }>;

/**
 * The producer comparison: {@linkcode PRODUCER_ROUNDS} interleaved rounds after a warm-up
 * round of 1 s phases; a round whose phases saw outside loads more than
 * {@linkcode OUTSIDE_SKEW} cores apart is run again (at most PRODUCER_ROUNDS times in all).
 */
async function producerRounds(
  rill: Rill,
  brokerPid: number,
): Promise<{ plain: number[]; idem: number[] }> {
  const out = { plain: [] as number[], idem: [] as number[] };
  const kept = { plain: [] as ProducerPhase[], idem: [] as ProducerPhase[] };
  let attempt = 0;
  let redone = 0;
  for (let round = -1; round < PRODUCER_ROUNDS;) {
    const order = round % 2 === 0 ? ["plain", "idem"] as const : ["idem", "plain"] as const;
    const seconds = round < 0 ? Math.min(1, SECONDS) : SECONDS; // warm-up: 1 s
    const got = {} as Record<"plain" | "idem", ProducerPhase>;
    for (const name of order) {
      await settle();
      got[name] = await withTopic(
        rill,
        `p-${name}-${attempt}`,
        (t) =>
          withLoad(
            brokerPid,
            () => producerRate(rill.producer({ idempotent: name === "idem" }), t, seconds),
          ),
      );
    }
    attempt++;
    const skew = Math.abs(got.plain.outside - got.idem.outside);
    if (round >= 0 && skew > OUTSIDE_SKEW && redone < PRODUCER_ROUNDS) {
      redone++;
      console.error(
        `${SUITE}: producer round ${round} run again: outside load ${
          got.plain.outside.toFixed(2)
        } cores during plain, ${got.idem.outside.toFixed(2)} during idem`,
      );
      continue;
    }
    if (round >= 0) {
      for (const name of order) {
        out[name].push(got[name].value.rate);
        kept[name].push(got[name]);
      }
    }
    round++;
  }
  for (const name of ["plain", "idem"] as const) {
    const k = kept[name];
    // CPU per MB of record values (100 B each), medians over the kept rounds
    const perMb = (cpu: (l: ProducerPhase) => number) =>
      median(k.map((l) => cpu(l) * 1000 / (l.value.records * 100 / 1e6))).toFixed(1);
    console.error(
      `${SUITE}: ${name}: CPU ms per MB of values: client ${perMb((l) => l.client)}, broker ${
        perMb((l) => l.broker)
      }; outside load (cores) per round: ${k.map((l) => l.outside.toFixed(2)).join(", ")}`,
    );
  }
  return out;
}
