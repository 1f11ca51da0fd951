/**
 * The Kafka listener at the byte level, over real sockets to an in-process broker: the
 * ApiVersions fallback, pipelining order, a corrupt batch, acks=0, and hostile input
 * (lying sizes, oversized frames, unknown APIs and versions, garbage after a request,
 * stalled partial frames) that closes only the offending connection and writes nothing;
 * topic ids (Metadata v12, Fetch v17, DeleteTopics v6) and OffsetFetch v9 with several groups.
 *
 * @module
 */
import assert from "node:assert/strict";
import { openTestBroker } from "../http/_app.ts";
import { KafkaListener } from "../../src/kafka/listener.ts";
import { serveConnection } from "../../src/kafka/connection.ts";
import { FramePool } from "../../src/kafka/frame_pool.ts";
import { API, SCHEMAS } from "../../src/kafka/messages.ts";
import { decode, encode } from "../../src/kafka/schema.ts";
import { Reader, Writer } from "../../src/kafka/wire.ts";
import { decodeBatch, encodeBatch } from "../../src/protocol/record_batch.ts";

function decodeBatches(bytes: Uint8Array) {
  const out = [];
  for (let o = 0; o + 12 <= bytes.length;) {
    const len = new DataView(bytes.buffer, bytes.byteOffset + o).getInt32(8);
    if (o + 12 + len > bytes.length) break;
    out.push(decodeBatch(bytes.subarray(o, o + 12 + len)));
    o += 12 + len;
  }
  return out;
}

async function setup(opts: { frameTimeoutMs?: number; maxFrameBytes?: number } = {}) {
  const tb = await openTestBroker();
  const logs: string[] = [];
  const kafka = KafkaListener.listen(tb.broker, {
    hostname: "127.0.0.1",
    port: 0,
    log: (l) => logs.push(l),
    ...opts,
  });
  await tb.broker.createTopic({ name: "t", partitions: 1 });
  return {
    broker: tb.broker,
    kafka,
    logs,
    connect: () => Deno.connect({ hostname: "127.0.0.1", port: kafka.addr.port }),
    async [Symbol.asyncDispose]() {
      await kafka.close();
      await tb[Symbol.asyncDispose]();
    },
  };
}

/** One request frame: header v1 (v2 for flexible versions) + body. */
function request(
  apiKey: number,
  version: number,
  correlationId: number,
  body: Record<string, unknown>,
): Uint8Array {
  const schema = SCHEMAS[apiKey];
  const w = new Writer().int16(apiKey).int16(version).int32(correlationId).string("test", false);
  if (version >= schema.req.flexible) w.noTags();
  encode(schema.req, version, w, body);
  return concat(w.frame());
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Reads one answer frame; null when the connection closed instead. */
async function readFrame(conn: Deno.Conn): Promise<Uint8Array | null> {
  const head = await readN(conn, 4);
  if (head === null) return null;
  const size = new DataView(head.buffer).getInt32(0);
  return await readN(conn, size);
}

async function readN(conn: Deno.Conn, n: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    let r: number | null;
    try {
      r = await conn.read(out.subarray(got));
    } catch {
      return null;
    }
    if (r === null) return null;
    got += r;
  }
  return out;
}

// deno-lint-ignore no-explicit-any
function answer(frame: Uint8Array, apiKey: number, version: number): { corr: number; body: any } {
  const r = new Reader(frame);
  const corr = r.int32();
  if (version >= SCHEMAS[apiKey].res.flexible && apiKey !== API.ApiVersions) r.skipTags();
  return { corr, body: decode(SCHEMAS[apiKey].res, version, r) };
}

async function write(conn: Deno.Conn, bytes: Uint8Array) {
  let o = 0;
  while (o < bytes.length) o += await conn.write(bytes.subarray(o));
}

function produceBody(records: Uint8Array, acks = -1) {
  return {
    transactionalId: null,
    acks,
    timeoutMs: 5000,
    topicData: [{ name: "t", partitionData: [{ index: 0, records }] }],
  };
}

