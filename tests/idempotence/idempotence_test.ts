/**
 * The client's idempotence bookkeeping against a scripted fake broker: sequence numbers per
 * partition in the batch header, retries resending the same bytes, and what happens after a
 * batch fails for good (sequence handed out again, a new identity, or — with a producer
 * key — every later send failing).
 */
import assert from "node:assert/strict";
import { Rill, RillError } from "../../mod.ts";
import { readBatchHeader } from "../../src/protocol/record_batch.ts";

interface Posted {
  partition: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  count: number;
  bytes: Uint8Array;
}

/** A fake broker: topic "t" with 2 partitions; `answer(n, posted)` may replace the n-th produce answer. */
function fakeBroker(answer?: (n: number, p: Posted) => Response | undefined) {
  const posted: Posted[] = [];
  const identities: unknown[] = [];
  let nextId = 40;
  const offsets = [0, 0];
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    if (url.pathname === "/v1/producers") {
      const body = JSON.parse(String(init?.body ?? "{}"));
      identities.push(body);
      return Response.json({ producerId: nextId++, producerEpoch: 0 });
    }
    if ((init?.method ?? "GET") === "GET") {
      return Response.json({ name: "t", partitions: [{ partition: 0 }, { partition: 1 }] });
    }
    await Promise.resolve();
    const bytes = new Uint8Array(init!.body as Uint8Array).slice();
    const h = readBatchHeader(bytes);
    const p: Posted = {
      partition: Number(url.searchParams.get("partition")),
      producerId: h.producerId,
      producerEpoch: h.producerEpoch,
      baseSequence: h.baseSequence,
      count: h.recordCount,
      bytes,
    };
    posted.push(p);
    const special = answer?.(posted.length, p);
    if (special) return special;
    const partition = Number(url.searchParams.get("partition"));
    const base = offsets[partition];
    offsets[partition] += h.recordCount;
    return Response.json({ partition, baseOffset: base, lastOffset: base + h.recordCount - 1 });
  };
  return { fetch, posted, identities };
}

const error = (status: number, code: string) =>
  Response.json({ error: { code, message: `fake ${code}` } }, { status });

Deno.test("idempotent producer numbers each partition's records and resends the same bytes", async () => {
  const broker = fakeBroker((n) => (n === 2 ? error(503, "NOT_ENOUGH_REPLICAS") : undefined));
  const rill = new Rill({
    brokers: ["http://fake"],
    fetch: broker.fetch,
    retry: { retries: 3, initialRetryTime: 1 },
  });
  const producer = rill.producer();
  await producer.send({
    topic: "t",
    messages: [{ value: "a", partition: 0 }, { value: "b", partition: 0 }],
  });
  await producer.send({
    topic: "t",
    messages: [{ value: "c", partition: 0 }, { value: "d", partition: 1 }],
  });
  await producer.send({ topic: "t", messages: [{ value: "e", partition: 0 }] });
  // partition 0: 0+2, then 2+1 (refused once, resent), then 3+1; partition 1: 0+1
  assert.deepEqual(
    broker.posted.map((p) => `${p.partition}/${p.baseSequence}+${p.count}`).sort(),
    ["0/0+2", "0/2+1", "0/2+1", "0/3+1", "1/0+1"],
  );
  assert.ok(broker.posted.every((p) => p.producerId === 40 && p.producerEpoch === 0));
  const retried = broker.posted.filter((p) => p.partition === 0 && p.baseSequence === 2);
  assert.deepEqual(retried[0].bytes, retried[1].bytes, "the retry sent the very same bytes");
  assert.equal(broker.identities.length, 1, "one producer id for the producer's life");
});

Deno.test("a batch refused for good hands its sequence out again; a gap starts a new identity", async () => {
  const broker = fakeBroker((n) =>
    n === 2
      ? error(413, "MESSAGE_TOO_LARGE")
      : n === 4
      ? error(400, "OUT_OF_ORDER_SEQUENCE_NUMBER")
      : undefined
  );
  const rill = new Rill({ brokers: ["http://fake"], fetch: broker.fetch });
  const producer = rill.producer();
  const send = (value: string) =>
    producer.send({ topic: "t", messages: [{ value, partition: 0 }] });
  await send("a"); // seq 0
  await assert.rejects(
    send("too big"),
    (e) => e instanceof RillError && e.code === "MESSAGE_TOO_LARGE",
  );
  await send("b"); // seq 1 again: the refused batch was not written
  await assert.rejects(
    send("c"),
    (e) =>
      e instanceof RillError && e.code === "OUT_OF_ORDER_SEQUENCE_NUMBER" &&
      /not written/.test(e.message),
  );
  await send("d"); // a new producer id, sequence 0
  assert.deepEqual(
    broker.posted.map((p) => [p.producerId, p.baseSequence]),
    [[40, 0], [40, 1], [40, 1], [40, 2], [41, 0]],
  );
});

Deno.test("a producer with a producerKey stops after a batch fails for good", async () => {
  const broker = fakeBroker((n) => (n === 2 ? error(413, "MESSAGE_TOO_LARGE") : undefined));
  const rill = new Rill({ brokers: ["http://fake"], fetch: broker.fetch });
  const producer = rill.producer({ producerKey: "app-task-3" });
  const send = (value: string, partition = 0) =>
    producer.send({ topic: "t", messages: [{ value, partition }] });
  await send("a");
  await assert.rejects(send("too big"), (e) => e instanceof RillError && /stops/.test(e.message));
  await assert.rejects(send("b", 1), (e) => e instanceof RillError && /stops/.test(e.message));
  assert.equal(broker.posted.length, 2, "nothing was sent after the failure");
  assert.deepEqual(broker.identities, [{ producerKey: "app-task-3" }]);
});

Deno.test("idempotent: false and acks=0 send batches without producer fields", async () => {
  const broker = fakeBroker();
  const rill = new Rill({ brokers: ["http://fake"], fetch: broker.fetch });
  await rill.producer({ idempotent: false }).send({
    topic: "t",
    messages: [{ value: "a", partition: 0 }],
  });
  await rill.producer().send({ topic: "t", messages: [{ value: "b", partition: 0 }], acks: 0 });
  assert.deepEqual(broker.posted.map((p) => [p.producerId, p.baseSequence]), [[-1, -1], [-1, -1]]);
  assert.equal(broker.identities.length, 0);
});
