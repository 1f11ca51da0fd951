/**
 * What metrics cost (issue 18): the client producer's and consumer's rates against one
 * broker process with `GET /metrics` scraped every second (as a Prometheus would, 1 s being
 * fifteen times its usual rate) against the same without scraping.
 *
 * On a machine shared with other work the rates swing by tens of percent from one second to
 * the next, more than the cost being measured, so the comparison is made of many short
 * pairs: each round runs a plain and a scraped phase back to back (in alternating order, on
 * fresh topics; a scraped phase scrapes at its start and then every second), and the figure
 * is the median of the per-pair ratios, with their spread (quartiles) and the load average
 * before and after. Each round is plain, scraped, plain again (reversed every other round):
 * the scraped phase is compared with the mean of the plain phases around it, and the second
 * plain phase against the first is reported as an A/A control (what two identical phases
 * differ by on the machine at that time). A bound from CPU is reported too: the broker's CPU
 * per second while producing against that plus one scrape's CPU. The broker's CPU time per record (from /proc, which outside load
 * disturbs far less) is reported alongside as plain/scraped: the rate a CPU-bound broker
 * would keep. Also: the broker CPU one scrape costs on an idle broker, with the bench's 4
 * partitions and with 1,000, its size, and the cost of the per-request counting calls.
 *
 * `RILL_BENCH_SECONDS` (default 1.5) sets the length of each producer phase;
 * `RILL_BENCH_ROUNDS` (default 20) the counted pairs.
 *
 * @module
 */
import { interleaved, logRounds, median, type Reporter, settle } from "./_report.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";
import { type Admin, type Producer, Rill } from "../mod.ts";
import { Metrics } from "../src/observability/metrics.ts";
import { KafkaMeter } from "../src/kafka/observe.ts";
import { API } from "../src/kafka/messages.ts";

const SUITE = "metrics";
const SECONDS = Math.max(0.5, Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "1.5") || 1.5);
const ROUNDS = Math.max(2, Number(Deno.env.get("RILL_BENCH_ROUNDS") ?? "20") || 20);
/** Partitions (in topics) the second scrape-cost figure is measured with. */
const MANY_PARTITIONS = 1000;
const MANY_TOPICS = 50;
const PARTITIONS = 4;
const SEND_SIZE = 1000;
/** The 1-minute load average, from /proc/loadavg (NaN where there is none). */
function loadAverage(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/** The quartiles of some numbers (nearest rank). */
function quartiles(xs: readonly number[]): [number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  return [at(0.25), at(0.75)];
}

/** The per-pair ratios' summary: median, quartiles, and how many pairs fell below 1. */
function spread(ratios: readonly number[]): string {
  const [q1, q3] = quartiles(ratios);
  const below = ratios.filter((r) => r < 1).length;
  return `pairs p25-p75 ${q1.toFixed(3)}-${q3.toFixed(3)}, ${below}/${ratios.length} below 1`;
}

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
const SENDS_IN_FLIGHT = 16;

/** Scrapes `url` every second until stopped; returns each scrape's time (ms) and size. */
function scraper(url: string): { stop(): Promise<{ ms: number[]; bytes: number }> } {
  const ms: number[] = [];
  let bytes = 0;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  const scrape = () => {
    inFlight = (async () => {
      const t0 = performance.now();
      const text = await (await fetch(url)).text();
      ms.push(performance.now() - t0);
      bytes = text.length;
    })();
    if (!stopped) timer = setTimeout(scrape, 1000);
  };
  scrape();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
      return { ms, bytes };
    },
  };
}

async function produceFor(producer: Producer, topic: string, value: Uint8Array) {
  let acked = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  const pending = new Set<Promise<void>>();
  const messages = Array.from({ length: SEND_SIZE }, () => ({ value }));
  while (performance.now() < end) {
    const p: Promise<void> = producer.send({ topic, messages, acks: 1 }).then((r) => {
      acked += r.length;
      pending.delete(p);
    });
    pending.add(p);
    if (pending.size >= SENDS_IN_FLIGHT) await Promise.race(pending);
  }
  await Promise.all(pending);
  const seconds = (performance.now() - t0) / 1000;
  return { rate: acked / seconds, count: acked, seconds };
}

