/**
 * Fetches over the WebSocket connection on the broker's fetch-session core: many partitions
 * in one long poll woken by an append, per-partition errors, ACLs, sessions, and the
 * connection's bounds.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { WsConnection } from "../../src/client/ws_connection.ts";
import { RillError } from "../../src/protocol/errors.ts";
import {
  decodeFrame,
  encodeFrame,
  FrameParts,
  WS_ANSWER_PART_BYTES,
  WS_SUBPROTOCOL,
} from "../../src/protocol/ws_frames.ts";
import {
  decodeBatch,
  encodeBatch,
  readBatchHeader,
  splitBatches,
} from "../../src/protocol/record_batch.ts";
import { closeSocket, serveBroker } from "./_served.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import {
  encodeProduceFrame,
  startsWith,
  topicBytesOf,
  WS_PRODUCED,
} from "../../src/protocol/ws_produce_frames.ts";

Deno.test("ws fetch: many partitions, one long poll woken by an append, errors per partition", async () => {
  await using s = await serveBroker();
  await s.topic("a", 2);
  await s.topic("b", 1);
  const producer = new Rill({ brokers: [s.url] }).producer({ acks: 1 });
  await producer.send({ topic: "a", messages: [{ value: "a0", partition: 0 }] });
  await producer.send({ topic: "b", messages: [{ value: "b0", partition: 0 }] });
  const conn = await WsConnection.open(s.url);
  try {
    const first = await conn.fetch({
      partitions: [
        { topic: "a", partition: 0, offset: 0 },
        { topic: "a", partition: 1, offset: 0 },
        { topic: "b", partition: 0, offset: 0 },
        { topic: "a", partition: 9, offset: 0 },
      ],
    });
    const byKey = new Map(first.partitions.map((p) => [`${p.topic}-${p.partition}`, p]));
    const a0 = byKey.get("a-0")!;
    assert.ok(a0.error === undefined);
    assert.equal(a0.nextOffset, 1);
    assert.equal(readBatchHeader(a0.bytes).lastOffsetDelta, 0);
    const a1 = byKey.get("a-1")!;
    assert.ok(a1.error === undefined && a1.bytes.byteLength === 0 && a1.nextOffset === 0);
    assert.equal(byKey.get("b-0")!.error, undefined);
    const missing = byKey.get("a-9")!;
    assert.ok(missing.error instanceof RillError);
    assert.equal(missing.error.code, "UNKNOWN_TOPIC_OR_PARTITION");

    // A long poll on two partitions is answered by an append to either.
    const t0 = performance.now();
    const poll = conn.fetch({
      partitions: [{ topic: "a", partition: 1, offset: 0 }, {
        topic: "b",
        partition: 0,
        offset: 1,
      }],
      maxWaitMs: 10_000,
    });
    await producer.send({ topic: "b", messages: [{ value: "b1", partition: 0 }] });
    const woken = await poll;
    assert.ok(performance.now() - t0 < 9_000, "answered by the append, not the wait");
    const b0 = woken.partitions.find((p) => p.topic === "b")!;
    assert.ok(b0.error === undefined && b0.nextOffset === 2 && b0.bytes.byteLength > 0);

    // Bad requests are refused whole, with clear errors.
    for (
      const [req, code] of [
        [{ partitions: [] }, "INVALID_REQUEST"],
        [{ partitions: [{ topic: "a", partition: -1, offset: 0 }] }, "INVALID_REQUEST"],
        [
          { partitions: [{ topic: "a", partition: 0, offset: 0 }], maxWaitMs: -5 },
          "INVALID_REQUEST",
        ],
        [{ partitions: [{ topic: "no/pe", partition: 0, offset: 0 }] }, "INVALID_TOPIC_EXCEPTION"],
      ] as const
    ) {
      await assert.rejects(
        conn.fetch(req as never),
        (e: unknown) => e instanceof RillError && e.code === code,
        JSON.stringify(req),
      );
    }
    // An incremental session: the second request names nothing new and gets what moved.
    const opened = await conn.fetch({
      partitions: [{ topic: "a", partition: 0, offset: 1 }],
      session: { id: 0, epoch: 0 },
    });
    assert.ok(opened.session !== null && opened.session.id > 0);
    const next = conn.fetch({ partitions: [], session: opened.session!, maxWaitMs: 10_000 });
    await producer.send({ topic: "a", messages: [{ value: "a1", partition: 0 }] });
    const moved = await next;
    assert.deepEqual(
      moved.partitions.map((p) => [p.topic, p.partition, p.error ?? p.nextOffset]),
      [["a", 0, 2]],
    );
    assert.equal(moved.session!.epoch, opened.session!.epoch + 1);
  } finally {
    conn.close();
    await producer.disconnect();
  }
});

Deno.test("ws fetch: reading needs the read ACL of every topic named", async () => {
  await using s = await serveBroker({ security: { auth: true } });
  await s.topic("t");
  const headers = { "content-type": "application/json", authorization: `Bearer ${s.admin}` };
  const res = await fetch(`${s.url}/v1/auth/keys`, {
    method: "POST",
    body: JSON.stringify({ principal: "reader" }),
    headers,
  });
  const { token } = await res.json();
  const conn = await WsConnection.open(s.url, { auth: token });
  try {
    await assert.rejects(
      conn.fetch({ partitions: [{ topic: "t", partition: 0, offset: 0 }] }),
      (e: unknown) => e instanceof RillError && e.code === "TOPIC_AUTHORIZATION_FAILED",
    );
    const acl = await fetch(`${s.url}/v1/auth/acls`, {
      method: "POST",
      body: JSON.stringify({
        principal: "reader",
        resourceType: "topic",
        resourceName: "t",
        operation: "read",
      }),
      headers,
    });
    assert.equal(acl.status, 201);
    await acl.body?.cancel();
    // ACLs are cached for up to a second: wait for the reload.
    let answer;
    for (let i = 0; i < 100 && answer === undefined; i++) {
      answer = await conn.fetch({ partitions: [{ topic: "t", partition: 0, offset: 0 }] })
        .catch(() => undefined);
      if (answer === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(answer !== undefined);
    assert.equal(answer.partitions[0].error, undefined);
  } finally {
    conn.close();
  }
});

Deno.test("ws fetch: a connection may have at most 64 fetches waiting", async () => {
  await using s = await serveBroker();
  await s.topic("t");
  const conn = await WsConnection.open(s.url);
  try {
    const polls = Array.from(
      { length: 65 },
      () =>
        conn.fetch({ partitions: [{ topic: "t", partition: 0, offset: 0 }], maxWaitMs: 3000 })
          .then(() => null, (e) => e),
    );
    const results = await Promise.all(polls);
    const refused = results.filter((r) => r instanceof RillError);
    assert.equal(refused.length, 1);
    assert.equal((refused[0] as RillError).code, "THROTTLING_QUOTA_EXCEEDED");
  } finally {
    conn.close();
  }
});

Deno.test("ws fetch: the consumer reads over the client's WebSocket (a push subscription), and closes it when stopped", async () => {
  await using s = await serveBroker();
  await s.topic("t", 2);
  const rill = new Rill({ brokers: [s.url] });
  const consumer = rill.consumer({ maxWaitMs: 5000 });
  await consumer.assign([
    { topic: "t", partition: 0, offset: "earliest" },
    { topic: "t", partition: 1, offset: "earliest" },
  ]);
  const seen: string[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => done = r);
  await consumer.run({
    eachMessage: ({ message }) => {
      seen.push(message.valueString()!);
      if (seen.length === 4) done();
    },
  });
  const producer = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  for (let i = 0; i < 4; i++) {
    await producer.send({ topic: "t", messages: [{ value: `v${i}`, partition: i % 2 }] });
  }
  await all;
  assert.equal(s.ws!.connections, 1);
  // Pushed (src/client/push_loop.ts): one subscription, no long poll; tests/ws/
  // ws_consumer_push_test.ts has the long poll of a broker that does not push.
  assert.equal(s.broker.fetchSessions.size, 0, "no fetch session");
  const httpFetches = async () =>
    /rill_requests_total\{api="http",route="\/v1\/fetch"/.test(
      await (await fetch(`${s.url}/metrics`)).text(),
    );
  // The start offsets were looked up over the same connection: no HTTP connection is left
  // open for them.
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  assert.match(metrics, /rill_requests_total\{api="ws",route="offsets",status="200"\} 2/);
  assert.match(metrics, /rill_requests_total\{api="ws",route="subscribe",status="200"\} 1/);
  assert.doesNotMatch(metrics, /api="ws",route="fetch"/);
  assert.doesNotMatch(metrics, /api="http",route="[^"]*offsets"/);
  await consumer.disconnect();
  await producer.disconnect();
  assert.deepEqual(seen.sort(), ["v0", "v1", "v2", "v3"]);
  while (s.ws!.connections > 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(await httpFetches(), false, "no POST /v1/fetch");
});

Deno.test("ws fetch: long polls of many connections woken by one append each get their own bytes", async () => {
  await using s = await serveBroker();
  await s.topic("fan", 2);
  const producer = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  // Records of different sizes, so each answer's frame has its own length.
  const values = Array.from({ length: 12 }, (_, i) => `r${i}-`.padEnd(100 + i * 900, "xyz"[i % 3]));
  for (const [i, value] of values.entries()) {
    await producer.send({ topic: "fan", messages: [{ value, partition: i % 2 }] });
  }
  const conns = await Promise.all(Array.from({ length: 6 }, () => WsConnection.open(s.url)));
  try {
    // Each connection long-polls its partition from the end; one append wakes them all.
    const polls = conns.map((c, i) =>
      c.fetch({ partitions: [{ topic: "fan", partition: i % 2, offset: 6 }], maxWaitMs: 10_000 })
    );
    const last = ["a", "b"].map((v, p) => `${v}-woken`.padEnd(3000 + p * 5000, v));
    await producer.send({ topic: "fan", messages: [{ value: last[0], partition: 0 }] });
    await producer.send({ topic: "fan", messages: [{ value: last[1], partition: 1 }] });
    // And fetches from the start, of every size, all at once on every connection.
    const reads = conns.flatMap((c) =>
      Array.from(
        { length: 6 },
        (_, offset) =>
          c.fetch({ partitions: [{ topic: "fan", partition: offset % 2, offset }] }).then((a) => ({
            a,
            partition: offset % 2,
            offset,
          })),
      )
    );
    const decode = (bytes: Uint8Array) =>
      splitBatches(bytes).flatMap((b) =>
        decodeBatch(b).records.map((r) => new TextDecoder().decode(r.value!))
      );
    for (const [i, answer] of (await Promise.all(polls)).entries()) {
      const p = answer.partitions[0];
      assert.ok(p.error === undefined);
      assert.deepEqual(decode(p.bytes), [last[i % 2]], `long poll ${i}`);
    }
    for (const { a, partition, offset } of await Promise.all(reads)) {
      const p = a.partitions[0];
      assert.ok(p.error === undefined);
      const want = [...values.filter((_, i) => i % 2 === partition), last[partition]];
      const got = decode(p.bytes);
      // The first batch may start before the offset asked: compare from its start.
      assert.deepEqual(
        got,
        want.slice(want.length - got.length),
        `partition ${partition}@${offset}`,
      );
      assert.ok(got.length >= want.length - offset, `${got.length} records from ${offset}`);
    }
  } finally {
    for (const c of conns) c.close();
    await producer.disconnect();
  }
});

Deno.test("ws offsets: earliest, latest and by timestamp, as the HTTP route answers; bad requests refused", async () => {
  await using s = await serveBroker();
  await s.topic("t", 1);
  const producer = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  for (let i = 0; i < 3; i++) await producer.send({ topic: "t", messages: [{ value: `v${i}` }] });
  await producer.disconnect();
  const conn = await WsConnection.open(s.url);
  try {
    assert.equal(conn.offsets, true, "the hello answer lists offsets");
    const ask = async (at: unknown) =>
      (await conn.request({ op: "offsets", topic: "t", partition: 0, at })).header.offset;
    const http = async (at: string) =>
      (await (await fetch(`${s.url}/v1/topics/t/partitions/0/offsets?at=${at}`)).json()).offset;
    assert.equal(await ask("earliest"), 0);
    assert.equal(await ask("latest"), 3);
    assert.equal(await ask(undefined), 3, "latest by default");
    const now = Date.now();
    assert.equal(await ask(now + 60_000), await http(String(now + 60_000)));
    assert.equal(await ask(0), 0);
    for (
      const [req, code] of [
        [{ topic: "t", partition: 0, at: "soon" }, "INVALID_REQUEST"],
        [{ topic: "t", partition: -1 }, "INVALID_REQUEST"],
        [{ partition: 0 }, "INVALID_REQUEST"],
        [{ topic: "t", partition: 5 }, "UNKNOWN_TOPIC_OR_PARTITION"],
        [{ topic: "nope", partition: 0 }, "UNKNOWN_TOPIC_OR_PARTITION"],
      ] as const
    ) {
      await assert.rejects(
        conn.request({ op: "offsets", ...req }),
        (e) => e instanceof RillError && e.code === code,
        JSON.stringify(req),
      );
    }
    assert.equal(await ask("latest"), 3, "the connection still answers");
  } finally {
    conn.close();
  }
});

Deno.test("ws fetch: an answer longer than 64 KiB goes in parts to a client that takes them, whole to one that does not", async () => {
  await using s = await serveBroker();
  await s.topic("big", 1);
  const value = new Uint8Array(100 * 1024).fill(7);
  const producer = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  await producer.send({ topic: "big", messages: [{ value }, { value }, { value }] });
  await producer.disconnect();
  // Raw sockets: the messages as they come.
  const answerOf = async (parts: boolean) => {
    const socket = new WebSocket(`${s.url.replace("http", "ws")}/v1/ws`, WS_SUBPROTOCOL);
    socket.binaryType = "arraybuffer";
    const messages: Uint8Array[] = [];
    let got!: () => void;
    const records = new Promise<void>((r) => got = r);
    const joiner = new FrameParts();
    socket.onmessage = (e) => {
      const m = new Uint8Array(e.data as ArrayBuffer);
      messages.push(m);
      const whole = joiner.take(m);
      if (whole !== null && decodeFrame(whole).header.op === "records") got();
    };
    await new Promise((r) => socket.onopen = r);
    socket.send(encodeFrame({ op: "hello", id: 1, parts }));
    socket.send(encodeFrame({
      op: "fetch",
      id: 2,
      partitions: [{ topic: "big", partition: 0, offset: 0, maxBytes: 1024 * 1024 }],
    }));
    await records;
    await closeSocket(socket);
    return messages.slice(1); // after the hello answer
  };
  const inParts = await answerOf(true);
  assert.ok(inParts.length > 4, `${inParts.length} messages`);
  assert.ok(inParts.every((m) => m.byteLength <= WS_ANSWER_PART_BYTES));
  const whole = await answerOf(false);
  assert.equal(whole.length, 1);
  const joiner = new FrameParts();
  let joined: Uint8Array | null = null;
  for (const m of inParts) joined = joiner.take(m);
  assert.deepEqual(joined, whole[0], "the parts join into the same frame");
  // The client library takes parts and gets the records whole.
  const conn = await WsConnection.open(s.url);
  try {
    const answer = await conn.fetch({
      partitions: [{ topic: "big", partition: 0, offset: 0, maxBytes: 1024 * 1024 }],
    });
    const p = answer.partitions[0];
    assert.ok(p.error === undefined);
    const values = splitBatches(p.bytes).flatMap((b) =>
      decodeBatch(b).records.map((r) => r.value!)
    );
    assert.deepEqual(values, [value, value, value]);
  } finally {
    conn.close();
  }
});

Deno.test("ws fetch and push: a waiting consumer's records go out before the produce answer of the append that woke it", async () => {
  // A spawned broker, as `rill broker` runs (the order is the broker's turns and sends).
  await using s = await startBroker();
  const created = await fetch(`${s.url}/v1/topics`, {
    method: "POST",
    body: JSON.stringify({ name: "order", partitions: 1 }),
    headers: { "content-type": "application/json" },
  });
  assert.equal(created.status, 201, await created.text());
  // One raw socket carries the wait and the produce, so its messages come in the order the
  // broker sent them.
  const socket = new WebSocket(`${s.url.replace("http", "ws")}/v1/ws`, WS_SUBPROTOCOL);
  socket.binaryType = "arraybuffer";
  const ops: string[] = [];
  let next: (() => void) | null = null;
  socket.onmessage = (e) => {
    const m = new Uint8Array(e.data as ArrayBuffer);
    // A binary produced answer (ws_produce_frames.ts), or a JSON frame.
    ops.push(startsWith(m, WS_PRODUCED) ? "produced" : decodeFrame(m).header.op as string);
    next?.();
  };
  const messages = (n: number) =>
    new Promise<void>((resolve) => {
      next = () => ops.length >= n && resolve();
      next();
    });
  await new Promise((r) => socket.onopen = r);
  try {
    const produce = (id: number, value: string) =>
      socket.send(
        encodeProduceFrame(
          id,
          topicBytesOf("order")!,
          0,
          1,
          encodeBatch([{ key: null, value: new TextEncoder().encode(value) }]),
        ),
      );
    produce(1, "first");
    await messages(1);
    assert.deepEqual(ops, ["produced"]);
    // A long poll at the log end, then the append that wakes it. Answers come in completion
    // order, and a busy broker may put a fetch's first read off to a later turn (1 ms of
    // reads per turn), so the append is sent once the poll waits: after a read sent behind
    // it (from offset 0, answered at once) came back.
    socket.send(encodeFrame({
      op: "fetch",
      id: 2,
      partitions: [{ topic: "order", partition: 0, offset: 1 }],
      maxWaitMs: 10_000,
    }));
    socket.send(encodeFrame({
      op: "fetch",
      id: 3,
      partitions: [{ topic: "order", partition: 0, offset: 0 }],
      maxWaitMs: 0,
    }));
    await messages(2);
    assert.deepEqual(ops, ["produced", "records"]);
    produce(30, "a");
    await messages(4);
    assert.deepEqual(ops.slice(2), ["records", "produced"]);
    // A push subscription from the log end, then the append that wakes it.
    socket.send(encodeFrame({
      op: "subscribe",
      id: 4,
      partitions: [{ topic: "order", partition: 0, offset: 2 }],
      credit: 4,
    }));
    await messages(5);
    assert.equal(ops[4], "subscribed");
    produce(5, "b");
    await messages(7);
    assert.deepEqual(ops.slice(5), ["records", "produced"]);
  } finally {
    await closeSocket(socket);
  }
});

Deno.test("ws fetch: a records answer's header is the JSON of its fields in the documented order", async () => {
  await using s = await serveBroker();
  await s.topic("t.x-1", 1);
  const producer = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  await producer.send({ topic: "t.x-1", messages: [{ value: "v0" }, { value: "v1" }] });
  await producer.disconnect();
  const socket = new WebSocket(`${s.url.replace("http", "ws")}/v1/ws`, WS_SUBPROTOCOL);
  socket.binaryType = "arraybuffer";
  const answers: Uint8Array[] = [];
  let got!: () => void;
  let arrived = new Promise<void>((r) => got = r);
  socket.onmessage = (e) => {
    answers.push(new Uint8Array(e.data as ArrayBuffer));
    got();
  };
  await new Promise((r) => socket.onopen = r);
  const ask = async (header: Record<string, unknown>) => {
    arrived = new Promise<void>((r) => got = r);
    socket.send(encodeFrame(header));
    await arrived;
    const m = answers.pop()!;
    const length = new DataView(m.buffer, m.byteOffset).getUint32(0);
    return {
      text: new TextDecoder().decode(m.subarray(4, 4 + length)),
      rest: m.byteLength - 4 - length,
    };
  };
  try {
    // A session opened, a partition answered with bytes and one with an error.
    const a = await ask({
      op: "fetch",
      id: 7,
      session: { id: 0, epoch: 0 },
      partitions: [
        { topic: "t.x-1", partition: 0, offset: 0 },
        { topic: "t.x-1", partition: 5, offset: 0 },
      ],
    });
    const header = JSON.parse(a.text);
    assert.equal(a.text, JSON.stringify(header));
    assert.deepEqual(Object.keys(header), ["op", "id", "session", "partitions"]);
    assert.deepEqual(Object.keys(header.session), ["id", "epoch"]);
    assert.deepEqual(
      Object.keys(header.partitions[0]),
      ["topic", "partition", "nextOffset", "highWatermark", "logStartOffset", "bytes"],
    );
    assert.deepEqual(
      { ...header.partitions[0], bytes: undefined },
      {
        topic: "t.x-1",
        partition: 0,
        nextOffset: 2,
        highWatermark: 2,
        logStartOffset: 0,
        bytes: undefined,
      },
    );
    assert.equal(header.partitions[0].bytes, a.rest, "the payload is the bytes the header names");
    assert.deepEqual(Object.keys(header.partitions[1]), ["topic", "partition", "error"]);
    assert.equal(header.partitions[1].error.code, "UNKNOWN_TOPIC_OR_PARTITION");
    // No session: "session" is null.
    const b = await ask({
      op: "fetch",
      id: 8,
      partitions: [{ topic: "t.x-1", partition: 0, offset: 2 }],
    });
    assert.equal(b.text, JSON.stringify(JSON.parse(b.text)));
    assert.equal(JSON.parse(b.text).session, null);
    assert.equal(b.rest, 0);
  } finally {
    await closeSocket(socket);
  }
});
