/**
 * The client against a real broker process on loopback: admin, produce/consume round
 * trips, Kafka-compatible key partitioning, batching, retries across a broker restart,
 * assign/seek, for-await and run().
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Partitioners } from "kafkajs";
import { type ConsumedMessage, type FetchFn, Rill, RillError } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

/** Reads `n` messages from a consumer with for-await, then stops it. */
async function take(
  consumer: AsyncIterable<ConsumedMessage>,
  n: number,
): Promise<ConsumedMessage[]> {
  const out: ConsumedMessage[] = [];
  if (n === 0) return out;
  for await (const m of consumer) {
    out.push(m);
    if (out.length >= n) break;
  }
  return out;
}

Deno.test("client against a broker process", async (t) => {
  await using broker = await startBroker();
  let posts = 0;
  const countingFetch: FetchFn = (input, init) => {
    if (init?.method === "POST" && String(input).includes("/records")) posts++;
    return fetch(input, init);
  };
  const rill = new Rill({ brokers: [broker.url], clientId: "test", fetch: countingFetch });
  const admin = rill.admin();

  await t.step("admin creates, lists, describes, alters and deletes topics", async () => {
    assert.equal(await admin.createTopics({ topics: [{ topic: "adm", numPartitions: 2 }] }), true);
    assert.equal(await admin.createTopics({ topics: [{ topic: "adm" }] }), false);
    assert.ok((await admin.listTopics()).includes("adm"));
    const d = await admin.describeTopic("adm");
    assert.deepEqual(d.partitions.map((p) => [p.partition, p.highWatermark]), [[0, 0], [1, 0]]);
    const altered = await admin.alterTopic("adm", {
      partitions: 3,
      configs: { "retention.ms": "60000" },
    });
    assert.equal(altered.partitions.length, 3);
    assert.equal(altered.configs["retention.ms"], "60000");
    const offsets = await admin.fetchTopicOffsets("adm");
    assert.deepEqual(offsets.map((o) => [o.partition, o.low, o.high]), [[0, 0, 0], [1, 0, 0], [
      2,
      0,
      0,
    ]]);
    const cluster = await admin.describeCluster();
    assert.ok(cluster.brokers.length >= 1);
    await admin.deleteTopic("adm");
    await assert.rejects(
      admin.describeTopic("adm"),
      (e: unknown) =>
        e instanceof RillError && e.code === "UNKNOWN_TOPIC_OR_PARTITION" && e.status === 404,
    );
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: "bad name!" }] }),
      (e: unknown) => e instanceof RillError && e.code === "INVALID_TOPIC_EXCEPTION",
    );
  });

  await t.step("records round-trip with keys, headers, null and binary values", async () => {
    await admin.createTopic({ topic: "rt", numPartitions: 3 });
    const producer = rill.producer();
    const binary = new Uint8Array([0, 255, 1, 254, 0x80, 0xc3]);
    const messages = [
      { key: "k1", value: "hello", headers: { "trace-id": "abc", bin: binary } },
      { key: "k2", value: null },
      { key: null, value: binary },
      { key: binary, value: "ünïcødé ✓", headers: { rep: ["a", "b"] } },
      { value: "" },
    ];
    const meta = await producer.send({ topic: "rt", messages, acks: 1 });
    assert.equal(meta.length, messages.length);
    const consumer = rill.consumer({ maxWaitMs: 1000 });
    await consumer.assign(
      [0, 1, 2].map((p) => ({ topic: "rt", partition: p, offset: "earliest" })),
    );
    const got = await take(consumer, messages.length);
    const byPlace = new Map(got.map((m) => [`${m.partition}:${m.offset}`, m]));
    meta.forEach((md, i) => {
      const m = byPlace.get(`${md.partition}:${md.offset}`);
      assert.ok(m, `message ${i} at ${md.partition}:${md.offset}`);
      const sent = messages[i];
      const bytes = (v: string | Uint8Array | null | undefined) =>
        v === null || v === undefined
          ? null
          : typeof v === "string"
          ? new TextEncoder().encode(v)
          : v;
      assert.deepEqual(m.key, bytes(sent.key));
      assert.deepEqual(m.value, bytes(sent.value));
    });
    const first = byPlace.get(`${meta[0].partition}:${meta[0].offset}`)!;
    assert.equal(first.headerString("trace-id"), "abc");
    assert.deepEqual(first.headers.bin, binary);
    assert.equal(first.valueString(), "hello");
    assert.equal(first.keyString(), "k1");
    const rep = byPlace.get(`${meta[3].partition}:${meta[3].offset}`)!;
    assert.deepEqual(rep.headerList.map((h) => h.key), ["rep", "rep"]);
    assert.equal(rep.valueString(), "ünïcødé ✓");
    assert.equal(byPlace.get(`${meta[1].partition}:${meta[1].offset}`)!.value, null);
    await producer.disconnect();
  });

  await t.step("keyed records land where kafkajs's DefaultPartitioner puts them", async () => {
    await admin.createTopic({ topic: "keyed", numPartitions: 7 });
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: 7 }, (_, i) => ({
      partitionId: i,
      leader: 1,
      partitionErrorCode: 0,
      replicas: [1],
      isr: [1],
    }));
    const keys = Array.from({ length: 200 }, (_, i) => `customer-${i * 7919}`);
    const producer = rill.producer();
    const meta = await producer.send({
      topic: "keyed",
      messages: keys.map((k) => ({ key: k, value: k })),
    });
    for (let i = 0; i < keys.length; i++) {
      const expected = partitioner({
        topic: "keyed",
        partitionMetadata,
        message: { key: Buffer.from(keys[i]), value: "" },
      });
      assert.equal(meta[i].partition, expected, `key ${keys[i]}`);
    }
    // The broker stored each where the client said.
    const consumer = rill.consumer({ maxWaitMs: 1000 });
    await consumer.assign(
      Array.from({ length: 7 }, (_, p) => ({ topic: "keyed", partition: p, offset: 0 })),
    );
    for (const m of await take(consumer, keys.length)) {
      const i = keys.indexOf(m.keyString()!);
      assert.equal(m.partition, meta[i].partition);
      assert.equal(m.offset, meta[i].offset);
    }
  });

  await t.step("many concurrent sends travel in few requests", async () => {
    await admin.createTopic({ topic: "batched", numPartitions: 2 });
    const producer = rill.producer({ lingerMs: 5 });
    await producer.send({ topic: "batched", messages: [{ value: "warm-up" }] }); // metadata
    const before = posts;
    const sends = Array.from(
      { length: 500 },
      (_, i) =>
        producer.send({
          topic: "batched",
          messages: [{ key: `k${i % 10}`, value: `v${i}` }],
          acks: 1,
        }),
    );
    const results = (await Promise.all(sends)).flat();
    const requests = posts - before;
    assert.ok(requests <= 10, `500 sends took ${requests} requests`);
    // Offsets are distinct per partition and dense.
    for (const p of [0, 1]) {
      const offs = results.filter((r) => r.partition === p).map((r) => r.offset).sort((a, b) =>
        a - b
      );
      offs.forEach((o, i) => assert.equal(o, offs[0] + i));
    }
  });

  await t.step("assign and seek by offset and by timestamp; for-await and run()", async () => {
    await admin.createTopic({ topic: "seek", numPartitions: 1 });
    const t0 = 1_700_000_000_000;
    const producer = rill.producer();
    await producer.send({
      topic: "seek",
      messages: Array.from(
        { length: 10 },
        (_, i) => ({ value: `m${i}`, timestamp: t0 + i * 1000 }),
      ),
    });
    const consumer = rill.consumer({ maxWaitMs: 1000 });
    await consumer.assign([{ topic: "seek", partition: 0, offset: 5 }]);
    assert.deepEqual((await take(consumer, 2)).map((m) => m.offset), [5, 6]);
    assert.equal(consumer.position("seek", 0), 7);

    await consumer.assign([{ topic: "seek", partition: 0, timestamp: t0 + 7000 }]);
    const [byTime] = await take(consumer, 1);
    assert.deepEqual([byTime.offset, byTime.timestamp, byTime.valueString()], [7, t0 + 7000, "m7"]);

    // run(): seek back from inside the handler and read again.
    const seen: number[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    await consumer.seek({ topic: "seek", partition: 0, offset: 8 });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.offset);
        if (seen.length === 2) {
          await consumer.seek({ topic: "seek", partition: 0, timestamp: t0 + 3000 });
        }
        if (message.offset === 9 && seen.length > 2) done();
      },
    });
    await finished;
    await consumer.stop();
    await consumer.finished();
    assert.deepEqual(seen, [8, 9, 3, 4, 5, 6, 7, 8, 9]);

    // eachBatch gets the records of a fetch, in order.
    const batchOffsets: number[] = [];
    let batchesDone!: () => void;
    const gotAll = new Promise<void>((r) => (batchesDone = r));
    await consumer.assign([{ topic: "seek", partition: 0, offset: "earliest" }]);
    await consumer.run({
      eachBatch: ({ batch }) => {
        for (const m of batch.messages) batchOffsets.push(m.offset);
        assert.equal(batch.highWatermark, 10);
        if (batchOffsets.length >= 10) batchesDone();
      },
    });
    await gotAll;
    await consumer.disconnect();
    assert.deepEqual(batchOffsets, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(consumer.position("seek", 0), 10);
  });

  await t.step(
    "a waiting consumer hears of a new record (long poll) and offsets out of range fail",
    async () => {
      await admin.createTopic({ topic: "live", numPartitions: 1 });
      const consumer = rill.consumer({ maxWaitMs: 30_000 });
      await consumer.assign([{ topic: "live", partition: 0, offset: "latest" }]);
      const next = take(consumer, 1);
      await rill.producer().send({ topic: "live", messages: [{ value: "now" }] });
      const [m] = await next;
      assert.equal(m.valueString(), "now");

      const strict = rill.consumer({ maxWaitMs: 100, autoOffsetReset: "none" });
      await strict.assign([{ topic: "live", partition: 0, offset: 1000 }]);
      await assert.rejects(
        take(strict, 1),
        (e: unknown) => e instanceof RillError && e.code === "OFFSET_OUT_OF_RANGE",
      );
      // With the default reset ("earliest"), the consumer jumps back to the log start.
      const lenient = rill.consumer({ maxWaitMs: 1000 });
      await lenient.assign([{ topic: "live", partition: 0, offset: 1000 }]);
      const [first] = await take(lenient, 1);
      assert.deepEqual([first.offset, first.valueString()], [0, "now"]);
    },
  );

  await t.step("a failing handler gets the record again, then stops the consumer", async () => {
    await admin.createTopic({ topic: "flaky", numPartitions: 1 });
    await rill.producer().send({
      topic: "flaky",
      messages: [{ value: "a" }, { value: "b" }, { value: "c" }],
    });
    const quick = new Rill({ brokers: [broker.url], retry: { retries: 2, initialRetryTime: 1 } });
    const consumer = quick.consumer({ maxWaitMs: 1000 });
    await consumer.assign([{ topic: "flaky", partition: 0, offset: "earliest" }]);
    const seen: string[] = [];
    let failedOnce = false;
    await consumer.run({
      eachMessage: ({ message }) => {
        seen.push(message.valueString()!);
        if (message.offset === 1 && !failedOnce) {
          failedOnce = true;
          throw new Error("transient");
        }
        if (message.offset === 2) throw new Error("permanent");
      },
    });
    await assert.rejects(consumer.finished(), /permanent/);
    assert.deepEqual(seen, ["a", "b", "b", "c", "c", "c"], "b retried once, c tried 1 + 2 retries");
    assert.equal(consumer.position("flaky", 0), 2, "the position stays before the failed record");
  });

  await t.step("sending to a missing topic fails with UNKNOWN_TOPIC_OR_PARTITION", async () => {
    await assert.rejects(
      rill.producer().send({ topic: "missing", messages: [{ value: "x" }] }),
      (e: unknown) => e instanceof RillError && e.code === "UNKNOWN_TOPIC_OR_PARTITION",
    );
    await assert.rejects(
      rill.producer().send({ topic: "rt", messages: [{ value: "x", partition: 99 }] }),
      (e: unknown) => e instanceof RillError && e.code === "UNKNOWN_TOPIC_OR_PARTITION",
    );
  });
});

