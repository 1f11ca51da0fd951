/**
 * `deno task bench kafka`: Kafka clients through the broker's Kafka listener, next to Rill's
 * own client over HTTP with the same batching, on one broker process (spawned in a temp
 * dir, loopback):
 *
 * - produce 1 KiB and 100 B records: kcat (librdkafka 2.0.2; `-P -l` from a file, with
 *   {@linkcode KCAT_PRODUCE_SETTINGS}), kafkajs 2.2.4 (1,000-record sends, 16 in flight,
 *   acks=1), Rill's client over HTTP (1,000-record sends, 16 in flight, acks=1, batches up
 *   to 1 MiB): records/s and the broker's CPU per MB produced (from /proc utime+stime),
 *   with the Kafka/HTTP CPU ratio (target ≤ 1.1×) and kcat's 1 KiB rate (target ≥ 200,000/s);
 * - the floor of kcat's figures: kcat producing the same file with the same settings into
 *   bench/_kafka_floor_server.ts, which reads each frame and answers without checks or
 *   storage (the broker's rate is reported as a ratio of it);
 * - consume them back: kcat (`-C -e`), kafkajs (eachBatch), Rill's client: records/s;
 * - end-to-end latency at 2,000 records/s through Kafka: librdkafka (confluent-kafka-python,
 *   linger 0, a consumer polling in the same process) and kafkajs (awaiting each single-record
 *   send, consumer in the same process): p50/p99 (target p99 ≤ 5 ms); kafkajs again with
 *   `autoCommit: false`, since by default it commits after every batch and fetches only once
 *   that commit is answered; kafkajs (autoCommit) against the floor server run with
 *   `--keep` (batches fetched from memory, group APIs answered from memory, commits without
 *   a KV write): the floor of kafkajs's figure, its own fetch–commit loop on this machine;
 *   and the same through Rill's client over HTTP as the baseline.
 *
 * kcat must be installed (Debian `kcat`); without it its figures are skipped with a note.
 * `RILL_BENCH_SECONDS` (default 3) sets the length of each timed phase.
 *
 * @module
 */
import { Kafka, logLevel } from "kafkajs";
import { type Reporter, settle } from "./_report.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";
import { Rill } from "../mod.ts";

const SUITE = "kafka";
const SECONDS = Math.max(0.5, Number(Deno.env.get("RILL_BENCH_SECONDS") ?? "3") || 3);
const PARTITIONS = 4;
const SEND_SIZE = 1000;
const IN_FLIGHT = 16;
const MB = 1e6;

