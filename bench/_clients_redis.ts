/**
 * The clients bench's peer (`RILL_CLIENTS_PARTS=redis`): Redis Streams, the best peer of the
 * issue that asked for the streaming connection (Redis 7.0 and NATS JetStream 2.9 were
 * measured beside Rill; Redis led every small-client workload), run here on the same machine
 * in the same run as Rill, with its official Node client (node-redis) in a Deno worker process
 * as Rill's clients are, and no persistence (`--save "" --appendonly no`: nothing is fsynced,
 * as Rill does not fsync before it acknowledges). The workloads of the bench's 1-3, with the
 * mod.ts client on its default transport in Deno (WebSocket) beside Redis; the producer also
 * over HTTP for workload 1:
 *
 * 1. one producer awaiting each single 1 KiB `XADD`, taking 250 ms turns with the mod.ts
 *    producers as workload 1 does (rate, p50/p99, server and client CPU per record);
 * 2. 50 producers, each its own connection, awaiting single 100 B `XADD`s into 4 streams,
 *    two alternating timed phases each;
 * 3. end to end at 2,000 records/s: a producer's `XADD`s read by a consumer on a second
 *    connection with `XREAD BLOCK`, taking turns with the mod.ts producer and consumer.
 *
 * Skipped, and said so, when `redis-server` is not installed (Debian: `apt-get install
 * redis-server`).
 *
 * @module
 */
import { median, pairedRatio, type Reporter } from "./_report.ts";
import type { BrokerProcess } from "../tests/_helpers/broker_process.ts";
import {
  E2E_ROUNDS,
  E2E_WARM_MS,
  fmt,
  loadText,
  type Measured,
  measured,
  p50s,
  p99s,
  perRound,
  rate,
  ROUNDS,
  SECONDS,
  SEQ_WARM_MS,
  SEQ_WARM_ROUNDS,
  serverUs,
  SUITE,
  TURN_MS,
} from "./_clients_common.ts";
import { takeTurns } from "./_clients_turns.ts";

/** A running `redis-server`: its URL and process id. */
interface RedisServer extends AsyncDisposable {
  url: string;
  pid: number;
}

