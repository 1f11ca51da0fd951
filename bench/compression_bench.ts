/**
 * Issue 19's benchmark: a realistic data set of JSON log events (~300-800 bytes each, with
 * repeated field names and varying values, made here from a seeded generator) produced and
 * consumed through the client library (`mod.ts`) against a broker process on loopback,
 * with each codec and without, in one run:
 *
 * - bytes on disk per record (segment files), against uncompressed (target: lz4 and zstd
 *   store ≤ 1/3 of it);
 * - producer and consumer records/s, as ratios paired with the uncompressed run of the same
 *   round (targets: lz4 ≥ 0.8×, zstd ≥ 0.6×);
 * - broker CPU per MB of records (user + system of the broker process, per 1e6 bytes of
 *   uncompressed record values) while producing and while consuming.
 *
 * Rounds run the codecs in alternating order (none, gzip, …, zstd; then backwards) after an
 * uncounted warm-up round, each on a fresh topic; figures are medians over the rounds, and
 * the spread is printed to stderr. `RILL_BENCH_RECORDS` (default 100,000) sets the records
 * per phase, `RILL_BENCH_ROUNDS` (default 3) the counted rounds.
 *
 * @module
 */
import { logRounds, median, pairedRatio, type Reporter, settle } from "./_report.ts";
import { startBroker } from "../tests/_helpers/broker_process.ts";
import { type CompressionType, type Producer, Rill } from "../mod.ts";

const SUITE = "compression";
const RECORDS = Math.max(10_000, Number(Deno.env.get("RILL_BENCH_RECORDS") ?? "100000") || 0);
const ROUNDS = Math.max(1, Number(Deno.env.get("RILL_BENCH_ROUNDS") ?? "3") || 3);
const PARTITIONS = 2;
const SEND_SIZE = 1000;
const SENDS_IN_FLIGHT = 8;
const CODECS: CompressionType[] = ["none", "gzip", "snappy", "lz4", "zstd"];
const CLOCK_TICKS = 100;

/** A small seeded generator (mulberry32), so every run uses the same data set. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SERVICES = ["checkout", "payments", "search", "catalog", "auth", "cart", "shipping"];
const REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "ap-south-1"];
const PATHS = ["/v1/orders", "/v1/users", "/v1/cart/items", "/v1/search", "/v1/payments"];
const AGENTS = [
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
  "okhttp/4.12.0",
  "curl/8.5.0",
];
const ERRORS = [
  "upstream timed out after 3000 ms while reading the response header",
  "connection reset by peer",
  "card declined: insufficient funds",
  "validation failed: quantity must be positive",
];

/**
 * JSON log events: an access-log shape with nested objects, ids, latencies, and on some
 * events an error with a short stack.
 *
 * @param n how many
 * @returns the events as UTF-8 bytes and their keys
 */
function logEvents(n: number): { key: string; value: Uint8Array }[] {
  const r = prng(19);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const hex = (len: number) => {
    let s = "";
    while (s.length < len) s += Math.floor(r() * 0x100000000).toString(16).padStart(8, "0");
    return s.slice(0, len);
  };
  const enc = new TextEncoder();
  const out: { key: string; value: Uint8Array }[] = new Array(n);
  let ts = 1_733_400_000_000;
  for (let i = 0; i < n; i++) {
    ts += Math.floor(r() * 40);
    const service = pick(SERVICES);
    const status = r() < 0.9 ? 200 : r() < 0.5 ? 404 : 503;
    const event: Record<string, unknown> = {
      "@timestamp": new Date(ts).toISOString(),
      level: status === 200 ? (r() < 0.9 ? "INFO" : "DEBUG") : status === 404 ? "WARN" : "ERROR",
      service,
      host: `${service}-${Math.floor(r() * 24)}.${pick(REGIONS)}.internal`,
      trace: { id: hex(32), span: hex(16) },
      http: {
        method: r() < 0.7 ? "GET" : "POST",
        path: `${pick(PATHS)}/${Math.floor(r() * 1_000_000)}`,
        status,
        bytes: Math.floor(r() * 80_000),
        durationMs: Math.round(r() * 250_000) / 100,
        userAgent: pick(AGENTS),
      },
      user: { id: `u-${Math.floor(r() * 200_000)}`, tenant: `t-${Math.floor(r() * 300)}` },
      message: `${service} handled request ${hex(8)} in ${Math.floor(r() * 900)} ms`,
    };
    if (status !== 200) {
      event.error = {
        message: pick(ERRORS),
        stack: `Error: ${pick(ERRORS)}\n    at ${service}.handle (${service}/handler.ts:${
          Math.floor(r() * 400)
        })\n    at Router.dispatch (router.ts:${Math.floor(r() * 200)})`,
      };
    }
    out[i] = { key: String(event.host), value: enc.encode(JSON.stringify(event)) };
  }
  return out;
}

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