function hasKcat(): boolean {
  try {
    return new Deno.Command("kcat", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

function hasConfluent(): boolean {
  try {
    return new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import confluent_kafka"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

/** The CPU seconds (user + system) a process has used. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function value(size: number, i: number): string {
  const s = String(i);
  return s + "x".repeat(Math.max(0, size - s.length));
}

interface Phase {
  records: number;
  seconds: number;
  cpu: number;
}

async function measured(pid: number, records: () => Promise<number>): Promise<Phase> {
  const c0 = await cpuSeconds(pid);
  const t0 = performance.now();
  const n = await records();
  const seconds = (performance.now() - t0) / 1000;
  return { records: n, seconds, cpu: (await cpuSeconds(pid)) - c0 };
}

async function createTopic(url: string, name: string): Promise<void> {
  const res = await fetch(`${url}/v1/topics`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, partitions: PARTITIONS }),
  });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`create ${name}: ${res.status}`);
}

/**
 * kcat's producer settings, as a user tuning librdkafka 2.0.2 for throughput sets them:
 * batches up to 1 MB (Kafka's default `message.max.bytes` caps a request there), a 5 ms
 * linger to fill them, a queue deep enough never to block `-l`, no compression, acks=1.
 */
export const KCAT_PRODUCE_SETTINGS = [
  "linger.ms=5",
  "batch.size=1000000",
  "batch.num.messages=100000",
  "queue.buffering.max.messages=1000000",
  "queue.buffering.max.kbytes=1048576",
  "compression.codec=none",
  "acks=1",
];

/** Writes `n` (rounded up to 10,000) records of `size` bytes, one a line, for `kcat -P -l`. */
async function kcatInput(size: number, n: number): Promise<{ file: string; records: number }> {
  const file = await Deno.makeTempFile({ prefix: "rill-kafka-bench-" });
  const line = value(size, 0) + "\n";
  const bytes = new TextEncoder().encode(line.repeat(10_000));
  const f = await Deno.open(file, { write: true });
  try {
    for (let i = 0; i < n; i += 10_000) {
      let o = 0;
      while (o < bytes.length) o += await f.write(bytes.subarray(o));
    }
  } finally {
    f.close();
  }
  return { file, records: Math.ceil(n / 10_000) * 10_000 };
}

async function kcatProduce(bootstrap: string, topic: string, file: string): Promise<void> {
  const out = await new Deno.Command("kcat", {
    args: [
      "-b",
      bootstrap,
      "-P",
      "-t",
      topic,
      "-l",
      ...KCAT_PRODUCE_SETTINGS.flatMap((x) => ["-X", x]),
      file,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`kcat -P failed: ${new TextDecoder().decode(out.stderr)}`);
}

/**
 * Starts the floor (bench/_kafka_floor_server.ts) in its own process: of kcat's produce rate,
 * or with `keep`, of kafkajs's end-to-end latency (batches kept in memory and fetched from
 * there, group APIs answered from memory, commits without a KV write).
 */
async function startFloor(
  keep = false,
): Promise<AsyncDisposable & { bootstrap: string; pid: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_kafka_floor_server.ts", import.meta.url).pathname,
      String(PARTITIONS),
      ...(keep ? ["--keep"] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let m: RegExpExecArray | null = null;
  while (!(m = /listening on (\d+)/.exec(text))) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the Kafka floor server exited before listening");
    text += value;
  }
  reader.releaseLock();
  return {
    bootstrap: `127.0.0.1:${m[1]}`,
    pid: child.pid,
    async [Symbol.asyncDispose]() {
      child.kill();
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

async function kcatConsume(bootstrap: string, topic: string, n: number): Promise<number> {
  const out = await new Deno.Command("kcat", {
    args: ["-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-c", String(n), "-q"],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`kcat -C failed: ${new TextDecoder().decode(out.stderr)}`);
  return n;
}

async function timedSends(send: (base: number) => Promise<number>): Promise<number> {
  let sent = 0, acked = 0;
  const end = performance.now() + SECONDS * 1000;
  const pending = new Set<Promise<void>>();
  while (performance.now() < end) {
    const base = sent;
    sent += SEND_SIZE;
    const p: Promise<void> = send(base).then((n) => {
      acked += n;
      pending.delete(p);
    });
    pending.add(p);
    if (pending.size >= IN_FLIGHT) await Promise.race(pending);
  }
  await Promise.all(pending);
  return acked;
}

/**
 * kafkajs at both ends at 2,000 records/s: a group consumer (default fetch settings,
 * maxWaitTimeInMs 5000) and a producer awaiting each single-record send (acks=1), in this
 * process; from send to the consumer's eachBatch.
 */
async function kafkajsE2e(
  kafka: Kafka,
  url: string | null,
  topic: string,
  total: number,
  autoCommit: boolean,
): Promise<{ p50: number; p99: number; commits: number[] }> {
  if (url !== null) await createTopic(url, topic); // the floor server has every topic
  const consumer = kafka.consumer({ groupId: topic, maxWaitTimeInMs: 5000 });
  // OffsetCommit round trips as kafkajs times them (its clock counts whole ms).
  const commits: number[] = [];
  consumer.on(consumer.events.REQUEST, (e) => {
    if (e.payload.apiName === "OffsetCommit") commits.push(e.payload.duration);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: false });
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  const joined = Promise.withResolvers<void>();
  consumer.on(consumer.events.GROUP_JOIN, () => joined.resolve());
  await consumer.run({
    autoCommit,
    eachBatch: ({ batch }) => {
      const now = performance.now();
      for (const m of batch.messages) {
        const t = sentAt.get(m.value!.toString());
        if (t !== undefined) lat.push(now - t);
      }
      return Promise.resolve();
    },
  });
  await joined.promise;
  const producer = kafka.producer();
  await producer.connect();
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / 2000 - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const id = String(i);
    sentAt.set(id, performance.now());
    await producer.send({ topic, messages: [{ value: id, partition: 0 }], acks: 1 });
  }
  const end = performance.now() + 2000;
  while (lat.length < sentAt.size && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 5));
  }
  await producer.disconnect();
  await consumer.disconnect();
  lat.sort((a, b) => a - b);
  commits.sort((a, b) => a - b);
  return { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), commits };
}

/** Runs the suite. */
export async function run(report: Reporter): Promise<void> {
  const load0 = Deno.loadavg()[0];
  await using broker = await startBroker();
  await using floor = await startFloor();
  await using e2eFloor = await startFloor(true);
  const pid = broker.pid;
  const bootstrap = broker.kafka!;
  const kcat = hasKcat();
  if (!kcat) console.error("kafka bench: kcat is not installed; its figures are skipped");
  const kafka = new Kafka({ clientId: "bench", brokers: [bootstrap], logLevel: logLevel.NOTHING });
  // The rows it measures are labelled HTTP: the client speaks HTTP (its default is WebSocket).
  const rill = new Rill({ brokers: [broker.url], clientId: "bench", transport: "http" });
  const produced: Record<string, { records: number; topic: string }> = {};
  const cpuPerMb: Record<string, number> = {};

  for (const size of [1024, 100]) {
    const label = size === 1024 ? "1 KiB" : "100 B";
    // Rill's client over HTTP
    {
      const topic = `http-${size}`;
      await createTopic(broker.url, topic);
      const producer = rill.producer({ batchBytes: 1 << 20, lingerMs: 5 });
      const ph = await measured(pid, () =>
        timedSends(async (base) => {
          const messages = Array.from({ length: SEND_SIZE }, (_, j) => ({
            value: value(size, base + j),
          }));
          return (await producer.send({ topic, messages, acks: 1 })).length;
        }));
      await producer.disconnect();
      produced[`http ${label}`] = { records: ph.records, topic };
      cpuPerMb[`http ${label}`] = ph.cpu * 1000 / (ph.records * size / MB);
      report({
        suite: SUITE,
        name: `Rill client over HTTP produce ${label}`,
        value: ph.records / ph.seconds,
        unit: "records/s",
      });
      report({
        suite: SUITE,
        name: `broker CPU per MB, HTTP produce ${label}`,
        value: cpuPerMb[`http ${label}`],
        unit: "ms/MB",
      });
    }
    await settle();
    // kcat (librdkafka), then the same records into the floor server
    if (kcat) {
      const topic = `kcat-${size}`;
      await createTopic(broker.url, topic);
      // about as many records as the HTTP client produced in its phase, at least 100k
      const input = await kcatInput(size, Math.max(100_000, produced[`http ${label}`].records));
      try {
        const ph = await measured(pid, async () => {
          await kcatProduce(bootstrap, topic, input.file);
          return input.records;
        });
        const fl = await measured(floor.pid, async () => {
          await kcatProduce(floor.bootstrap, topic, input.file);
          return input.records;
        });
        produced[`kcat ${label}`] = { records: ph.records, topic };
        cpuPerMb[`kcat ${label}`] = ph.cpu * 1000 / (ph.records * size / MB);
        const rate = ph.records / ph.seconds, floorRate = fl.records / fl.seconds;
        report({
          suite: SUITE,
          name: `kcat (librdkafka) produce ${label} into the floor server`,
          value: floorRate,
          unit: "records/s",
          baseline: "reads each frame, answers without checks or storage",
        });
        report({
          suite: SUITE,
          name: `kcat (librdkafka) produce ${label}`,
          value: rate,
          unit: "records/s",
          ratio: rate / floorRate,
          baseline: "kcat into the floor server",
          ...(size === 1024 ? { target: ">= 200,000/s", met: rate >= 200_000 } : {}),
        });
        const ratio = cpuPerMb[`kcat ${label}`] / cpuPerMb[`http ${label}`];
        report({
          suite: SUITE,
          name: `broker CPU per MB, Kafka (kcat) produce ${label}`,
          value: cpuPerMb[`kcat ${label}`],
          unit: "ms/MB",
          ratio,
          baseline: "HTTP produce",
          target: "<= 1.1x HTTP",
          met: ratio <= 1.1,
        });
        report({
          suite: SUITE,
          name: `floor server CPU per MB, kcat produce ${label}`,
          value: fl.cpu * 1000 / (fl.records * size / MB),
          unit: "ms/MB",
        });
      } finally {
        await Deno.remove(input.file).catch(() => {});
      }
      await settle();
    }
    // kafkajs
    {
      const topic = `kafkajs-${size}`;
      await createTopic(broker.url, topic);
      const producer = kafka.producer();
      await producer.connect();
      const ph = await measured(pid, () =>
        timedSends(async (base) => {
          const messages = Array.from({ length: SEND_SIZE }, (_, j) => ({
            value: value(size, base + j),
          }));
          await producer.send({ topic, messages, acks: 1 });
          return SEND_SIZE;
        }));
      await producer.disconnect();
      produced[`kafkajs ${label}`] = { records: ph.records, topic };
      const cpu = ph.cpu * 1000 / (ph.records * size / MB);
      report({
        suite: SUITE,
        name: `kafkajs produce ${label}`,
        value: ph.records / ph.seconds,
        unit: "records/s",
      });
      report({
        suite: SUITE,
        name: `broker CPU per MB, Kafka (kafkajs) produce ${label}`,
        value: cpu,
        unit: "ms/MB",
        ratio: cpu / cpuPerMb[`http ${label}`],
        baseline: "HTTP produce",
      });
    }
    await settle();

    // consume each topic back
    {
      const { records, topic } = produced[`http ${label}`];
      const ph = await measured(pid, async () => {
        const consumer = rill.consumer({ maxWaitMs: 500 });
        await consumer.assign(
          Array.from(
            { length: PARTITIONS },
            (_, p) => ({ topic, partition: p, offset: "earliest" }),
          ),
        );
        let n = 0;
        const done = Promise.withResolvers<void>();
        await consumer.run({
          eachBatch: ({ batch }) => {
            n += batch.messages.length;
            if (n >= records) done.resolve();
          },
        });
        await done.promise;
        await consumer.stop();
        return n;
      });
      report({
        suite: SUITE,
        name: `Rill client over HTTP consume ${label}`,
        value: ph.records / ph.seconds,
        unit: "records/s",
      });
    }
    if (kcat) {
      const { records, topic } = produced[`kcat ${label}`];
      const ph = await measured(pid, () => kcatConsume(bootstrap, topic, records));
      report({
        suite: SUITE,
        name: `kcat (librdkafka) consume ${label}`,
        value: ph.records / ph.seconds,
        unit: "records/s",
      });
    }
    {
      const { records, topic } = produced[`kafkajs ${label}`];
      const consumer = kafka.consumer({ groupId: `bench-${size}`, maxBytesPerPartition: 1 << 20 });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      let n = 0;
      const done = Promise.withResolvers<void>();
      let t0 = 0;
      await consumer.run({
        eachBatch: ({ batch }) => {
          if (t0 === 0) t0 = performance.now();
          n += batch.messages.length;
          if (n >= records) done.resolve();
          return Promise.resolve();
        },
      });
      await done.promise;
      const seconds = (performance.now() - t0) / 1000;
      await consumer.disconnect();
      report({
        suite: SUITE,
        name: `kafkajs consume ${label} (from its first batch)`,
        value: n / seconds,
        unit: "records/s",
      });
    }
    await settle();
  }

  // End-to-end latency at 2,000 records/s through Kafka with librdkafka (confluent-kafka-python:
  // linger 0, acks=1, a consumer polling in the same process).
  if (hasConfluent()) {
    await createTopic(broker.url, "e2e-rdkafka");
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [
        new URL("../tests/kafka/confluent_client.py", import.meta.url).pathname,
        "e2e",
        bootstrap,
        "e2e-rdkafka",
        "2000",
        String(SECONDS),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const m = /E2E (\d+) ([\d.]+) ([\d.]+)/.exec(new TextDecoder().decode(out.stdout));
    if (m) {
      report({
        suite: SUITE,
        name: "e2e p50 at 2,000 records/s, Kafka (librdkafka)",
        value: Number(m[2]),
        unit: "ms",
      });
      report({
        suite: SUITE,
        name: "e2e p99 at 2,000 records/s, Kafka (librdkafka)",
        value: Number(m[3]),
        unit: "ms",
        target: "<= 5 ms",
        met: Number(m[3]) <= 5,
      });
    } else {console.error(
        `kafka bench: the librdkafka e2e run failed: ${new TextDecoder().decode(out.stderr)}`,
      );}
  } else {console.error(
      "kafka bench: python3-confluent-kafka is not installed; librdkafka e2e skipped",
    );}

  // End-to-end latency at 2,000 records/s: through Kafka (kafkajs both ends) and HTTP.
  {
    const total = Math.floor(2000 * SECONDS);
    const floorKafka = new Kafka({
      clientId: "bench",
      brokers: [e2eFloor.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    // Unmeasured: the first of these runs in a process pays for warming kafkajs's consumer and
    // single-record producer paths up (in paired runs whichever went first had the worst p99).
    await kafkajsE2e(floorKafka, null, "e2e-kafka-warmup", 2000, true);
    const { p50, p99, commits } = await kafkajsE2e(kafka, broker.url, "e2e-kafka", total, true);
    report({
      suite: SUITE,
      name: "e2e p50 at 2,000 records/s, Kafka (kafkajs)",
      value: p50,
      unit: "ms",
    });
    // The same against the floor server: kafkajs's own loop (fetch, eachBatch, commit,
    // fetch) with a broker that answers from memory and commits without a KV write.
    const fl = await kafkajsE2e(floorKafka, null, "e2e-kafka-floor", total, true);
    report({
      suite: SUITE,
      name: "e2e p99 at 2,000 records/s, kafkajs into the floor server",
      value: fl.p99,
      unit: "ms",
      baseline: `p50 ${fl.p50.toFixed(2)} ms; in-memory broker, commits answered without KV`,
    });
    report({
      suite: SUITE,
      name: "e2e p99 at 2,000 records/s, Kafka (kafkajs)",
      value: p99,
      unit: "ms",
      ratio: p99 / fl.p99,
      baseline: "kafkajs into the floor server",
      target: "<= 5 ms",
      met: p99 <= 5,
    });
    report({
      suite: SUITE,
      name: "kafkajs OffsetCommit round trip p99 during the e2e run",
      value: percentile(commits, 0.99),
      unit: "ms",
      baseline:
        `p50 ${
          percentile(commits, 0.5)
        } ms over ${commits.length} commits (kafkajs's clock: whole ms); ` +
        `floor server p50 ${percentile(fl.commits, 0.5)} / p99 ${percentile(fl.commits, 0.99)} ms`,
    });
    // kafkajs commits after every batch (autoCommit) and fetches again only once the commit
    // is answered: the same run without those commits shows what they add.
    const plain = await kafkajsE2e(kafka, broker.url, "e2e-kafka-nocommit", total, false);
    report({
      suite: SUITE,
      name: "e2e p99 at 2,000 records/s, Kafka (kafkajs, autoCommit: false)",
      value: plain.p99,
      unit: "ms",
      baseline: `p50 ${plain.p50.toFixed(2)} ms; no OffsetCommit between fetches`,
    });
    // The HTTP baseline, measured the same way with Rill's client.
    await createTopic(broker.url, "e2e-http");
    const rc = rill.consumer({ maxWaitMs: 5000, checkCrcs: false });
    await rc.assign([{ topic: "e2e-http", partition: 0, offset: "latest" }]);
    const sent2 = new Map<string, number>();
    const lat2: number[] = [];
    await rc.run({
      eachBatch: ({ batch }) => {
        const now = performance.now();
        for (const m of batch.messages) {
          const t = sent2.get(m.valueString()!);
          if (t !== undefined) lat2.push(now - t);
        }
      },
    });
    const rp = rill.producer();
    const t1 = performance.now();
    for (let i = 0; i < total; i++) {
      const wait = t1 + (i * 1000) / 2000 - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const id = String(i);
      sent2.set(id, performance.now());
      await rp.send({ topic: "e2e-http", messages: [{ value: id, partition: 0 }], acks: 1 });
    }
    const end2 = performance.now() + 2000;
    while (lat2.length < sent2.size && performance.now() < end2) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await rc.stop();
    await rp.disconnect();
    lat2.sort((a, b) => a - b);
    report({
      suite: SUITE,
      name: "e2e p50 at 2,000 records/s, HTTP (Rill client)",
      value: percentile(lat2, 0.5),
      unit: "ms",
    });
    report({
      suite: SUITE,
      name: "e2e p99 at 2,000 records/s, HTTP (Rill client)",
      value: percentile(lat2, 0.99),
      unit: "ms",
      ratio: p99 / percentile(lat2, 0.99),
      baseline: "Kafka p99 / HTTP p99",
    });
  }
  // The machine is shared: its load says how far wall-clock figures can be trusted.
  report({
    suite: SUITE,
    name: "1-minute load average (start, end) on this 2-core machine",
    value: (load0 + Deno.loadavg()[0]) / 2,
    unit: "runnable",
    baseline: `start ${load0.toFixed(1)}, end ${Deno.loadavg()[0].toFixed(1)}`,
  });
}
