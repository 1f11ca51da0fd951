/**
 * One client process of the clients benchmark (bench/clients_bench.ts): runs one bounded
 * workload against a broker or a floor server and prints one JSON line with what it measured
 * (records, seconds, latency percentiles in ms, this process's CPU in ms and, given the
 * server's `serverPid`, the server's; for the modes that warm up, from the end of the warm-up).
 *
 * ```sh
 * deno run -A bench/_clients_worker.ts '<JSON settings>'
 * ```
 *
 * Workloads (`mode`):
 * - `send`: `producers` producers (each its own client, so its own connection), each awaiting
 *   every single-record send of `size` bytes, for `seconds`;
 * - `floor-append`: the same shape with bare `fetch` POSTs of a one-record batch to
 *   bench/_http_floor_server.ts (body read, CRC check, PartitionLog append);
 * - `floor-ws-append`: the same shape with bare WebSockets to bench/_http_floor_server.ts
 *   (`GET /ws`), each message a u32 partition and a prebuilt one-record batch, each answer an
 *   8-byte ack sent once the batch's CRC was checked and it was appended to a PartitionLog;
 *   over the client's own socket in Deno (src/client/tcp_websocket.ts, TCP_NODELAY), the
 *   transport the producers use;
 * - `floor-http` / `floor-ws`: the same shape with bare `fetch` POSTs, or bare WebSocket
 *   round trips of `size` bytes, against bench/_clients_floor_server.ts;
 * - `floor-http-minimal`: `floor-http` asking `Prefer: return=minimal`, as the producer does:
 *   the answer is a 204 with the offset in a header, read from there;
 * - `e2e`: one producer sending single records at `rate` a second, one mod.ts consumer reading
 *   the partition (long polls over HTTP, a push subscription over WebSocket); latency from
 *   send to delivery (one clock: both in this process);
 * - `e2e-floor`: the same shape with bare `fetch` against bench/_http_floor_server.ts: records
 *   POSTed as a batch, one request in flight (those sent meanwhile go in the next), the
 *   consumer long-polling `GET /0?offset=N`;
 * - `e2e-push`: the same, the records pushed to a push subscription of the WebSocket
 *   connection (`WsConnection.subscribe`, 32 pushes of credit, 16 granted back each time 16
 *   came) instead;
 * - `e2e-ws-floor`: the same shape with bare WebSockets against bench/_http_floor_server.ts:
 *   each record sent at once as its own message (a u32 partition and a one-record batch, acks
 *   pipelined), the consumer a second socket (`GET /ws?sub=0`) that the server sends each
 *   appended batch; both over the client's own socket (src/client/tcp_websocket.ts), the
 *   transport of the client's WebSocket connection in Deno;
 * - `crowd`: `clients` clients connected at once (`consumers` of them consumers that
 *   long-poll, the rest producers sending one record each `intervalMs`), connecting spread
 *   over `rampMs`, then all of them for `seconds`;
 * - `crowd-floor`: the same connections as bare WebSockets to the floor's fan-out
 *   (`GET /ws?fanout=<partition>&role=...`), spread over `partitions` as the crowd's: each
 *   producer's send (100 B each `intervalMs`) is appended and acknowledged, each consumer
 *   long-polls its partition from the latest offset (a u32 offset sent, answered with the
 *   records from there once there are any); `records` counts the records consumers received;
 * - `redis` / `e2e-redis`: the shapes of `send` and `e2e` against Redis Streams (`url`
 *   `redis://host:port`), the peer the issue measured Rill against, with its official Node
 *   client (node-redis): each producer its own connection awaiting each `XADD` of a `size`-byte
 *   value into stream `s{i % partitions}`; end to end, a consumer on a second connection
 *   reading the stream with `XREAD BLOCK` from the last entry it saw.
 *
 * @module
 */
import { Rill } from "../mod.ts";
import { WsConnection, type WsSubscription } from "../src/client/ws_connection.ts";
import { TcpWebSocket } from "../src/client/tcp_websocket.ts";
import { decodeBatch, encodeBatch, splitBatches } from "../src/protocol/record_batch.ts";
import { Buffer } from "node:buffer";

