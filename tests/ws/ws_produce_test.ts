/**
 * The WebSocket connection (src/ws, src/client/ws_connection.ts) for produce: the client's
 * producer uses it by default and falls back to HTTP; frames are checked as HTTP requests
 * are (auth, ACLs, limits, idempotence); acknowledgements are pipelined.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { WsConnection } from "../../src/client/ws_connection.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { decodeFrame, encodeFrame, frameParts } from "../../src/protocol/ws_frames.ts";
import { readPartition } from "../_helpers/read_records.ts";
import { serveBroker } from "./_served.ts";

const enc = new TextEncoder();

/** Waits for the next message of a raw socket, decoded. */
function nextFrame(socket: WebSocket) {
  return new Promise<ReturnType<typeof decodeFrame>>((resolve) => {
    socket.addEventListener("message", (e) => {
      const bytes = new Uint8Array(e.data as ArrayBuffer);
      if (bytes.byteLength > 0) resolve(decodeFrame(bytes));
    }, { once: true });
  });
}

async function openRaw(url: string, protocols = ["rill.v1"]): Promise<WebSocket> {
  const socket = new WebSocket(url.replace("http", "ws") + "/v1/ws", protocols);
  socket.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  return socket;
}

function base64Url(text: string): string {
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function closeRaw(socket: WebSocket): Promise<void> {
  const closed = new Promise((r) => socket.addEventListener("close", r));
  socket.close();
  await closed;
}

Deno.test("ws: the producer sends over one WebSocket by default, records land in order", async () => {
  await using s = await serveBroker();
  await s.topic("t", 2);
  const rill = new Rill({ brokers: [s.url] });
  const producer = rill.producer({ acks: 1 });
  const metas = [];
  for (let i = 0; i < 20; i++) {
    // 1 KiB values: frames over 1 KiB, whole.
    const value = `${i}:`.padEnd(1024, "x");
    metas.push(...await producer.send({ topic: "t", messages: [{ value, partition: i % 2 }] }));
  }
  // One connection carried them all.
  assert.equal(s.ws!.connections, 1);
  // A 200 KiB batch, and many pipelined sends.
  await producer.send({ topic: "t", messages: [{ value: "y".repeat(200 * 1024), partition: 0 }] });
  const many = await Promise.all(
    Array.from(
      { length: 50 },
      (_, i) => producer.send({ topic: "t", messages: [{ value: `m${i}`, partition: 1 }] }),
    ),
  );
  await producer.disconnect();
  assert.deepEqual(metas.map((m) => m.offset), Array.from({ length: 20 }, (_, i) => i >> 1));
  assert.deepEqual(many.map((m) => m[0].offset), Array.from({ length: 50 }, (_, i) => 10 + i));
  const p0 = await readPartition(s.url, "t", 0);
  assert.equal(p0.length, 11);
  assert.equal(p0[3].value, `6:`.padEnd(1024, "x"));
  assert.equal(p0[10].value?.length, 200 * 1024);
  const p1 = await readPartition(s.url, "t", 1);
  assert.deepEqual(p1.slice(10).map((r) => r.value), many.map((_, i) => `m${i}`));
  // Disconnected: the connection is closed.
  while (s.ws!.connections > 0) await new Promise((r) => setTimeout(r, 5));
});

Deno.test("ws: small sends, then a large one, pipelined: the records land in the order sent", async () => {
  await using s = await serveBroker();
  await s.topic("t");
  const producer = new Rill({ brokers: [s.url] }).producer({ acks: 1, idempotent: false });
  await producer.send({ topic: "t", messages: [{ value: "first" }] });
  // Small frames and a large one in between, all pipelined on one connection.
  const values = Array.from({ length: 21 }, (_, i) => i === 10 ? "L".repeat(4000) : `s${i}`);
  const sends = [];
  for (const value of values) {
    sends.push(producer.send({ topic: "t", messages: [{ value }] }));
    await Promise.resolve();
  }
  await Promise.all(sends);
  await producer.disconnect();
  const records = await readPartition(s.url, "t", 0);
  assert.deepEqual(records.map((r) => r.value), ["first", ...values]);
});

Deno.test("ws: a frame sent in parts (Deno's own WebSocket client) is produced whole", async () => {
  await using s = await serveBroker();
  await s.topic("t");
  const raw = await openRaw(s.url);
  const value = enc.encode("z".repeat(5000));
  const parts = frameParts(
    encodeFrame({ op: "produce", id: 1, topic: "t", partition: 0, acks: 1 }, [
      encodeBatch([{ key: null, value }]),
    ]),
  );
  assert.ok(parts.length > 1);
  let empties = 0;
  const answered = new Promise<ReturnType<typeof decodeFrame>>((resolve) => {
    raw.addEventListener("message", (e) => {
      const bytes = new Uint8Array(e.data as ArrayBuffer);
      if (bytes.byteLength === 0) empties++;
      else resolve(decodeFrame(bytes));
    });
  });
  for (const part of parts) raw.send(part);
  const { header } = await answered;
  assert.equal(header.op, "produced");
  assert.equal(empties, parts.length - 1);
  await closeRaw(raw);
  const records = await readPartition(s.url, "t", 0);
  assert.equal(records.length, 1);
  assert.equal(records[0].value?.length, 5000);
});

Deno.test("ws: a produce while the connection's long poll waits is answered; the poll then answers with it", async () => {
  // A client producing while its consumer long-polls on the same connection.
  await using s = await serveBroker();
  await s.topic("t");
  const conn = await WsConnection.open(s.url);
  const poll = conn.fetch({
    partitions: [{ topic: "t", partition: 0, offset: 0 }],
    maxWaitMs: 20_000,
  });
  poll.catch(() => {}); // awaited below; a failed step must not leave it unhandled
  const batch = encodeBatch([{ key: null, value: enc.encode("small") }]);
  const { header } = await conn.request(
    { op: "produce", topic: "t", partition: 0, acks: 1 },
    batch,
  );
  assert.equal(header.baseOffset, 0);
  const answer = await poll;
  const part = answer.partitions[0];
  assert.ok(part.error === undefined && part.nextOffset === 1, JSON.stringify(part));
  assert.equal(s.ws!.connections, 1);
  conn.close();
});

Deno.test("ws: transport http sends no WebSocket; a broker without it is reached over HTTP", async () => {
  await using s = await serveBroker();
  await s.topic("t");
  const http = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  await http.send({ topic: "t", messages: [{ value: "a" }] });
  assert.equal(s.ws!.connections, 0);
  await http.disconnect();

  await using plain = await serveBroker({ ws: false });
  await plain.topic("t");
  const auto = new Rill({ brokers: [plain.url] }).producer({ acks: 1 });
  const [meta] = await auto.send({ topic: "t", messages: [{ value: "b" }] });
  assert.equal(meta.offset, 0);
  await auto.disconnect();
  const forced = new Rill({ brokers: [plain.url], transport: "ws", retry: { retries: 0 } })
    .producer({ acks: 1 });
  await assert.rejects(
    forced.send({ topic: "t", messages: [{ value: "c" }] }),
    (e: unknown) => e instanceof RillError && e.code === "BROKER_NOT_AVAILABLE",
  );
  await forced.disconnect();
  assert.equal((await readPartition(plain.url, "t", 0)).length, 1);
});

Deno.test("ws: API keys in the subprotocol or a hello frame, ACLs as over HTTP", async () => {
  await using s = await serveBroker({ security: { auth: true } });
  await s.topic("t");
  const res = await fetch(`${s.url}/v1/auth/keys`, {
    method: "POST",
    body: JSON.stringify({ principal: "app" }),
    headers: { "content-type": "application/json", authorization: `Bearer ${s.admin}` },
  });
  const { token } = await res.json();
  // No ACL yet: denied, and audited.
  const denied = new Rill({ brokers: [s.url], auth: token, transport: "ws" }).producer({
    acks: 1,
    idempotent: false,
  });
  await assert.rejects(
    denied.send({ topic: "t", messages: [{ value: "x" }] }),
    (e: unknown) => e instanceof RillError && e.code === "TOPIC_AUTHORIZATION_FAILED",
  );
  await denied.disconnect();
  assert.ok(s.audit.some((l) => l.includes("authorization_denied") && l.includes('"app"')));
  const acl = await fetch(`${s.url}/v1/auth/acls`, {
    method: "POST",
    body: JSON.stringify({
      principal: "app",
      resourceType: "topic",
      resourceName: "t",
      operation: "write",
    }),
    headers: { "content-type": "application/json", authorization: `Bearer ${s.admin}` },
  });
  assert.equal(acl.status, 201);
  await acl.body?.cancel();
  // The key in the handshake: in a subprotocol, as a browser sends it...
  const batch = encodeBatch([{ key: null, value: enc.encode("v") }]);
  const browser = await openRaw(s.url, ["rill.v1", `rill.auth.${base64Url(token)}`]);
  browser.send(encodeFrame({ op: "produce", id: 1, topic: "t", partition: 0, acks: 1 }, [batch]));
  const first = await nextFrame(browser);
  assert.equal(first.header.op, "produced", JSON.stringify(first.header));
  assert.equal(first.header.baseOffset, 0);
  await closeRaw(browser);
  // ...or in an Authorization header, as the client in Deno sends it.
  const conn = await WsConnection.open(s.url, { auth: token });
  const big = encodeBatch([{ key: null, value: enc.encode("b".repeat(2000)) }]);
  const { header } = await conn.request({ op: "produce", topic: "t", partition: 0, acks: 1 }, big);
  assert.equal(header.baseOffset, 1);
  conn.close();
  // A bad key is refused in the handshake (401), so the client can fall back to HTTP,
  // which reports it.
  const bad = new Rill({ brokers: [s.url], auth: "rk_nope.secret", retry: { retries: 0 } })
    .producer({ acks: 1, idempotent: false });
  await assert.rejects(
    bad.send({ topic: "t", messages: [{ value: "x" }] }),
    (e: unknown) => e instanceof RillError && e.code === "UNAUTHENTICATED",
  );
  await bad.disconnect();
  // No key in the handshake: a hello frame carries it; before it, requests are refused.
  const raw = await openRaw(s.url);
  raw.send(encodeFrame({ op: "produce", id: 1, topic: "t", partition: 0, acks: 1 }, [batch]));
  const early = await nextFrame(raw);
  assert.equal(early.header.op, "error");
  assert.equal((early.header.error as { code: string }).code, "UNAUTHENTICATED");
  raw.send(encodeFrame({ op: "hello", id: 2, auth: token }));
  raw.send(encodeFrame({ op: "produce", id: 3, topic: "t", partition: 0, acks: 1 }, [batch]));
  assert.equal((await nextFrame(raw)).header.op, "hello");
  const produced = await nextFrame(raw);
  assert.equal(produced.header.id, 3);
  assert.equal(produced.header.baseOffset, 2);
  await closeRaw(raw);
});

Deno.test("ws: bad frames get clear errors and change nothing; the connection stays usable", async () => {
  await using s = await serveBroker();
  await s.topic("t");
  const raw = await openRaw(s.url);
  const batch = encodeBatch([{ key: null, value: enc.encode("v") }]);
  const cases: [string | Uint8Array<ArrayBuffer>, string][] = [
    ["text", "INVALID_REQUEST"],
    [new Uint8Array([0, 0, 0, 9, 1]), "INVALID_REQUEST"],
    [encodeFrame({ op: "produce", topic: "t", partition: 0 }, [batch]), "INVALID_REQUEST"], // no id
    [encodeFrame({ op: "nope", id: 1 }), "INVALID_REQUEST"],
    [
      encodeFrame({ op: "produce", id: 2, topic: "t", partition: 5, acks: 1 }, [batch]),
      "UNKNOWN_TOPIC_OR_PARTITION",
    ],
    [
      encodeFrame({ op: "produce", id: 3, topic: "no/pe", partition: 0, acks: 1 }, [batch]),
      "INVALID_TOPIC_EXCEPTION",
    ],
    [
      encodeFrame({ op: "produce", id: 4, topic: "t", partition: 0, acks: 7 }, [batch]),
      "INVALID_REQUEST",
    ],
    [
      encodeFrame({ op: "produce", id: 5, topic: "t", partition: 0, acks: 1 }, [
        new Uint8Array(70),
      ]),
      "CORRUPT_MESSAGE",
    ],
  ];
  for (const [message, code] of cases) {
    raw.send(message);
    const answer = await nextFrame(raw);
    assert.equal(answer.header.op, "error", String(code));
    const error = answer.header.error as { code: string; message: string };
    assert.ok([code, "INVALID_RECORD"].includes(error.code), `${error.code} for ${code}`);
    assert.ok(error.message.length > 0);
  }
  raw.send(encodeFrame({ op: "produce", id: 9, topic: "t", partition: 0, acks: 1 }, [batch]));
  const ok = await nextFrame(raw);
  assert.equal(ok.header.op, "produced");
  assert.equal(ok.header.baseOffset, 0);
  await closeRaw(raw);
  assert.equal((await readPartition(s.url, "t", 0)).length, 1);
});

Deno.test("ws: in-flight produce bytes are bounded per connection; acks are pipelined", async () => {
  await using s = await serveBroker({ limits: { maxInFlightBytes: 64 * 1024 } });
  await s.topic("t");
  const raw = await openRaw(s.url);
  const answers: Record<string, unknown>[] = [];
  raw.addEventListener("message", (e) => {
    const bytes = new Uint8Array(e.data as ArrayBuffer);
    if (bytes.byteLength > 0) answers.push(decodeFrame(bytes).header);
  });
  // A 40 KiB idempotent batch ahead of its sequence is held by the broker (up to 1.5 s,
  // waiting for its predecessor): its bytes stay in flight meanwhile.
  const res = await fetch(`${s.url}/v1/producers`, { method: "POST" });
  const { producerId, producerEpoch } = await res.json();
  const first = encodeBatch([{ key: null, value: enc.encode("seq0") }], {
    producerId,
    producerEpoch,
    baseSequence: 0,
  });
  raw.send(encodeFrame({ op: "produce", id: 0, topic: "t", partition: 0, acks: -1 }, [first]));
  while (answers.length < 1) await new Promise((r) => setTimeout(r, 5));
  assert.equal(answers.shift()!.op, "produced");
  const held = encodeBatch([{ key: null, value: new Uint8Array(40 * 1024) }], {
    producerId,
    producerEpoch,
    baseSequence: 5,
  });
  raw.send(encodeFrame({ op: "produce", id: 1, topic: "t", partition: 0, acks: -1 }, [held]));
  const big = encodeBatch([{ key: null, value: new Uint8Array(40 * 1024) }]);
  raw.send(encodeFrame({ op: "produce", id: 2, topic: "t", partition: 0, acks: -1 }, [big]));
  while (answers.length < 2) await new Promise((r) => setTimeout(r, 5));
  // The second is over the window and refused at once; the first fails after its hold.
  assert.equal(answers[0].id, 2);
  assert.equal((answers[0].error as { code: string }).code, "THROTTLING_QUOTA_EXCEEDED");
  assert.equal(answers[1].id, 1);
  assert.equal((answers[1].error as { code: string }).code, "OUT_OF_ORDER_SEQUENCE_NUMBER");
  // Small ones pipelined: each answered once, with its own offset.
  answers.length = 0;
  for (let i = 10; i < 30; i++) {
    const b = encodeBatch([{ key: null, value: enc.encode(`v${i}`) }]);
    raw.send(encodeFrame({ op: "produce", id: i, topic: "t", partition: 0, acks: 1 }, [b]));
  }
  while (answers.length < 20) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(
    answers.map((a) => [a.id, a.baseOffset]).sort((x, y) => (x[0] as number) - (y[0] as number)),
    Array.from({ length: 20 }, (_, i) => [10 + i, 1 + i]),
  );
  await closeRaw(raw);
});

Deno.test("ws: an idempotent batch sent twice is appended once", async () => {
  await using s = await serveBroker();
  await s.topic("t");
  const res = await fetch(`${s.url}/v1/producers`, { method: "POST" });
  const { producerId, producerEpoch } = await res.json();
  const batch = encodeBatch([{ key: null, value: enc.encode("once") }], {
    producerId,
    producerEpoch,
    baseSequence: 0,
  });
  const conn = await WsConnection.open(s.url);
  const first = await conn.request(
    { op: "produce", topic: "t", partition: 0, acks: -1 },
    batch.slice(),
  );
  const again = await conn.request(
    { op: "produce", topic: "t", partition: 0, acks: -1 },
    batch.slice(),
  );
  conn.close();
  assert.equal(first.header.baseOffset, 0);
  assert.equal(again.header.baseOffset, 0);
  assert.equal((await readPartition(s.url, "t", 0)).length, 1);
});