Deno.test("ApiVersions: v3 is answered flexibly; an unknown version gets error 35 in the v0 format, then v0 works on the same connection", async () => {
  await using s = await setup();
  using conn = await s.connect();
  await write(
    conn,
    request(API.ApiVersions, 3, 1, { clientSoftwareName: "t", clientSoftwareVersion: "1" }),
  );
  const v3 = answer((await readFrame(conn))!, API.ApiVersions, 3);
  assert.equal(v3.corr, 1);
  assert.equal(v3.body.errorCode, 0);
  const keys = new Map(
    v3.body.apiKeys.map((k: { apiKey: number; minVersion: number; maxVersion: number }) => [
      k.apiKey,
      [k.minVersion, k.maxVersion],
    ]),
  );
  // The librdkafka 2.0.2 group-feature trap: the five group APIs advertise min 0.
  for (
    const k of [API.FindCoordinator, API.JoinGroup, API.SyncGroup, API.Heartbeat, API.LeaveGroup]
  ) {
    assert.equal((keys.get(k) as number[])[0], 0);
  }
  await write(conn, request(API.ApiVersions, 9, 2, {}));
  const fallback = answer((await readFrame(conn))!, API.ApiVersions, 0);
  assert.equal(fallback.corr, 2);
  assert.equal(fallback.body.errorCode, 35);
  assert.ok(fallback.body.apiKeys.length > 10);
  await write(conn, request(API.ApiVersions, 0, 3, {}));
  const v0 = answer((await readFrame(conn))!, API.ApiVersions, 0);
  assert.equal(v0.corr, 3);
  assert.equal(v0.body.errorCode, 0);
});

Deno.test("pipelined requests are answered in request order, acks=0 produce gets no answer", async () => {
  await using s = await setup();
  using conn = await s.connect();
  const batch = encodeBatch([{ value: new TextEncoder().encode("x") }]);
  // A slow request (a long-poll fetch) first, then fast ones: answers still in order.
  const frames = [
    request(API.Fetch, 11, 10, {
      maxWaitMs: 300,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [{
        topic: "t",
        partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }],
      }],
    }),
    request(API.Metadata, 4, 11, { topics: null }),
    request(API.Produce, 7, 12, produceBody(batch, 0)),
    request(API.ApiVersions, 2, 13, {}),
  ];
  await write(conn, concat(frames));
  const first = answer((await readFrame(conn))!, API.Fetch, 11);
  assert.equal(first.corr, 10);
  assert.equal(answer((await readFrame(conn))!, API.Metadata, 4).corr, 11);
  assert.equal(answer((await readFrame(conn))!, API.ApiVersions, 2).corr, 13);
  assert.equal(s.broker.listOffset("t", 0, "latest") instanceof Promise, true);
  assert.equal(await s.broker.listOffset("t", 0, "latest"), 1); // the acks=0 record landed
});

Deno.test("a produce request of several MB, read into its own growing buffer, lands whole; the request behind it is answered next", async () => {
  await using s = await setup();
  using conn = await s.connect();
  // Three ~900 KB batches back to back: a 2.7 MB frame, past the first 1 MiB of its buffer.
  const value = (b: number, i: number) => new TextEncoder().encode(`${b}:${i}:`.padEnd(900, "v"));
  const batches = [0, 1, 2].map((b) =>
    encodeBatch(Array.from({ length: 1000 }, (_, i) => ({ value: value(b, i) })))
  );
  const big = request(API.Produce, 7, 1, produceBody(concat(batches)));
  assert.ok(big.length > 2_500_000);
  await write(conn, concat([big, request(API.ApiVersions, 2, 2, {})]));
  const a = answer((await readFrame(conn))!, API.Produce, 7);
  assert.equal(a.corr, 1);
  assert.equal(a.body.responses[0].partitionResponses[0].errorCode, 0);
  assert.equal(answer((await readFrame(conn))!, API.ApiVersions, 2).corr, 2);
  assert.equal(await s.broker.listOffset("t", 0, "latest"), 3000);
  // Every byte arrived in place: the last batch reads back with its records intact.
  const fetched = request(API.Fetch, 11, 3, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 8 << 20,
    topics: [{
      topic: "t",
      partitions: [{ partition: 0, fetchOffset: 2000, partitionMaxBytes: 8 << 20 }],
    }],
  });
  await write(conn, fetched);
  const f = answer((await readFrame(conn))!, API.Fetch, 11);
  const bytes: Uint8Array = f.body.responses[0].partitions[0].records;
  const last = decodeBatches(bytes).at(-1)!;
  assert.equal(last.records.length, 1000);
  assert.deepEqual(last.records[999].value, value(2, 999));
});