Deno.test("producer retries across a broker restart and loses no acknowledged record", async () => {
  await using dir = await tempDir();
  const first = await startBroker({ dataDir: dir.path });
  const port = new URL(first.url).port;
  let networkErrors = 0;
  const rill = new Rill({
    brokers: [first.url],
    retry: { retries: 20, initialRetryTime: 50, maxRetryTime: 500 },
    fetch: (input, init) =>
      fetch(input, init).catch((e) => {
        networkErrors++;
        throw e;
      }),
  });
  await rill.admin().createTopic({ topic: "restart", numPartitions: 1 });
  const producer = rill.producer();
  const before = await producer.send({
    topic: "restart",
    messages: [{ value: "before" }],
    acks: 1,
  });
  assert.equal((await first.stop()).code, 0);
  // The broker is down: this send fails with network errors and retries with backoff…
  const pending = producer.send({ topic: "restart", messages: [{ value: "during" }], acks: 1 });
  // …until the broker is back on the same port.
  await using second = await startBroker({
    dataDir: dir.path,
    extraArgs: ["--listen", `127.0.0.1:${port}`],
  });
  assert.equal(second.url, first.url);
  const [during] = await pending;
  assert.equal(during.offset, before[0].offset + 1);
  assert.ok(networkErrors >= 1, "the send met the stopped broker and retried");
  const consumer = rill.consumer({ maxWaitMs: 1000 });
  await consumer.assign([{ topic: "restart", partition: 0, offset: "earliest" }]);
  assert.deepEqual((await take(consumer, 2)).map((m) => m.valueString()), ["before", "during"]);
});

