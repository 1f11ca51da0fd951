/**
 * The producer against a fake broker `fetch` (in-process): batching, partition choice,
 * offsets per message, retries, in-flight limits and input checks. The same behaviour
 * against a real broker process is in client_test.ts.
 */
import assert from "node:assert/strict";
import { Rill, RillError } from "../../mod.ts";
import { decodeBatch, readBatchHeader } from "../../src/protocol/record_batch.ts";
import { partitionForKey } from "../../src/protocol/murmur2.ts";

interface Seen {
  method: string;
  url: URL;
  records: { key: string | null; value: string | null }[];
  bytes: number;
}

const dec = new TextDecoder();

/** A fake broker: topic "t" with `partitions` partitions; `fail` may answer an error. */
function fakeBroker(partitions: number, fail?: (n: number) => Response | undefined) {
  const seen: Seen[] = [];
  const next = new Array(partitions).fill(0);
  let inFlight = 0;
  let maxInFlight = 0;
  let posts = 0;
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? "GET";
    if (method === "GET") {
      seen.push({ method, url, records: [], bytes: 0 });
      return Response.json({
        name: "t",
        replicationFactor: 1,
        configs: {},
        partitions: Array.from({ length: partitions }, (_, p) => ({
          partition: p,
          leader: 1,
          replicas: [1],
          isr: [1],
          logStartOffset: 0,
          highWatermark: next[p],
        })),
      });
    }
    if (url.pathname === "/v1/producers") {
      return Response.json({ producerId: 7, producerEpoch: 0 }); // idempotence (on by default)
    }
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await new Promise((r) => setTimeout(r, 1));
      const body = init!.body as Uint8Array;
      const { records } = decodeBatch(body, true);
      seen.push({
        method,
        url,
        bytes: body.length,
        records: records.map((r) => ({
          key: r.key && dec.decode(r.key),
          value: r.value && dec.decode(r.value),
        })),
      });
      const failure = fail?.(++posts);
      if (failure) return failure;
      const p = Number(url.searchParams.get("partition"));
      const offsets = records.map((r) => ({
        partition: p,
        offset: next[p]++,
        timestamp: r.timestamp,
      }));
      return Response.json({ offsets });
    } finally {
      inFlight--;
    }
  };
  return {
    fetch,
    seen,
    posts: () => seen.filter((s) => s.method === "POST"),
    maxInFlight: () => maxInFlight,
  };
}

Deno.test("producer batches many concurrent sends into one request and reports each offset", async () => {
  const b = fakeBroker(1);
  const producer = new Rill({ brokers: ["http://broker"], fetch: b.fetch }).producer();
  const sends = [];
  for (let i = 0; i < 100; i++) {
    sends.push(producer.send({
      topic: "t",
      acks: 1,
      messages: Array.from({ length: 10 }, (_, j) => ({ value: `m${i * 10 + j}`, partition: 0 })),
    }));
  }
  const results = (await Promise.all(sends)).flat();
  assert.equal(b.posts().length, 1);
  assert.equal(b.posts()[0].url.pathname, "/v1/topics/t/records");
  assert.equal(b.posts()[0].url.searchParams.get("acks"), "1");
  assert.deepEqual(results.map((r) => r.offset), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(b.posts()[0].records.map((r) => r.value), results.map((_, i) => `m${i}`));
});

Deno.test("producer sends keyed records to Kafka's partition and asks for metadata once", async () => {
  const b = fakeBroker(6);
  const producer = new Rill({ brokers: ["http://broker"], fetch: b.fetch }).producer();
  const keys = Array.from({ length: 50 }, (_, i) => `key-${i}`);
  const meta = await producer.send({
    topic: "t",
    messages: keys.map((k) => ({ key: k, value: k })),
  });
  await producer.send({ topic: "t", messages: [{ key: "again", value: "x" }] });
  for (let i = 0; i < keys.length; i++) {
    assert.equal(meta[i].partition, partitionForKey(keys[i], 6));
  }
  assert.equal(b.seen.filter((s) => s.method === "GET").length, 1);
  for (const post of b.posts()) {
    const p = Number(post.url.searchParams.get("partition"));
    for (const r of post.records) if (r.key) assert.equal(partitionForKey(r.key, 6), p);
  }
});

Deno.test("producer closes batches at batchBytes", async () => {
  const b = fakeBroker(1);
  const producer = new Rill({ brokers: ["http://broker"], fetch: b.fetch })
    .producer({ batchBytes: 10_000 });
  const value = "x".repeat(1000);
  await producer.send({
    topic: "t",
    messages: Array.from({ length: 50 }, () => ({ value, partition: 0 })),
  });
  assert.ok(b.posts().length >= 5, `${b.posts().length} requests`);
  for (const p of b.posts()) assert.ok(p.bytes <= 10_000 + 100, `${p.bytes} bytes`);
  assert.equal(b.posts().reduce((n, p) => n + p.records.length, 0), 50);
});

Deno.test("producer keeps at most maxInFlightRequests in flight, each partition in order", async () => {
  const b = fakeBroker(8);
  const producer = new Rill({ brokers: ["http://broker"], fetch: b.fetch })
    .producer({ maxInFlightRequests: 3, batchBytes: 200 });
  const messages = Array.from({ length: 400 }, (_, i) => ({ value: `v${i}`, partition: i % 8 }));
  const meta = await producer.send({ topic: "t", messages });
  assert.equal(b.maxInFlight(), 3);
  // Order within each partition follows send order.
  for (let p = 0; p < 8; p++) {
    const offsets = meta.filter((m) => m.partition === p).map((m) => m.offset);
    assert.deepEqual(offsets, offsets.toSorted((a, b) => a - b));
    assert.equal(offsets[0], 0);
  }
});

Deno.test("producer retries a retriable error and refreshes metadata on NOT_LEADER_OR_FOLLOWER", async () => {
  const b = fakeBroker(2, (n) =>
    n === 1
      ? Response.json(
        { error: { code: "NOT_LEADER_OR_FOLLOWER", message: "moved", retriable: true } },
        { status: 503 },
      )
      : undefined);
  const producer = new Rill({
    brokers: ["http://broker"],
    fetch: b.fetch,
    retry: { initialRetryTime: 1 },
  }).producer();
  const [m] = await producer.send({ topic: "t", messages: [{ key: "k", value: "v" }] });
  assert.equal(m.offset, 0, "the refused attempt stored nothing; the retry got offset 0");
  assert.equal(b.posts().length, 2);
  // The metadata was read again before the next keyed send.
  await producer.send({ topic: "t", messages: [{ key: "k", value: "v" }] });
  assert.equal(b.seen.filter((s) => s.method === "GET").length, 2);
});

Deno.test("producer gives up after the retries and rejects with the broker's error", async () => {
  const b = fakeBroker(1, () =>
    Response.json(
      { error: { code: "REQUEST_TIMED_OUT", message: "slow", retriable: true } },
      { status: 503 },
    ));
  const producer = new Rill({
    brokers: ["http://broker"],
    fetch: b.fetch,
    retry: { retries: 2, initialRetryTime: 1 },
  }).producer();
  await assert.rejects(
    producer.send({ topic: "t", messages: [{ value: "v", partition: 0 }] }),
    (e: unknown) => e instanceof RillError && e.code === "REQUEST_TIMED_OUT",
  );
  assert.equal(b.posts().length, 3);
});

Deno.test("producer does not retry a non-retriable error", async () => {
  const b = fakeBroker(1, () =>
    Response.json(
      { error: { code: "MESSAGE_TOO_LARGE", message: "too big", retriable: false } },
      { status: 413 },
    ));
  const producer = new Rill({ brokers: ["http://broker"], fetch: b.fetch }).producer();
  await assert.rejects(
    producer.send({ topic: "t", messages: [{ value: "v", partition: 0 }] }),
    (e: unknown) => e instanceof RillError && e.code === "MESSAGE_TOO_LARGE" && e.status === 413,
  );
  assert.equal(b.posts().length, 1);
});

Deno.test("producer rejects a malformed message and sends nothing", async () => {
  const b = fakeBroker(1);
  const producer = new Rill({ brokers: ["http://broker"], fetch: b.fetch }).producer();
  const bad = [
    { value: 42 },
    { value: "x", partition: -1 },
    { value: "x", key: {} },
    { value: "x", timestamp: 1.5 },
    {},
  ];
  for (const m of bad) {
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      producer.send({ topic: "t", messages: [{ value: "ok", partition: 0 }, m as any] }),
      TypeError,
    );
  }
  await assert.rejects(producer.send({ topic: "t", messages: [], acks: 2 as 1 }), TypeError);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(b.posts().length, 0);
});

