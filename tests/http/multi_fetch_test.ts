/**
 * `POST /v1/fetch` (src/http/routes/fetch.ts): many partitions in one request, JSON and the
 * raw framing, per-partition errors, sessions, long polls, and bad input.
 */
import assert from "node:assert/strict";
import { decodeBatch, encodeBatch, splitBatches } from "../../src/protocol/record_batch.ts";
import { FETCH_MEDIA_TYPE, parseFetchFrame } from "../../src/client/multi_fetch.ts";
import { openTestBroker } from "./_app.ts";
import { openSecureBroker } from "../security/_secure_app.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function batchOf(values: string[]): Uint8Array {
  return encodeBatch(values.map((v) => ({ value: enc.encode(v) })));
}

function valuesOf(bytes: Uint8Array, from = 0): string[] {
  return splitBatches(bytes).flatMap((b) =>
    decodeBatch(b).records.filter((r) => r.offset >= from).map((r) => dec.decode(r.value!))
  );
}

Deno.test("POST /v1/fetch answers many partitions of several topics in JSON, with per-partition errors", async () => {
  await using t = await openTestBroker();
  await t.broker.createTopic({ name: "a", partitions: 2 });
  await t.broker.createTopic({ name: "b", partitions: 1 });
  await t.broker.produceBatches("a", 0, batchOf(["a0", "a1", "a2"]), 1);
  await t.broker.produceBatches("b", 0, batchOf(["b0"]), 1);
  const r = await t.call("POST", "/v1/fetch", {
    partitions: [
      { topic: "a", partition: 0, offset: 1 },
      { topic: "a", partition: 1, offset: 0 },
      { topic: "b", partition: 0, offset: 0 },
      { topic: "b", partition: 3, offset: 0 },
      { topic: "nope", partition: 0, offset: 0 },
    ],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.session, null);
  const [a0, a1, b0, b3, nope] = r.body.partitions;
  assert.deepEqual(a0.records.map((x: { value: string }) => x.value), ["a1", "a2"]);
  assert.deepEqual(a0.records.map((x: { offset: number }) => x.offset), [1, 2]);
  assert.equal(a0.nextOffset, 3);
  assert.equal(a0.highWatermark, 3);
  assert.equal(a0.logStartOffset, 0);
  assert.deepEqual(a1.records, []);
  assert.deepEqual(b0.records.map((x: { value: string }) => x.value), ["b0"]);
  assert.equal(b3.error.code, "UNKNOWN_TOPIC_OR_PARTITION");
  assert.equal(b3.records, undefined);
  assert.equal(nope.error.code, "UNKNOWN_TOPIC_OR_PARTITION");
  assert.equal(typeof nope.error.message, "string");

  const out = await t.call("POST", "/v1/fetch", {
    partitions: [{ topic: "a", partition: 0, offset: 9 }, { topic: "b", partition: 0, offset: 0 }],
  });
  assert.equal(out.status, 200);
  assert.equal(out.body.partitions[0].error.code, "OFFSET_OUT_OF_RANGE");
  assert.equal(out.body.partitions[0].error.highWatermark, 3);
  assert.deepEqual(out.body.partitions[1].records.map((x: { value: string }) => x.value), ["b0"]);
});

Deno.test("POST /v1/fetch refuses bad input with 400 INVALID_REQUEST and a sentence", async () => {
  await using t = await openTestBroker();
  await t.broker.createTopic({ name: "a", partitions: 1 });
  const bad: unknown[] = [
    {},
    { partitions: "a" },
    { partitions: [{ topic: "a", partition: 0 }] },
    { partitions: [{ topic: "a", partition: -1, offset: 0 }] },
    { partitions: [{ topic: "a", partition: 0, offset: 0, maxBytes: 0 }] },
    { partitions: [{ topic: 5, partition: 0, offset: 0 }] },
    { partitions: [], maxWaitMs: -1 },
    { partitions: [], maxWaitMs: 10_000_000 },
    { partitions: [], extra: 1 },
    { partitions: [], session: { id: "x", epoch: 0 } },
    { partitions: [{ topic: "a", partition: 0, offset: 0, leaderEpoch: 1 }] },
    { partitions: [], replicaId: 2, observerId: 9 },
    { partitions: [], observerId: "nine" },
    {
      partitions: [{ topic: "a", partition: 0, offset: 0 }, {
        topic: "a",
        partition: 0,
        offset: 1,
      }],
    },
  ];
  for (const body of bad) {
    const r = await t.call("POST", "/v1/fetch", body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.error.code, "INVALID_REQUEST", JSON.stringify(body));
    assert.match(r.body.error.message, /\S/);
  }
  const notJson = await t.call("POST", "/v1/fetch", "{", { "content-type": "application/json" });
  assert.equal(notJson.status, 400);
  const text = await t.call("POST", "/v1/fetch", "x", { "content-type": "text/plain" });
  assert.equal(text.status, 415);
  assert.equal(t.broker.fetchSessions.size, 0, "a refused request opened no session");
});

Deno.test("POST /v1/fetch raw framing: header, then each partition's batches byte for byte", async () => {
  await using t = await openTestBroker();
  await t.broker.createTopic({ name: "a", partitions: 3 });
  // Partition 1 large enough to be sent from the read buffer itself over Deno.serve.
  const big = Array.from({ length: 300 }, (_, i) => `big-${i}-${"x".repeat(400)}`);
  await t.broker.produceBatches("a", 0, batchOf(["p0-0", "p0-1"]), 1);
  await t.broker.produceBatches("a", 1, batchOf(big), 1);
  await t.broker.produceBatches("a", 1, batchOf(["tail"]), 1);
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req, info) => t.app.fetch(req, info),
  );
  try {
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/v1/fetch`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: FETCH_MEDIA_TYPE },
      body: JSON.stringify({
        partitions: [0, 1, 2, 9].map((p) => ({ topic: "a", partition: p, offset: 0 })),
      }),
    });
    assert.equal(res.headers.get("content-type"), FETCH_MEDIA_TYPE);
    const frame = new Uint8Array(await res.arrayBuffer());
    assert.equal(Number(res.headers.get("content-length")), frame.length);
    const answer = parseFetchFrame(frame);
    const [p0, p1, p2, p9] = answer.partitions;
    assert.deepEqual(valuesOf(p0.bytes), ["p0-0", "p0-1"]);
    assert.deepEqual(valuesOf(p1.bytes), [...big, "tail"]);
    const direct = await t.broker.fetch("a", 1, 0, {
      maxBytes: 1 << 20,
      maxWaitMs: 0,
      minBytes: 1,
    });
    assert.deepEqual(p1.bytes, direct.bytes, "the stored batches, as they are");
    assert.equal(p1.nextOffset, 301);
    assert.equal(p2.bytes.length, 0);
    assert.equal(p2.highWatermark, 0);
    assert.equal(p9.error?.code, "UNKNOWN_TOPIC_OR_PARTITION");
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("POST /v1/fetch long-polls every partition and answers when any gets records", async () => {
  await using t = await openTestBroker();
  await t.broker.createTopic({ name: "a", partitions: 8 });
  const pending = t.call("POST", "/v1/fetch", {
    partitions: Array.from({ length: 8 }, (_, p) => ({ topic: "a", partition: p, offset: 0 })),
    maxWaitMs: 60_000,
  });
  const r5 = await t.broker.replica("a", 5);
  // The request reaches its wait on a later turn of the event loop (no event tells when).
  for (let i = 0; i < 5000 && r5.waiters.size === 0; i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.equal(r5.waiters.size, 1, "the fetch waits on partition 5");
  await t.broker.produceBatches("a", 5, batchOf(["late"]), 1);
  const r = await pending;
  assert.equal(r.status, 200);
  const got = r.body.partitions.filter((p: { records: unknown[] }) => p.records.length > 0);
  assert.deepEqual(got.map((p: { partition: number }) => p.partition), [5]);
  assert.equal(got[0].records[0].value, "late");
});

Deno.test("POST /v1/fetch sessions: open, send only changes, get only news, 409 on a stale epoch", async () => {
  await using t = await openTestBroker();
  await t.broker.createTopic({ name: "a", partitions: 4 });
  await t.broker.produceBatches("a", 2, batchOf(["x"]), 1);
  const all = Array.from({ length: 4 }, (_, p) => ({ topic: "a", partition: p, offset: 0 }));
  const open = await t.call("POST", "/v1/fetch", { partitions: all, session: { id: 0, epoch: 0 } });
  assert.equal(open.status, 200);
  const { id, epoch } = open.body.session;
  assert.ok(id > 0);
  assert.equal(epoch, 1);
  assert.equal(open.body.partitions.length, 4);
  // Only partition 2 moved; data arrives on 3.
  await t.broker.produceBatches("a", 3, batchOf(["y"]), 1);
  const next = await t.call("POST", "/v1/fetch", {
    partitions: [{ topic: "a", partition: 2, offset: 1 }],
    session: { id, epoch: 1 },
  });
  assert.equal(next.status, 200);
  assert.deepEqual(next.body.session, { id, epoch: 2 });
  assert.deepEqual(
    next.body.partitions.map((p: { partition: number; records: { value: string }[] }) =>
      `${p.partition}:${p.records.map((r) => r.value)}`
    ),
    ["3:y"],
  );
  const stale = await t.call("POST", "/v1/fetch", { partitions: [], session: { id, epoch: 1 } });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.error.code, "INVALID_FETCH_SESSION_EPOCH");
  const gone = await t.call("POST", "/v1/fetch", {
    partitions: [],
    session: { id: id + 1, epoch: 1 },
  });
  assert.equal(gone.status, 409);
  assert.equal(gone.body.error.code, "FETCH_SESSION_ID_NOT_FOUND");
});

Deno.test("POST /v1/fetch with auth: a topic the principal may not read is its partitions' error; replica fetches need the cluster secret", async () => {
  await using b = await openSecureBroker();
  await b.broker.createTopic({ name: "open", partitions: 1 });
  await b.broker.createTopic({ name: "secret", partitions: 1 });
  await b.broker.produceBatches("open", 0, batchOf(["o"]), 1);
  await b.broker.produceBatches("secret", 0, batchOf(["s"]), 1);
  const token = await b.key("reader");
  await b.allow("reader", "topic", "open", "read");
  const r = await b.call("POST", "/v1/fetch", token, {
    partitions: [{ topic: "secret", partition: 0, offset: 0 }, {
      topic: "open",
      partition: 0,
      offset: 0,
    }],
    maxWaitMs: 60_000,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const byTopic = new Map(r.body.partitions.map((p: { topic: string }) => [p.topic, p]));
  // deno-lint-ignore no-explicit-any
  const secret = byTopic.get("secret") as any, open = byTopic.get("open") as any;
  assert.equal(secret.error.code, "TOPIC_AUTHORIZATION_FAILED");
  assert.deepEqual(open.records.map((x: { value: string }) => x.value), ["o"]);
  const anonymous = await b.call("POST", "/v1/fetch", undefined, { partitions: [] });
  assert.equal(anonymous.status, 401);
  const replica = await b.call("POST", "/v1/fetch", token, {
    partitions: [{ topic: "open", partition: 0, offset: 0 }],
    replicaId: 1,
  });
  assert.equal(replica.status, 403);
  assert.equal(replica.body.error.code, "CLUSTER_AUTHORIZATION_FAILED");
  // Claiming to be an edge follower (its position steers Kafka consumers) needs it too.
  const observer = await b.call("POST", "/v1/fetch", token, {
    partitions: [{ topic: "open", partition: 0, offset: 0 }],
    observerId: 9,
  });
  assert.equal(observer.status, 403);
  assert.equal(observer.body.error.code, "CLUSTER_AUTHORIZATION_FAILED");
  assert.equal((await b.broker.replica("open", 0)).observers().size, 0, "nothing recorded");
});
