/**
 * The consumer's fetching through fetch sessions (src/client/session_fetcher.ts): one long
 * poll per broker for all its partitions, and fair delivery across partitions (issue 14,
 * D5: a hot partition's backlog must not hold a quiet partition back).
 */
import assert from "node:assert/strict";
import { type FetchFn, Rill } from "../../mod.ts";
import { TURN_RECORDS } from "../../src/client/consumer_fetches.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { openTestBroker, type TestBroker } from "../http/_app.ts";
import { serveBroker } from "../ws/_served.ts";
import { WsConnection } from "../../src/client/ws_connection.ts";

const enc = new TextEncoder();

/** Serves a test broker's app on a loopback port. */
function serve(t: TestBroker): { url: string; [Symbol.asyncDispose](): Promise<void> } {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req, info) => t.app.fetch(req, info),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

/** Counts fetch requests in flight at once, by kind. */
function countingFetch(): {
  fetch: FetchFn;
  maxInFlight: () => number;
  perPartition: () => number;
} {
  let inFlight = 0;
  let max = 0;
  let perPartition = 0;
  return {
    fetch: async (input, init) => {
      const url = String(input);
      const multi = url.endsWith("/v1/fetch") && init?.method === "POST";
      if (/\/partitions\/\d+\/records/.test(url) && (init?.method ?? "GET") === "GET") {
        perPartition++;
      }
      // The session's closing request (epoch -1) may overlap the aborted long poll.
      if (!multi || String(init?.body).includes('"epoch":-1')) return await fetch(input, init);
      inFlight++;
      max = Math.max(max, inFlight);
      try {
        const res = await fetch(input, init);
        const body = new Uint8Array(await res.arrayBuffer());
        return new Response(body, { status: res.status, headers: res.headers });
      } finally {
        inFlight--;
      }
    },
    maxInFlight: () => max,
    perPartition: () => perPartition,
  };
}

Deno.test("a consumer of 12 partitions holds one long poll to its broker, and reads every record once, in order", async () => {
  await using t = await openTestBroker();
  await using server = serve(t);
  await t.broker.createTopic({ name: "wide", partitions: 12 });
  for (let p = 0; p < 12; p++) {
    const records = Array.from({ length: 50 }, (_, i) => ({ value: enc.encode(`${p}:${i}`) }));
    await t.broker.produceBatches("wide", p, encodeBatch(records), 1);
  }
  const counter = countingFetch();
  const rill = new Rill({ brokers: [server.url], fetch: counter.fetch });
  const consumer = rill.consumer({ maxWaitMs: 200 });
  await consumer.assign(
    Array.from({ length: 12 }, (_, p) => ({ topic: "wide", partition: p, offset: "earliest" })),
  );
  const seen = new Map<number, number[]>();
  let total = 0;
  let late = false;
  for await (const m of consumer) {
    const list = seen.get(m.partition) ?? [];
    list.push(m.offset);
    seen.set(m.partition, list);
    total++;
    if (total === 600 && !late) {
      // One more record after the backlog: the waiting long poll delivers it.
      late = true;
      await t.broker.produceBatches("wide", 7, encodeBatch([{ value: enc.encode("late") }]), 1);
    }
    if (total === 601) break;
  }
  for (let p = 0; p < 12; p++) {
    const want = Array.from({ length: p === 7 ? 51 : 50 }, (_, i) => i);
    assert.deepEqual(seen.get(p), want, `partition ${p}: each record once, in order`);
  }
  assert.equal(counter.maxInFlight(), 1, "one fetch in flight to the broker at a time");
  assert.equal(counter.perPartition(), 0, "no per-partition long polls");
  assert.ok(t.broker.fetchSessions.size <= 1, "the session is closed or the only one");
});

Deno.test("D5: a hot partition's 4,000-record chunk does not hold a quiet partition back", async () => {
  await using t = await openTestBroker();
  await using server = serve(t);
  await t.broker.createTopic({ name: "skew", partitions: 2 });
  for (let b = 0; b < 4; b++) {
    const records = Array.from({ length: 1000 }, (_, i) => ({
      value: enc.encode(`hot-${b * 1000 + i}`),
    }));
    await t.broker.produceBatches("skew", 0, encodeBatch(records), 1);
  }
  await t.broker.produceBatches("skew", 1, encodeBatch([{ value: enc.encode("quiet") }]), 1);
  // One fetch answers both partitions, so both chunks are queued before delivery starts.
  {
    const consumer = new Rill({ brokers: [server.url] }).consumer({ maxWaitMs: 100 });
    await consumer.assign([
      { topic: "skew", partition: 0, offset: "earliest" },
      { topic: "skew", partition: 1, offset: "earliest" },
    ]);
    const order: string[] = [];
    let quietAt = -1;
    const done = Promise.withResolvers<void>();
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        order.push(`${partition}:${message.offset}`);
        if (partition === 1) quietAt = order.length - 1;
        if (order.length === 4001) done.resolve();
        await Promise.resolve();
      },
    });
    await done.promise;
    await consumer.stop();
    assert.ok(quietAt >= 0, "the quiet record came");
    const hot = order.filter((o) => o.startsWith("0:")).map((o) => Number(o.slice(2)));
    assert.deepEqual(hot, Array.from({ length: 4000 }, (_, i) => i), "hot records in order, once");
    // The hot partition's records were fetched as one 4,000-record chunk beside the quiet one.
    assert.ok(
      quietAt <= TURN_RECORDS,
      `the quiet record came after ${quietAt} hot records (at most ${TURN_RECORDS})`,
    );
  }
});

