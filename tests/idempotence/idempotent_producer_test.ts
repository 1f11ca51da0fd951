/**
 * The idempotent producer end to end, against real broker processes: retries after lost
 * responses never duplicate, the deduplication state survives a broker restart, gaps and
 * old epochs are refused with their error codes, and a producer key fences its older
 * instance.
 */
import assert from "node:assert/strict";
import { Rill, RillError } from "../../mod.ts";
import { BatchBuilder } from "../../src/client/batch_builder.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { tempDir } from "../_helpers/temp_dir.ts";
import { readPartition } from "../_helpers/read_records.ts";

const FAST_RETRY = { retries: 20, initialRetryTime: 5, maxRetryTime: 50 };

/**
 * A proxy in front of a broker that, for every `every`-th produce request, forwards it,
 * lets the broker append, and then answers the client with a 503 or a response that breaks
 * off, as if the response had been lost.
 */
function lossyProxy(target: string, every: number) {
  let produces = 0;
  let dropped = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const body = req.body ? new Uint8Array(await req.arrayBuffer()) : undefined;
    const res = await fetch(target + url.pathname + url.search, {
      method: req.method,
      headers: req.headers,
      body,
    });
    const isProduce = req.method === "POST" && url.pathname.endsWith("/records");
    if (isProduce && ++produces % every === 0) {
      await res.body?.cancel();
      // Alternately a 503, and a response whose body breaks off (the connection fails).
      if (dropped++ % 2 === 0) return new Response("lost", { status: 503 });
      // The body ends short of its declared length, so the server drops the connection
      // (no JS error is raised, so a passing run prints no stack trace).
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode('{"partition":'));
            c.close();
          },
        }),
        { status: 200, headers: { "content-type": "application/json", "content-length": "64" } },
      );
    }
    return new Response(res.body, { status: res.status, headers: res.headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    dropped: () => dropped,
    close: () => server.shutdown(),
  };
}

async function sendThroughLossyProxy(idempotent: boolean) {
  await using broker = await startBroker();
  const admin = new Rill({ brokers: [broker.url] }).admin();
  await admin.createTopics({ topics: [{ topic: "idem", numPartitions: 2 }] });
  const proxy = lossyProxy(broker.url, 3);
  try {
    const rill = new Rill({ brokers: [proxy.url], retry: FAST_RETRY });
    const producer = rill.producer({ idempotent, batchBytes: 2048 });
    const sends = [];
    for (let s = 0; s < 20; s++) {
      const messages = [];
      for (let i = 0; i < 50; i++) {
        const n = s * 50 + i;
        messages.push({ partition: n % 2, value: `m${n}` });
      }
      sends.push(producer.send({ topic: "idem", messages }));
    }
    await Promise.all(sends);
    await producer.disconnect();
    const partitions = [
      await readPartition(broker.url, "idem", 0),
      await readPartition(broker.url, "idem", 1),
    ];
    return { partitions, dropped: proxy.dropped() };
  } finally {
    await proxy.close();
  }
}

Deno.test("idempotent producer: lost responses are retried without a duplicate, in order", async () => {
  const { partitions, dropped } = await sendThroughLossyProxy(true);
  assert.ok(dropped > 0, "the proxy lost some responses");
  for (let p = 0; p < 2; p++) {
    const values = partitions[p].map((r) => r.value);
    const expected = [];
    for (let n = p; n < 1000; n += 2) expected.push(`m${n}`);
    assert.deepEqual(values, expected, `partition ${p} holds every record once, in order`);
    partitions[p].forEach((r, i) => assert.equal(r.offset, i));
  }
});

Deno.test("plain producer: the same lost responses do duplicate (what idempotence prevents)", async () => {
  const { partitions, dropped } = await sendThroughLossyProxy(false);
  assert.ok(dropped > 0);
  assert.ok(partitions[0].length + partitions[1].length > 1000, "retries appended twice");
});

function idempotentBatch(producerId: number, epoch: number, seq: number, values: string[]) {
  const b = new BatchBuilder(1024);
  for (const v of values) b.append(Date.now(), null, v, undefined);
  return b.build({ producerId, producerEpoch: epoch, baseSequence: seq }).slice();
}

