/**
 * The producer's send over the WebSocket connection, as a user calls it: what it rejects
 * (a rejection, never a throw, and nothing written), keyless sends that first learn the
 * partition count, and more batches than the in-flight limit, each freeing its slot for the
 * next, in order per partition.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { readPartition } from "../_helpers/read_records.ts";
import { serveWsRelay } from "../_helpers/ws_relay.ts";
import { serveBroker } from "./_served.ts";

Deno.test("ws producer: bad sends reject without writing, keyless sends learn the partitions, batches past the in-flight limit all land in order", async () => {
  await using s = await serveBroker();
  await s.topic("t", 3);
  const rill = new Rill({ brokers: [s.url], transport: "ws" });
  const producer = rill.producer({ acks: 1, maxInFlightRequests: 2 });

  // Bad input: a rejected promise (a caller's .catch sees it), and nothing is stored.
  const bad = [
    { topic: "", messages: [{ value: "x" }] },
    { topic: "t", messages: "nope" },
    { topic: "t", messages: [{ value: "ok" }, { key: "k" }] },
    { topic: "t", messages: [{ value: "x", partition: -1 }] },
  ];
  for (const record of bad) {
    // deno-lint-ignore no-explicit-any
    const sent = producer.send(record as any);
    assert.ok(sent instanceof Promise);
    await assert.rejects(sent, TypeError);
  }
  await assert.rejects(
    producer.send({ topic: "missing", messages: [{ value: "x", partition: 0 }] }),
    (e: unknown) => e instanceof RillError && e.code === "UNKNOWN_TOPIC_OR_PARTITION",
  );

  // Keyless, no partition given: the first send learns the count, then the records land.
  const keyless = await producer.send({ topic: "t", messages: [{ value: "a" }, { value: "b" }] });
  assert.equal(keyless.length, 2);
  for (const m of keyless) assert.ok(m.partition >= 0 && m.partition < 3);

  // 3 partitions x 20 awaited-in-parallel single sends with 2 requests in flight: every one
  // is acknowledged and each partition holds its records in send order.
  const sends = [];
  for (let i = 0; i < 20; i++) {
    for (let p = 0; p < 3; p++) {
      sends.push(producer.send({ topic: "t", messages: [{ value: `${p}-${i}`, partition: p }] }));
    }
  }
  const metas = (await Promise.all(sends)).flat();
  assert.equal(metas.length, 60);
  await producer.flush();
  for (let p = 0; p < 3; p++) {
    const values = (await readPartition(s.url, "t", p)).map((r) => r.value)
      .filter((v) => v !== "a" && v !== "b");
    assert.deepEqual(values, Array.from({ length: 20 }, (_, i) => `${p}-${i}`));
  }
  await producer.disconnect();
  await assert.rejects(
    producer.send({ topic: "t", messages: [{ value: "late", partition: 0 }] }),
    RillError,
  );
});

Deno.test("ws producer: sends in flight when the connection breaks are retried on a new one, each record stored once, in order", async () => {
  await using s = await serveBroker();
  await s.topic("t", 1);
  await using link = serveWsRelay(Number(new URL(s.url).port));
  const producer = new Rill({ brokers: [link.url], transport: "ws" }).producer();
  // The producer id known and a first batch acknowledged: batches then go straight out,
  // several in flight (the path a broken connection must not lose or double records on).
  await producer.connect();
  await producer.send({ topic: "t", messages: [{ value: "first", partition: 0 }] });
  const sends = [];
  let cuts = 0;
  for (let i = 0; i < 120; i++) {
    sends.push(producer.send({ topic: "t", messages: [{ value: `v${i}`, partition: 0 }] }));
    if (i % 4 === 3) await new Promise((r) => setTimeout(r, 0));
    // Cut right after batches went out, before their answers could come back.
    if (i % 40 === 20) {
      link.cut();
      cuts++;
    }
  }
  const metas = (await Promise.all(sends)).flat();
  assert.equal(cuts, 3);
  assert.equal(metas.length, 120);
  const values = (await readPartition(s.url, "t", 0)).map((r) => r.value);
  assert.deepEqual(values, ["first", ...Array.from({ length: 120 }, (_, i) => `v${i}`)]);
  // Each send's offset is the one its record was stored at.
  for (let i = 0; i < 120; i++) assert.equal(metas[i].offset, i + 1);
  await producer.disconnect();
});
