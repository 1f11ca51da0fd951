/**
 * Compressed batches through the broker (in-process, HTTP app): stored as they came,
 * `compression.type` recompressing, readable as JSON, hostile batches refused with nothing
 * stored, and compacted topics whose batches are compressed.
 */
import assert from "node:assert/strict";
import * as zlib from "node:zlib";
import {
  compressBatch,
  type CompressionType,
  prepareCompression,
} from "../../src/protocol/compression.ts";
import { crc32c } from "../../src/protocol/crc32c.ts";
import {
  encodeBatch,
  POS,
  readBatchHeader,
  type RecordInput,
  splitBatches,
} from "../../src/protocol/record_batch.ts";
import { openTestBroker, type TestBroker } from "../http/_app.ts";

const enc = new TextEncoder();
const BATCH = { "content-type": "application/vnd.rill.batch" };
const CODECS = ["gzip", "snappy", "lz4", "zstd"] as const;
await prepareCompression("zstd");

function events(n: number, from = 0): RecordInput[] {
  return Array.from({ length: n }, (_, j) => {
    const i = from + j;
    return {
      key: enc.encode(`host-${i % 5}`),
      value: enc.encode(JSON.stringify({
        seq: i,
        level: ["INFO", "WARN"][i % 2],
        message: `request ${i} served in ${(i * 37) % 900} ms`,
      })),
      headers: [{ key: "trace", value: enc.encode(`t-${i}`) }],
      timestamp: 1_700_000_000_000 + i,
    };
  });
}

/** The codec of each batch stored in a partition, read back as raw batches. */
async function storedCodecs(t: TestBroker, topic: string): Promise<number[]> {
  const res = await t.app.request(`/v1/topics/${topic}/partitions/0/records?offset=0`, {
    headers: { accept: "application/vnd.rill.batch" },
  });
  assert.equal(res.status, 200);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return splitBatches(bytes).map((b) => readBatchHeader(b).attributes & 7);
}