async function post(broker: string, batch: Uint8Array) {
  const res = await fetch(`${broker}/v1/topics/dedup/records?partition=0`, {
    method: "POST",
    headers: { "Content-Type": "application/vnd.rill.batch" },
    body: batch.slice(),
  });
  return { status: res.status, body: await res.json() };
}

Deno.test("broker: dedup state survives a restart; gaps and old epochs are refused", async () => {
  await using dir = await tempDir();
  let producerId: number;
  const first = idempotentBatch(0, 0, 0, ["a", "b", "c"]);
  {
    await using broker = await startBroker({ dataDir: dir.path });
    const admin = new Rill({ brokers: [broker.url] }).admin();
    await admin.createTopics({ topics: [{ topic: "dedup", numPartitions: 1 }] });
    const id = await (await fetch(`${broker.url}/v1/producers`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    })).json();
    producerId = id.producerId;
    const batch = idempotentBatch(producerId, id.producerEpoch, 0, ["a", "b", "c"]);
    first.set(batch);
    const r = await post(broker.url, first);
    assert.equal(r.status, 200);
    assert.equal(r.body.baseOffset, 0);
    const again = await post(broker.url, first);
    assert.deepEqual([again.status, again.body.baseOffset, again.body.lastOffset], [200, 0, 2]);
    assert.equal((await post(broker.url, idempotentBatch(producerId, 0, 3, ["d"]))).status, 200);
    broker.kill("SIGKILL"); // no clean shutdown: the state is rebuilt from the log
    await broker.exited;
  }
  await using broker = await startBroker({ dataDir: dir.path });
  const dup = await post(broker.url, first);
  assert.deepEqual([dup.status, dup.body.baseOffset, dup.body.lastOffset], [200, 0, 2]);
  const gap = await post(broker.url, idempotentBatch(producerId, 0, 9, ["x"]));
  assert.equal(gap.status, 400);
  assert.equal(gap.body.error.code, "OUT_OF_ORDER_SEQUENCE_NUMBER");
  assert.equal((await post(broker.url, idempotentBatch(producerId, 1, 0, ["e"]))).status, 200);
  const old = await post(broker.url, idempotentBatch(producerId, 0, 4, ["y"]));
  assert.equal(old.status, 409);
  assert.equal(old.body.error.code, "INVALID_PRODUCER_EPOCH");
  const records = await readPartition(broker.url, "dedup", 0);
  assert.deepEqual(records.map((r) => r.value), ["a", "b", "c", "d", "e"]);
  const state =
    await (await fetch(`${broker.url}/v1/producers/${producerId}?topic=dedup&partition=0`))
      .json();
  assert.deepEqual(state, {
    producerId,
    producerEpoch: 1,
    lastSequence: 0,
    baseOffset: 4,
    lastOffset: 4,
  });
});

Deno.test("producer ids: a key keeps its id with a newer epoch and fences the older instance", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  await rill.admin().createTopics({ topics: [{ topic: "fence", numPartitions: 1 }] });
  const a = rill.producer({ producerKey: "app-task-0" });
  const plain1 = await rill.producer().identity();
  const plain2 = await rill.producer().identity();
  assert.notEqual(plain1!.producerId, plain2!.producerId);
  await a.send({ topic: "fence", messages: [{ value: "from a" }] });
  const b = rill.producer({ producerKey: "app-task-0" });
  const idA = await a.identity();
  const idB = await b.identity();
  assert.equal(idB!.producerId, idA!.producerId);
  assert.equal(idB!.producerEpoch, idA!.producerEpoch + 1);
  await b.send({ topic: "fence", messages: [{ value: "from b" }] });
  await assert.rejects(
    a.send({ topic: "fence", messages: [{ value: "zombie" }] }),
    (e) =>
      e instanceof RillError && e.code === "INVALID_PRODUCER_EPOCH" && /fenced/.test(e.message),
  );
  await assert.rejects(
    a.send({ topic: "fence", messages: [{ value: "zombie again" }] }),
    (e) => e instanceof RillError && e.code === "INVALID_PRODUCER_EPOCH",
  );
  const bad = await fetch(`${broker.url}/v1/producers`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ producerKey: 5 }),
  });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.code, "INVALID_REQUEST");
  const records = await readPartition(broker.url, "fence", 0);
  assert.deepEqual(records.map((r) => r.value), ["from a", "from b"]);
});
