/**
 * The binary produce frames of the WebSocket protocol (src/protocol/ws_produce_frames.ts):
 * a broker advertises them in its hello answer, takes them with the same checks as JSON
 * produce frames, answers errors with the JSON error frame, and keeps JSON frames working;
 * the client sends them only to a broker that advertised them.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { WsConnection } from "../../src/client/ws_connection.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { decodeFrame, encodeFrame, frameParts } from "../../src/protocol/ws_frames.ts";
import {
  decodeProducedFrame,
  encodeProduceFrame,
  startsWith,
  topicBytesOf,
  WS_PRODUCE,
  WS_PRODUCED,
} from "../../src/protocol/ws_produce_frames.ts";
import { readPartition } from "../_helpers/read_records.ts";
import { serveBroker } from "./_served.ts";

const enc = new TextEncoder();

/** A raw socket to the broker's endpoint and the messages it got, in order. */
async function openRaw(url: string, protocols = ["rill.v1"]) {
  const socket = new WebSocket(url.replace("http", "ws") + "/v1/ws", protocols);
  socket.binaryType = "arraybuffer";
  const got: Uint8Array[] = [];
  let wake = () => {};
  socket.addEventListener("message", (e) => {
    got.push(new Uint8Array(e.data as ArrayBuffer));
    wake();
  });
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  return {
    socket,
    /** the next message */
    async next(): Promise<Uint8Array> {
      while (got.length === 0) await new Promise<void>((r) => wake = r);
      return got.shift()!;
    },
    async close() {
      const closed = new Promise((r) => socket.addEventListener("close", r));
      socket.close();
      await closed;
    },
  };
}

function produceFrame(
  id: number,
  topic: string,
  partition: number,
  acks: -1 | 0 | 1,
  batch: Uint8Array,
) {
  return encodeProduceFrame(id, topicBytesOf(topic)!, partition, acks, batch);
}

const one = (value: string) => encodeBatch([{ key: null, value: enc.encode(value) }]);

/** The JSON error frame's id and code. */
function errorOf(message: Uint8Array): { id: unknown; code: string; message: string } {
  const { header } = decodeFrame(message);
  assert.equal(header.op, "error", JSON.stringify(header));
  const error = header.error as { code: string; message: string };
  assert.ok(error.message.length > 0);
  return { id: header.id, code: error.code, message: error.message };
}

Deno.test("ws binary produce: advertised in hello, answered in binary with the offsets", async () => {
  await using s = await serveBroker();
  await s.topic("t", 2);
  const raw = await openRaw(s.url);
  raw.socket.send(encodeFrame({ op: "hello", id: 1 }));
  const hello = decodeFrame(await raw.next()).header;
  assert.deepEqual(hello.binary, ["produce", "records"]);

  raw.socket.send(produceFrame(2, "t", 1, 1, one("a")));
  const first = await raw.next();
  assert.ok(startsWith(first, WS_PRODUCED));
  assert.deepEqual(decodeProducedFrame(first), {
    id: 2,
    offsets: {
      partition: 1,
      baseOffset: 0,
      lastOffset: 0,
      recordCount: 1,
      logAppendTime: -1,
    },
  });
  // Two batches back to back, acks=all, an id past 2^32.
  const two = new Uint8Array([
    ...one("b"),
    ...encodeBatch([
      { key: null, value: enc.encode("c") },
      { key: null, value: enc.encode("d") },
    ]),
  ]);
  raw.socket.send(produceFrame(2 ** 40 + 3, "t", 1, -1, two));
  const second = decodeProducedFrame(await raw.next());
  assert.equal(second.id, 2 ** 40 + 3);
  assert.deepEqual(second.offsets, {
    partition: 1,
    baseOffset: 1,
    lastOffset: 3,
    recordCount: 3,
    logAppendTime: -1,
  });
  // acks=0: the id alone, once validated.
  raw.socket.send(produceFrame(4, "t", 1, 0, one("e")));
  assert.deepEqual(decodeProducedFrame(await raw.next()), { id: 4, offsets: null });
  // Sent in parts (as Deno's own WebSocket client needs): each part but the last answered
  // with an empty message, the frame produced whole.
  const parts = frameParts(produceFrame(6, "t", 1, 1, one("p".repeat(3000))));
  assert.ok(parts.length > 1);
  for (const part of parts) raw.socket.send(part);
  for (let i = 1; i < parts.length; i++) assert.equal((await raw.next()).byteLength, 0);
  assert.equal(decodeProducedFrame(await raw.next()).offsets?.baseOffset, 5);
  // JSON frames on the same connection still work, answered in JSON.
  raw.socket.send(encodeFrame({ op: "produce", id: 5, topic: "t", partition: 1, acks: 1 }, [
    one("f"),
  ]));
  const json = decodeFrame(await raw.next()).header;
  assert.equal(json.op, "produced");
  assert.equal(json.baseOffset, 6);
  await raw.close();
  assert.deepEqual((await readPartition(s.url, "t", 1)).map((r) => r.value), [
    "a",
    "b",
    "c",
    "d",
    "e",
    "p".repeat(3000),
    "f",
  ]);
  assert.equal((await readPartition(s.url, "t", 0)).length, 0);
});