interface Settings {
  mode:
    | "send"
    | "floor-http"
    | "floor-http-minimal"
    | "floor-append"
    | "floor-ws"
    | "floor-ws-append"
    | "e2e"
    | "e2e-floor"
    | "e2e-push"
    | "e2e-ws-floor"
    | "crowd"
    | "crowd-floor"
    | "redis"
    | "e2e-redis";
  url: string;
  topic?: string;
  transport?: "http" | "ws";
  producers?: number;
  size?: number;
  seconds: number;
  rate?: number;
  clients?: number;
  consumers?: number;
  intervalMs?: number;
  partitions?: number;
  rampMs?: number;
  warmMs?: number;
  /** run in turns the bench asks for on stdin (see takeTurns) instead of one timed phase */
  turns?: boolean;
  /** the server's process id: its CPU is read when the timed phase starts and at the end */
  serverPid?: number;
}

const s: Settings = JSON.parse(Deno.args[0]);
/** How long each lane warms up before the timed phase (`warmMs`, default 1,000; see warmUp). */
const WARM_MS = s.warmMs ?? 1000;
/** The crowd's errors by what failed and their message (printed to stderr at the end). */
const errorKinds = new Map<string, number>();
function countError(what: string, e: unknown): void {
  const text = `${what}: ${e instanceof Error ? e.message : String(e)}`.slice(0, 160);
  errorKinds.set(text, (errorKinds.get(text) ?? 0) + 1);
}
const until = () => performance.now() < end;
let end = 0;