Deno.test("the HTTP producer reads its offsets from a minimal answer, and from JSON where Prefer is dropped", async () => {
  await using broker = await startBroker();
  const statuses: number[] = [];
  // What a proxy that drops the Prefer header (or a broker that ignores it) leaves: JSON.
  let dropPrefer = false;
  const rill = new Rill({
    brokers: [broker.url],
    fetch: async (input, init) => {
      const produce = init?.method === "POST" && String(input).includes("/records?");
      if (produce && dropPrefer) {
        const headers = new Headers(init!.headers);
        headers.delete("prefer");
        init = { ...init, headers };
      }
      const res = await fetch(input, init);
      if (produce) statuses.push(res.status);
      return res;
    },
  });
  await rill.admin().createTopic({ topic: "minimal", numPartitions: 2 });
  const producer = rill.producer();
  const send = (values: string[], partition: number) =>
    producer.send({ topic: "minimal", messages: values.map((value) => ({ value, partition })) });
  const offsets = (sent: { partition: number; offset: number }[]) =>
    sent.map((m) => [m.partition, m.offset]);
  assert.deepEqual(offsets(await send(["a"], 1)), [[1, 0]]);
  assert.deepEqual(offsets(await send(["b", "c", "d"], 1)), [[1, 1], [1, 2], [1, 3]]);
  assert.deepEqual(statuses, [204, 204]);
  dropPrefer = true;
  assert.deepEqual(offsets(await send(["e", "f"], 1)), [[1, 4], [1, 5]]);
  assert.deepEqual(offsets(await send(["g"], 0)), [[0, 0]]);
  assert.deepEqual(statuses, [204, 204, 200, 200]);
  await producer.disconnect();
  const consumer = rill.consumer({ maxWaitMs: 1000 });
  await consumer.assign([{ topic: "minimal", partition: 1, offset: "earliest" }]);
  assert.deepEqual(
    (await take(consumer, 6)).map((m) => [m.offset, m.valueString()]),
    [[0, "a"], [1, "b"], [2, "c"], [3, "d"], [4, "e"], [5, "f"]],
  );
});
