/**
 * Binary records pushes (src/protocol/ws_records_frames.ts): the broker sends them only to a
 * client whose hello asked, JSON to any other (older clients) and for a push naming a
 * partition's error; the client library asks, reads them whole or in parts, and ends the
 * connection on one it cannot read.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { WsConnection, type WsFetchAnswer } from "../../src/client/ws_connection.ts";
import { decodeBatch, splitBatches } from "../../src/protocol/record_batch.ts";
import { RillError } from "../../src/protocol/errors.ts";
import {
  decodeFrame,
  encodeFrame,
  FrameParts,
  WS_ANSWER_PART_BYTES,
  WS_SUBPROTOCOL,
} from "../../src/protocol/ws_frames.ts";
import {
  decodeRecordsFrame,
  encodeRecordsFrame,
  WS_RECORDS,
} from "../../src/protocol/ws_records_frames.ts";
import { startsWith } from "../../src/protocol/ws_produce_frames.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { closeSocket, serveBroker } from "./_served.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const valuesOf = (bytes: Uint8Array) =>
  splitBatches(bytes).flatMap((b) => decodeBatch(b).records.map((r) => text(r.value!)));

/** A raw WebSocket to the broker: each frame as it comes (parts joined), awaitable. */
async function rawClient(url: string) {
  const socket = new WebSocket(`${url.replace("http", "ws")}/v1/ws`, WS_SUBPROTOCOL);
  socket.binaryType = "arraybuffer";
  const frames: Uint8Array[] = [];
  const joiner = new FrameParts();
  let waiter: (() => void) | null = null;
  socket.onmessage = (e) => {
    const whole = joiner.take(new Uint8Array(e.data as ArrayBuffer));
    if (whole === null) return;
    frames.push(whole);
    waiter?.();
  };
  await new Promise((r) => socket.onopen = r);
  return {
    frames,
    send: (header: Record<string, unknown>) => socket.send(encodeFrame(header)),
    async next(count: number): Promise<Uint8Array> {
      while (frames.length < count) await new Promise<void>((r) => waiter = r);
      return frames[count - 1];
    },
    close: () => closeSocket(socket),
  };
}

Deno.test("ws binary push: sent to a client that asks, JSON to one that does not and for a partition's error", async () => {
  await using s = await serveBroker();
  await s.topic("t", 1);
  const producer = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  await producer.send({ topic: "t", messages: [{ value: "a" }, { value: "b" }] });
  const asks = await rawClient(s.url);
  const old = await rawClient(s.url);
  try {
    asks.send({ op: "hello", id: 1, binary: ["records"] });
    const hello = decodeFrame(await asks.next(1)).header;
    assert.deepEqual(hello.binary, ["produce", "records"]);
    // The first push names a partition's error: JSON, whatever the client asked.
    asks.send({
      op: "subscribe",
      id: 2,
      partitions: [{ topic: "t", partition: 0, offset: 0 }, {
        topic: "t",
        partition: 5,
        offset: 0,
      }],
      credit: 5,
    });
    assert.equal(decodeFrame(await asks.next(2)).header.op, "subscribed");
    const first = await asks.next(3);
    assert.ok(!startsWith(first, WS_RECORDS));
    const { header, payload } = decodeFrame(first);
    assert.equal(header.op, "records");
    const parts = header.partitions as Record<string, unknown>[];
    assert.deepEqual(parts.map((p) => p.partition), [0, 5]);
    assert.equal((parts[1].error as { code: string }).code, "UNKNOWN_TOPIC_OR_PARTITION");
    assert.deepEqual(valuesOf(payload), ["a", "b"]);
    // The next push has no error: binary, with the documented fields.
    await producer.send({ topic: "t", messages: [{ value: "c" }] });
    const second = await asks.next(4);
    assert.ok(startsWith(second, WS_RECORDS));
    const push = decodeRecordsFrame(second);
    assert.equal(push.id, 2);
    assert.deepEqual(
      push.partitions.map((p) => ({ ...p, bytes: valuesOf(p.bytes) })),
      [{
        topic: "t",
        partition: 0,
        nextOffset: 3,
        highWatermark: 3,
        logStartOffset: 0,
        bytes: ["c"],
      }],
    );
    // A client whose hello does not ask (an older client) gets JSON pushes.
    old.send({ op: "hello", id: 1 });
    await old.next(1);
    old.send({ op: "subscribe", id: 9, partitions: [{ topic: "t", partition: 0, offset: 2 }] });
    assert.equal(decodeFrame(await old.next(2)).header.op, "subscribed");
    const json = await old.next(3);
    assert.ok(!startsWith(json, WS_RECORDS));
    const frame = decodeFrame(json);
    assert.deepEqual(
      { ...frame.header, partitions: undefined },
      { op: "records", id: 9, session: null, partitions: undefined },
    );
    assert.deepEqual(valuesOf(frame.payload), ["c"]);
  } finally {
    await asks.close();
    await old.close();
    await producer.disconnect();
  }
});

