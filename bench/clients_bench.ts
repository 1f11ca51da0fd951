/**
 * Issue 15's benchmark, `deno task bench clients`: many small clients, each request one
 * record, over HTTP and over the WebSocket connection side by side, each workload with its
 * floor measured in the same run:
 *
 * - the HTTP floor: bare `fetch` to a bare `Deno.serve` that reads the body and answers a small
 *   JSON object (bench/_clients_floor_server.ts; no routing, checks or storage); and the same
 *   pair with the answer the producer asks for (`Prefer: return=minimal`: 204, the offsets in
 *   headers), which the HTTP producer's rate and broker CPU are also printed against;
 * - the HTTP append floor: the same with the storage work of a produce, a bare `Deno.serve`
 *   that reads a one-record batch, checks its CRC and appends it to a PartitionLog
 *   (bench/_http_floor_server.ts): what no HTTP broker that stores a record before it
 *   answers can beat here (workload 1);
 * - the WebSocket floor: bare WebSocket round trips of the same size to a bare echo;
 * - the WebSocket append floor: bare WebSocket messages, each a prebuilt one-record batch, to
 *   a bare `Deno.upgradeWebSocket` in the same server as the HTTP append floor, which checks
 *   the CRC, appends the batch to a PartitionLog and answers an 8-byte ack: what no broker
 *   that stores a record before it acknowledges it over a WebSocket can beat here
 *   (workloads 1 and 2, printed beside the echo-floor ratio).
 *
 * Workloads, each client in a process of its own (bench/_clients_worker.ts) so that client and
 * broker CPU are measured apart (from /proc, 10 ms ticks):
 *
 * 1. one producer awaiting each single-record 1 KiB send (acks=1): records/s, p50/p99,
 *    broker CPU per record; the HTTP floors, HTTP, WS and the WS floors take turns (see
 *    below) and the rate ratios are medians of each round's ratio (the machine is shared);
 * 2. 50 producers, each its own client and connection, awaiting single 100 B sends:
 *    records/s total and p99, against 50 concurrent floor callers;
 * 3. end to end at 2,000 records/s: a producer of single records and a mod.ts consumer in one
 *    process (over HTTP it long-polls; over WebSocket it reads through a push subscription,
 *    src/client/push_loop.ts): p50/p99 from send to delivery; and the same with the records
 *    pushed to a bare push subscription of the WebSocket connection
 *    (`WsConnection.subscribe`). HTTP takes turns with its floor: bare `fetch` POSTs of
 *    one-record batches and bare long polls against the append floor server with a long poll
 *    added (bench/_http_floor_server.ts); WebSocket (both consumers) likewise with its floor:
 *    bare WebSockets to the same server, each record a message of its own, each appended batch
 *    sent at once to a second socket subscribed to the partition. Each contender is one worker
 *    process that first sends 3 s uncounted (every contender alike: after 0.5 s, in alternating
 *    phases, the HTTP e2e p99 was 4.8-10 ms where 3 s gave 2.9-3.9), then they take
 *    `RILL_CLIENTS_E2E_ROUNDS` turns of `RILL_BENCH_SECONDS` each, forward and backward
 *    alternately; p50/p99 are medians of the turns' (the CPU per record counts the turns only:
 *    before, a phase's server CPU included its warm-up);
 * 4. broker CPU per single-record produce, from workload 1, against the floor server's CPU
 *    per request;
 * 5. 5,000 clients connected at once (4,100 WebSocket producers sending a 100 B record a
 *    second, 900 mod.ts consumers: push subscriptions over WebSocket, long polls over HTTP),
 *    in 5 processes, connecting over 8 s: broker RSS and
 *    `/healthz` latency sampled every 100 ms, the latter judged once all are connected (from
 *    2 s after the ramp until the clients stop), with its worst while they connect and while
 *    they all disconnect at once reported beside it, and how the broker's main thread (its
 *    event loop) spent that time from `/proc/<pid>/schedstat`: on a CPU, and runnable but
 *    waiting for one (the machine's share, not the broker's work).
 *
 * 6. the floor of 5: a bare `Deno.serve` WebSocket server (bench/_clients_floor_server.ts)
 *    holding the same 5,000 connections over as many partitions and doing the same fan-out
 *    (each producer's send appended in memory and acknowledged, each consumer long-polling its
 *    partition and answered every record from its offset, one answer built per offset;
 *    bench/_clients_crowd.ts): its RSS, the latency of a plain GET to it, and its main
 *    thread's schedstat split, sampled the same way.
 * 7. 5 and 6 again with the client processes at nice 19: on this 2-core machine the 5 client
 *    processes and the server share the cores, and in 5 the broker's main thread, runnable
 *    nearly always, waits for a CPU 25-45% of the time (the floor's 25%), so the GET's
 *    latency is the clients' CPU as much as the server's work. Below the server's priority
 *    they get the CPU the server leaves, as clients on machines of their own would; the
 *    sends/s and deliveries/s printed show how much load they then still generate.
 *
 * Workload 1 takes turns: every contender (each producer and each floor) is one worker
 * process (bench/_clients_turns.ts), started and warmed up once (1 s, at least 20 round
 * trips), then they run their round trips in turns of 250 ms, one contender after the other,
 * a producer beside its floor (HTTP floor, HTTP, WS, WS echo floor), forward in even rounds and
 * backward in odd ones: 8 uncounted rounds first (the rest of the warm-up), then as many
 * counted rounds as fill 3 × `RILL_BENCH_SECONDS` per contender (24 at 2 s). Each round's
 * rate ratio pairs turns a quarter of a second apart; the CPU per record sums every counted
 * turn. Why: measured in 3 phases of 2 s, each a fresh process after 1 s of warm-up, every
 * contender (floors alike) ran ~35-45% below its steady rate (the bare fetch floor did
 * 5-7k requests/s in the phases, ~10k once a process had made round trips for ~4 s, with its
 * client CPU per request falling from ~120 to ~70 µs), so the ratios compared contenders at
 * different points of their warm-up; and a phase of 2 s met the shared machine's load
 * swings whole (one floor phase did 3.6k against 6.2k in the next round), so per-round
 * ratios swung ±0.1 and more.
 *
 * Every contender of workload 2 (the producers and each of their floors alike) warms up the
 * same way before its timed phase: each producer or socket makes at least 20 round trips and
 * keeps going for 1 s (bench/_clients_worker.ts, `warmUp`), so that the code on its path is
 * compiled by the optimizing JIT in the client process and the server first. The CPU per
 * record of the client and of the server counts from the end of the warm-up.
 *
 * `RILL_BENCH_SECONDS` (default 3) sets the length of each timed phase.
 * `RILL_CLIENTS_PARTS` (default all: `seq,many,e2e,redis,commits,crowd`) runs only the workloads
 * named (`e2e-ws`: only the WebSocket half of 3; `redis`: 1-3 against Redis Streams, the peer,
 * bench/_clients_redis.ts, skipped when `redis-server` is not installed). `RILL_CLIENTS_E2E_ROUNDS` (default 3) sets the
 * rounds of each end-to-end comparison.
 * `RILL_CLIENTS_BROKER_REPO=/path/to/checkout` runs that checkout's broker instead (the
 * clients stay this checkout's), with `RILL_CLIENTS_HTTP_ONLY=1` for a broker without the
 * WebSocket endpoint: how a "before" is measured on the same machine.
 * `RILL_CLIENTS_BROKER_PROF=/some/dir` runs the broker with `--cpu-prof` into that directory
 * and stops it with SIGTERM at the end, so that it writes its profile (open it in Chrome's
 * DevTools). `RILL_CLIENTS_WORKER_PROF=/some/dir` does the same for every client worker process
 * (one profile each, written as it exits; the floors' workers too, for the same comparison).
 *
 * @module
 */
