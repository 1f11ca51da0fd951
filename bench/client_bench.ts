/**
 * Issue 3's benchmarks through the client library (`mod.ts`), against a broker process on
 * loopback (spawned in a temp dir), with the storage-only append rate of the same run as
 * the baseline (PartitionLog.append of the same 1 KiB records in batches of the producer's
 * batch size, OS-managed flushing).
 *
 * - client producer, 1 KiB records, acks=1: records/s, MB/s (≥ 120,000/s, ≥ 0.6 of storage).
 *   Measured in rounds interleaved with storage-only and with the floor (bench/_http_floor.ts:
 *   bare `fetch` to a bare `Deno.serve` that checks the CRC and appends the same pre-encoded
 *   batches), medians of paired ratios; the floor shows how much of the gap to storage-only
 *   is Deno's HTTP on this machine and how much is Rill's;
 * - client producer, 100-byte keyed records: records/s (≥ 300,000/s);
 * - client consumer reading the 1 KiB topic back: records/s (≥ 1.5× the producer rate), with
 *   CRC checks (the default) and, for comparison, without, with the default fetch size (1 MiB
 *   per partition); each the median of 3 whole reads, after an uncounted warm-up read of its
 *   first 100,000 records;
 * - end-to-end latency at 2,000 records/s, long poll (client consumer) and SSE: p50/p99
 *   (≤ 2 ms / ≤ 5 ms);
 * - 200 concurrent clients each sending single-record requests: records/s, p99, /healthz
 *   answered throughout (worst latency), broker RSS (VmHWM ≤ 250 MiB).
 *
 * `RILL_BENCH_SECONDS` (default 3) sets the length of each timed phase.
 *
 * @module
 */
import { interleaved, logRounds, median, pairedRatio, type Reporter, settle } from "./_report.ts";
import { encodeBatch } from "../src/protocol/record_batch.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";
import { type Admin, type Producer, Rill } from "../mod.ts";
import { storageAppendRate } from "./_storage_baseline.ts";
import { startFloorServer } from "./_http_floor.ts";