Deno.test("pipelined produce requests, acks=1 and acks=0, reuse frame buffers and each lands with its own records", async () => {
  await using s = await setup();
  using conn = await s.connect();
  // 24 frames of ~300 KB, distinct contents, every third with acks=0 (no answer, its append
  // still queued when the next frame is read): a buffer handed back too early would have a
  // later frame's bytes where an earlier one's records were.
  const value = (f: number, i: number) => new TextEncoder().encode(`${f}:${i}:`.padEnd(1000, "v"));
  const frames = Array.from({ length: 24 }, (_, f) =>
    request(
      API.Produce,
      7,
      f,
      produceBody(
        encodeBatch(Array.from({ length: 300 }, (_, i) => ({ value: value(f, i) }))),
        f % 3 === 0 ? 0 : 1,
      ),
    ));
  // Rounds of 3 pipelined frames (the first with acks=0): each round's frames go into the
  // buffers the requests of the rounds before gave back.
  const corrs = [];
  for (let f = 0; f < frames.length; f += 3) {
    const round = frames.slice(f, f + 3);
    await write(conn, concat([...round, request(API.ApiVersions, 2, 99, {})]));
    for (;;) {
      const frame = (await readFrame(conn))!;
      const corr = new DataView(frame.buffer).getInt32(0);
      if (corr === 99) break;
      const a = answer(frame, API.Produce, 7);
      assert.equal(a.body.responses[0].partitionResponses[0].errorCode, 0);
      corrs.push(corr);
    }
  }
  assert.deepEqual(corrs, [...frames.keys()].filter((f) => f % 3 !== 0));
  assert.ok(s.kafka.frames.reused > 0, "no frame buffer was reused");
  // acks=0 appends may still be queued: wait for all 24 batches.
  while (await s.broker.listOffset("t", 0, "latest") < 24 * 300) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await write(
    conn,
    request(API.Fetch, 11, 100, {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 16 << 20,
      topics: [{
        topic: "t",
        partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 16 << 20 }],
      }],
    }),
  );
  const f = answer((await readFrame(conn))!, API.Fetch, 11);
  const batches = decodeBatches(f.body.responses[0].partitions[0].records);
  assert.equal(batches.length, 24);
  const seen = batches.map((b) => {
    const first = new TextDecoder().decode(b.records[0].value!).split(":")[0];
    b.records.forEach((r, i) => assert.deepEqual(r.value, value(Number(first), i)));
    return Number(first);
  });
  assert.deepEqual(seen.sort((a, b) => a - b), [...frames.keys()]);
});

Deno.test("a connection stops reading once its unanswered requests reach maxInFlightBytes", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const conn = await listener.accept();
  const frame = (corr: number) => {
    const out = new Uint8Array(4 + 100_000);
    const v = new DataView(out.buffer);
    v.setInt32(0, 100_000);
    v.setInt16(4, API.Metadata);
    v.setInt32(8, corr);
    v.setInt16(12, -1); // no client id
    return out;
  };
  // Six 100 KB requests are in the socket before the connection is served.
  await write(client, concat([0, 1, 2, 3, 4, 5].map(frame)));
  // The dispatcher holds every answer until the test releases it.
  const dispatched: number[] = [];
  const release = [0, 1, 2, 3, 4, 5].map(() => Promise.withResolvers<() => void>());
  const served = serveConnection(
    conn,
    (req) => {
      dispatched.push(req.correlationId);
      return new Promise((resolve) => {
        release[req.correlationId].resolve(() =>
          resolve(new Writer().int32(req.correlationId).frame())
        );
      });
    },
    { maxInFlightBytes: 250_000 },
    stop.signal,
  );
  // Three (300 KB) are taken. Nothing signals a read that does not happen: the other three
  // stay unread while the connection is given 100 ms to read them.
  const releaseFirst = await release[2].promise.then(() => release[0].promise);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(dispatched, [0, 1, 2]);
  // Each answer lets one more in.
  releaseFirst();
  assert.equal(new DataView((await readFrame(client))!.buffer).getInt32(0), 0);
  for (let corr = 1; corr < 6; corr++) {
    (await release[corr].promise)();
    assert.equal(new DataView((await readFrame(client))!.buffer).getInt32(0), corr);
  }
  assert.deepEqual(dispatched, [0, 1, 2, 3, 4, 5]);
  client.close();
  await served;
  stop.abort();
  listener.close();
});

