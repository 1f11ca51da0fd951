import assert from "node:assert/strict";
import { encodeBatch, partitionForKey, POS, splitBatches } from "../../src/protocol/mod.ts";
import { crc32c } from "../../src/protocol/crc32c.ts";
import { openTestBroker } from "./_app.ts";

const enc = new TextEncoder();
const BATCH = { "content-type": "application/vnd.rill.batch" };
const NDJSON = { "content-type": "application/x-ndjson" };

type Offset = { partition: number; offset: number; timestamp: number };

Deno.test("produce JSON: offsets per record in order, Kafka's key partitioner, one batch per partition", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", partitions: 3 });
  const keys = ["alpha", "beta", "gamma", "delta", "alpha"];
  const res = await t.call("POST", "/v1/topics/t/records?acks=1", {
    records: keys.map((k, i) => ({ key: k, value: `v${i}`, headers: { n: String(i) } })),
  });
  assert.equal(res.status, 200);
  const offsets: Offset[] = res.body.offsets;
  assert.equal(offsets.length, 5);
  keys.forEach((k, i) => assert.equal(offsets[i].partition, partitionForKey(k, 3), `key ${k}`));
  // Within a partition, offsets follow request order from 0.
  const seen = new Map<number, number>();
  for (const o of offsets) {
    assert.equal(o.offset, seen.get(o.partition) ?? 0);
    seen.set(o.partition, o.offset + 1);
  }
  // Each partition got its records as one batch.
  for (const [p, count] of seen) {
    const raw = await t.app.request(`/v1/topics/t/partitions/${p}/records?offset=0`, {
      headers: { accept: "application/vnd.rill.batch" },
    });
    assert.equal(raw.headers.get("rill-high-watermark"), String(count));
    assert.equal(splitBatches(new Uint8Array(await raw.arrayBuffer())).length, 1);
  }
  // Fetch returns key, value, headers and the timestamp as produced.
  const p = offsets[4].partition;
  const fetched = await t.call(
    "GET",
    `/v1/topics/t/partitions/${p}/records?offset=${offsets[4].offset}`,
  );
  assert.deepEqual(fetched.body.records, [{
    offset: offsets[4].offset,
    timestamp: offsets[4].timestamp,
    key: "alpha",
    value: "v4",
    headers: { n: "4" },
  }]);
  assert.equal(fetched.body.nextOffset, offsets[4].offset + 1);
  assert.equal(fetched.body.highWatermark, offsets[4].offset + 1);
  assert.equal(fetched.body.logStartOffset, 0);
});

Deno.test("produce JSON: keyless records of a request stay together; requests spread over partitions", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", partitions: 3 });
  const used = new Set<number>();
  for (let i = 0; i < 3; i++) {
    const res = await t.call("POST", "/v1/topics/t/records", {
      records: [{ value: "a" }, { value: "b" }, { value: null }],
    });
    const parts = new Set(res.body.offsets.map((o: Offset) => o.partition));
    assert.equal(parts.size, 1, "one request's keyless records share a partition");
    used.add([...parts][0] as number);
  }
  assert.equal(used.size, 3, "three requests used three partitions");
});