import { median, pairedRatio, type Reporter } from "./_report.ts";
import { type BrokerProcess, startBroker } from "../tests/_helpers/broker_process.ts";
import { commitBench } from "./_commit_bench.ts";
import { startFloorServer } from "./_http_floor.ts";
import {
  E2E_ROUNDS,
  E2E_WARM_MS,
  type Floor,
  fmt,
  HTTP_ONLY,
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
import { crowd, CROWD_NICE, crowdFloor } from "./_clients_crowd.ts";
import { redisPeer } from "./_clients_redis.ts";
import { takeTurns } from "./_clients_turns.ts";

const FLOOR = new URL("./_clients_floor_server.ts", import.meta.url).pathname;
const BROKER_REPO = Deno.env.get("RILL_CLIENTS_BROKER_REPO");
const PROF_DIR = Deno.env.get("RILL_CLIENTS_BROKER_PROF");
const PARTS = new Set(
  (Deno.env.get("RILL_CLIENTS_PARTS") ?? "seq,many,e2e,redis,commits,crowd").split(","),
);

async function startFloor(): Promise<{ url: string; pid: number } & AsyncDisposable> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", FLOOR],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let port: string | undefined;
  while (port === undefined) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the floor server exited before it listened");
    out += value;
    port = /listening on (\d+)/.exec(out)?.[1];
  }
  void (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    async [Symbol.asyncDispose]() {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

async function createTopic(url: string, name: string, partitions: number): Promise<void> {
  const res = await fetch(`${url}/v1/topics`, {
    method: "POST",
    body: JSON.stringify({ name, partitions }),
    headers: { "content-type": "application/json" },
  });
  if (res.status !== 201) throw new Error(`create topic ${name}: ${await res.text()}`);
  await res.body?.cancel();
}

/**
 * Reports one producer's rate and broker CPU per record against the append floor of its
 * transport (the floor that does the storage work too: what no broker that appends before it
 * answers can beat here).
 */
function againstAppendFloor(
  report: Reporter,
  transport: "HTTP" | "WS",
  xs: Measured[],
  floor: Measured[],
  unit: "request" | "message",
): void {
  report({
    suite: SUITE,
    name: `${transport}: one producer, single 1 KiB sends awaited, against the append floor`,
    value: median(rate(xs)),
    unit: "records/s",
    ratio: pairedRatio(rate(xs), rate(floor)),
    baseline: `${transport} append floor`,
  });
  report({
    suite: SUITE,
    name: `${transport}: broker CPU per single-record produce, against the append floor`,
    value: median(serverUs(xs)),
    unit: "µs",
    ratio: pairedRatio(serverUs(xs), serverUs(floor)),
    baseline: `${transport === "HTTP" ? "" : "WS "}append floor server CPU per ${unit}`,
  });
}
/**
 * Runs the suite.
 *
 * @param report receives the figures
 */
export async function run(report: Reporter): Promise<void> {
  await using broker = await startBroker({
    repo: BROKER_REPO,
    denoFlags: PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROF_DIR}`] : undefined,
  });
  await using floor = await startFloor();
  const b = broker.url;
  let topics = 0;
  const topic = async (partitions: number) => {
    const name = `clients-${topics++}`;
    await createTopic(b, name, partitions);
    return name;
  };

  if (PARTS.has("seq")) await sequential(report, broker, floor, topic);
  if (PARTS.has("many")) await manyProducers(report, broker, floor, topic);
  if (PARTS.has("e2e") || PARTS.has("e2e-ws")) {
    await endToEnd(report, broker, topic, PARTS.has("e2e"));
  }
  // ---- the peer: Redis Streams, workloads 1-3 (_clients_redis.ts) ---------------------------
  if (PARTS.has("redis")) await redisPeer(report, broker, topic);
  // ---- offset commits ------------------------------------------------------------------------
  if (PARTS.has("commits")) await commitBench(report, SUITE, SECONDS);
  // ---- 5 and 6: 5,000 connected clients, and the fan-out floor holding as many -------------
  if (PARTS.has("crowd")) {
    const total = await crowd(report, broker, await topic(8));
    await crowdFloor(report, floor, total);
    // Again with the client processes below the server's CPU priority: as when they run on
    // machines of their own, the server gets the CPU it asks for.
    await crowd(report, broker, await topic(8), CROWD_NICE);
    await crowdFloor(report, floor, total, CROWD_NICE);
  }
  // A profiled broker writes its profile as it exits: stopped, not killed.
  if (PROF_DIR) await broker.stop();
}

type Topic = (partitions: number) => Promise<string>;
async function sequential(
  report: Reporter,
  broker: BrokerProcess,
  floor: Floor,
  topic: Topic,
): Promise<void> {
  const b = broker.url;
  // The floor of the HTTP produce with the storage work in it: a bare Deno.serve that reads
  // the body, checks the batch's CRC and appends it to a PartitionLog (_http_floor_server.ts).
  await using appendFloor = await startFloorServer(1);
  // ---- 1 and 4: one producer, single 1 KiB sends awaited -----------------------------------
  type Seq =
    | "floorHttp"
    | "floorMinimal"
    | "floorAppend"
    | "http"
    | "ws"
    | "floorWs"
    | "floorWsAppend";
  const seq: Record<Seq, Measured[]> = {
    floorHttp: [],
    floorMinimal: [],
    floorAppend: [],
    http: [],
    ws: [],
    floorWs: [],
    floorWsAppend: [],
  };
  // Each contender starts and warms up once (one after the other, so that no warm-up meets
  // another contender's load), then they take turns of TURN_MS, each pair of contenders
  // compared side by side (the floor beside its producer), forward in even rounds and
  // backward in odd ones, after SEQ_WARM_ROUNDS uncounted rounds.
  const order: Seq[] = HTTP_ONLY
    ? ["floorMinimal", "floorAppend", "floorHttp", "http"]
    : ["floorMinimal", "floorAppend", "floorHttp", "http", "ws", "floorWs", "floorWsAppend"];
  const pids: Record<Seq, number> = {
    floorHttp: floor.pid,
    floorMinimal: floor.pid,
    floorAppend: appendFloor.pid,
    http: broker.pid,
    ws: broker.pid,
    floorWs: floor.pid,
    floorWsAppend: appendFloor.pid,
  };
  const settings = { seconds: SECONDS, size: 1024, producers: 1, warmMs: SEQ_WARM_MS };
  const contenders: [Seq, Record<string, unknown>][] = [];
  for (const name of order) {
    contenders.push([
      name,
      name === "floorHttp"
        ? { ...settings, mode: "floor-http", url: floor.url, serverPid: pids[name] }
        : name === "floorMinimal"
        ? { ...settings, mode: "floor-http-minimal", url: floor.url, serverPid: pids[name] }
        : name === "floorAppend"
        ? { ...settings, mode: "floor-append", url: appendFloor.url, serverPid: pids[name] }
        : name === "floorWs"
        ? { ...settings, mode: "floor-ws", url: floor.url, serverPid: pids[name] }
        : name === "floorWsAppend"
        ? { ...settings, mode: "floor-ws-append", url: appendFloor.url, serverPid: pids[name] }
        : {
          ...settings,
          mode: "send",
          url: b,
          transport: name,
          topic: await topic(1),
          serverPid: pids[name],
        },
    ]);
  }
  const rounds = Math.max(4, Math.round(ROUNDS * SECONDS * 1000 / TURN_MS));
  // Per round: the turn's rate; the percentiles and CPU per record over all counted turns
  // (a 250 ms turn's CPU is a few 10 ms ticks).
  Object.assign(seq, await takeTurns(contenders, rounds, TURN_MS, SEQ_WARM_ROUNDS, true));
  const shown = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
  console.error(
    `${SUITE}: ${rounds} rounds of ${TURN_MS} ms turns; per-round HTTP ÷ HTTP floor: ${
      shown(seq.http.map((m, i) => m.rate / seq.floorHttp[i].rate))
    }` +
      (HTTP_ONLY
        ? ""
        : `; WS ÷ WS echo floor: ${shown(seq.ws.map((m, i) => m.rate / seq.floorWs[i].rate))}`) +
      `; ${loadText()}`,
  );
  const httpRatio = pairedRatio(rate(seq.http), rate(seq.floorHttp));
  const wsRatio = pairedRatio(rate(seq.ws), rate(seq.floorWs));
  for (
    const [name, xs, ratio, floorName, target, goal] of [
      ["HTTP", seq.http, httpRatio, "HTTP floor", ">= 0.8x floor", 0.8],
      ["WS", seq.ws, wsRatio, "WS echo floor", ">= 0.75x floor", 0.75],
    ] as const
  ) {
    if (xs.length === 0) continue;
    report({
      suite: SUITE,
      name: `${name}: one producer, single 1 KiB sends awaited`,
      value: median(rate(xs)),
      unit: "records/s",
      ratio,
      baseline: floorName,
      target,
      met: ratio >= goal,
    });
    report({
      suite: SUITE,
      name: `${name}: one producer 1 KiB, p50 / p99 ms`,
      value: median(xs.map((x) => x.p50)),
      unit: `ms p50, p99 ${fmt(median(xs.map((x) => x.p99)))} ms`,
    });
    report({
      suite: SUITE,
      name: `${name}: client CPU per record (one producer)`,
      value: median(xs.map((x) => x.clientUs)),
      unit: "µs",
    });
  }
  for (
    const [name, xs] of [
      ["HTTP floor", seq.floorHttp],
      ["HTTP floor, minimal answer (204, offsets in headers)", seq.floorMinimal],
      ["HTTP append floor (body read, CRC, PartitionLog append)", seq.floorAppend],
      ["WS echo floor", seq.floorWs],
      ["WS append floor (CRC, PartitionLog append, 8-byte ack)", seq.floorWsAppend],
    ] as const
  ) {
    if (xs.length === 0) continue;
    report({
      suite: SUITE,
      name: `${name}: sequential 1 KiB round trips`,
      value: median(rate(xs)),
      unit: `req/s, p50 ${fmt(median(xs.map((x) => x.p50)))} ms, server ${
        fmt(median(serverUs(xs)))
      } µs/req, client ${fmt(median(xs.map((x) => x.clientUs)))} µs/req`,
    });
  }
  // The producer asks for the minimal answer (Prefer: return=minimal): beside the target's
  // JSON floor, the same bare pair answering as the broker does.
  if (seq.http.length > 0) {
    report({
      suite: SUITE,
      name: "HTTP: one producer, single 1 KiB sends awaited, against the minimal-answer floor",
      value: median(rate(seq.http)),
      unit: "records/s",
      ratio: pairedRatio(rate(seq.http), rate(seq.floorMinimal)),
      baseline: "HTTP floor, minimal answer",
    });
    report({
      suite: SUITE,
      name: "HTTP: broker CPU per single-record produce, against the minimal-answer floor",
      value: median(serverUs(seq.http)),
      unit: "µs",
      ratio: pairedRatio(serverUs(seq.http), serverUs(seq.floorMinimal)),
      baseline: "minimal-answer floor server CPU per request",
    });
  }
  // The same producer against the floor that does the storage work too: what no HTTP broker
  // that appends before it answers can beat here.
  againstAppendFloor(report, "HTTP", seq.http, seq.floorAppend, "request");
  const cpuRatio = pairedRatio(serverUs(seq.http), serverUs(seq.floorHttp));
  report({
    suite: SUITE,
    name: "HTTP: broker CPU per single-record produce",
    value: median(serverUs(seq.http)),
    unit: "µs",
    ratio: cpuRatio,
    baseline: "floor server CPU per request",
    target: "<= 1.5x floor",
    met: cpuRatio <= 1.5,
  });
  const wsCpuRatio = pairedRatio(serverUs(seq.ws), serverUs(seq.floorWs));
  if (!HTTP_ONLY) {
    report({
      suite: SUITE,
      name: "WS: broker CPU per single-record produce",
      value: median(serverUs(seq.ws)),
      unit: "µs",
      ratio: wsCpuRatio,
      baseline: "echo floor CPU per message",
    });
    // Beside the echo-floor ratios: the floor that does the storage work too.
    againstAppendFloor(report, "WS", seq.ws, seq.floorWsAppend, "message");
  }
}

async function manyProducers(
  report: Reporter,
  broker: BrokerProcess,
  floor: Floor,
  topic: Topic,
): Promise<void> {
  const b = broker.url;
  // ---- 2: 50 producers, single 100 B sends awaited -------------------------------------------
  // The WebSocket append floor, with as many partitions as the broker's topic.
  await using appendFloor = await startFloorServer(4);
  const many: Record<string, Measured[]> = {
    floorHttp: [],
    http: [],
    ws: [],
    floorWs: [],
    floorWsAppend: [],
  };
  for (let round = 0; round < 2; round++) {
    for (
      const name of HTTP_ONLY
        ? ["floorHttp", "http"]
        : ["floorHttp", "http", "ws", "floorWs", "floorWsAppend"]
    ) {
      const settings = { seconds: SECONDS, size: 100, producers: 50 };
      many[name].push(
        name === "floorHttp"
          ? await measured(floor.pid, { ...settings, mode: "floor-http", url: floor.url })
          : name === "floorWs"
          ? await measured(floor.pid, { ...settings, mode: "floor-ws", url: floor.url })
          : name === "floorWsAppend"
          ? await measured(appendFloor.pid, {
            ...settings,
            mode: "floor-ws-append",
            url: appendFloor.url,
            partitions: 4,
          })
          : await measured(broker.pid, {
            ...settings,
            mode: "send",
            url: b,
            transport: name,
            topic: await topic(4),
            partitions: 4,
          }),
      );
    }
  }
  for (
    const [name, key, floorKey, target, met] of [
      ["HTTP", "http", "floorHttp", undefined, undefined],
      [
        "WS",
        "ws",
        "floorWs",
        ">= 40,000 records/s, p99 <= 5 ms",
        (m: Measured[]) => median(rate(m)) >= 40_000 && median(m.map((x) => x.p99)) <= 5,
      ],
    ] as const
  ) {
    const xs = many[key];
    if (xs.length === 0) continue;
    report({
      suite: SUITE,
      name: `${name}: 50 producers, single 100 B sends awaited`,
      value: median(rate(xs)),
      unit: `records/s, p50 ${fmt(median(xs.map((x) => x.p50)))} ms, p99 ${
        fmt(median(xs.map((x) => x.p99)))
      } ms, broker ${fmt(median(serverUs(xs)))} µs/rec, client ${
        fmt(median(xs.map((x) => x.clientUs)))
      } µs/rec`,
      ratio: pairedRatio(rate(xs), rate(many[floorKey])),
      baseline: `${floorKey === "floorHttp" ? "HTTP" : "WS echo"} floor, 50 callers`,
      target,
      met: met?.(xs),
    });
  }
  if (many.ws.length > 0) {
    // Beside the echo-floor ratio: the floor that does the storage work too.
    report({
      suite: SUITE,
      name: "WS: 50 producers, single 100 B sends awaited, against the append floor",
      value: median(rate(many.ws)),
      unit: `records/s, broker ${fmt(median(serverUs(many.ws)))} µs/rec, append floor ${
        fmt(median(serverUs(many.floorWsAppend)))
      } µs/rec (broker CPU ratio ${
        fmt(pairedRatio(serverUs(many.ws), serverUs(many.floorWsAppend)))
      }x)`,
      ratio: pairedRatio(rate(many.ws), rate(many.floorWsAppend)),
      baseline: "WS append floor, 50 sockets, 4 partitions",
    });
  }
  for (
    const [name, key] of [
      ["HTTP floor", "floorHttp"],
      ["WS echo floor", "floorWs"],
      ["WS append floor", "floorWsAppend"],
    ] as const
  ) {
    const xs = many[key];
    if (xs.length === 0) continue;
    report({
      suite: SUITE,
      name: `${name}: 50 concurrent callers, 100 B`,
      value: median(rate(xs)),
      unit: `req/s, p99 ${fmt(median(xs.map((x) => x.p99)))} ms, server ${
        fmt(median(serverUs(xs)))
      } µs/req, client ${fmt(median(xs.map((x) => x.clientUs)))} µs/req`,
    });
  }
}

async function endToEnd(
  report: Reporter,
  broker: BrokerProcess,
  topic: Topic,
  withHttp: boolean,
): Promise<void> {
  const b = broker.url;
  await using floor = await startFloorServer(1);
  if (withHttp) await endToEndHttp(report, broker, floor, topic);
  if (HTTP_ONLY) return;
  // WebSocket against its floor, taking turns: bare WebSockets to the same append
  // floor server, each record its own message, each appended batch sent at once to a second
  // socket subscribed to the partition (_clients_worker.ts mode e2e-ws-floor).
  type WsE2e = "floor" | "e2e" | "e2e-push";
  const settings = { rate: 2000, seconds: SECONDS, warmMs: E2E_WARM_MS };
  const contenders: [WsE2e, Record<string, unknown>][] = [];
  for (const mode of ["floor", "e2e", "e2e-push"] as const) {
    contenders.push([
      mode,
      mode === "floor"
        ? { ...settings, mode: "e2e-ws-floor", url: floor.url, serverPid: floor.pid }
        : {
          ...settings,
          mode,
          url: b,
          transport: "ws",
          topic: await topic(1),
          serverPid: broker.pid,
        },
    ]);
  }
  const ws = await takeTurns(contenders, E2E_ROUNDS, SECONDS * 1000, 0);
  console.error(perRound("e2e WS", ws));
  report({
    suite: SUITE,
    name: "WS floor (bare WebSockets: a producer's single-record messages appended, each " +
      "batch sent at once to a subscribed socket): e2e at 2,000 records/s, p50",
    value: median(p50s(ws.floor)),
    unit: `ms, p99 ${fmt(median(p99s(ws.floor)))} ms (medians of ${E2E_ROUNDS} rounds), server ${
      fmt(median(serverUs(ws.floor)))
    } µs/record`,
  });
  for (
    const [name, mode] of [
      ["WS: producer → mod.ts consumer (push subscription, its default over WebSocket)", "e2e"],
      ["WS push subscription: producer → pushed records", "e2e-push"],
    ] as const
  ) {
    const xs = ws[mode];
    report({
      suite: SUITE,
      name: `${name} at 2,000 records/s, e2e p50`,
      value: median(p50s(xs)),
      unit: `ms, p99 ${fmt(median(p99s(xs)))} ms (${
        fmt(pairedRatio(p99s(xs), p99s(ws.floor)))
      }x the floor's p99), ${fmt(median(rate(xs)))} records/s delivered, broker ${
        fmt(median(serverUs(xs)))
      } µs/record`,
      ratio: pairedRatio(p50s(xs), p50s(ws.floor)),
      baseline: "WS e2e floor p50",
      target: "p50 <= 0.3 ms, p99 <= 3 ms",
      met: median(p50s(xs)) <= 0.3 && median(p99s(xs)) <= 3,
    });
  }
}

async function endToEndHttp(
  report: Reporter,
  broker: BrokerProcess,
  floor: Floor,
  topic: Topic,
): Promise<void> {
  const b = broker.url;
  // ---- 3: end to end at 2,000 records/s ------------------------------------------------------
  // HTTP against its floor, taking turns (the latency swings with the machine's
  // load): the append floor server with a long poll (_http_floor_server.ts), bare fetch for
  // the producer's single-record POSTs and the consumer's long polls (_clients_worker.ts
  // mode e2e-floor).
  const settings = { rate: 2000, seconds: SECONDS, warmMs: E2E_WARM_MS };
  const e2e = await takeTurns<"http" | "floor">(
    [
      ["floor", { ...settings, mode: "e2e-floor", url: floor.url, serverPid: floor.pid }],
      ["http", {
        ...settings,
        mode: "e2e",
        url: b,
        transport: "http",
        topic: await topic(1),
        serverPid: broker.pid,
      }],
    ],
    E2E_ROUNDS,
    SECONDS * 1000,
    0,
  );
  console.error(perRound("e2e HTTP", e2e));
  report({
    suite: SUITE,
    name: "HTTP floor (bare fetch, bare Deno.serve long poll and append): producer → " +
      "long-polling consumer at 2,000 records/s, e2e p50",
    value: median(p50s(e2e.floor)),
    unit: `ms, p99 ${fmt(median(p99s(e2e.floor)))} ms (medians of ${E2E_ROUNDS} rounds), server ${
      fmt(median(serverUs(e2e.floor)))
    } µs/record`,
  });
  const http = e2e.http;
  report({
    suite: SUITE,
    name: "HTTP: producer → long-polling consumer at 2,000 records/s, e2e p50",
    value: median(p50s(http)),
    unit: `ms, p99 ${fmt(median(p99s(http)))} ms (${
      fmt(pairedRatio(p99s(http), p99s(e2e.floor)))
    }x the floor's p99), ${fmt(median(rate(http)))} records/s delivered, broker ${
      fmt(median(serverUs(http)))
    } µs/record`,
    ratio: pairedRatio(p50s(http), p50s(e2e.floor)),
    baseline: "HTTP e2e floor p50",
    target: "p50 <= 0.5 ms, p99 <= 3 ms",
    met: median(p50s(http)) <= 0.5 && median(p99s(http)) <= 3,
  });
}