Deno.test("a Produce frame's buffer is reused only when its request says nothing refers to it any more", async () => {
  const pool = new FramePool();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  // Odd correlation ids keep their frame (as an acks=0 append does), even ones let it go.
  const kept: { bytes: Uint8Array; copy: Uint8Array }[] = [];
  const served = (async () => {
    const conn = await listener.accept();
    await serveConnection(
      conn,
      (req) => {
        if (req.correlationId % 2 === 1) {
          const bytes = req.reader.buf;
          kept.push({ bytes, copy: bytes.slice() });
        } else req.reusable = true;
        const w = new Writer().int32(req.correlationId);
        return Promise.resolve(w.frame());
      },
      { pool },
      stop.signal,
    );
  })();
  using conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const frame = (corr: number, size: number) => {
    const body = new Uint8Array(size).fill(corr);
    new DataView(body.buffer).setInt16(0, API.Produce);
    new DataView(body.buffer).setInt32(4, corr);
    const out = new Uint8Array(4 + size);
    new DataView(out.buffer).setInt32(0, size);
    out.set(body, 4);
    return out;
  };
  // One at a time, large (own buffer) and small (copied out of the read buffer) in turn.
  for (let corr = 0; corr < 12; corr++) {
    await write(conn, frame(corr, corr % 4 < 2 ? 300_000 : 20_000));
    assert.equal(new DataView((await readFrame(conn))!.buffer).getInt32(0), corr);
  }
  assert.ok(pool.reused >= 4, `reused ${pool.reused} buffers`);
  assert.equal(kept.length, 6);
  // (compared byte by byte: a diff of 300 KB arrays takes assert minutes to print)
  for (const k of kept) {
    assert.ok(k.bytes.every((b, i) => b === k.copy[i]), "a kept frame was overwritten");
  }
  conn.close();
  await served;
  stop.abort();
  listener.close();
});

Deno.test("a batch with a bad CRC is refused with CORRUPT_MESSAGE and nothing is written", async () => {
  await using s = await setup();
  using conn = await s.connect();
  const batch = encodeBatch([{ value: new TextEncoder().encode("hello") }]);
  batch[batch.length - 1] ^= 0xff;
  await write(conn, request(API.Produce, 7, 1, produceBody(batch)));
  const a = answer((await readFrame(conn))!, API.Produce, 7);
  assert.equal(a.body.responses[0].partitionResponses[0].errorCode, 2);
  assert.equal(await s.broker.listOffset("t", 0, "latest"), 0);
  // A good one on the same connection goes through.
  const good = encodeBatch([{ value: new TextEncoder().encode("hello") }]);
  await write(conn, request(API.Produce, 7, 2, produceBody(good)));
  const b = answer((await readFrame(conn))!, API.Produce, 7);
  assert.equal(b.body.responses[0].partitionResponses[0].errorCode, 0);
  assert.equal(b.body.responses[0].partitionResponses[0].baseOffset, 0);
});