Deno.test("a batch that fails its CRC stops a session consumer: records before it are delivered, none after it", async () => {
  await using t = await openTestBroker();
  await using server = serve(t);
  await t.broker.createTopic({ name: "damaged", partitions: 2 });
  const batchOf = (from: number) =>
    encodeBatch(Array.from({ length: 3 }, (_, i) => ({ value: enc.encode(`r${from + i}`) })));
  const a = batchOf(0);
  const b = batchOf(3);
  await t.broker.produceBatches("damaged", 0, a, 1);
  await t.broker.produceBatches("damaged", 0, b, 1);
  await t.broker.produceBatches("damaged", 0, batchOf(6), 1);
  await t.broker.produceBatches("damaged", 1, batchOf(0), 1);
  // Flip one byte of the second batch's last record, on disk.
  const path = `${t.dataDir}/damaged-0/00000000000000000000.log`;
  const file = await Deno.open(path, { read: true, write: true });
  try {
    const at = a.length + b.length - 1;
    const byte = new Uint8Array(1);
    await file.seek(at, Deno.SeekMode.Start);
    await file.read(byte);
    byte[0] ^= 0xff;
    await file.seek(at, Deno.SeekMode.Start);
    await file.write(byte);
  } finally {
    file.close();
  }
  // One batch a fetch (maxBytes 1: the first batch whole), so the damaged batch comes alone,
  // with the next fetch on the wire while it is decoded.
  const consumer = new Rill({ brokers: [server.url] }).consumer({ maxWaitMs: 100, maxBytes: 1 });
  await consumer.assign([
    { topic: "damaged", partition: 0, offset: "earliest" },
    { topic: "damaged", partition: 1, offset: "earliest" },
  ]);
  const got: string[] = [];
  await assert.rejects(
    async () => {
      for await (const m of consumer) {
        got.push(`${m.partition}:${m.valueString()}`);
        // A record past the damaged batch: the consumer went on (the assertion below fails).
        if (m.partition === 0 && m.offset >= 3) break;
      }
    },
    (e: Error & { code?: string }) => e.code === "CORRUPT_MESSAGE",
  );
  const zero = got.filter((g) => g.startsWith("0:"));
  assert.deepEqual(zero, ["0:r0", "0:r1", "0:r2"], "partition 0 stops before the damaged batch");
});

Deno.test("a record trickling in reaches a waiting handler before the consumer sends its next fetch", async () => {
  await using served = await serveBroker();
  await served.topic("trickle");
  // Fetches the consumer sends over its WebSocket connection (counted as they are written)
  // and their answers (counted as they come).
  let sent = 0;
  let answered = 0;
  const fetchFrame = WsConnection.prototype.fetch;
  WsConnection.prototype.fetch = function (req) {
    sent++;
    return fetchFrame.call(this, req).finally(() => answered++);
  };
  try {
    const consumer = new Rill({ brokers: [served.url] }).consumer({ maxWaitMs: 10_000 });
    await consumer.assign([{ topic: "trickle", partition: 0, offset: 0 }]);
    // Fetches in flight when each record reached the handler.
    const inFlight: number[] = [];
    let handled: (() => void) | null = null;
    await consumer.run({
      eachMessage: () => {
        inFlight.push(sent - answered);
        handled?.();
      },
    });
    const batch = (i: number) => encodeBatch([{ value: enc.encode(`r${i}`) }]);
    for (let i = 0; i < 4; i++) {
      const got = new Promise<void>((resolve) => handled = resolve);
      await served.broker.produceBatches("trickle", 0, batch(i), 1);
      await got;
    }
    await consumer.disconnect();
    // Each record reached the handler before the next fetch was written.
    assert.deepEqual(inFlight, [0, 0, 0, 0]);
  } finally {
    WsConnection.prototype.fetch = fetchFrame;
  }
});

Deno.test("a synchronous eachMessage gets every record once, in order; pause, seek and a throw inside it act before the next record", async () => {
  await using served = await serveBroker();
  await served.topic("sync");
  await served.broker.produceBatches(
    "sync",
    0,
    encodeBatch(Array.from({ length: 20 }, (_, i) => ({ value: enc.encode(`r${i}`) }))),
    1,
  );
  const consumer = new Rill({ brokers: [served.url] }).consumer({ maxWaitMs: 100 });
  await consumer.assign([{ topic: "sync", partition: 0, offset: 0 }]);
  const seen: number[] = [];
  let seenAtResume: number[] = [];
  let positionAtPause = -1;
  let sought = false;
  let thrown = false;
  const done = Promise.withResolvers<void>();
  await consumer.run({
    // Synchronous: returns undefined, never a promise.
    eachMessage: ({ message }) => {
      seen.push(message.offset);
      if (message.offset === 4 && positionAtPause < 0) {
        positionAtPause = consumer.position("sync", 0)!;
        consumer.pause([{ topic: "sync" }]);
        setTimeout(() => {
          seenAtResume = [...seen];
          consumer.resume([{ topic: "sync" }]);
        }, 0);
      }
      if (message.offset === 9 && !sought) {
        sought = true;
        void consumer.seek({ topic: "sync", partition: 0, offset: 2 });
      }
      if (message.offset === 12 && !thrown) {
        thrown = true;
        throw new Error("once");
      }
      if (message.offset === 19) done.resolve();
    },
  });
  await done.promise;
  await consumer.disconnect();
  const range = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);
  assert.equal(positionAtPause, 4, "during its call the position is still the record's own offset");
  assert.deepEqual(seenAtResume, range(0, 4), "nothing delivered while paused");
  assert.deepEqual(
    seen,
    [...range(0, 9), ...range(2, 12), ...range(12, 19)],
    "in order; the seek takes effect after the call that made it; the record that threw comes again",
  );
});