/** The CPU time of a process (this one by default) in ms, from /proc (10 ms ticks). */
function cpuMs(pid: number | "self" = "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

const latencies: number[] = [];
/** e2e: each send's acknowledgement latency */
const acks: number[] = [];
let records = 0;
let errors = 0;
/** This process's CPU, and the server's (`serverPid`), when the timed phase starts (warmUp). */
let cpu0 = cpuMs();
let serverCpu0 = s.serverPid === undefined ? 0 : cpuMs(s.serverPid);
let t0 = performance.now();

/**
 * The warm-up of every mode that times single round trips (`send` and its floors), the same
 * for each contender: each of `lanes` (producers, sockets) makes at least 20 round trips and
 * keeps going until {@linkcode WARM_MS} have passed, so that the code on the path is compiled
 * by the optimizing JIT in the client (a fresh process) and the server before the timing
 * starts (20 round trips alone left a broker's far longer path still being compiled).
 */
async function warmUp(lanes: number, one: (lane: number) => Promise<unknown>): Promise<void> {
  const stop = performance.now() + WARM_MS;
  await Promise.all(Array.from({ length: lanes }, async (_, i) => {
    for (let j = 0; j < 20 || performance.now() < stop; j++) await one(i);
  }));
  // The CPU figures per record count from here: the warm-up's CPU is not in them.
  cpu0 = cpuMs();
  if (s.serverPid !== undefined) serverCpu0 = cpuMs(s.serverPid);
}

/** A workload of single round trips (`send` and its floors): its lanes and one round trip. */
interface RoundTrips {
  lanes: number;
  one: (lane: number) => Promise<unknown>;
  close: () => Promise<void>;
  /** whether a failed round trip is counted as an error (the producers) or fails the run */
  failures: "count" | "throw";
}

/** A connected node-redis client of `url` (modes `redis` and `e2e-redis`). */
async function redisClient() {
  // Loaded only by the Redis modes: the other workers need not load the npm package.
  const { createClient } = await import("redis");
  const client = createClient({ url: s.url });
  client.on("error", (e) => countError("redis", e));
  await client.connect();
  return client;
}

/** The lanes and round trip of the mode (`send` and its floors). */
async function roundTripMode(): Promise<RoundTrips> {
  const lanes = s.producers ?? 1;
  if (s.mode === "send") {
    const value = new Uint8Array(s.size ?? 1024).fill(120);
    const producers = Array.from(
      { length: lanes },
      () => new Rill({ brokers: [s.url], transport: s.transport }).producer({ acks: 1 }),
    );
    const sends = producers.map((_, i) => ({
      topic: s.topic!,
      messages: [{ value, partition: i % (s.partitions ?? 1) }],
    }));
    return {
      lanes,
      one: (i) => producers[i].send(sends[i]),
      close: async () => void await Promise.all(producers.map((p) => p.disconnect())),
      failures: "count",
    };
  }
  if (s.mode === "redis") {
    const value = Buffer.alloc(s.size ?? 1024, 120);
    const clients = await Promise.all(Array.from({ length: lanes }, () => redisClient()));
    return {
      lanes,
      one: (i) => clients[i].xAdd(`s${i % (s.partitions ?? 1)}`, "*", { v: value }),
      close: async () => void await Promise.all(clients.map((c) => c.quit())),
      failures: "throw",
    };
  }
  if (s.mode === "floor-http-minimal") {
    const body = new Uint8Array(s.size ?? 1024).fill(120);
    const headers = { "prefer": "return=minimal" };
    return {
      lanes,
      one: async () => {
        const res = await fetch(`${s.url}/p`, { method: "POST", body, headers });
        if (res.status !== 204) throw new Error(`floor: ${res.status} ${await res.text()}`);
        if (!(Number(res.headers.get("rill-base-offset")) >= 0)) {
          throw new Error("floor: no offset");
        }
      },
      close: () => Promise.resolve(),
      failures: "throw",
    };
  }
  if (s.mode === "floor-http" || s.mode === "floor-append") {
    // floor-append: one record of `size` bytes in a RecordBatch, to partition 0 of
    // bench/_http_floor_server.ts, which checks its CRC and appends it to a PartitionLog.
    const body = s.mode === "floor-http"
      ? new Uint8Array(s.size ?? 1024).fill(120)
      : encodeBatch([{ value: new Uint8Array(s.size ?? 1024).fill(120) }]) as Uint8Array<
        ArrayBuffer
      >;
    const path = s.mode === "floor-http" ? "/p" : "/0";
    return {
      lanes,
      one: async () => {
        const res = await fetch(`${s.url}${path}`, { method: "POST", body });
        if (!res.ok) throw new Error(`floor: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      },
      close: () => Promise.resolve(),
      failures: "throw",
    };
  }
  if (s.mode === "floor-ws") {
    const message = new Uint8Array(s.size ?? 1024).fill(120);
    const sockets = await Promise.all(Array.from({ length: lanes }, async () => {
      const socket = new WebSocket(`${s.url.replace("http", "ws")}/ws`);
      socket.binaryType = "arraybuffer";
      await new Promise((r) => socket.onopen = r);
      return socket;
    }));
    return {
      lanes,
      one: (i) =>
        new Promise<void>((resolve) => {
          sockets[i].onmessage = () => resolve();
          sockets[i].send(message);
        }),
      close: () => {
        for (const socket of sockets) socket.close();
        return Promise.resolve();
      },
      failures: "throw",
    };
  }
  // floor-ws-append
  const batch = encodeBatch([{ value: new Uint8Array(s.size ?? 1024).fill(120) }]);
  const messages = Array.from({ length: s.partitions ?? 1 }, (_, p) => {
    const m = new Uint8Array(4 + batch.byteLength);
    new DataView(m.buffer).setUint32(0, p);
    m.set(batch, 4);
    return m;
  });
  // The client's own socket in Deno (TCP_NODELAY; Deno's WebSocket writes a message over
  // 1 KiB in two writes that wait for a delayed ACK): the same transport as the producers'.
  const sockets = await Promise.all(Array.from({ length: lanes }, async () => {
    const socket: { ack?: () => void; closed?: string } = {};
    const ws = await TcpWebSocket.open(`${s.url.replace("http", "ws")}/ws`, [], {}, {
      onMessage: () => socket.ack?.(),
      onClose: (code, reason) => {
        socket.closed = `floor: closed ${code} ${reason}`;
        socket.ack?.();
      },
    });
    return { ws, socket };
  }));
  return {
    lanes,
    one: (i) => {
      const { ws, socket } = sockets[i];
      return new Promise<void>((resolve, reject) => {
        socket.ack = () =>
          socket.closed === undefined ? resolve() : reject(new Error(socket.closed));
        ws.send(messages[i % messages.length]);
      });
    },
    close: () => {
      for (const { ws, socket } of sockets) {
        socket.closed = "done";
        ws.close(1000);
      }
      return Promise.resolve();
    },
    failures: "throw",
  };
}

/** Every lane making round trips until `end`, each timed and counted. */
async function timedLoops(
  lanes: number,
  one: (lane: number) => Promise<unknown>,
  failures: "count" | "throw",
): Promise<void> {
  await Promise.all(Array.from({ length: lanes }, async (_, i) => {
    while (until()) {
      const t = performance.now();
      try {
        await one(i);
      } catch (e) {
        if (failures === "throw") throw e;
        errors++;
        continue;
      }
      latencies.push(performance.now() - t);
      records++;
    }
  }));
}

/** `turns`: the CPU and time of the counted turns, summed (printed instead of the phase's). */
const turnTotals = { seconds: 0, cpuMs: 0, serverCpuMs: 0 };

/**
 * `turns`: after the warm-up, the worker prints `{"ready":true}` and then runs its workload
 * in turns that the bench asks for on stdin, one line each: `run <ms> <counted 0|1>` runs it
 * for `ms` (`run`) and prints the turn's `{"turn":{records,seconds,cpuMs,serverCpuMs,p50,p99}}`
 * (an uncounted turn's records are left out of the totals and percentiles); `end` ends. The
 * bench alternates contenders turn by turn (bench/_clients_turns.ts).
 */
async function takeTurns(run: (ms: number) => Promise<void>): Promise<void> {
  console.log(JSON.stringify({ ready: true }));
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    let nl: number;
    while ((nl = buffered.indexOf("\n")) < 0) {
      const { value, done } = await lines.read();
      if (done) return;
      buffered += value;
    }
    const [command, ms, counted] = buffered.slice(0, nl).trim().split(" ");
    buffered = buffered.slice(nl + 1);
    if (command !== "run") return;
    const before = { records, errors, latencies: latencies.length };
    const c0 = cpuMs();
    const sc0 = s.serverPid === undefined ? 0 : cpuMs(s.serverPid);
    const start = performance.now();
    await run(Number(ms));
    const mine = latencies.slice(before.latencies).sort((a, b) => a - b);
    const turn = {
      records: records - before.records,
      seconds: (performance.now() - start) / 1000,
      cpuMs: cpuMs() - c0,
      serverCpuMs: s.serverPid === undefined ? 0 : cpuMs(s.serverPid) - sc0,
      p50: percentile(mine, 0.5),
      p99: percentile(mine, 0.99),
    };
    if (counted === "1") {
      turnTotals.seconds += turn.seconds;
      turnTotals.cpuMs += turn.cpuMs;
      turnTotals.serverCpuMs += turn.serverCpuMs;
    } else {
      records = before.records;
      errors = before.errors;
      latencies.length = before.latencies;
    }
    console.log(JSON.stringify({ turn }));
  }
}

if (
  s.mode === "send" || s.mode === "floor-http-minimal" || s.mode === "floor-http" ||
  s.mode === "floor-append" || s.mode === "floor-ws" || s.mode === "floor-ws-append" ||
  s.mode === "redis"
) {
  const { lanes, one, close, failures } = await roundTripMode();
  await warmUp(lanes, one);
  if (s.turns) {
    await takeTurns((ms) => {
      end = performance.now() + ms;
      return timedLoops(lanes, one, failures);
    });
  } else {
    t0 = performance.now();
    end = t0 + s.seconds * 1000;
    await timedLoops(lanes, one, failures);
  }
  await close();
} else if (
  s.mode === "e2e" || s.mode === "e2e-push" || s.mode === "e2e-floor" ||
  s.mode === "e2e-ws-floor" || s.mode === "e2e-redis"
) {
  let send: (value: string) => Promise<unknown>;
  let stopProducer: () => Promise<void>;
  if (s.mode === "e2e-floor") {
    // One request in flight; records sent meanwhile go together in the next one. (Bare
    // fetch with a request per record in flight at 2,000/s collapses: thousands pending,
    // seconds each. The client producer bounds its requests in flight likewise.)
    const encoder = new TextEncoder();
    type Queued = { value: string; done: (e?: unknown, answer?: unknown) => void };
    let queued: Queued[] = [];
    let busy = false;
    const flush = async () => {
      busy = true;
      while (queued.length > 0) {
        const batch = queued;
        queued = [];
        try {
          const records = batch.map((q) => ({ value: encoder.encode(q.value) }));
          const body = encodeBatch(records) as Uint8Array<ArrayBuffer>;
          const res = await fetch(`${s.url}/0`, { method: "POST", body });
          if (!res.ok) throw new Error(`floor: ${res.status} ${await res.text()}`);
          const answer = await res.json();
          for (const q of batch) q.done(undefined, answer);
        } catch (e) {
          for (const q of batch) q.done(e);
        }
      }
      busy = false;
    };
    send = (value) =>
      new Promise((resolve, reject) => {
        queued.push({ value, done: (e, answer) => e === undefined ? resolve(answer) : reject(e) });
        if (!busy) void flush();
      });
    stopProducer = () => Promise.resolve();
  } else if (s.mode === "e2e-ws-floor") {
    // Each record its own message at once; the acks come back in order.
    const encoder = new TextEncoder();
    const acked: { resolve: (offset: number) => void; reject: (e: Error) => void }[] = [];
    let closed: string | undefined;
    const ws = await TcpWebSocket.open(`${s.url.replace("http", "ws")}/ws`, [], {}, {
      onMessage: (m) => acked.shift()?.resolve(new DataView(m.buffer, m.byteOffset).getFloat64(0)),
      onClose: (code, reason) => {
        closed = `floor: closed ${code} ${reason}`;
        for (const a of acked.splice(0)) a.reject(new Error(closed));
      },
    });
    send = (value) =>
      new Promise((resolve, reject) => {
        if (closed !== undefined) return reject(new Error(closed));
        const batch = encodeBatch([{ value: encoder.encode(value) }]);
        const message = new Uint8Array(4 + batch.byteLength);
        message.set(batch, 4);
        acked.push({ resolve: (baseOffset) => resolve({ baseOffset }), reject });
        ws.send(message);
      });
    stopProducer = () => {
      closed = "done";
      ws.close(1000);
      return Promise.resolve();
    };
  } else if (s.mode === "e2e-redis") {
    const client = await redisClient();
    send = (value) => client.xAdd("e2e", "*", { v: value });
    stopProducer = () => client.quit().then(() => {});
  } else {
    const producer = new Rill({ brokers: [s.url], transport: s.transport }).producer({ acks: 1 });
    send = (value) => producer.send({ topic: s.topic!, messages: [{ value }] });
    stopProducer = () => producer.disconnect();
  }
  const warm = await send("warm");
  let counting = false;
  const seen = (value: string) => {
    const sent = Number(value);
    if (counting && sent > 0) {
      latencies.push(performance.now() - sent);
      records++;
    }
  };
  let stop: () => Promise<void>;
  if (s.mode === "e2e") {
    const consumer = new Rill({ brokers: [s.url], transport: s.transport }).consumer({
      maxWaitMs: 1000,
    });
    await consumer.assign([{ topic: s.topic!, partition: 0, offset: "latest" }]);
    await consumer.run({ eachMessage: ({ message }) => seen(message.valueString() ?? "") });
    stop = () => consumer.disconnect();
  } else if (s.mode === "e2e-floor") {
    const decoder = new TextDecoder();
    const abort = new AbortController();
    let offset = (warm as { baseOffset: number }).baseOffset + 1;
    const polls = (async () => {
      while (!abort.signal.aborted) {
        const res = await fetch(`${s.url}/0?offset=${offset}`, { signal: abort.signal });
        const bytes = new Uint8Array(await res.arrayBuffer());
        for (const b of splitBatches(bytes)) {
          for (const r of decodeBatch(b).records) {
            if (r.offset >= offset) seen(decoder.decode(r.value!));
          }
        }
        offset = Number(res.headers.get("rill-next-offset"));
      }
    })().catch((e) => {
      if (!abort.signal.aborted) throw e;
    });
    stop = async () => {
      abort.abort();
      await polls;
    };
  } else if (s.mode === "e2e-redis") {
    // A blocking read holds its connection: the consumer has one of its own.
    const client = await redisClient();
    let last = warm as string;
    let stopped = false;
    const reads = (async () => {
      while (!stopped) {
        // RESP2's answer: the streams read, each with its entries (typed loosely by node-redis).
        const streams = await client.xRead({ key: "e2e", id: last }, {
          BLOCK: 200,
          COUNT: 1000,
        }) as { messages: { id: string; message: Record<string, string> }[] }[] | null;
        for (const stream of streams ?? []) {
          for (const entry of stream.messages) {
            seen(String(entry.message.v));
            last = entry.id;
          }
        }
      }
    })();
    stop = async () => {
      stopped = true;
      await reads;
      await client.quit();
    };
  } else if (s.mode === "e2e-ws-floor") {
    // Every batch appended to partition 0, as the server appended it.
    const decoder = new TextDecoder();
    const ws = await TcpWebSocket.open(`${s.url.replace("http", "ws")}/ws?sub=0`, [], {}, {
      onMessage: (m) => {
        for (const r of decodeBatch(m).records) seen(decoder.decode(r.value!));
      },
      onClose: () => {},
    });
    stop = () => {
      ws.close(1000);
      return Promise.resolve();
    };
  } else {
    const conn = await WsConnection.open(s.url);
    const decoder = new TextDecoder();
    // Credit granted back in batches (half of it once half is spent): a credit frame per
    // push cost the client a socket write and the broker a frame for each record. Pushes may
    // come before subscribe() resolves: credit owed until then.
    const held: { sub?: WsSubscription } = {};
    let owed = 0;
    const sub = await conn.subscribe(
      { partitions: [{ topic: s.topic!, partition: 0, offset: 0 }], credit: 32 },
      (answer) => {
        for (const p of answer.partitions) {
          if (p.error !== undefined) continue;
          for (const b of splitBatches(p.bytes)) {
            for (const r of decodeBatch(b).records) seen(decoder.decode(r.value!));
          }
        }
        owed++;
        if (held.sub !== undefined && owed >= 16) {
          held.sub.grant(owed);
          owed = 0;
        }
      },
    );
    held.sub = sub;
    const subscription = sub;
    stop = async () => {
      await subscription.cancel();
      conn.close();
    };
  }
  // Warm up (`warmMs`, default half a second), then count.
  const rate = s.rate ?? 2000;
  const sendFor = async (ms: number) => {
    const start = performance.now();
    let n = 0;
    const pending = new Set<Promise<unknown>>();
    while (performance.now() - start < ms) {
      const due = start + n * 1000 / rate;
      const wait = due - performance.now();
      if (wait > 1) {
        await new Promise((r) => setTimeout(r, wait - 0.5));
        continue;
      }
      const sent = performance.now();
      const p = send(String(sent))
        .then(() => counting && acks.push(performance.now() - sent))
        .catch(() => errors++).finally(() => pending.delete(p));
      pending.add(p);
      n++;
    }
    await Promise.all(pending);
  };
  /** Sends for `ms`, counting, and waits (≤ 2 s) until 99% of what was sent was seen. */
  const countedFor = async (ms: number) => {
    const seen0 = records;
    counting = true;
    await sendFor(ms);
    const settleUntil = performance.now() + 2000;
    while (records - seen0 < (ms / 1000 * rate) * 0.99 && performance.now() < settleUntil) {
      await new Promise((r) => setTimeout(r, 10));
    }
    counting = false;
  };
  await sendFor(s.warmMs ?? 500);
  if (s.turns) await takeTurns(countedFor);
  else {
    t0 = performance.now();
    await countedFor(s.seconds * 1000);
  }
  await stopProducer();
  await stop();
} else if (s.mode === "crowd") {
  const clients = s.clients ?? 1000;
  const consumers = s.consumers ?? 0;
  const partitions = s.partitions ?? 1;
  const value = new Uint8Array(100).fill(120);
  end = performance.now() + (s.rampMs ?? 0) + s.seconds * 1000;
  const tasks: Promise<void>[] = [];
  const rampMs = s.rampMs ?? 0;
  for (let i = 0; i < clients; i++) {
    // Clients connect spread over the ramp, as a fleet of devices does.
    if (rampMs > 0) {
      const due = t0 + (i / clients) * rampMs;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    const rill = new Rill({ brokers: [s.url], transport: s.transport });
    if (i < consumers) {
      tasks.push(
        (async () => {
          const consumer = rill.consumer({ maxWaitMs: 2000 });
          await consumer.assign([{ topic: s.topic!, partition: i % partitions, offset: "latest" }]);
          await consumer.run({
            eachMessage: () => {
              records++;
            },
          });
          while (until()) await new Promise((r) => setTimeout(r, 200));
          await consumer.disconnect();
        })().catch((e) => {
          errors++;
          countError("consumer", e);
        }),
      );
    } else {
      tasks.push((async () => {
        const producer = rill.producer({ acks: 1, idempotent: false });
        // Spread the sends over the interval.
        await new Promise((r) => setTimeout(r, Math.random() * (s.intervalMs ?? 1000)));
        while (until()) {
          const t = performance.now();
          try {
            await producer.send({
              topic: s.topic!,
              messages: [{ value, partition: i % partitions }],
            });
            latencies.push(performance.now() - t);
          } catch (e) {
            errors++;
            countError("send", e);
          }
          await new Promise((r) => setTimeout(r, s.intervalMs ?? 1000));
        }
        await producer.disconnect();
      })());
    }
  }
  console.error(`crowd: ${clients} clients started`);
  await Promise.all(tasks);
  if (errorKinds.size > 0) console.error("crowd errors:", Object.fromEntries(errorKinds));
} else if (s.mode === "crowd-floor") {
  const clients = s.clients ?? 1000;
  const consumers = s.consumers ?? 0;
  const partitions = s.partitions ?? 1;
  const message = new Uint8Array(100).fill(120);
  const rampMs = s.rampMs ?? 0;
  end = performance.now() + rampMs + s.seconds * 1000;
  const tasks: Promise<void>[] = [];
  for (let i = 0; i < clients; i++) {
    if (rampMs > 0) {
      const wait = t0 + (i / clients) * rampMs - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    tasks.push(
      (async () => {
        const role = i < consumers ? "consumer" : "producer";
        const socket = new WebSocket(
          `${s.url.replace("http", "ws")}/ws?fanout=${i % partitions}&role=${role}`,
        );
        socket.binaryType = "arraybuffer";
        await new Promise((r, j) => {
          socket.onopen = r;
          socket.onerror = j;
        });
        if (i >= consumers) {
          await new Promise((r) => setTimeout(r, Math.random() * (s.intervalMs ?? 1000)));
          while (until()) {
            const t = performance.now();
            await new Promise<void>((resolve) => {
              socket.onmessage = () => resolve();
              socket.send(message);
            });
            latencies.push(performance.now() - t);
            await new Promise((r) => setTimeout(r, s.intervalMs ?? 1000));
          }
        } else {
          const poll = new Uint8Array(4);
          const view = new DataView(poll.buffer);
          socket.onmessage = (e) => {
            const answer = new DataView(e.data as ArrayBuffer);
            records += answer.getUint32(0);
            view.setUint32(0, answer.getUint32(4));
            socket.send(poll);
          };
          view.setUint32(0, 0xffffffff);
          socket.send(poll);
          while (until()) await new Promise((r) => setTimeout(r, 200));
        }
        const closed = new Promise((r) => socket.onclose = r);
        socket.close();
        await closed;
      })().catch(() => {
        errors++;
      }),
    );
  }
  await Promise.all(tasks);
}

const seconds = s.turns ? turnTotals.seconds : (performance.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
console.log(JSON.stringify({
  records,
  errors,
  seconds,
  rate: records / seconds,
  p50: percentile(latencies, 0.5),
  p99: percentile(latencies, 0.99),
  cpuMs: s.turns ? turnTotals.cpuMs : cpuMs() - cpu0,
  serverCpuMs: s.serverPid === undefined
    ? undefined
    : s.turns
    ? turnTotals.serverCpuMs
    : cpuMs(s.serverPid) - serverCpu0,
  sends: latencies.length,
  ackP50: acks.length > 0 ? acks.sort((a, b) => a - b)[acks.length >> 1] : undefined,
}));
Deno.exit(0);