Deno.test("Produce v0-v2 (advertised for librdkafka's compression check) is refused per partition and writes nothing", async () => {
  await using s = await setup();
  using conn = await s.connect();
  const batch = encodeBatch([{ value: new TextEncoder().encode("old format") }]);
  await write(conn, request(API.Produce, 2, 1, produceBody(batch)));
  const a = answer((await readFrame(conn))!, API.Produce, 2);
  const p = a.body.responses[0].partitionResponses[0];
  assert.equal(p.errorCode, 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT");
  assert.equal(await s.broker.listOffset("t", 0, "latest"), 0);
});

Deno.test("hostile frames close only their own connection and write nothing", async (t) => {
  await using s = await setup({ frameTimeoutMs: 300, maxFrameBytes: 1 << 20 });
  using bystander = await s.connect();
  // A connection that sends half a frame and stalls must not block the bystander.
  using staller = await s.connect();
  const half = request(API.Metadata, 4, 1, { topics: null });
  await write(staller, half.subarray(0, 7));
  // One that claims a large frame (read into a buffer of its own) and stalls after 1 KiB.
  using bigStaller = await s.connect();
  const claim = new Uint8Array(1024);
  new DataView(claim.buffer).setInt32(0, 900_000);
  await write(bigStaller, claim);
  const cases: [string, Uint8Array][] = [
    ["a negative size", new Uint8Array([0xff, 0xff, 0xff, 0xf0, 1, 2, 3, 4])],
    ["a size over the frame limit", new Uint8Array([0x7f, 0, 0, 0, 0, 0, 0, 0])],
    ["an unknown API key", request(API.ApiVersions, 0, 1, {}).map((b, i) => i === 5 ? 99 : b)],
    ["an unsupported Produce version", request(API.Produce, 12, 1, produceBody(new Uint8Array(0)))],
    [
      "a lying record-set length",
      (() => {
        const f = request(
          API.Produce,
          7,
          1,
          produceBody(encodeBatch([{ value: new Uint8Array(3) }])),
        );
        // the records length (just before the batch) claims more bytes than the frame has
        const at = f.length - encodeBatch([{ value: new Uint8Array(3) }]).length - 4;
        new DataView(f.buffer).setInt32(at, 1_000_000);
        return f;
      })(),
    ],
    [
      "random bytes",
      crypto.getRandomValues(new Uint8Array(64)).map((b, i) => i < 4 ? [0, 0, 0, 60][i] : b),
    ],
  ];
  for (const [name, bytes] of cases) {
    await t.step(name, async () => {
      using conn = await s.connect();
      await write(conn, bytes);
      assert.equal(await readFrame(conn), null, "the connection is closed without an answer");
    });
  }
  await t.step(
    "garbage after a valid request: the request is answered, then the connection closes",
    async () => {
      using conn = await s.connect();
      const valid = request(API.ApiVersions, 2, 7, {});
      await write(conn, concat([valid, new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0])]));
      assert.equal(answer((await readFrame(conn))!, API.ApiVersions, 2).corr, 7);
      assert.equal(await readFrame(conn), null);
    },
  );
  await t.step("the stalled partial frame is closed after the frame timeout", async () => {
    assert.equal(await readFrame(staller), null);
    assert.equal(await readFrame(bigStaller), null);
  });
  await write(bystander, request(API.Metadata, 4, 42, { topics: null }));
  const m = answer((await readFrame(bystander))!, API.Metadata, 4);
  assert.equal(m.corr, 42);
  assert.equal(m.body.topics[0]?.name, "t", JSON.stringify(m.body));
  assert.equal(await s.broker.listOffset("t", 0, "latest"), 0, "nothing was written");
  assert.ok(s.logs.some((l) => /exceeds the 1048576-byte limit/.test(l)), s.logs.join("\n"));
});

Deno.test("connections beyond the listener's limit are closed at once; a freed slot is served again", async () => {
  const tb = await openTestBroker();
  const logs: string[] = [];
  const kafka = KafkaListener.listen(tb.broker, {
    hostname: "127.0.0.1",
    port: 0,
    maxConnections: 2,
    log: (l) => logs.push(l),
  });
  try {
    const connect = () => Deno.connect({ hostname: "127.0.0.1", port: kafka.addr.port });
    const ask = async (conn: Deno.Conn, corr: number) => {
      try {
        await write(conn, request(API.ApiVersions, 2, corr, {}));
      } catch {
        return null; // closed (reset) before the request could be written
      }
      const f = await readFrame(conn);
      return f === null ? null : answer(f, API.ApiVersions, 2).corr;
    };
    const a = await connect(), b = await connect();
    assert.equal(await ask(a, 1), 1);
    assert.equal(await ask(b, 2), 2);
    const c = await connect();
    assert.equal(await ask(c, 3), null, "the third is closed");
    c.close();
    assert.ok(logs.some((l) => /refusing connections beyond 2/.test(l)));
    a.close();
    // a's slot frees once the listener sees it closed; a new connection is then served
    let served: number | null = null;
    for (let i = 0; i < 50 && served === null; i++) {
      const d = await connect();
      served = await ask(d, 4);
      d.close();
    }
    assert.equal(served, 4);
    b.close();
  } finally {
    await kafka.close();
    await tb[Symbol.asyncDispose]();
  }
});