Deno.test("ws binary produce: each bad frame gets an error frame, writes nothing, and the connection stays usable", async () => {
  await using s = await serveBroker();
  await s.topic("t");
  const raw = await openRaw(s.url);
  const good = one("v");
  const head = (id: number) => produceFrame(id, "t", 0, 1, good);
  const withByte = (frame: Uint8Array, at: number, value: number) => {
    const copy = frame.slice();
    copy[at] = value;
    return copy;
  };
  const corrupt = good.slice();
  corrupt[corrupt.length - 1] ^= 0xff; // the CRC no longer matches
  const cases: [Uint8Array, unknown, string, RegExp?][] = [
    // Truncated before the id: an error about no request.
    [head(1).subarray(0, 9), null, "INVALID_REQUEST", /at least 12 bytes/],
    // The id readable, the rest of the head not.
    [head(2).subarray(0, 15), 2, "INVALID_REQUEST", /18-byte head/],
    // An id past 2^53.
    [withByte(head(3), 4, 0xff), null, "INVALID_REQUEST", /2\^53/],
    [withByte(head(4), 16, 7), 4, "INVALID_REQUEST", /acks/],
    [withByte(head(5), 12, 0x80), 5, "INVALID_REQUEST", /partition/],
    [withByte(head(6), 17, 0), 6, "INVALID_REQUEST", /topic name is empty/],
    [withByte(head(7), 17, 250), 7, "INVALID_REQUEST", /runs past its end/],
    [produceFrame(8, "nope", 0, 1, good), 8, "UNKNOWN_TOPIC_OR_PARTITION"],
    [produceFrame(9, "t", 3, 1, good), 9, "UNKNOWN_TOPIC_OR_PARTITION"],
    [withByte(produceFrame(10, "t.x", 0, 1, good), 19, 0x2f), 10, "INVALID_TOPIC_EXCEPTION"],
    [produceFrame(11, "t", 0, 1, corrupt), 11, "CORRUPT_MESSAGE"],
    [produceFrame(12, "t", 0, 1, new Uint8Array(0)), 12, "INVALID_RECORD"],
    // Garbage after the marker.
    [
      new Uint8Array([0xff, 0xff, 0xff, 0xfd, ...crypto.getRandomValues(new Uint8Array(3))]),
      null,
      "INVALID_REQUEST",
    ],
  ];
  for (const [message, id, code, text] of cases) {
    raw.socket.send(message);
    const error = errorOf(await raw.next());
    assert.equal(error.id, id, `${code}: ${error.message}`);
    assert.equal(error.code, code, error.message);
    if (text) assert.match(error.message, text);
  }
  raw.socket.send(produceFrame(20, "t", 0, 1, good));
  const ok = decodeProducedFrame(await raw.next());
  assert.equal(ok.id, 20);
  assert.equal(ok.offsets?.baseOffset, 0);
  await raw.close();
  assert.deepEqual((await readPartition(s.url, "t", 0)).map((r) => r.value), ["v"]);
});