Deno.test("produce: explicit partition, timestamps, tombstones, binary data and LogAppendTime", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", partitions: 2 });
  const bin = new Uint8Array([0xff, 0x00, 0xfe]);
  const b64 = "/wD+";
  let res = await t.call("POST", "/v1/topics/t/records", {
    records: [
      {
        key: b64,
        keyEncoding: "base64",
        value: b64,
        valueEncoding: "base64",
        partition: 1,
        timestamp: 1234,
      },
      { key: "k", value: null, partition: 1, timestamp: 99 },
      { value: "h", partition: 1, headers: { bin: b64, none: null }, headersEncoding: "base64" },
    ],
  });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.offsets.slice(0, 2), [
    { partition: 1, offset: 0, timestamp: 1234 },
    { partition: 1, offset: 1, timestamp: 99 },
  ]);
  res = await t.call("GET", "/v1/topics/t/partitions/1/records?offset=0");
  const [a, b, c] = res.body.records;
  assert.deepEqual(a, {
    offset: 0,
    timestamp: 1234,
    key: b64,
    keyEncoding: "base64",
    value: b64,
    valueEncoding: "base64",
    headers: {},
  });
  assert.deepEqual(b, { offset: 1, timestamp: 99, key: "k", value: null, headers: {} });
  assert.deepEqual(c.headers, { bin: b64, none: null });
  // Header names are data, even "__proto__".
  res = await t.call(
    "POST",
    "/v1/topics/t/records",
    '{"records":[{"value":"p","partition":0,"headers":{"__proto__":"x","a":"b"}}]}',
    {
      "content-type": "application/json",
    },
  );
  assert.equal(res.status, 200);
  res = await t.call("GET", "/v1/topics/t/partitions/0/records?offset=0");
  assert.deepEqual(Object.keys(res.body.records[0].headers), ["__proto__", "a"]);
  assert.equal(res.body.records[0].headers["__proto__"], "x");
  assert.equal(c.headersEncoding, "base64");
  // ?encoding=base64 makes everything base64.
  res = await t.call("GET", "/v1/topics/t/partitions/1/records?offset=1&encoding=base64");
  assert.equal(res.body.records[0].key, "aw==");
  assert.equal(res.body.records[0].keyEncoding, "base64");
  // The raw path returns the very bytes.
  const raw = await t.app.request("/v1/topics/t/partitions/1/records?offset=0", {
    headers: { accept: "application/vnd.rill.batch" },
  });
  const bytes = new Uint8Array(await raw.arrayBuffer());
  assert.ok(bytes.length > 0);
  assert.ok(bytes.includes(bin[0]));

  // LogAppendTime: the broker's clock wins over the producer's.
  await t.call("POST", "/v1/topics", {
    name: "lat",
    configs: { "message.timestamp.type": "LogAppendTime" },
  });
  const before = Date.now();
  res = await t.call("POST", "/v1/topics/lat/records", { records: [{ value: "x", timestamp: 5 }] });
  assert.ok(res.body.offsets[0].timestamp >= before);
  const batch = encodeBatch([{ value: enc.encode("y"), timestamp: 6 }]);
  res = await t.call("POST", "/v1/topics/lat/records?partition=0", batch, BATCH);
  assert.equal(res.status, 200);
  assert.ok(res.body.logAppendTime >= before);
  res = await t.call("GET", "/v1/topics/lat/partitions/0/records?offset=0");
  for (const r of res.body.records) assert.ok(r.timestamp >= before, "stored with the append time");
});