Deno.test("topic ids: Metadata v12 gives the stored id, Fetch v17 reads by it; an unknown or outdated id is UNKNOWN_TOPIC_ID; DeleteTopics v6 deletes by id", async () => {
  await using s = await setup();
  using conn = await s.connect();
  let corr = 0;
  const ask = async (apiKey: number, version: number, body: Record<string, unknown>) => {
    await write(conn, request(apiKey, version, ++corr, body));
    const a = answer((await readFrame(conn))!, apiKey, version);
    assert.equal(a.corr, corr);
    return a.body;
  };
  const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const batch = encodeBatch([{ key: new TextEncoder().encode("k"), value: new Uint8Array([7]) }]);
  const produced = await ask(API.Produce, 11, produceBody(batch));
  assert.equal(produced.responses[0].partitionResponses[0].errorCode, 0);

  const meta = await ask(API.Metadata, 12, { topics: [{ topicId: null, name: "t" }] });
  const id: Uint8Array = meta.topics[0].topicId.slice();
  assert.equal(hex(id), (await s.broker.describeTopic("t")).meta.topicId.replaceAll("-", ""));
  const fetchBy = (topicId: Uint8Array) =>
    ask(API.Fetch, 17, {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{
        topicId,
        partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }],
      }],
    });
  const f = await fetchBy(id);
  assert.equal(hex(f.responses[0].topicId), hex(id));
  assert.equal(f.responses[0].partitions[0].errorCode, 0);
  assert.deepEqual(
    decodeBatches(f.responses[0].partitions[0].records)[0].records[0].value,
    new Uint8Array([7]),
  );

  const stranger = crypto.getRandomValues(new Uint8Array(16));
  const u = await fetchBy(stranger);
  assert.equal(hex(u.responses[0].topicId), hex(stranger));
  assert.equal(u.responses[0].partitions[0].errorCode, 100, "UNKNOWN_TOPIC_ID");
  const um = await ask(API.Metadata, 12, { topics: [{ topicId: stranger, name: null }] });
  assert.equal(um.topics[0].errorCode, 100);

  // Deleted and re-created under the same name: the old id names nothing any more.
  await s.broker.deleteTopic("t");
  await s.broker.createTopic({ name: "t", partitions: 1 });
  assert.equal((await fetchBy(id)).responses[0].partitions[0].errorCode, 100);
  const byOld = await ask(API.Metadata, 12, { topics: [{ topicId: id, name: null }] });
  assert.equal(byOld.topics[0].errorCode, 100);
  const del = await ask(API.DeleteTopics, 6, {
    topics: [{ name: null, topicId: id }],
    timeoutMs: 1000,
  });
  assert.equal(del.responses[0].errorCode, 100);
  assert.notEqual(await s.broker.partitionCount("t"), null, "the new t is untouched");
  const fresh = (await ask(API.Metadata, 12, { topics: [{ topicId: null, name: "t" }] })).topics[0];
  assert.notEqual(hex(fresh.topicId), hex(id));
  const del2 = await ask(API.DeleteTopics, 6, {
    topics: [{ name: null, topicId: fresh.topicId.slice() }],
    timeoutMs: 1000,
  });
  assert.equal(del2.responses[0].errorCode, 0);
  assert.equal(del2.responses[0].name, "t");
  assert.equal(await s.broker.partitionCount("t"), null);
});