async function jsonRecords(t: TestBroker, topic: string) {
  const res = await t.call("GET", `/v1/topics/${topic}/partitions/0/records?offset=0`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.records as {
    offset: number;
    key: string;
    value: string;
    headers: Record<string, string>;
  }[];
}

/** Reads a partition up to its high watermark as JSON, following nextOffset. */
async function readAll(t: TestBroker, topic: string) {
  const out: { offset: number; key: string; value: string | null }[] = [];
  let offset = 0;
  for (let guard = 0; guard < 1000; guard++) {
    const res = await t.call("GET", `/v1/topics/${topic}/partitions/0/records?offset=${offset}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    out.push(...res.body.records);
    if (res.body.nextOffset >= res.body.highWatermark) return out;
    offset = res.body.nextOffset;
  }
  throw new Error("never reached the high watermark");
}

Deno.test("compressed batches are stored as they came and read back as JSON", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "logs" });
  const plain = encodeBatch(events(40));
  for (const codec of CODECS) {
    const res = await t.call(
      "POST",
      "/v1/topics/logs/records?partition=0",
      compressBatch(plain, codec),
      BATCH,
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  assert.deepEqual(await storedCodecs(t, "logs"), [1, 2, 3, 4]);
  const records = await jsonRecords(t, "logs");
  assert.equal(records.length, 160);
  for (let i = 0; i < 160; i++) {
    assert.equal(records[i].offset, i);
    assert.equal(records[i].key, `host-${(i % 40) % 5}`);
    assert.equal(JSON.parse(records[i].value).seq, i % 40);
    assert.deepEqual(records[i].headers, { trace: `t-${i % 40}` });
  }
  // A fetch from inside a compressed batch starts at the offset asked for.
  const mid = await t.call("GET", "/v1/topics/logs/partitions/0/records?offset=95");
  assert.equal(mid.body.records[0].offset, 95);
});

Deno.test("compression.type: producer keeps, uncompressed and codecs recompress", async () => {
  await using t = await openTestBroker();
  const cases: [string, number][] = [
    ["producer", 4],
    ["uncompressed", 0],
    ["lz4", 3],
    ["gzip", 1],
  ];
  for (const [type, stored] of cases) {
    const topic = `t-${type}`;
    const made = await t.call("POST", "/v1/topics", {
      name: topic,
      configs: { "compression.type": type },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const raw = compressBatch(encodeBatch(events(30)), "zstd");
    const res = await t.call(`POST`, `/v1/topics/${topic}/records?partition=0`, raw, BATCH);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // JSON-born records too: a topic with a codec stores them compressed.
    const json = await t.call("POST", `/v1/topics/${topic}/records`, {
      records: [{ key: "k", value: "from json", partition: 0 }],
    });
    assert.equal(json.status, 200);
    const codecs = await storedCodecs(t, topic);
    assert.deepEqual(codecs, [stored, type === "producer" ? 0 : stored], type);
    const records = await jsonRecords(t, topic);
    assert.equal(records.length, 31);
    assert.equal(JSON.parse(records[29].value).seq, 29);
    assert.equal(records[30].value, "from json");
  }
  const bad = await t.call("POST", "/v1/topics", {
    name: "bad",
    configs: { "compression.type": "brotli" },
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, "INVALID_CONFIG");
  assert.match(bad.body.error.message, /compression\.type/);
});

Deno.test("LogAppendTime topics stamp compressed batches without decompressing them", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", {
    name: "lat",
    configs: { "message.timestamp.type": "LogAppendTime" },
  });
  const before = Date.now();
  const res = await t.call(
    "POST",
    "/v1/topics/lat/records?partition=0",
    compressBatch(encodeBatch(events(5)), "lz4"),
    BATCH,
  );
  assert.equal(res.status, 200);
  assert.deepEqual(await storedCodecs(t, "lat"), [3]);
  const res2 = await t.call("GET", "/v1/topics/lat/partitions/0/records?offset=0");
  for (const r of res2.body.records) assert.ok(r.timestamp >= before, "append time");
});

function resealed(batch: Uint8Array, edit: (view: DataView) => void): Uint8Array {
  const copy = batch.slice();
  const view = new DataView(copy.buffer);
  edit(view);
  view.setUint32(POS.crc, crc32c(copy.subarray(POS.attributes)));
  return copy;
}

function withBody(batch: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(POS.records + body.length);
  out.set(batch.subarray(0, POS.records));
  out.set(body, POS.records);
  return resealed(out, (v) => v.setInt32(POS.batchLength, out.length - 12));
}

Deno.test("hostile compressed batches get a clear error and store nothing", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "h" });
  const plain = encodeBatch(events(20));
  const attempts: [string, Uint8Array, number, string, RegExp][] = [];
  for (const codec of CODECS) {
    const batch = compressBatch(plain, codec);
    const body = batch.subarray(POS.records);
    attempts.push(
      [
        `${codec} truncated`,
        withBody(batch, body.subarray(0, body.length >> 1)),
        400,
        "CORRUPT_MESSAGE",
        /^Batch at offset 0: /,
      ],
      [
        `${codec} labelled codec 5`,
        resealed(batch, (v) => v.setInt16(POS.attributes, 5)),
        400,
        "UNSUPPORTED_COMPRESSION_TYPE",
        /codec 5, which does not exist/,
      ],
      [
        `${codec} with one record fewer than its header says`,
        resealed(batch, (v) => {
          v.setInt32(POS.recordCount, 21);
          v.setInt32(POS.lastOffsetDelta, 20);
        }),
        400,
        "CORRUPT_MESSAGE",
        /Batch 0 /,
      ],
    );
  }
  // Corrupt inner records behind a valid compression: a record length past its end.
  const broken = encodeBatch(events(3));
  broken[POS.records] = 0x7e;
  attempts.push([
    "zstd around a broken record",
    compressBatch(resealed(broken, () => {}), "zstd"),
    400,
    "CORRUPT_MESSAGE",
    /Batch 0 record 0/,
  ]);
  // 512 MiB of zeros in ~16 KiB of zstd (the limit is 32 x max.message.bytes = 32 MiB).
  const zeros = new Uint8Array(64 << 20);
  const bomb = new Uint8Array(zlib.zstdCompressSync(zeros));
  const bombBatch = resealed(withBody(plain, bomb), (v) => v.setInt16(POS.attributes, 4));
  attempts.push([
    "a zstd bomb",
    bombBatch,
    413,
    "RECORD_LIST_TOO_LARGE",
    /inflates to more than 33554816 bytes/,
  ]);
  const gzBomb = new Uint8Array(zlib.gzipSync(zeros));
  attempts.push([
    "a gzip bomb",
    resealed(withBody(plain, gzBomb), (v) => v.setInt16(POS.attributes, 1)),
    413,
    "RECORD_LIST_TOO_LARGE",
    /inflates to more than/,
  ]);
  for (const [what, body, status, code, message] of attempts) {
    const res = await t.call("POST", "/v1/topics/h/records?partition=0", body, BATCH);
    assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, code, what);
    assert.match(res.body.error.message, message, what);
  }
  assert.equal((await t.broker.replica("h", 0)).log.logEndOffset, 0, "nothing was stored");
});

Deno.test("a compacted topic checks keys inside compressed batches and cleans them", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", {
    name: "users",
    configs: { "cleanup.policy": "compact", "segment.bytes": "1024" },
  });
  const keyless = compressBatch(
    encodeBatch([{ key: enc.encode("a"), value: enc.encode("1") }, { value: enc.encode("x") }]),
    "lz4",
  );
  const refused = await t.call("POST", "/v1/topics/users/records?partition=0", keyless, BATCH);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.code, "INVALID_RECORD");
  assert.match(refused.body.error.message, /record 1 of batch 0 has none/);

  const latest = new Map<string, string | null>();
  for (let round = 0; round < 40; round++) {
    const codec: CompressionType = CODECS[round % 4];
    const records: RecordInput[] = [];
    for (let k = 0; k < 6; k++) {
      const key = `user-${(round + k) % 8}`;
      const value = round === 29 && k === 0 ? null : `r${round}-${k}-${"x".repeat(60)}`;
      records.push({ key: enc.encode(key), value: value === null ? null : enc.encode(value) });
      latest.set(key, value);
    }
    const res = await t.call(
      "POST",
      "/v1/topics/users/records?partition=0&acks=all",
      compressBatch(encodeBatch(records), codec),
      BATCH,
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  const replica = await t.broker.replica("users", 0);
  const before = replica.log.size;
  assert.ok((await t.broker.cleanLogs()) > 0, "the pass removed records");
  assert.ok(replica.log.size < before, `${replica.log.size} of ${before} bytes left`);
  // On disk, the cleaned segments still hold compressed batches, of every codec.
  const codecs = new Set<number>();
  for await (const e of Deno.readDir(replica.log.dir)) {
    if (!e.name.endsWith(".log")) continue;
    const bytes = await Deno.readFile(`${replica.log.dir}/${e.name}`);
    for (const b of splitBatches(bytes)) {
      const h = readBatchHeader(b);
      if (h.recordCount > 0) codecs.add(h.attributes & 7);
    }
  }
  assert.deepEqual([...codecs].sort(), [1, 2, 3, 4]);
  const after = await readAll(t, "users");
  const lastByKey = new Map<string, string | null>();
  for (const r of after) lastByKey.set(r.key, r.value);
  assert.deepEqual(lastByKey, latest, "the latest value of every key survives");
  const keys = after.map((r) => r.key);
  assert.ok(keys.length < 120, `${keys.length} of 240 records left`);
});