Deno.test("produce NDJSON and raw batches; fetch skips records below the offset in the first batch", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t" });
  let res = await t.call(
    "POST",
    "/v1/topics/t/records",
    '{"value":"a"}\n\n{"key":"k","value":"b"}\n',
    NDJSON,
  );
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.offsets.map((o: Offset) => o.offset), [0, 1]);

  const batch = encodeBatch(
    ["c", "d", "e"].map((v) => ({ value: enc.encode(v), key: enc.encode("k") })),
  );
  res = await t.call("POST", "/v1/topics/t/records?partition=0&acks=all", batch, BATCH);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, {
    partition: 0,
    baseOffset: 2,
    lastOffset: 4,
    recordCount: 3,
    logAppendTime: -1,
  });

  // Offset 3 is the middle of the batch 2..4: records 2 is skipped.
  res = await t.call("GET", "/v1/topics/t/partitions/0/records?offset=3");
  assert.deepEqual(res.body.records.map((r: { value: string }) => r.value), ["d", "e"]);
  assert.equal(res.body.nextOffset, 5);
  // The raw path returns whole batches: the first starts before the offset.
  const raw = await t.app.request("/v1/topics/t/partitions/0/records?offset=3", {
    headers: { accept: "application/vnd.rill.batch" },
  });
  assert.equal(raw.headers.get("content-type"), "application/vnd.rill.batch");
  assert.equal(raw.headers.get("rill-next-offset"), "5");
  assert.equal(raw.headers.get("rill-high-watermark"), "5");
  assert.equal(raw.headers.get("rill-log-start-offset"), "0");
  const batches = splitBatches(new Uint8Array(await raw.arrayBuffer()));
  assert.equal(batches.length, 1);
  assert.equal(new DataView(batches[0].buffer, batches[0].byteOffset).getBigInt64(0), 2n);

  // maxBytes smaller than a batch still returns one whole batch, so a reader progresses.
  res = await t.call("GET", "/v1/topics/t/partitions/0/records?offset=0&maxBytes=1");
  assert.ok(res.body.records.length >= 1);
  assert.equal(res.body.nextOffset, res.body.records.at(-1).offset + 1);
  // At the high watermark: nothing, and nextOffset stays.
  res = await t.call("GET", "/v1/topics/t/partitions/0/records?offset=5");
  assert.deepEqual(res.body, { records: [], nextOffset: 5, highWatermark: 5, logStartOffset: 0 });
});

Deno.test("list offsets: earliest, latest and by timestamp", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t" });
  await t.call("POST", "/v1/topics/t/records", {
    records: [{ value: "a", timestamp: 100 }, { value: "b", timestamp: 200 }, {
      value: "c",
      timestamp: 300,
    }],
  });
  const at = async (q: string) =>
    (await t.call("GET", `/v1/topics/t/partitions/0/offsets?at=${q}`)).body;
  assert.deepEqual(await at("earliest"), { offset: 0 });
  assert.deepEqual(await at("latest"), { offset: 3 });
  assert.deepEqual(await at("150"), { offset: 1 });
  assert.deepEqual(await at("200"), { offset: 1 });
  assert.deepEqual(await at("0"), { offset: 0 });
  assert.deepEqual(await at("301"), { offset: 3 }, "past the newest record: the high watermark");
});

Deno.test("acks=0 answers 204 at once and the records still land; acks=all honours min.insync.replicas", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t" });
  let res = await t.call("POST", "/v1/topics/t/records?acks=0", { records: [{ value: "fire" }] });
  assert.equal(res.status, 204);
  assert.equal(res.body, null);
  res = await t.call("GET", "/v1/topics/t/partitions/0/records?offset=0&maxWaitMs=5000");
  assert.equal(res.body.records[0].value, "fire");

  await t.call("POST", "/v1/topics", { name: "strict", configs: { "min.insync.replicas": "2" } });
  res = await t.call("POST", "/v1/topics/strict/records?acks=all", { records: [{ value: "x" }] });
  assert.equal(res.status, 503);
  assert.equal(res.body.error.code, "NOT_ENOUGH_REPLICAS");
  assert.equal(res.body.error.retriable, true);
  res = await t.call("POST", "/v1/topics/strict/records?acks=1", { records: [{ value: "x" }] });
  assert.equal(res.status, 200, "acks=1 does not need the ISR");
  res = await t.call("GET", "/v1/topics/strict/partitions/0/offsets?at=latest");
  assert.equal(res.body.offset, 1, "only the acks=1 record was appended");
});