async function consumeAll(rill: Rill, topic: string, total: number): Promise<number> {
  const consumer = rill.consumer({ maxWaitMs: 500 });
  await consumer.assign(
    Array.from({ length: PARTITIONS }, (_, p) => ({ topic, partition: p, offset: "earliest" })),
  );
  let n = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const t0 = performance.now();
  await consumer.run({
    eachBatch: ({ batch }) => {
      n += batch.messages.length;
      if (n >= total) done();
    },
  });
  await finished;
  const rate = n / ((performance.now() - t0) / 1000);
  await consumer.stop();
  return rate;
}

async function fresh(admin: Admin, name: string, old: string[]): Promise<string> {
  for (const t of old.splice(0)) await admin.deleteTopic(t);
  await admin.createTopic({ topic: name, numPartitions: PARTITIONS });
  old.push(name);
  return name;
}

/**
 * Runs the metrics benchmarks.
 *
 * @param report receives each figure
 */
export async function run(report: Reporter): Promise<void> {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  const admin = rill.admin();
  const producer = rill.producer({ batchBytes: 1 << 20 });
  const value = new Uint8Array(1024).fill(7);
  const scrapeMs: number[] = [];
  let scrapeBytes = 0;
  const withScraping = async <T>(fn: () => Promise<T>): Promise<T> => {
    const s = scraper(`${broker.url}/metrics`);
    try {
      return await fn();
    } finally {
      const r = await s.stop();
      scrapeMs.push(...r.ms);
      scrapeBytes = r.bytes;
    }
  };

  // Producer: plain and scraped rounds, each on a fresh topic; each then read back once by
  // the consumer under the same condition (so the consumer reads what it just produced).
  const old: string[] = [];
  // "again" is a second plain phase in each round: the A/A control, whose ratio to "plain"
  // shows how far two identical phases differ on this machine now.
  type Kind = "plain" | "scraped" | "again";
  const consumed: Record<Kind, number[]> = { plain: [], scraped: [], again: [] };
  // broker CPU seconds per second of the plain producer phases
  const busy: number[] = [];
  // broker CPU microseconds per record, producing and consuming
  const cpuIn: Record<Kind, number[]> = { plain: [], scraped: [], again: [] };
  const cpuOut: Record<Kind, number[]> = { plain: [], scraped: [], again: [] };
  const phase = (kind: Kind) => async (round: number) => {
    const topic = await fresh(admin, `m-${kind}-${round + 1}`, old);
    const wrap = kind === "scraped" ? withScraping : <T>(fn: () => Promise<T>) => fn();
    let cpu0 = cpuSeconds(broker.pid);
    const p = await wrap(() => produceFor(producer, topic, value));
    const produceCpu = cpuSeconds(broker.pid) - cpu0;
    await settle();
    cpu0 = cpuSeconds(broker.pid);
    const c = await wrap(() => consumeAll(rill, topic, p.count));
    const consumeCpu = cpuSeconds(broker.pid) - cpu0;
    if (round >= 0) {
      consumed[kind].push(c);
      cpuIn[kind].push((produceCpu / p.count) * 1e6);
      if (kind === "plain") busy.push(produceCpu / p.seconds);
      cpuOut[kind].push((consumeCpu / p.count) * 1e6);
    }
    return p.rate;
  };
  const loadBefore = loadAverage();
  const produced = await interleaved(
    ROUNDS,
    { plain: phase("plain"), scraped: phase("scraped"), again: phase("again") },
    settle,
  );
  const loadAfter = loadAverage();
  const load = `load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after`;
  logRounds(SUITE, {
    "producer plain": produced.plain,
    "producer scraped": produced.scraped,
    "producer plain again": produced.again,
  });
  logRounds(SUITE, {
    "consumer plain": consumed.plain,
    "consumer scraped": consumed.scraped,
    "consumer plain again": consumed.again,
  });
  logRounds(SUITE, { "broker CPU µs/record in, plain": cpuIn.plain, "scraped": cpuIn.scraped });
  logRounds(SUITE, {
    "broker CPU µs/record out, plain": cpuOut.plain,
    "scraped": cpuOut.scraped,
  });
  await producer.disconnect();

  // Each round's ratio of its scraped phase to the mean of the two plain phases around it
  // (a steady drift of the machine's load cancels out), for rates scraped / plain, for CPU
  // per record plain / scraped; and the A/A control: the second plain phase to the first.
  const around = (r: Record<Kind, number[]>, i: number) => (r.plain[i] + r.again[i]) / 2;
  const ratios = (r: Record<Kind, number[]>, cpu = false) =>
    r.scraped.map((x, i) => cpu ? around(r, i) / x : x / around(r, i));
  const control = (r: Record<Kind, number[]>) => r.again.map((x, i) => x / r.plain[i]);
  const pairs = {
    producer: ratios(produced),
    consumer: ratios(consumed),
    cpuIn: ratios(cpuIn, true),
    cpuOut: ratios(cpuOut, true),
  };
  const aa = { producer: control(produced), consumer: control(consumed) };
  logRounds(SUITE, {
    "producer ratio scraped/plain": pairs.producer,
    "consumer ratio scraped/plain": pairs.consumer,
    "producer A/A control, plain again/plain": aa.producer,
    "consumer A/A control, plain again/plain": aa.consumer,
  });
  const pRatio = median(pairs.producer);
  const cRatio = median(pairs.consumer);
  report({
    suite: SUITE,
    name: `client producer, 1 KiB records, acks=1, no scraping (median of ${ROUNDS} phases)`,
    value: median(produced.plain),
    unit: "records/s",
  });
  report({
    suite: SUITE,
    name: `client producer, 1 KiB records, acks=1, /metrics scraped every 1 s (${
      spread(pairs.producer)
    }; ${load})`,
    value: median(produced.scraped),
    unit: "records/s",
    ratio: pRatio,
    baseline: `no scraping (median of ${ROUNDS} rounds' ratios)`,
    target: ">= 0.97",
    met: pRatio >= 0.97,
  });
  report({
    suite: SUITE,
    name: `client consumer reading it back, no scraping (median of ${ROUNDS} phases)`,
    value: median(consumed.plain),
    unit: "records/s",
  });
  report({
    suite: SUITE,
    name: `client consumer reading it back, /metrics scraped every 1 s (${
      spread(pairs.consumer)
    }; ${load})`,
    value: median(consumed.scraped),
    unit: "records/s",
    ratio: cRatio,
    baseline: `no scraping (median of ${ROUNDS} rounds' ratios)`,
    target: ">= 0.97",
    met: cRatio >= 0.97,
  });
  for (const who of ["producer", "consumer"] as const) {
    report({
      suite: SUITE,
      name: `A/A control: ${who}, a second plain phase against the first (${spread(aa[who])})`,
      value: median(aa[who]),
      unit: "×",
    });
  }
  const cpuInRatio = median(pairs.cpuIn);
  const cpuOutRatio = median(pairs.cpuOut);
  report({
    suite: SUITE,
    name: `broker CPU per record produced, /metrics scraped every 1 s (${spread(pairs.cpuIn)})`,
    value: median(cpuIn.scraped),
    unit: "µs/record",
    ratio: cpuInRatio,
    baseline: `no scraping (${median(cpuIn.plain).toFixed(2)} µs), as plain/scraped`,
    target: ">= 0.97",
    met: cpuInRatio >= 0.97,
  });
  report({
    suite: SUITE,
    name: `broker CPU per record consumed, /metrics scraped every 1 s (${spread(pairs.cpuOut)})`,
    value: median(cpuOut.scraped),
    unit: "µs/record",
    ratio: cpuOutRatio,
    baseline: `no scraping (${median(cpuOut.plain).toFixed(2)} µs), as plain/scraped`,
    target: ">= 0.97",
    met: cpuOutRatio >= 0.97,
  });
  // One scrape's broker CPU, on the idle broker: 200 scrapes back to back, with the bench's
  // topic of 4 partitions and then with 1,000 partitions instead (50 topics of 20).
  const scrapeCpu = async (label: string) => {
    const scrapes = 200;
    let bytes = 0;
    for (let i = 0; i < 5; i++) await (await fetch(`${broker.url}/metrics`)).text();
    let cpu0 = cpuSeconds(broker.pid);
    const t0 = performance.now();
    for (let i = 0; i < scrapes; i++) {
      bytes = (await (await fetch(`${broker.url}/metrics`)).text()).length;
    }
    const wall = performance.now() - t0;
    const busy = cpuSeconds(broker.pid) - cpu0;
    // Less what the idle broker spends over as long without scrapes (its timers).
    cpu0 = cpuSeconds(broker.pid);
    await new Promise((r) => setTimeout(r, wall));
    const idle = cpuSeconds(broker.pid) - cpu0;
    const perScrape = (Math.max(0, busy - idle) / scrapes) * 1000;
    report({
      suite: SUITE,
      name: `broker CPU of one scrape, ${label} (idle broker, ${scrapes} scrapes in ${
        (wall / 1000).toFixed(1)
      } s, ${(idle * 1000).toFixed(0)} ms idle CPU over as long subtracted; ${
        (bytes / 1024).toFixed(0)
      } KiB; load average ${loadAverage().toFixed(1)}): ${
        (perScrape / 10).toFixed(2)
      } % of one core at one scrape a second`,
      value: perScrape,
      unit: "ms",
    });
    return perScrape;
  };
  const perScrape = await scrapeCpu(`${PARTITIONS} partitions`);
  // The rate a broker keeps when every scrape's CPU is taken from its produce work: its CPU
  // per second while producing (plain phases), against that plus one scrape a second. Outside
  // load disturbs this far less than it disturbs the rates.
  const busyPerSecond = median(busy);
  const bound = busyPerSecond / (busyPerSecond + perScrape / 1000);
  report({
    suite: SUITE,
    name: `producer rate with scraping, bounded from CPU: broker busy ${
      busyPerSecond.toFixed(2)
    } CPU-s/s producing, + ${perScrape.toFixed(2)} ms a scrape a second`,
    value: bound,
    unit: "× no scraping",
    ratio: bound,
    baseline: "no scraping",
    target: ">= 0.97",
    met: bound >= 0.97,
  });
  for (const t of old.splice(0)) await admin.deleteTopic(t);
  for (let i = 0; i < MANY_TOPICS; i++) {
    const topic = `m-many-${i}`;
    await admin.createTopic({ topic, numPartitions: MANY_PARTITIONS / MANY_TOPICS });
    old.push(topic);
  }
  await scrapeCpu(`${MANY_TOPICS} topics of ${MANY_PARTITIONS / MANY_TOPICS} partitions`);
  for (const t of old.splice(0)) await admin.deleteTopic(t);
  const sorted = [...scrapeMs].sort((a, b) => a - b);
  report({
    suite: SUITE,
    name: `one scrape of /metrics under load (wall time), median of ${sorted.length} (${
      (scrapeBytes / 1024).toFixed(1)
    } KiB of text)`,
    value: median(sorted),
    unit: "ms",
  });

  // The counting calls of the hot path, in this process: one produce and one fetch count,
  // as a request makes them, against an empty loop of the same shape.
  const m = new Metrics({ process: false });
  const n = 1_000_000;
  const topics = ["orders", "payments", "clicks", "logs"];
  // Each loop 5 times, alternating; the fastest of each (a 1 ns difference is below the
  // noise of one pass on a shared machine, so the empty loop is shown, not subtracted).
  let sink = 0;
  let empty = Infinity;
  let counted = Infinity;
  for (let rep = 0; rep < 5; rep++) {
    let t0 = performance.now();
    for (let i = 0; i < n; i++) sink += topics[i & 3].length + i;
    empty = Math.min(empty, performance.now() - t0);
    t0 = performance.now();
    for (let i = 0; i < n; i++) {
      m.produced(topics[i & 3], 1_048_576, 1000);
      m.fetched(topics[i & 3], 1_048_576, 1000);
    }
    counted = Math.min(counted, performance.now() - t0);
  }
  report({
    suite: SUITE,
    name: `counting one produce and one fetch request (${
      sink > 0 ? "4 topics" : ""
    }; an empty loop of the same shape: ${(empty / n * 1e6).toFixed(2)} ns)`,
    value: (counted / n) * 1e6,
    unit: "ns/request",
  });
  // What the Kafka listener adds per request: a Produce answered for one partition, acks=1.
  const kafka = new KafkaMeter(m, () => 0);
  const body = { acks: 1 };
  const answer = {
    responses: [{ name: "orders", partitionResponses: [{ index: 0, errorCode: 0 }] }],
    throttleTimeMs: 0,
  };
  const k = 200_000;
  const t0 = performance.now();
  for (let i = 0; i < k; i++) kafka.answered(API.Produce, body, answer, t0);
  report({
    suite: SUITE,
    name: "Kafka listener: counting one Produce request (count, latency, error scan)",
    value: ((performance.now() - t0) / k) * 1e6,
    unit: "ns/request",
  });
}
