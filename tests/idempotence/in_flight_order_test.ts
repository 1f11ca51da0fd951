/**
 * Several idempotent batches of one partition in flight, against a real broker process:
 * the leader holds a batch that arrived before its predecessor and appends it right after
 * it (other appends of the partition going on meanwhile); a batch whose predecessor never
 * comes is refused as out of order once the hold is over, changing nothing; and a producer
 * whose requests a proxy reorders still writes every record once, in send order.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { BatchBuilder } from "../../src/client/batch_builder.ts";
import { readBatchHeader } from "../../src/protocol/record_batch.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { readPartition } from "../_helpers/read_records.ts";

function idempotentBatch(producerId: number, epoch: number, seq: number, values: string[]) {
  const b = new BatchBuilder(1024);
  for (const v of values) b.append(Date.now(), null, v, undefined);
  return b.build({ producerId, producerEpoch: epoch, baseSequence: seq }).slice();
}

async function post(broker: string, topic: string, batch: Uint8Array) {
  const res = await fetch(`${broker}/v1/topics/${topic}/records?partition=0`, {
    method: "POST",
    headers: { "Content-Type": "application/vnd.rill.batch" },
    body: batch.slice(),
  });
  return { status: res.status, body: await res.json() };
}

async function newProducerId(broker: string) {
  const res = await fetch(`${broker}/v1/producers`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{}",
  });
  return (await res.json()) as { producerId: number; producerEpoch: number };
}

Deno.test("broker: a batch ahead of its predecessor is held and appended right after it", async () => {
  await using broker = await startBroker();
  await new Rill({ brokers: [broker.url] }).admin()
    .createTopics({ topics: [{ topic: "hold", numPartitions: 1 }] });
  const { producerId: id, producerEpoch: epoch } = await newProducerId(broker.url);
  assert.equal(
    (await post(broker.url, "hold", idempotentBatch(id, epoch, 0, ["a", "b"]))).status,
    200,
  );
  // Sequence 3 arrives before sequence 2: held, not refused.
  const early = post(broker.url, "hold", idempotentBatch(id, epoch, 3, ["d"]));
  // The partition's other appends go on while it is held.
  early.catch(() => {}); // awaited below; not left dangling if an assertion fails first
  const plain = await fetch(`${broker.url}/v1/topics/hold/records`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ records: [{ value: "plain", partition: 0 }] }),
  });
  assert.equal(plain.status, 200);
  assert.equal((await plain.json()).offsets[0].offset, 2);
  const late = await post(broker.url, "hold", idempotentBatch(id, epoch, 2, ["c"]));
  assert.deepEqual([late.status, late.body.baseOffset], [200, 3]);
  const held = await early;
  assert.deepEqual([held.status, held.body.baseOffset], [200, 4], "appended right after");
  const records = await readPartition(broker.url, "hold", 0);
  assert.deepEqual(records.map((r) => r.value), ["a", "b", "plain", "c", "d"]);
});

Deno.test("broker: a batch whose predecessor never comes is refused as out of order after the hold", async () => {
  await using broker = await startBroker();
  await new Rill({ brokers: [broker.url] }).admin()
    .createTopics({ topics: [{ topic: "gap", numPartitions: 1 }] });
  const { producerId: id, producerEpoch: epoch } = await newProducerId(broker.url);
  assert.equal((await post(broker.url, "gap", idempotentBatch(id, epoch, 0, ["a"]))).status, 200);
  const stateBefore = await (await fetch(`${broker.url}/v1/producers/${id}?topic=gap&partition=0`))
    .json();
  const gap = await post(broker.url, "gap", idempotentBatch(id, epoch, 2, ["x"]));
  assert.equal(gap.status, 400);
  assert.equal(gap.body.error.code, "OUT_OF_ORDER_SEQUENCE_NUMBER");
  // Older sequences and duplicates are answered at once, as before.
  const dup = await post(broker.url, "gap", idempotentBatch(id, epoch, 0, ["a"]));
  assert.deepEqual([dup.status, dup.body.baseOffset], [200, 0]);
  assert.deepEqual((await readPartition(broker.url, "gap", 0)).map((r) => r.value), ["a"]);
  const stateAfter = await (await fetch(`${broker.url}/v1/producers/${id}?topic=gap&partition=0`))
    .json();
  assert.deepEqual(stateAfter, stateBefore, "the refused batch changed nothing");
  // The expected sequence is still accepted.
  assert.equal((await post(broker.url, "gap", idempotentBatch(id, epoch, 1, ["b"]))).status, 200);
});

/**
 * A proxy that reorders produce requests: every third one waits until the next produce
 * request has been forwarded to the broker (or 50 ms if none comes), so it reaches the
 * broker after its successor.
 */
function reorderingProxy(target: string) {
  let produces = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let lastForwarded = -1;
  let overtaken = 0;
  let waiting: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const body = req.body ? new Uint8Array(await req.arrayBuffer()) : undefined;
    const isProduce = req.method === "POST" && url.pathname.endsWith("/records");
    if (isProduce) {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      if (++produces % 3 === 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 50);
          waiting.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      } else {
        const release = waiting;
        waiting = [];
        queueMicrotask(() => release.forEach((f) => f()));
      }
      const seq = readBatchHeader(body!).baseSequence;
      if (seq < lastForwarded) overtaken++;
      lastForwarded = Math.max(lastForwarded, seq);
    }
    try {
      const res = await fetch(target + url.pathname + url.search, {
        method: req.method,
        headers: req.headers,
        body,
      });
      // A 204 (the producer's minimal answer) has no body to pass on.
      const answer = res.status === 204 ? null : await res.arrayBuffer();
      return new Response(answer, { status: res.status, headers: res.headers });
    } finally {
      if (isProduce) inFlight--;
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    stats: () => ({ maxInFlight, overtaken }),
    close: () => server.shutdown(),
  };
}

Deno.test("idempotent producer: reordered requests of one partition still land once, in order", async () => {
  await using broker = await startBroker();
  await new Rill({ brokers: [broker.url] }).admin()
    .createTopics({ topics: [{ topic: "order", numPartitions: 1 }] });
  const proxy = reorderingProxy(broker.url);
  try {
    const producer = new Rill({ brokers: [proxy.url] })
      .producer({ batchBytes: 600, maxInFlightRequests: 5 });
    const sends = [];
    for (let s = 0; s < 40; s++) {
      const messages = [];
      for (let i = 0; i < 25; i++) messages.push({ partition: 0, value: `m${s * 25 + i}` });
      sends.push(producer.send({ topic: "order", messages }));
    }
    const meta = (await Promise.all(sends)).flat();
    await producer.disconnect();
    const { maxInFlight, overtaken } = proxy.stats();
    assert.ok(maxInFlight > 1, `several requests of the partition in flight (${maxInFlight})`);
    assert.ok(overtaken > 0, "some batches reached the broker before their predecessor");
    meta.forEach((m, i) => assert.equal(m.offset, i));
    const records = await readPartition(broker.url, "order", 0);
    assert.deepEqual(
      records.map((r) => r.value),
      Array.from({ length: 1000 }, (_, n) => `m${n}`),
      "every record once, in send order",
    );
  } finally {
    await proxy.close();
  }
});