/** Starts `redis-server` on a free loopback port; undefined when it is not installed. */
async function startRedis(): Promise<RedisServer | undefined> {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  // Its working directory (nothing is saved there), removed when it stops.
  const dir = await Deno.makeTempDir({ prefix: "rill-bench-redis-" });
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("Ready to accept connections")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`redis-server exited before it was ready: ${out.slice(-500)}`);
    out += value;
  }
  void (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    async [Symbol.asyncDispose]() {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const described = (xs: Measured[], server: string) =>
  `p50 ${fmt(median(p50s(xs)))} ms, p99 ${fmt(median(p99s(xs)))} ms, ${server} ${
    fmt(median(serverUs(xs)))
  } µs/rec, client ${fmt(median(xs.map((x) => x.clientUs)))} µs/rec`;

/**
 * Runs the three workloads against Redis and the broker, and reports Redis's figures and
 * Rill's against them.
 *
 * @param report receives the figures
 * @param broker the bench's broker
 * @param topic creates a topic of that many partitions on it
 */
export async function redisPeer(
  report: Reporter,
  broker: BrokerProcess,
  topic: (partitions: number) => Promise<string>,
): Promise<void> {
  await using redis = await startRedis();
  if (redis === undefined) {
    console.error(`${SUITE}: redis-server is not installed; the Redis peer part is skipped`);
    return;
  }
  const b = broker.url;
  const rill = (transport: "ws" | "http", name: string) => ({
    mode: "send",
    url: b,
    transport,
    topic: name,
    serverPid: broker.pid,
  });

  // ---- 1: one producer, single 1 KiB sends awaited, in turns ---------------------------------
  const settings = { seconds: SECONDS, size: 1024, producers: 1, warmMs: SEQ_WARM_MS };
  const one = await takeTurns<"redis" | "ws" | "http">(
    [
      ["redis", { ...settings, mode: "redis", url: redis.url, serverPid: redis.pid }],
      ["ws", { ...settings, ...rill("ws", await topic(1)) }],
      ["http", { ...settings, ...rill("http", await topic(1)) }],
    ],
    Math.max(4, Math.round(ROUNDS * SECONDS * 1000 / TURN_MS)),
    TURN_MS,
    SEQ_WARM_ROUNDS,
    true,
  );
  console.error(
    `${SUITE}: Redis, one producer, per-round WS ÷ Redis: ${
      one.ws.map((m, i) => (m.rate / one.redis[i].rate).toFixed(2)).join(" ")
    }; ${loadText()}`,
  );
  report({
    suite: SUITE,
    name: "Redis Streams (node-redis): one producer, single 1 KiB XADDs awaited",
    value: median(rate(one.redis)),
    unit: `records/s, ${described(one.redis, "server")}`,
  });
  for (const [name, xs] of [["WS", one.ws], ["HTTP", one.http]] as const) {
    report({
      suite: SUITE,
      name: `${name}: one producer, single 1 KiB sends awaited, against Redis`,
      value: median(rate(xs)),
      unit: `records/s, ${described(xs, "broker")}`,
      ratio: pairedRatio(rate(xs), rate(one.redis)),
      baseline: "Redis, one producer",
    });
    report({
      suite: SUITE,
      name: `${name}: broker CPU per single-record produce, against Redis`,
      value: median(serverUs(xs)),
      unit: "µs",
      ratio: pairedRatio(serverUs(xs), serverUs(one.redis)),
      baseline: "Redis server CPU per XADD",
    });
  }

  // ---- 2: 50 producers, single 100 B sends awaited --------------------------------------------
  const many: Record<"redis" | "ws", Measured[]> = { redis: [], ws: [] };
  for (let round = 0; round < 2; round++) {
    const fifty = { seconds: SECONDS, size: 100, producers: 50, partitions: 4 };
    many.redis.push(await measured(redis.pid, { ...fifty, mode: "redis", url: redis.url }));
    many.ws.push(await measured(broker.pid, { ...fifty, ...rill("ws", await topic(4)) }));
  }
  report({
    suite: SUITE,
    name: "Redis Streams (node-redis): 50 producers, single 100 B XADDs awaited",
    value: median(rate(many.redis)),
    unit: `records/s, ${described(many.redis, "server")}`,
  });
  report({
    suite: SUITE,
    name: "WS: 50 producers, single 100 B sends awaited, against Redis",
    value: median(rate(many.ws)),
    unit: `records/s, ${described(many.ws, "broker")}`,
    ratio: pairedRatio(rate(many.ws), rate(many.redis)),
    baseline: "Redis, 50 producers",
  });

  // ---- 3: end to end at 2,000 records/s, in turns --------------------------------------------
  const e2eSettings = { rate: 2000, seconds: SECONDS, warmMs: E2E_WARM_MS };
  const e2e = await takeTurns<"redis" | "ws">(
    [
      ["redis", { ...e2eSettings, mode: "e2e-redis", url: redis.url, serverPid: redis.pid }],
      ["ws", { ...e2eSettings, ...rill("ws", await topic(1)), mode: "e2e" }],
    ],
    E2E_ROUNDS,
    SECONDS * 1000,
    0,
  );
  console.error(perRound("Redis e2e", e2e));
  report({
    suite: SUITE,
    name: "Redis Streams (node-redis): XADD → XREAD BLOCK consumer at 2,000 records/s, e2e p50",
    value: median(p50s(e2e.redis)),
    unit: `ms, p99 ${fmt(median(p99s(e2e.redis)))} ms (medians of ${E2E_ROUNDS} rounds), server ${
      fmt(median(serverUs(e2e.redis)))
    } µs/record`,
  });
  report({
    suite: SUITE,
    name: "WS: producer → mod.ts consumer at 2,000 records/s, e2e p50, against Redis",
    value: median(p50s(e2e.ws)),
    unit: `ms, p99 ${fmt(median(p99s(e2e.ws)))} ms (${
      fmt(pairedRatio(p99s(e2e.ws), p99s(e2e.redis)))
    }x Redis's p99), broker ${fmt(median(serverUs(e2e.ws)))} µs/record`,
    ratio: pairedRatio(p50s(e2e.ws), p50s(e2e.redis)),
    baseline: "Redis e2e p50",
  });
}