Deno.test("producer holds records for lingerMs and flush() sends them at once", async () => {
  const b = fakeBroker(1);
  const producer = new Rill({ brokers: ["http://broker"], fetch: b.fetch })
    .producer({ lingerMs: 60_000 });
  const pending = producer.send({ topic: "t", messages: [{ value: "a", partition: 0 }] });
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(b.posts().length, 0, "still lingering");
  await producer.flush();
  assert.equal(b.posts().length, 1);
  assert.equal((await pending)[0].offset, 0);
  await producer.disconnect();
});

Deno.test("an idempotent producer gets its producer id on connect(), before its first send; a plain one asks for none", async () => {
  const b = fakeBroker(1);
  const calls: string[] = [];
  const stamps: { producerId: number; baseSequence: number }[] = [];
  const fetch = (input: string | URL | Request, init?: RequestInit) => {
    calls.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
    if (init?.body instanceof Uint8Array) {
      const h = readBatchHeader(init.body);
      stamps.push({ producerId: h.producerId, baseSequence: h.baseSequence });
    }
    return b.fetch(input, init);
  };
  const rill = new Rill({ brokers: ["http://broker"], fetch });

  const idem = rill.producer();
  await idem.connect();
  assert.deepEqual(calls, ["POST /v1/producers"]);
  await idem.send({ topic: "t", messages: [{ value: "a", partition: 0 }] });
  await idem.send({
    topic: "t",
    messages: [{ value: "b", partition: 0 }, { value: "c", partition: 0 }],
  });
  await idem.send({ topic: "t", messages: [{ value: "d", partition: 0 }] });
  assert.deepEqual(calls.slice(1), Array(3).fill("POST /v1/topics/t/records"), "no second id");
  assert.deepEqual(stamps, [
    { producerId: 7, baseSequence: 0 },
    { producerId: 7, baseSequence: 1 },
    { producerId: 7, baseSequence: 3 },
  ]);
  await idem.disconnect();

  calls.length = 0;
  stamps.length = 0;
  const plain = rill.producer({ idempotent: false });
  await plain.connect();
  assert.deepEqual(calls, []);
  await plain.send({ topic: "t", messages: [{ value: "e", partition: 0 }] });
  assert.deepEqual(calls, ["POST /v1/topics/t/records"]);
  assert.deepEqual(stamps, [{ producerId: -1, baseSequence: -1 }]);
  await plain.disconnect();
});