Deno.test("OffsetCommit v9 then OffsetFetch v9 with two groups in one request: each group answered on its own", async () => {
  await using s = await setup();
  using conn = await s.connect();
  await write(
    conn,
    request(API.OffsetCommit, 9, 1, {
      groupId: "a",
      generationId: -1,
      memberId: "",
      groupInstanceId: null,
      topics: [{
        name: "t",
        partitions: [{ partitionIndex: 0, committedOffset: 5, committedMetadata: "m" }],
      }],
    }),
  );
  const c = answer((await readFrame(conn))!, API.OffsetCommit, 9);
  assert.equal(c.body.topics[0].partitions[0].errorCode, 0);
  await write(
    conn,
    request(API.OffsetFetch, 9, 2, {
      groups: [
        { groupId: "a", memberId: null, memberEpoch: -1, topics: null },
        {
          groupId: "b",
          memberId: null,
          memberEpoch: -1,
          topics: [{ name: "t", partitionIndexes: [0] }],
        },
      ],
      requireStable: false,
    }),
  );
  const f = answer((await readFrame(conn))!, API.OffsetFetch, 9);
  assert.equal(f.corr, 2);
  const [a, b] = f.body.groups;
  assert.equal(a.groupId, "a");
  assert.equal(a.errorCode, 0);
  assert.deepEqual(
    a.topics.map((t: { name: string; partitions: { committedOffset: number }[] }) => [
      t.name,
      t.partitions.map((p) => p.committedOffset),
    ]),
    [["t", [5]]],
  );
  assert.equal(a.topics[0].partitions[0].metadata, "m");
  assert.equal(b.groupId, "b");
  assert.equal(b.topics[0].partitions[0].committedOffset, -1, "nothing committed");
});

Deno.test("ListOffsets v6: -2 and -1 are the log start and the high watermark; the later versions' special timestamps get UNSUPPORTED_VERSION", async () => {
  await using s = await setup();
  using conn = await s.connect();
  const batch = encodeBatch([{ value: new Uint8Array([1]) }, { value: new Uint8Array([2]) }]);
  await write(conn, request(API.Produce, 7, 1, produceBody(batch)));
  assert.equal(answer((await readFrame(conn))!, API.Produce, 7).corr, 1);
  await write(
    conn,
    request(API.ListOffsets, 6, 2, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{
        name: "t",
        partitions: [-2, -1, -3, -4, -5].map((timestamp) => ({
          partitionIndex: 0,
          currentLeaderEpoch: -1,
          timestamp,
        })),
      }],
    }),
  );
  const a = answer((await readFrame(conn))!, API.ListOffsets, 6);
  assert.deepEqual(
    a.body.topics[0].partitions.map((p: { errorCode: number; offset: number }) => [
      p.errorCode,
      p.offset,
    ]),
    [[0, 0], [0, 2], [35, -1], [35, -1], [35, -1]],
  );
});

Deno.test("Fetch v17 session: a topic deleted after it joined the session answers UNKNOWN_TOPIC_ID under its old id", async () => {
  await using s = await setup();
  using conn = await s.connect();
  let corr = 0;
  const fetch17 = async (body: Record<string, unknown>) => {
    await write(
      conn,
      request(API.Fetch, 17, ++corr, { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, ...body }),
    );
    return answer((await readFrame(conn))!, API.Fetch, 17).body;
  };
  const id = uuidOf((await s.broker.describeTopic("t")).meta.topicId);
  const opened = await fetch17({
    sessionId: 0,
    sessionEpoch: 0,
    topics: [{
      topicId: id,
      partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1024 }],
    }],
  });
  assert.notEqual(opened.sessionId, 0, "a session was opened");
  assert.equal(opened.responses[0].partitions[0].errorCode, 0);
  await s.broker.deleteTopic("t");
  const next = await fetch17({ sessionId: opened.sessionId, sessionEpoch: 1, topics: [] });
  assert.equal(next.responses.length, 1, JSON.stringify(next));
  assert.deepEqual([...next.responses[0].topicId], [...id]);
  assert.equal(next.responses[0].partitions[0].errorCode, 100, "UNKNOWN_TOPIC_ID");
});

function uuidOf(text: string): Uint8Array {
  const hex = text.replaceAll("-", "");
  return new Uint8Array(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}