Deno.test("ws binary produce: authentication and ACLs as for JSON frames; the client's errors", async () => {
  await using s = await serveBroker({ security: { auth: true } });
  await s.topic("t");
  await s.topic("other");
  const admin = { "content-type": "application/json", authorization: `Bearer ${s.admin}` };
  const res = await fetch(`${s.url}/v1/auth/keys`, {
    method: "POST",
    body: JSON.stringify({ principal: "app" }),
    headers: admin,
  });
  const { token } = await res.json();
  const acl = await fetch(`${s.url}/v1/auth/acls`, {
    method: "POST",
    body: JSON.stringify({
      principal: "app",
      resourceType: "topic",
      resourceName: "t",
      operation: "write",
    }),
    headers: admin,
  });
  assert.equal(acl.status, 201);
  await acl.body?.cancel();

  // Before a hello authenticates: refused; a binary frame sent while the hello is being
  // checked waits for it.
  const raw = await openRaw(s.url);
  raw.socket.send(produceFrame(1, "t", 0, 1, one("early")));
  assert.equal(errorOf(await raw.next()).code, "UNAUTHENTICATED");
  raw.socket.send(encodeFrame({ op: "hello", id: 2, auth: token }));
  raw.socket.send(produceFrame(3, "t", 0, 1, one("x")));
  raw.socket.send(produceFrame(4, "other", 0, 1, one("y")));
  assert.equal(decodeFrame(await raw.next()).header.op, "hello");
  // Answers come in completion order: the refusal may overtake the append.
  const answers = [await raw.next(), await raw.next()];
  const produced = answers.find((m) => startsWith(m, WS_PRODUCED))!;
  assert.deepEqual(decodeProducedFrame(produced).offsets?.baseOffset, 0);
  const denied = errorOf(answers.find((m) => m !== produced)!);
  assert.equal(denied.id, 4);
  assert.equal(denied.code, "TOPIC_AUTHORIZATION_FAILED");
  await raw.close();
  assert.ok(
    s.audit.some((l) => l.includes("authorization_denied") && l.includes('"other"')),
  );

  // The client's connection: binary negotiated, errors reject with the broker's RillError.
  const conn = await WsConnection.open(s.url, { auth: token });
  assert.equal(conn.binaryProduce, true);
  const offsets = await conn.produce("t", 0, -1, one("z"));
  assert.equal(offsets?.baseOffset, 1);
  await assert.rejects(
    conn.produce("other", 0, 1, one("no")),
    (e: unknown) => e instanceof RillError && e.code === "TOPIC_AUTHORIZATION_FAILED",
  );
  await assert.rejects(
    conn.produce("missing", 0, 1, one("no")),
    // Not authorized to write it either: the ACL check comes first, as over HTTP.
    (e: unknown) => e instanceof RillError && e.code === "TOPIC_AUTHORIZATION_FAILED",
  );
  // A topic name a binary frame cannot carry goes as JSON and gets the broker's error.
  await assert.rejects(
    conn.produce("tö", 0, 1, one("no")),
    (e: unknown) => e instanceof RillError && e.code === "TOPIC_AUTHORIZATION_FAILED",
  );
  assert.equal(await conn.produce("t", 0, 0, one("zero")), null);
  assert.ok(conn.open);
  conn.close();
  const records = await fetch(`${s.url}/v1/topics/t/partitions/0/records?offset=0`, {
    headers: { authorization: `Bearer ${s.admin}` },
  }).then((r) => r.json());
  assert.deepEqual(records.records.map((r: { value: string }) => r.value), ["x", "z", "zero"]);
  const other = await fetch(`${s.url}/v1/topics/other/partitions/0/records?offset=0`, {
    headers: { authorization: `Bearer ${s.admin}` },
  }).then((r) => r.json());
  assert.equal(other.records.length, 0);
});

/**
 * A WebSocket proxy in front of a broker's endpoint that counts the produce frames going
 * through by kind, and, with `old`, removes `binary` from the broker's hello answer, so the
 * client sees a broker from before binary produce frames.
 */
function proxy(target: string, old: boolean) {
  const seen = { binary: 0, json: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (req.headers.get("upgrade") !== "websocket") {
      return fetch(target + new URL(req.url).pathname + new URL(req.url).search, {
        method: req.method,
        headers: req.headers,
        body: req.body,
      });
    }
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol: "rill.v1" });
    socket.binaryType = "arraybuffer";
    const up = new WebSocket(target.replace("http", "ws") + "/v1/ws", ["rill.v1"]);
    up.binaryType = "arraybuffer";
    const early: ArrayBuffer[] = [];
    socket.onmessage = (e) => {
      const bytes = new Uint8Array(e.data as ArrayBuffer);
      if (startsWith(bytes, WS_PRODUCE)) seen.binary++;
      else if (decodeFrame(bytes).header.op === "produce") seen.json++;
      if (up.readyState === WebSocket.OPEN) up.send(e.data);
      else early.push(e.data);
    };
    up.onopen = () => {
      for (const m of early.splice(0)) up.send(m);
    };
    up.onmessage = (e) => {
      let data = e.data as ArrayBuffer;
      const bytes = new Uint8Array(data);
      if (old && !startsWith(bytes, WS_PRODUCED)) {
        const { header, payload } = decodeFrame(bytes);
        if (header.op === "hello") {
          delete header.binary;
          data = encodeFrame(header, [payload]).buffer;
        }
      }
      socket.send(data);
    };
    up.onclose = () => socket.close();
    socket.onclose = () => up.close();
    return response;
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

Deno.test("ws binary produce: the producer uses it by default, and JSON frames with a broker that does not advertise it", async () => {
  await using s = await serveBroker();
  await s.topic("t");
  for (const old of [false, true]) {
    await using p = proxy(s.url, old);
    const producer = new Rill({ brokers: [p.url] }).producer({ acks: 1 });
    for (let i = 0; i < 5; i++) {
      const [meta] = await producer.send({ topic: "t", messages: [{ value: `${old}${i}` }] });
      assert.equal(meta.offset, (old ? 5 : 0) + i);
    }
    await producer.disconnect();
    assert.deepEqual(p.seen, old ? { binary: 0, json: 5 } : { binary: 5, json: 0 });
  }
  const records = await readPartition(s.url, "t", 0);
  assert.deepEqual(records.map((r) => r.value), [
    ...Array.from({ length: 5 }, (_, i) => `false${i}`),
    ...Array.from({ length: 5 }, (_, i) => `true${i}`),
  ]);
});