const SUITE = "client";
const SECONDS = Math.max(0.5, Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3") || 3);
const BATCH_BYTES = 1 << 20;
const PARTITIONS = 4;
const SEND_SIZE = 1000; // messages per send() call
const SENDS_IN_FLIGHT = 16;

function payload(size: number): Uint8Array {
  const v = new Uint8Array(size);
  for (let i = 0; i < size; i++) v[i] = (i * 31) & 0xff;
  return v;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** Sends `SEND_SIZE`-message sends for SECONDS, SENDS_IN_FLIGHT at a time. */
async function produceFor(
  producer: Producer,
  topic: string,
  make: (i: number) => { key?: string | null; value: Uint8Array },
): Promise<{ rate: number; count: number }> {
  let sent = 0;
  let acked = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  const pending = new Set<Promise<void>>();
  while (performance.now() < end) {
    const messages = new Array(SEND_SIZE);
    for (let j = 0; j < SEND_SIZE; j++) messages[j] = make(sent + j);
    sent += SEND_SIZE;
    const p: Promise<void> = producer.send({ topic, messages, acks: 1 }).then((r) => {
      acked += r.length;
      pending.delete(p);
    });
    pending.add(p);
    if (pending.size >= SENDS_IN_FLIGHT) await Promise.race(pending);
  }
  await Promise.all(pending);
  return { rate: acked / ((performance.now() - t0) / 1000), count: acked };
}

async function consumeAll(
  rill: Rill,
  topic: string,
  total: number,
  checkCrcs: boolean,
): Promise<number> {
  // Warm-up, not counted: the producer phases ran after the latency phases had warmed
  // the producer's code, but nothing before this has run the consumer's batch path (fetch,
  // CRC check, decode) on big batches, and its first half second is compiler warm-up.
  await consumeOnce(rill, topic, Math.min(total, WARMUP_RECORDS), checkCrcs);
  // As the other suites do between phases: the ~1 GB just produced is written back now,
  // not while the consumer is timed.
  await settle();
  const rates: number[] = [];
  for (let i = 0; i < ROUNDS; i++) rates.push(await consumeOnce(rill, topic, total, checkCrcs));
  logRounds(SUITE, { [checkCrcs ? "consumer" : "consumer (no CRC check)"]: rates });
  return median(rates);
}

/** Records read once, uncounted, before the consumer is timed. */
const WARMUP_RECORDS = 100_000;

async function consumeOnce(
  rill: Rill,
  topic: string,
  total: number,
  checkCrcs: boolean,
): Promise<number> {
  // The default fetch size (1 MiB per partition, as Kafka's max.partition.fetch.bytes): on
  // this machine's 2 MiB L2 it reads ~8% faster than 4 MiB fetches, whose buffers do not fit.
  const consumer = rill.consumer({ maxWaitMs: 500, checkCrcs });
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

/**
 * Sends one record at a time at `rate`/s for SECONDS, recording in `sentAt` when each
 * send() started. Paced as the broker suite paces its raw-fetch producer (bench/broker_bench.ts
 * `endToEnd`), so the two suites measure the same thing: each send is awaited before the
 * next, and the loop sleeps only when it is more than 1 ms ahead of schedule. (A loop that
 * woke on `setTimeout(r, 1)` ticks and fired each tick's due records at once measured the
 * timer's bursts, records queued behind the partition's in-flight request, rather than
 * the client's own latency.)
 */
async function paced(
  producer: Producer,
  topic: string,
  rate: number,
  sentAt: Map<string, number>,
): Promise<void> {
  const total = Math.floor(rate * SECONDS);
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const id = String(i);
    sentAt.set(id, performance.now());
    await producer.send({ topic, messages: [{ value: id }], acks: 1 });
  }
}

async function latencyLongPoll(rill: Rill, topic: string): Promise<number[]> {
  const consumer = rill.consumer({ maxWaitMs: 5000, checkCrcs: false });
  await consumer.assign([{ topic, partition: 0, offset: "latest" }]);
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  await consumer.run({
    eachBatch: ({ batch }) => {
      const now = performance.now();
      for (const m of batch.messages) {
        const t = sentAt.get(m.valueString()!);
        if (t !== undefined) lat.push(now - t);
      }
    },
  });
  await paced(rill.producer(), topic, 2000, sentAt);
  await waitFor(() => lat.length >= sentAt.size, 2000);
  await consumer.stop();
  return lat.sort((a, b) => a - b);
}

async function latencySse(rill: Rill, base: string, topic: string): Promise<number[]> {
  const admin = rill.admin();
  const start = await admin.fetchOffset(topic, 0, "latest");
  const abort = new AbortController();
  const res = await fetch(`${base}/v1/topics/${topic}/partitions/0/records?offset=${start}`, {
    headers: { accept: "text/event-stream" },
    signal: abort.signal,
  });
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  const reading = (async () => {
    let buf = "";
    try {
      for await (const text of res.body!.pipeThrough(new TextDecoderStream())) {
        const now = performance.now();
        buf += text;
        let end: number;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const event = buf.slice(0, end);
          buf = buf.slice(end + 2);
          for (const line of event.split("\n")) {
            if (!line.startsWith("data: ")) continue;
            const rec = JSON.parse(line.slice(6));
            const t = sentAt.get(rec.value);
            if (t !== undefined) lat.push(now - t);
          }
        }
      }
    } catch (e) {
      if (!abort.signal.aborted) throw e;
    }
  })();
  await paced(rill.producer(), topic, 2000, sentAt);
  await waitFor(() => lat.length >= sentAt.size, 2000);
  abort.abort();
  await reading;
  return lat.sort((a, b) => a - b);
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await new Promise((r) => setTimeout(r, 5));
}

async function rss(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

async function concurrentClients(base: string, topic: string, pid: number) {
  const CLIENTS = 200;
  const lat: number[] = [];
  let healthWorst = 0;
  let healthFailures = 0;
  let healthChecks = 0;
  let peakRss = 0;
  const value = payload(100);
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  let running = true;
  const prober = (async () => {
    while (running) {
      const s = performance.now();
      try {
        const r = await fetch(`${base}/healthz`);
        await r.body?.cancel();
        if (!r.ok) healthFailures++;
      } catch {
        healthFailures++;
      }
      healthChecks++;
      healthWorst = Math.max(healthWorst, performance.now() - s);
      peakRss = Math.max(peakRss, (await rss(pid)).rss);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    const producer = new Rill({ brokers: [base], clientId: `c${c}` }).producer();
    while (performance.now() < end) {
      const s = performance.now();
      await producer.send({ topic, messages: [{ key: `c${c}`, value }], acks: 1 });
      lat.push(performance.now() - s);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  running = false;
  await prober;
  lat.sort((a, b) => a - b);
  const mem = await rss(pid);
  return {
    rate: lat.length / seconds,
    p50: percentile(lat, 0.5),
    p99: percentile(lat, 0.99),
    healthWorst,
    healthFailures,
    healthChecks,
    peakRss: Math.max(peakRss, mem.rss),
    hwm: mem.hwm,
  };
}

/** Counted rounds of the 1 KiB producer phase (after one uncounted warm-up round). */
const ROUNDS = 3;

/**
 * The 1 KiB producer phase: storage-only, the floor (bench/_http_floor.ts) and the client
 * producer in interleaved rounds, each on data of its own (a fresh topic a round, the
 * older ones deleted), with the page cache written back before each. The ratios to
 * storage-only are paired per round, so drift in the machine's speed cancels out.
 *
 * @returns each phase's rate per counted round, and the topic of the last producer round
 *   with the records it holds (read back by the consumer phases)
 */
async function producerRounds(
  admin: Admin,
  producer: Producer,
): Promise<
  { rounds: Record<"storage" | "floor" | "producer", number[]>; topic: string; count: number }
> {
  const value = payload(1024);
  const perBatch = Math.floor(BATCH_BYTES / (1024 + 12));
  const batch = encodeBatch(Array.from({ length: perBatch }, () => ({ key: null, value })));
  await using floor = await startFloorServer(PARTITIONS);
  let topic = "";
  let count = 0;
  const rounds = await interleaved(ROUNDS, {
    storage: () => storageAppendRate(batch, perBatch, SECONDS),
    floor: () => floor.produce(batch, perBatch, SECONDS, SENDS_IN_FLIGHT),
    producer: async (round) => {
      if (topic !== "") await admin.deleteTopic(topic);
      topic = `p1k-${round + 1}`;
      await admin.createTopic({ topic, numPartitions: PARTITIONS });
      const r = await produceFor(producer, topic, () => ({ value }));
      count = r.count;
      return r.rate;
    },
  }, settle);
  logRounds(SUITE, rounds);
  return { rounds, topic, count };
}

/**
 * Runs the client benchmarks.
 *
 * @param report receives each figure
 */
export async function run(report: Reporter): Promise<void> {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  const admin = rill.admin();
  await admin.createTopic({ topic: "p100", numPartitions: PARTITIONS });
  await admin.createTopic({ topic: "lat", numPartitions: 1 });
  await admin.createTopic({ topic: "lat-sse", numPartitions: 1 });
  await admin.createTopic({ topic: "many", numPartitions: PARTITIONS });

  // Latency first, while the heaps of both processes are small.
  for (
    const [mode, lat] of [
      ["long poll", await latencyLongPoll(rill, "lat")],
      ["SSE", await latencySse(rill, broker.url, "lat-sse")],
    ] as const
  ) {
    const p50 = percentile(lat, 0.5);
    const p99 = percentile(lat, 0.99);
    report({
      suite: SUITE,
      name: `end-to-end latency p50 at 2,000 records/s, ${mode} (n=${lat.length})`,
      value: p50,
      unit: "ms",
      target: "<= 2 ms",
      met: p50 <= 2,
    });
    report({
      suite: SUITE,
      name: `end-to-end latency p99 at 2,000 records/s, ${mode}`,
      value: p99,
      unit: "ms",
      target: "<= 5 ms",
      met: p99 <= 5,
    });
  }

  const producer = rill.producer({ batchBytes: BATCH_BYTES });
  const p1k = await producerRounds(admin, producer);
  const storage = median(p1k.rounds.storage);
  const rate = median(p1k.rounds.producer);
  const ratio = pairedRatio(p1k.rounds.producer, p1k.rounds.storage);
  report({
    suite: SUITE,
    name: `storage-only append, 1 KiB records (baseline; median of ${ROUNDS} rounds)`,
    value: storage,
    unit: "records/s",
  });
  report({
    suite: SUITE,
    name: "floor: bare Deno.serve + fetch, pre-encoded batches, CRC check and append",
    value: median(p1k.rounds.floor),
    unit: "records/s",
    ratio: pairedRatio(p1k.rounds.floor, p1k.rounds.storage),
    baseline: "storage-only append",
  });
  report({
    suite: SUITE,
    name: "client producer, 1 KiB records, acks=1",
    value: rate,
    unit: "records/s",
    ratio,
    baseline: "storage-only append",
    target: ">= 120,000/s and >= 0.6 of storage",
    met: rate >= 120_000 && ratio >= 0.6,
  });
  report({
    suite: SUITE,
    name: "client producer, 1 KiB records, acks=1",
    value: (rate * 1024) / 1e6,
    unit: "MB/s",
    ratio: pairedRatio(p1k.rounds.producer, p1k.rounds.floor),
    baseline: "floor",
  });

  const v100 = payload(100);
  const p100 = await produceFor(
    producer,
    "p100",
    (i) => ({ key: `key-${i % 10000}`, value: v100 }),
  );
  report({
    suite: SUITE,
    name: "client producer, 100-byte keyed records, acks=1",
    value: p100.rate,
    unit: "records/s",
    target: ">= 300,000/s",
    met: p100.rate >= 300_000,
  });
  await producer.disconnect();

  const consumed = await consumeAll(rill, p1k.topic, p1k.count, true);
  report({
    suite: SUITE,
    name: `client consumer, reading the 1 KiB topic back (median of ${ROUNDS} reads)`,
    value: consumed,
    unit: "records/s",
    ratio: consumed / rate,
    baseline: "client producer 1 KiB",
    target: ">= 1.5x producer",
    met: consumed / rate >= 1.5,
  });

  const unchecked = await consumeAll(rill, p1k.topic, p1k.count, false);
  report({
    suite: SUITE,
    name: "client consumer, reading it back with checkCrcs: false (for comparison)",
    value: unchecked,
    unit: "records/s",
    ratio: unchecked / rate,
    baseline: "client producer 1 KiB",
  });

  const c = await concurrentClients(broker.url, "many", broker.pid);
  report({
    suite: SUITE,
    name: "200 concurrent clients, single-record sends",
    value: c.rate,
    unit: "records/s",
  });
  report({
    suite: SUITE,
    name: "200 concurrent clients, send latency p50",
    value: c.p50,
    unit: "ms",
  });
  report({
    suite: SUITE,
    name: "200 concurrent clients, send latency p99",
    value: c.p99,
    unit: "ms",
  });
  report({
    suite: SUITE,
    name: `/healthz under that load, worst of ${c.healthChecks} (failures: ${c.healthFailures})`,
    value: c.healthWorst,
    unit: "ms",
    target: "answers every probe",
    met: c.healthFailures === 0 && c.healthChecks > 0,
  });
  report({
    suite: SUITE,
    name: "broker RSS under that load (peak sampled; VmHWM over the whole run)",
    value: c.peakRss,
    unit: "MiB",
    ratio: c.hwm / c.peakRss,
    baseline: `VmHWM ${c.hwm.toFixed(0)} MiB`,
    target: "<= 250 MiB",
    met: c.peakRss <= 250,
  });
}