async function produceAll(
  producer: Producer,
  topic: string,
  events: { key: string; value: Uint8Array }[],
): Promise<number> {
  const t0 = performance.now();
  const pending = new Set<Promise<void>>();
  for (let i = 0; i < events.length; i += SEND_SIZE) {
    const p: Promise<void> = producer.send({
      topic,
      messages: events.slice(i, i + SEND_SIZE),
      acks: 1,
    }).then(() => void pending.delete(p));
    pending.add(p);
    if (pending.size >= SENDS_IN_FLIGHT) await Promise.race(pending);
  }
  await Promise.all(pending);
  return events.length / ((performance.now() - t0) / 1000);
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

async function bytesOnDisk(dataDir: string, topic: string): Promise<number> {
  let total = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    const dir = `${dataDir}/${topic}-${p}`;
    for await (const e of Deno.readDir(dir)) {
      if (e.name.endsWith(".log")) total += (await Deno.stat(`${dir}/${e.name}`)).size;
    }
  }
  return total;
}

interface Round {
  diskPerRecord: number;
  produceRate: number;
  consumeRate: number;
  produceCpuMsPerMb: number;
  consumeCpuMsPerMb: number;
}

/**
 * Runs the suite.
 *
 * @param report receives each figure
 */
export async function run(report: Reporter): Promise<void> {
  const events = logEvents(RECORDS);
  const valueBytes = events.reduce((n, e) => n + e.value.length, 0);
  const mb = valueBytes / 1e6;
  console.error(
    `${SUITE}: ${RECORDS} log events, ${Math.round(valueBytes / RECORDS)} bytes each on average`,
  );
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url], clientId: "compression-bench" });
  const admin = rill.admin();
  const results = Object.fromEntries(CODECS.map((c) => [c, [] as Round[]])) as Record<
    CompressionType,
    Round[]
  >;
  for (let round = -1; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? CODECS : [...CODECS].reverse();
    for (const codec of order) {
      const topic = `logs-${codec}-${round + 1}`;
      await admin.createTopic({ topic, numPartitions: PARTITIONS });
      const producer = rill.producer({ compression: codec });
      await producer.connect();
      await settle();
      let cpu0 = cpuSeconds(broker.pid);
      const produceRate = await produceAll(producer, topic, events);
      const produceCpu = cpuSeconds(broker.pid) - cpu0;
      await producer.disconnect();
      const disk = await bytesOnDisk(broker.dataDir, topic);
      await settle();
      cpu0 = cpuSeconds(broker.pid);
      const consumeRate = await consumeAll(rill, topic, RECORDS);
      const consumeCpu = cpuSeconds(broker.pid) - cpu0;
      await admin.deleteTopic(topic);
      if (round < 0) continue;
      results[codec].push({
        diskPerRecord: disk / RECORDS,
        produceRate,
        consumeRate,
        produceCpuMsPerMb: produceCpu * 1000 / mb,
        consumeCpuMsPerMb: consumeCpu * 1000 / mb,
      });
    }
  }
  for (const codec of CODECS) {
    logRounds(SUITE, {
      [`${codec} producer`]: results[codec].map((r) => r.produceRate),
      [`${codec} consumer`]: results[codec].map((r) => r.consumeRate),
    });
  }
  const none = results.none;
  const pick = (rs: Round[], f: keyof Round) => rs.map((r) => r[f]);
  for (const codec of CODECS) {
    const rs = results[codec];
    const diskTarget = codec === "lz4" || codec === "zstd" ? 1 / 3 : undefined;
    const diskRatio = median(pick(rs, "diskPerRecord")) / median(pick(none, "diskPerRecord"));
    report({
      suite: SUITE,
      name: `${codec}: bytes on disk per record`,
      value: median(pick(rs, "diskPerRecord")),
      unit: "B",
      ...(codec === "none" ? {} : { ratio: diskRatio, baseline: "uncompressed" }),
      ...(diskTarget === undefined
        ? {}
        : { target: "<= 0.33 of uncompressed", met: diskRatio <= diskTarget }),
    });
    const rateTarget = codec === "lz4" ? 0.8 : codec === "zstd" ? 0.6 : undefined;
    for (
      const [what, field] of [["producer", "produceRate"], ["consumer", "consumeRate"]] as const
    ) {
      const ratio = pairedRatio(pick(rs, field), pick(none, field));
      report({
        suite: SUITE,
        name: `${codec}: ${what} records/s`,
        value: median(pick(rs, field)),
        unit: "records/s",
        ...(codec === "none" ? {} : { ratio, baseline: "uncompressed, same round" }),
        ...(rateTarget === undefined
          ? {}
          : { target: `>= ${rateTarget} of uncompressed`, met: ratio >= rateTarget }),
      });
    }
    for (
      const [what, field] of [
        ["produce", "produceCpuMsPerMb"],
        ["consume", "consumeCpuMsPerMb"],
      ] as const
    ) {
      report({
        suite: SUITE,
        name: `${codec}: broker CPU per MB (${what})`,
        value: median(pick(rs, field)),
        unit: "ms/MB",
        ...(codec === "none"
          ? {}
          : { ratio: pairedRatio(pick(rs, field), pick(none, field)), baseline: "uncompressed" }),
      });
    }
  }
}
