/**
 * The mod.ts consumer over WebSocket reads through push subscriptions (src/client/push_loop.ts)
 * where the broker offers them: pause/resume and seek per partition, a consumer that stops
 * reading holds the broker to its credit, and a broker whose hello does not list `subscribe`
 * is long-polled.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { PUSH_CREDIT } from "../../src/client/push_loop.ts";
import { decodeFrame, encodeFrame, WS_PATH, WS_SUBPROTOCOL } from "../../src/protocol/ws_frames.ts";
import { serveBroker } from "./_served.ts";

/** The value of a metric series in the broker's /metrics text (0 when absent). */
async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** Records seen by a handler, with a way to await a condition on them. */
function seenLog() {
  const seen: string[] = [];
  let waiters: { ok: () => boolean; resolve: () => void }[] = [];
  return {
    seen,
    add(x: string) {
      seen.push(x);
      const ready = waiters.filter((w) => w.ok());
      waiters = waiters.filter((w) => !w.ok());
      for (const w of ready) w.resolve();
    },
    until(ok: () => boolean): Promise<void> {
      if (ok()) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ ok, resolve }));
    },
  };
}

Deno.test("ws consumer push: pause/resume and seek per partition re-make one subscription; no long poll", async () => {
  await using s = await serveBroker();
  await s.topic("t", 2);
  const producer = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  const consumer = new Rill({ brokers: [s.url] }).consumer({ maxWaitMs: 5000 });
  const log = seenLog();
  try {
    await consumer.assign([
      { topic: "t", partition: 0, offset: "earliest" },
      { topic: "t", partition: 1, offset: "earliest" },
    ]);
    await consumer.run({
      eachMessage: ({ partition, message }) => log.add(`${partition}:${message.valueString()}`),
    });
    await producer.send({ topic: "t", messages: [{ value: "a0", partition: 0 }] });
    await producer.send({ topic: "t", messages: [{ value: "b0", partition: 1 }] });
    await log.until(() => log.seen.length === 2);

    // Paused: partition 0's record, appended first, does not come; partition 1's does.
    consumer.pause([{ topic: "t", partitions: [0] }]);
    await producer.send({ topic: "t", messages: [{ value: "a1", partition: 0 }] });
    await producer.send({ topic: "t", messages: [{ value: "b1", partition: 1 }] });
    await log.until(() => log.seen.includes("1:b1"));
    assert.ok(!log.seen.includes("0:a1"), "nothing of a paused partition is delivered");
    consumer.resume([{ topic: "t", partitions: [0] }]);
    await log.until(() => log.seen.includes("0:a1"));

    // Sought back: partition 1 is read again from 0, partition 0 goes on where it was.
    await consumer.seek({ topic: "t", partition: 1, offset: 0 });
    await producer.send({ topic: "t", messages: [{ value: "a2", partition: 0 }] });
    await log.until(() =>
      log.seen.filter((x) => x.startsWith("1:")).length === 4 && log.seen.includes("0:a2")
    );
    assert.deepEqual(log.seen.filter((x) => x.startsWith("0:")), ["0:a0", "0:a1", "0:a2"]);
    assert.deepEqual(log.seen.filter((x) => x.startsWith("1:")), ["1:b0", "1:b1", "1:b0", "1:b1"]);

    // Read through subscriptions (one at a time, re-made on pause, resume and seek), never
    // a long poll or a fetch session.
    const subscribes = await metric(
      s.url,
      'rill_requests_total{api="ws",route="subscribe",status="200"}',
    );
    assert.ok(subscribes >= 4, `subscribed ${subscribes} times`);
    assert.equal(
      await metric(s.url, 'rill_requests_total{api="ws",route="fetch",status="200"}'),
      0,
    );
    assert.equal(s.broker.fetchSessions.size, 0);
    assert.equal(s.ws!.connections, 1, "the consumer's one connection");
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
  while (s.ws!.connections > 0) await new Promise((r) => setTimeout(r, 5));
});

Deno.test("ws consumer push: a consumer that stops reading holds the broker to its credit", async () => {
  await using s = await serveBroker();
  await s.topic("slow", 1);
  const producer = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  // maxBytes 1: each push carries one batch (the first batch comes whole).
  const consumer = new Rill({ brokers: [s.url] }).consumer({ maxBytes: 1, maxBufferedBatches: 2 });
  let release!: () => void;
  const blocked = new Promise<void>((r) => release = r);
  const log = seenLog();
  const out = 'rill_topic_out_records_total{topic="slow"}';
  try {
    await consumer.assign([{ topic: "slow", partition: 0, offset: "earliest" }]);
    await consumer.run({
      eachMessage: async ({ message }) => {
        log.add(message.valueString()!);
        await blocked;
      },
    });
    const n = PUSH_CREDIT + 40;
    for (let i = 0; i < n; i++) {
      await producer.send({ topic: "slow", messages: [{ value: `r${i}`.padEnd(1000, ".") }] });
    }
    // The handler holds the first record: the broker pushes what the credit allows (the
    // consumer grants none back while its buffer is full), then reads nothing more.
    const bound = PUSH_CREDIT;
    while (await metric(s.url, out) < bound) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 300));
    const read = await metric(s.url, out);
    assert.ok(read <= bound, `the broker read ${read} records for a consumer that reads none`);
    assert.equal(log.seen.length, 1);
    // Reading again: every record comes, in order, once.
    release();
    await log.until(() => log.seen.length === n);
    assert.deepEqual(
      log.seen.map((v) => v.replace(/\.+$/, "")),
      [...Array(n).keys()].map((i) => `r${i}`),
    );
  } finally {
    release();
    await consumer.disconnect();
    await producer.disconnect();
  }
});