Deno.test("records routes: every bad request gets its status and code and appends nothing", async () => {
  await using t = await openTestBroker({ config: { maxRequestBytes: 4096 } });
  await t.call("POST", "/v1/topics", {
    name: "t",
    partitions: 3,
    configs: { "max.message.bytes": "1000" },
  });
  await t.call("POST", "/v1/topics/t/records", { records: [{ value: "seed", partition: 0 }] });

  const good = encodeBatch([{ value: enc.encode("x") }]);
  const badCrc = good.slice();
  badCrc[badCrc.length - 1] ^= 0xff;
  const truncated = good.slice(0, good.length - 2);
  const compressed = good.slice(); // codec bits 7: no such codec (1-4 are Kafka's)
  new DataView(compressed.buffer).setInt16(POS.attributes, 7);
  new DataView(compressed.buffer).setUint32(POS.crc, crc32c(compressed.subarray(POS.attributes)));
  const trailing = new Uint8Array([...good, 1, 2, 3]);
  const empty = encodeBatch([]);
  const bigBatch = encodeBatch([{ value: new Uint8Array(1500) }]);
  const earlyBatch = encodeBatch([{ value: enc.encode("x"), timestamp: -1000 }]);
  const offsetLimit = "9".repeat(20);

  const cases: [string, string, unknown, Record<string, string> | undefined, number, string][] = [
    [
      "POST",
      "/v1/topics/nope/records",
      { records: [{ value: "x" }] },
      undefined,
      404,
      "UNKNOWN_TOPIC_OR_PARTITION",
    ],
    [
      "POST",
      "/v1/topics/t/records?acks=2",
      { records: [{ value: "x" }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      "hello",
      { "content-type": "text/plain" },
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      "{",
      { "content-type": "application/json" },
      400,
      "INVALID_REQUEST",
    ],
    ["POST", "/v1/topics/t/records", { records: "x" }, undefined, 400, "INVALID_REQUEST"],
    ["POST", "/v1/topics/t/records", { records: [] }, undefined, 400, "INVALID_REQUEST"],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x" }], more: 1 },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ key: "k" }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: 5 }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x", key: 5 }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x", vaule: "y" }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "!!", valueEncoding: "base64" }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x", valueEncoding: "hex" }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x", partition: -1 }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x", partition: "1" }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "ok" }, { value: "x", partition: 3 }] },
      undefined,
      404,
      "UNKNOWN_TOPIC_OR_PARTITION",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x", timestamp: "now" }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x", timestamp: -5 }] },
      undefined,
      400,
      "INVALID_TIMESTAMP",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x", headers: ["a"] }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x", headers: { a: 1 } }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "ok" }, { value: "x".repeat(1200) }] },
      undefined,
      413,
      "MESSAGE_TOO_LARGE",
    ],
    [
      "POST",
      "/v1/topics/t/records",
      { records: [{ value: "x".repeat(5000) }] },
      undefined,
      413,
      "RECORD_LIST_TOO_LARGE",
    ],
    [
      "POST",
      "/v1/topics/t/records?partition=1",
      { records: [{ value: "x" }] },
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    ["POST", "/v1/topics/t/records", '{"value":"a"}\nnot json\n', NDJSON, 400, "INVALID_REQUEST"],
    ["POST", "/v1/topics/t/records", "\n\n", NDJSON, 400, "INVALID_REQUEST"],
    [
      "POST",
      "/v1/topics/t/records",
      new Uint8Array([0x7b, 0xff, 0x7d]),
      { "content-type": "application/json" },
      400,
      "INVALID_REQUEST",
    ],
    ["POST", "/v1/topics/t/records", good, BATCH, 400, "INVALID_REQUEST"],
    ["POST", "/v1/topics/t/records?partition=x", good, BATCH, 400, "INVALID_REQUEST"],
    ["POST", "/v1/topics/t/records?partition=3", good, BATCH, 404, "UNKNOWN_TOPIC_OR_PARTITION"],
    ["POST", "/v1/topics/t/records?partition=0", badCrc, BATCH, 400, "CORRUPT_MESSAGE"],
    ["POST", "/v1/topics/t/records?partition=0", truncated, BATCH, 400, "CORRUPT_MESSAGE"],
    ["POST", "/v1/topics/t/records?partition=0", trailing, BATCH, 400, "CORRUPT_MESSAGE"],
    ["POST", "/v1/topics/t/records?partition=0", new Uint8Array(0), BATCH, 400, "INVALID_RECORD"],
    ["POST", "/v1/topics/t/records?partition=0", empty, BATCH, 400, "INVALID_RECORD"],
    [
      "POST",
      "/v1/topics/t/records?partition=0",
      compressed,
      BATCH,
      400,
      "UNSUPPORTED_COMPRESSION_TYPE",
    ],
    ["POST", "/v1/topics/t/records?partition=0", bigBatch, BATCH, 413, "MESSAGE_TOO_LARGE"],
    ["POST", "/v1/topics/t/records?partition=0", earlyBatch, BATCH, 400, "INVALID_TIMESTAMP"],
    [
      "GET",
      "/v1/topics/nope/partitions/0/records?offset=0",
      undefined,
      undefined,
      404,
      "UNKNOWN_TOPIC_OR_PARTITION",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/3/records?offset=0",
      undefined,
      undefined,
      404,
      "UNKNOWN_TOPIC_OR_PARTITION",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/x/records?offset=0",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/-1/records?offset=0",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    ["GET", "/v1/topics/t/partitions/0/records", undefined, undefined, 400, "INVALID_REQUEST"],
    [
      "GET",
      "/v1/topics/t/partitions/0/records?offset=abc",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/0/records?offset=1.5",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      `/v1/topics/t/partitions/0/records?offset=${offsetLimit}`,
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/0/records?offset=0&maxWaitMs=-1",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/0/records?offset=0&maxWaitMs=99999999",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/0/records?offset=0&maxBytes=0",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/0/records?offset=0&minBytes=x",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/0/records?offset=0&encoding=hex",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/0/offsets?at=yesterday",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/0/offsets?at=-5",
      undefined,
      undefined,
      400,
      "INVALID_REQUEST",
    ],
    [
      "GET",
      "/v1/topics/t/partitions/7/offsets?at=latest",
      undefined,
      undefined,
      404,
      "UNKNOWN_TOPIC_OR_PARTITION",
    ],
  ];
  for (const [method, path, body, headers, status, code] of cases) {
    const res = await t.call(method, path, body, headers);
    const what = `${method} ${path}`;
    assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body?.error?.code, code, what);
    assert.ok(!String(res.body.error.message).includes("\n"), what);
    assert.ok(!String(res.body.error.message).includes(t.dataDir), what);
    assert.ok(!String(res.body.error.message).includes("    at "), what);
  }
  // Nothing was appended anywhere.
  for (const p of [0, 1, 2]) {
    const res = await t.call("GET", `/v1/topics/t/partitions/${p}/offsets?at=latest`);
    assert.equal(res.body.offset, p === 0 ? 1 : 0, `partition ${p}`);
  }
});

Deno.test("fetch: an offset outside the log gets 416 OFFSET_OUT_OF_RANGE with both bounds", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t" });
  await t.call("POST", "/v1/topics/t/records", { records: [{ value: "a" }, { value: "b" }] });
  for (const offset of [-1, 3, 2 ** 53 - 1]) {
    const res = await t.call("GET", `/v1/topics/t/partitions/0/records?offset=${offset}`);
    assert.equal(res.status, 416, `offset ${offset}`);
    assert.equal(res.body.error.code, "OFFSET_OUT_OF_RANGE");
    assert.equal(res.body.error.logStartOffset, 0);
    assert.equal(res.body.error.highWatermark, 2);
  }
  // Same for the raw and SSE paths (the error comes before any stream starts).
  for (const accept of ["application/vnd.rill.batch", "text/event-stream"]) {
    const res = await t.call("GET", "/v1/topics/t/partitions/0/records?offset=9", undefined, {
      accept,
    });
    assert.equal(res.status, 416, accept);
    assert.equal(res.body.error.highWatermark, 2);
  }
});
