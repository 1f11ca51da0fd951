/**
 * `rill perf produce|consume`: load tools in the spirit of Kafka's producer/consumer perf
 * tests, through the client library. While it runs, a progress line each second on stderr
 * (records/s, MB/s, latency p50/p99); at the end one summary on stdout. `--json` makes both
 * JSON (one object a line), for scripts.
 *
 * - produce: `--records N` records of `--record-size B` random-looking bytes, keyless (sticky
 *   partitioning), at most `--rate R` records/s; latency is each send() call's, from the
 *   call to the acknowledgement (records are sent in chunks of at most 1,000 per call).
 * - consume: reads the topic from the beginning (or, with `--group`, from the group's
 *   committed offsets) until `--records N` were read, or, without `--records`, every record
 *   that was in the topic when it started; latency is end-to-end: the time between a
 *   record's timestamp and its arrival (meaningful while producers run).
 *
 * @module
 */
import { type Acks, Rill } from "../client/mod.ts";
import { isCompressionType } from "../protocol/compression.ts";
import {
  type CliIo,
  connection,
  expectPositionals,
  intOption,
  parseCommand,
  UsageError,
} from "./common.ts";

/** The help of `rill perf`. */
export const HELP = `Usage:
  rill perf produce --topic T --records N --record-size B [--rate R] [--acks all|1|0]
                    [--compression CODEC] [--batch-bytes N] [--linger-ms N] [--json]
  rill perf consume --topic T [--group G] [--records N] [--timeout-ms T] [--json]

Measures throughput and latency through the client library. Prints a progress line each
second on stderr and a summary on stdout (both JSON with --json).

produce: sends N keyless records of B bytes (acks=all by default), at most R records/s
  (default: as fast as it can); latency is each send's, call to acknowledgement.
consume: reads from the beginning (with --group: from the group's committed offsets, and
  commits) until N records were read, or, without --records, every record the topic held
  when it started; latency is end to end (a record's timestamp to its arrival).

Options:
  --topic T            the topic (it must exist)
  --records N          how many records
  --record-size B      the value size in bytes (produce)
  --rate R             at most R records a second (produce)
  --acks all|1|0       acknowledgement level (produce; default all)
  --compression CODEC  batch compression (produce): none (default), gzip, snappy, lz4, zstd
  --batch-bytes N      the producer's batch size (default 1048576)
  --linger-ms N        the producer's linger (default 5)
  --group G            consume as a member of group G
  --timeout-ms T       consume: stop when no record came for T ms (default 10000)
  --json               JSON lines instead of text
  --broker URL         broker to talk to (default $RILL_BROKER or http://127.0.0.1:8092)
  --api-key KEY        API key (default $RILL_API_KEY)
  --ca-file PEM        CA certificate for https:// brokers (default $RILL_CA_FILE)
  -h, --help           show this help
`;

const OPTIONS = {
  topic: { type: "string" },
  records: { type: "string" },
  "record-size": { type: "string" },
  rate: { type: "string" },
  acks: { type: "string" },
  compression: { type: "string" },
  "batch-bytes": { type: "string" },
  "linger-ms": { type: "string" },
  group: { type: "string" },
  "timeout-ms": { type: "string" },
  json: { type: "boolean" },
} as const;

/** What a run measured; the summary and each progress line. */
export interface PerfStats {
  /** "produce" or "consume" */
  mode: "produce" | "consume";
  /** records so far */
  records: number;
  /** bytes of values (and keys) so far */
  bytes: number;
  /** seconds since the start */
  seconds: number;
  /** records per second */
  recordsPerSecond: number;
  /** megabytes (10^6 bytes) per second */
  mbPerSecond: number;
  /** latency percentiles in ms (NaN-free: null when nothing was measured) */
  latencyMs: { avg: number; p50: number; p95: number; p99: number; max: number } | null;
  /** true on the final summary */
  done: boolean;
}

/** Latencies (ms) with their weights (records), for percentiles. */
class Latencies {
  #values: number[] = [];
  #weights: number[] = [];
  #sum = 0;
  #n = 0;

  add(ms: number, weight = 1): void {
    this.#values.push(ms);
    this.#weights.push(weight);
    this.#sum += ms * weight;
    this.#n += weight;
  }