/**
 * A relay in front of a broker's WebSocket endpoint whose hello answer lists no `subscribe`
 * (as a broker from before push subscriptions): everything else passes unchanged.
 */
function relayWithoutPush(target: string): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname !== WS_PATH || req.headers.get("upgrade") !== "websocket") {
      return fetch(`${target}${url.pathname}${url.search}`, {
        method: req.method,
        headers: req.headers,
        body: req.body,
      });
    }
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol: WS_SUBPROTOCOL });
    const upstream = new WebSocket(target.replace("http", "ws") + WS_PATH, [WS_SUBPROTOCOL]);
    upstream.binaryType = "arraybuffer";
    socket.binaryType = "arraybuffer";
    const early: ArrayBuffer[] = [];
    socket.onmessage = (e) => {
      if (upstream.readyState === WebSocket.OPEN) upstream.send(e.data);
      else early.push(e.data);
    };
    upstream.onopen = () => {
      for (const m of early.splice(0)) upstream.send(m);
    };
    upstream.onmessage = (e) => {
      let message = new Uint8Array(e.data as ArrayBuffer);
      if (message[0] !== 0xff) {
        const { header, payload } = decodeFrame(message);
        if (header.op === "hello" && Array.isArray(header.ops)) {
          header.ops = header.ops.filter((op) => op !== "subscribe" && op !== "credit");
          message = encodeFrame(header, [payload]);
        }
      }
      if (socket.readyState === WebSocket.OPEN) socket.send(message);
    };
    upstream.onclose = () => socket.close();
    socket.onclose = () => upstream.close();
    return response;
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  };
}

Deno.test("ws consumer push: a broker that does not offer push subscriptions is long-polled", async () => {
  await using s = await serveBroker();
  await s.topic("old", 1);
  const relay = relayWithoutPush(s.url);
  const producer = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  const consumer = new Rill({ brokers: [relay.url], transport: "ws" }).consumer();
  const log = seenLog();
  try {
    await consumer.assign([{ topic: "old", partition: 0, offset: "earliest" }]);
    await consumer.run({ eachMessage: ({ message }) => log.add(message.valueString()!) });
    for (let i = 0; i < 3; i++) {
      await producer.send({ topic: "old", messages: [{ value: `v${i}` }] });
    }
    await log.until(() => log.seen.length === 3);
    assert.deepEqual(log.seen, ["v0", "v1", "v2"]);
    assert.equal(
      await metric(s.url, 'rill_requests_total{api="ws",route="subscribe",status="200"}'),
      0,
    );
    assert.ok(await metric(s.url, 'rill_requests_total{api="ws",route="fetch",status="200"}') >= 1);
    assert.equal(s.broker.fetchSessions.size, 1, "its long poll's fetch session");
    await consumer.disconnect();
    while (s.ws!.connections > 0) await new Promise((r) => setTimeout(r, 5));
    // Its session was closed over its own connection before it closed, not by an HTTP
    // request (a TCP connection of its own for each consumer that stopped).
    assert.equal(s.broker.fetchSessions.size, 0);
    assert.doesNotMatch(await (await fetch(`${s.url}/metrics`)).text(), /route="\/v1\/fetch"/);
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
    await relay.close();
  }
});