Deno.test("ws binary push: a push longer than 64 KiB comes in parts and the client reads it whole", async () => {
  await using s = await serveBroker();
  await s.topic("big", 1);
  const value = "v".repeat(100 * 1024);
  const producer = new Rill({ brokers: [s.url], transport: "http" }).producer({ acks: 1 });
  await producer.send({ topic: "big", messages: [{ value }, { value }, { value }] });
  await producer.disconnect();
  const conn = await WsConnection.open(s.url);
  let got!: (a: WsFetchAnswer) => void;
  const pushed = new Promise<WsFetchAnswer>((r) => got = r);
  const sub = await conn.subscribe({
    partitions: [{ topic: "big", partition: 0, offset: 0, maxBytes: 1 << 20 }],
    maxBytes: 1 << 20,
  }, (a) => got(a));
  try {
    const p = (await pushed).partitions[0];
    assert.ok(p.error === undefined);
    assert.equal(p.nextOffset, 3);
    assert.deepEqual(valuesOf(p.bytes), [value, value, value]);
    await sub.cancel();
  } finally {
    conn.close();
  }
  // On the wire: parts of at most 64 KiB that join into one binary records frame.
  const raw = await rawClient(s.url);
  try {
    raw.send({ op: "hello", id: 1, binary: ["records"], parts: true });
    await raw.next(1);
    raw.send({
      op: "subscribe",
      id: 2,
      partitions: [{ topic: "big", partition: 0, offset: 0, maxBytes: 1 << 20 }],
      maxBytes: 1 << 20,
    });
    await raw.next(2);
    const frame = await raw.next(3);
    assert.ok(frame.byteLength > 3 * WS_ANSWER_PART_BYTES);
    assert.ok(startsWith(frame, WS_RECORDS));
    assert.deepEqual(valuesOf(decodeRecordsFrame(frame).partitions[0].bytes), [
      value,
      value,
      value,
    ]);
  } finally {
    await raw.close();
  }
});

Deno.test("ws binary push: the client reads a broker's binary push, and ends the connection on one it cannot read", async () => {
  // A stand-in broker that answers hello and subscribe, then pushes a good frame and a short one.
  const batch = encodeBatch([{ key: null, value: new TextEncoder().encode("hi") }]);
  const hellos: Record<string, unknown>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol: WS_SUBPROTOCOL });
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      const { header } = decodeFrame(new Uint8Array(e.data as ArrayBuffer));
      if (header.op === "hello") {
        hellos.push(header);
        socket.send(encodeFrame({ op: "hello", id: header.id, ops: ["subscribe", "credit"] }));
      } else if (header.op === "subscribe") {
        const id = header.id as number;
        socket.send(encodeFrame({ op: "subscribed", id }));
        const good = encodeRecordsFrame(id, [{
          topic: "t",
          partition: 0,
          nextOffset: 1,
          highWatermark: 1,
          logStartOffset: 0,
          bytes: batch,
          error: null,
        }])!;
        socket.send(good);
        socket.send(good.subarray(0, good.byteLength - 1));
      }
    };
    return response;
  });
  const conn = await WsConnection.open(`http://127.0.0.1:${server.addr.port}`);
  try {
    assert.deepEqual(hellos[0].binary, ["records"], "the client asks for binary pushes");
    const pushes: WsFetchAnswer[] = [];
    let ended!: (e: RillError) => void;
    const end = new Promise<RillError>((r) => ended = r);
    await conn.subscribe(
      { partitions: [{ topic: "t", partition: 0, offset: 0 }] },
      (a) => pushes.push(a),
      ended,
    );
    const e = await end;
    assert.equal(e.code, "UNKNOWN_SERVER_ERROR");
    assert.match(e.message, /sent a push that cannot be read/);
    assert.equal(pushes.length, 1, "the good push came, the short one did not");
    const p = pushes[0].partitions[0];
    assert.ok(p.error === undefined);
    assert.deepEqual(valuesOf(p.bytes), ["hi"]);
    assert.equal(conn.open, false);
    await assert.rejects(
      conn.fetch({ partitions: [{ topic: "t", partition: 0, offset: 0 }] }),
      (x: unknown) => x instanceof RillError && x.code === "UNKNOWN_SERVER_ERROR",
    );
  } finally {
    conn.close();
    await server.shutdown();
  }
});