  summary(): PerfStats["latencyMs"] {
    if (this.#n === 0) return null;
    const idx = this.#values.map((_, i) => i).sort((a, b) => this.#values[a] - this.#values[b]);
    const at = (q: number) => {
      const want = q * this.#n;
      let seen = 0;
      for (const i of idx) {
        seen += this.#weights[i];
        if (seen >= want) return this.#values[i];
      }
      return this.#values[idx[idx.length - 1]];
    };
    const r = (x: number) => Math.round(x * 100) / 100;
    return {
      avg: r(this.#sum / this.#n),
      p50: r(at(0.5)),
      p95: r(at(0.95)),
      p99: r(at(0.99)),
      max: r(this.#values[idx[idx.length - 1]]),
    };
  }
}

function stats(
  mode: PerfStats["mode"],
  records: number,
  bytes: number,
  t0: number,
  lat: Latencies,
  done: boolean,
): PerfStats {
  const seconds = Math.max(1e-9, (performance.now() - t0) / 1000);
  return {
    mode,
    records,
    bytes,
    seconds: Math.round(seconds * 1000) / 1000,
    recordsPerSecond: Math.round(records / seconds),
    mbPerSecond: Math.round((bytes / seconds / 1e6) * 100) / 100,
    latencyMs: lat.summary(),
    done,
  };
}

/**
 * One line of text for a progress report or the summary.
 *
 * @param s the figures
 * @returns the line, without a newline
 * @example
 * ```ts
 * formatStats(s); // "12000 records sent, 11890 records/s (12.18 MB/s), latency p50 3.1 ms, p99 9.8 ms"
 * ```
 */
export function formatStats(s: PerfStats): string {
  const verb = s.mode === "produce" ? "sent" : "read";
  let line = `${s.records} records ${verb} in ${s.seconds.toFixed(1)} s, ${s.recordsPerSecond} ` +
    `records/s (${s.mbPerSecond.toFixed(2)} MB/s)`;
  const l = s.latencyMs;
  if (l) {
    line += s.done
      ? `, latency avg ${l.avg} ms, p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms, max ${l.max} ms`
      : `, latency p50 ${l.p50} ms, p99 ${l.p99} ms`;
  }
  return line;
}

/** Reports progress once a second until stopped. */
function progress(io: CliIo, json: boolean, current: () => PerfStats): () => void {
  const timer = setInterval(() => {
    const s = current();
    io.err(json ? JSON.stringify(s) + "\n" : formatStats(s) + "\n").catch(() => {});
  }, 1000);
  return () => clearInterval(timer);
}

function payload(size: number): Uint8Array {
  const v = new Uint8Array(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v[i] = x & 0xff;
  }
  return v;
}

/**
 * Runs `rill perf …`.
 *
 * @param args the arguments after `perf`
 * @param io where to write
 * @returns the exit status
 * @throws {UsageError} on a bad command line; {RillError} when the broker refuses
 */
export async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, OPTIONS);
  if (values.help) {
    await io.out(HELP);
    return 0;
  }
  const [mode] = expectPositionals(positionals, ["produce|consume"]);
  if (mode !== "produce" && mode !== "consume") {
    throw new UsageError(`rill perf takes "produce" or "consume", got "${mode}"`);
  }
  const topic = values.topic;
  if (topic === undefined || topic === "") throw new UsageError("--topic is required");
  const json = values.json ?? false;
  const rill = new Rill({ ...connection(values) });
  const summary = mode === "produce"
    ? await perfProduce(rill, topic, values, io, json)
    : await perfConsume(rill, topic, values, io, json);
  await io.out(json ? JSON.stringify(summary) + "\n" : formatStats(summary) + "\n");
  return 0;
}

async function perfProduce(
  rill: Rill,
  topic: string,
  values: Record<string, string | boolean | undefined>,
  io: CliIo,
  json: boolean,
): Promise<PerfStats> {
  const str = (k: string) => values[k] as string | undefined;
  const records = intOption("--records", str("records"), 1);
  if (records === undefined) throw new UsageError("--records is required");
  const size = intOption("--record-size", str("record-size"), 0);
  if (size === undefined) throw new UsageError("--record-size is required");
  const rate = intOption("--rate", str("rate"), 1);
  const acks = str("acks") ?? "all";
  if (acks !== "all" && acks !== "1" && acks !== "0") {
    throw new UsageError(`--acks must be all, 1 or 0, got "${acks}"`);
  }
  const compression = str("compression") ?? "none";
  if (!isCompressionType(compression)) {
    throw new UsageError(
      `--compression must be none, gzip, snappy, lz4 or zstd, got "${compression}"`,
    );
  }
  const producer = rill.producer({
    acks: acks as Acks,
    compression,
    batchBytes: intOption("--batch-bytes", str("batch-bytes"), 1) ?? 1 << 20,
    lingerMs: intOption("--linger-ms", str("linger-ms"), 0) ?? 5,
  });
  const value = payload(size);
  // Chunks of at most 1,000 records; with --rate, one chunk every 10 ms at most.
  const chunk = Math.max(1, Math.min(1000, rate === undefined ? 1000 : Math.ceil(rate / 100)));
  const lat = new Latencies();
  let acked = 0;
  let failure: unknown = undefined;
  const pending = new Set<Promise<void>>();
  const t0 = performance.now();
  const stop = progress(io, json, () => stats("produce", acked, acked * size, t0, lat, false));
  try {
    let sent = 0;
    while (sent < records && failure === undefined) {
      const n = Math.min(chunk, records - sent);
      if (rate !== undefined) {
        const due = t0 + (sent / rate) * 1000;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      }
      const messages = new Array(n);
      for (let i = 0; i < n; i++) messages[i] = { value };
      const start = performance.now();
      const p: Promise<void> = producer.send({ topic, messages }).then(
        () => {
          lat.add(performance.now() - start, n);
          acked += n;
        },
        (e) => {
          failure ??= e;
        },
      ).finally(() => pending.delete(p));
      pending.add(p);
      sent += n;
      if (pending.size >= 32) await Promise.race(pending);
    }
    await Promise.all(pending);
  } finally {
    stop();
    await producer.disconnect().catch(() => {});
  }
  if (failure !== undefined) throw failure;
  return stats("produce", acked, acked * size, t0, lat, true);
}

async function perfConsume(
  rill: Rill,
  topic: string,
  values: Record<string, string | boolean | undefined>,
  io: CliIo,
  json: boolean,
): Promise<PerfStats> {
  const str = (k: string) => values[k] as string | undefined;
  let target = intOption("--records", str("records"), 1);
  const idleMs = intOption("--timeout-ms", str("timeout-ms"), 1) ?? 10_000;
  const group = str("group");
  const admin = rill.admin();
  const offsets = await admin.fetchTopicOffsets(topic);
  if (target === undefined && group === undefined) {
    // Everything the topic holds now.
    target = offsets.reduce((n, o) => n + (o.high - o.low), 0);
  }
  const consumer = group === undefined
    ? rill.consumer({ maxWaitMs: 500 })
    : rill.consumer({ groupId: group, maxWaitMs: 500 });
  if (group === undefined) {
    await consumer.assign(
      offsets.map((o) => ({ topic, partition: o.partition, offset: "earliest" as const })),
    );
  } else {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
  }
  const lat = new Latencies();
  let n = 0;
  let bytes = 0;
  let last = performance.now();
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const t0 = performance.now();
  const stop = progress(io, json, () => stats("consume", n, bytes, t0, lat, false));
  const idle = setInterval(() => {
    if (performance.now() - last >= idleMs) finish();
  }, Math.min(idleMs, 250));
  try {
    if (target === 0) finish();
    await consumer.run({
      eachBatch: ({ batch }) => {
        const now = Date.now();
        last = performance.now();
        for (const m of batch.messages) {
          if (target !== undefined && n >= target) break;
          n++;
          bytes += (m.value?.length ?? 0) + (m.key?.length ?? 0);
        }
        // One latency per batch: its newest record's age.
        const newest = batch.messages[batch.messages.length - 1];
        if (newest) lat.add(Math.max(0, now - newest.timestamp), batch.messages.length);
        if (target !== undefined && n >= target) finish();
      },
    });
    await Promise.race([finished, consumer.finished()]);
  } finally {
    clearInterval(idle);
    stop();
    await consumer.stop().catch(() => {});
  }
  return stats("consume", n, bytes, t0, lat, true);
}
