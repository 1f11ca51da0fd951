/**
 * Issue 14, D1/D2: the limits of JSON produce and fetch — records per request, batches within
 * `max.message.bytes`, JSON fetch answers within `maxBytes`, one timestamp rule for raw and
 * JSON records — and the record-by-record JSON body walker agreeing with `JSON.parse`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeBatch, readBatchHeader, splitBatches } from "../../src/protocol/mod.ts";
import { parseJsonRecords, parseRecord } from "../../src/http/record_json.ts";
import { openTestBroker } from "./_app.ts";

const enc = new TextEncoder();
const BATCH = { "content-type": "application/vnd.rill.batch" };
const NDJSON = { "content-type": "application/x-ndjson" };

async function rawBatches(
  t: Awaited<ReturnType<typeof openTestBroker>>,
  topic: string,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let offset = 0;;) {
    const res = await t.app.request(
      `/v1/topics/${topic}/partitions/0/records?offset=${offset}&maxBytes=1`,
      { headers: { accept: "application/vnd.rill.batch" } },
    );
    const batches = splitBatches(new Uint8Array(await res.arrayBuffer()));
    if (batches.length === 0) return out;
    out.push(...batches);
    offset = Number(res.headers.get("rill-next-offset"));
  }
}

Deno.test("JSON produce: a request over max.message.bytes is stored as several batches within it, all records in order", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", configs: { "max.message.bytes": "10000" } });
  const values = Array.from({ length: 300 }, (_, i) => `${i}:`.padEnd(100, "v"));
  const res = await t.call("POST", "/v1/topics/t/records?acks=1", {
    records: values.map((value) => ({ value })),
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.offsets.map((o: { offset: number }) => o.offset), [...values.keys()]);
  const batches = await rawBatches(t, "t");
  assert.ok(batches.length >= 3, `${batches.length} batches`);
  for (const b of batches) assert.ok(b.length <= 10000, `a batch of ${b.length} bytes`);
  // Read back as JSON, page by page: every record once, in order.
  const seen: string[] = [];
  for (let offset = 0; offset < values.length;) {
    const page = await t.call("GET", `/v1/topics/t/partitions/0/records?offset=${offset}`);
    for (const r of page.body.records) seen.push(r.value);
    offset = page.body.nextOffset;
  }
  assert.deepEqual(seen, values);
  // A record that alone is over the limit is refused and nothing is appended.
  const big = await t.call("POST", "/v1/topics/t/records", {
    records: [{ value: "ok" }, { value: "x".repeat(12_000) }],
  });
  assert.equal(big.status, 413);
  assert.equal(big.body.error.code, "MESSAGE_TOO_LARGE");
  const latest = await t.call("GET", "/v1/topics/t/partitions/0/offsets?at=latest");
  assert.equal(latest.body.offset, 300);
});

Deno.test("JSON fetch: the answer stays within maxBytes but for its first record, and nextOffset goes on from the first record left out", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t" });
  const values = Array.from({ length: 2000 }, (_, i) => `record-${i}`.padEnd(50, "."));
  await t.call("POST", "/v1/topics/t/records?acks=1", {
    records: values.map((value) => ({ value })),
  });
  await t.call("POST", "/v1/topics/t/records?acks=1", { records: [{ value: "y".repeat(5000) }] });
  const seen: string[] = [];
  let pages = 0;
  for (let offset = 0; offset <= values.length;) {
    const res = await t.app.request(
      `/v1/topics/t/partitions/0/records?offset=${offset}&maxBytes=4096`,
    );
    const text = await res.text();
    const body = JSON.parse(text);
    assert.ok(body.records.length >= 1);
    if (body.records.length > 1) assert.ok(text.length <= 4096 + 200, `${text.length} bytes`);
    for (const r of body.records) seen.push(r.value);
    assert.equal(body.nextOffset, body.records.at(-1).offset + 1);
    offset = body.nextOffset;
    pages++;
  }
  assert.deepEqual(seen, [...values, "y".repeat(5000)], "every record once, the big one alone");
  assert.ok(pages > 20, `${pages} pages`);
});

Deno.test("produce: at most maxRequestRecords records a JSON or NDJSON request (413, nothing appended)", async () => {
  await using t = await openTestBroker({ config: { maxRequestRecords: 10 } });
  await t.call("POST", "/v1/topics", { name: "t" });
  const ok = await t.call("POST", "/v1/topics/t/records", {
    records: Array.from({ length: 10 }, () => ({ value: "" })),
  });
  assert.equal(ok.status, 200);
  const json = await t.call("POST", "/v1/topics/t/records", {
    records: Array.from({ length: 11 }, () => ({ value: "" })),
  });
  assert.equal(json.status, 413);
  assert.equal(json.body.error.code, "RECORD_LIST_TOO_LARGE");
  assert.match(json.body.error.message, /more than 10 records/);
  const ndjson = await t.call(
    "POST",
    "/v1/topics/t/records",
    '{"value":""}\n'.repeat(11),
    NDJSON,
  );
  assert.equal(ndjson.status, 413);
  assert.equal(ndjson.body.error.code, "RECORD_LIST_TOO_LARGE");
  const latest = await t.call("GET", "/v1/topics/t/partitions/0/offsets?at=latest");
  assert.equal(latest.body.offset, 10);
});

Deno.test("timestamps: one rule for raw and JSON records — ms since the epoch, or -1 (none); below -1 is INVALID_TIMESTAMP", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t" });
  const json = await t.call("POST", "/v1/topics/t/records?acks=1", {
    records: [{ value: "a", timestamp: -1 }, { value: "b", timestamp: 0 }],
  });
  assert.equal(json.status, 200, JSON.stringify(json.body));
  assert.deepEqual(json.body.offsets.map((o: { timestamp: number }) => o.timestamp), [-1, 0]);
  const raw = await t.call(
    "POST",
    "/v1/topics/t/records?partition=0&acks=1",
    encodeBatch([{ value: enc.encode("c"), timestamp: -1 }]),
    BATCH,
  );
  assert.equal(raw.status, 200, JSON.stringify(raw.body));
  const fetched = await t.call("GET", "/v1/topics/t/partitions/0/records?offset=0");
  assert.deepEqual(fetched.body.records.map((r: { timestamp: number }) => r.timestamp), [
    -1,
    0,
    -1,
  ]);
  for (const ts of [-2, -1000]) {
    const badRaw = await t.call(
      "POST",
      "/v1/topics/t/records?partition=0",
      encodeBatch([{ value: enc.encode("d"), timestamp: 5 }, { value: null, timestamp: ts }]),
      BATCH,
    );
    assert.equal(badRaw.status, 400);
    assert.equal(badRaw.body.error.code, "INVALID_TIMESTAMP");
    const badJson = await t.call("POST", "/v1/topics/t/records", {
      records: [{ value: "d", timestamp: ts }],
    });
    assert.equal(badJson.status, 400);
    assert.equal(badJson.body.error.code, "INVALID_TIMESTAMP");
  }
  const latest = await t.call("GET", "/v1/topics/t/partitions/0/offsets?at=latest");
  assert.equal(latest.body.offset, 3);
  const stored = await rawBatches(t, "t");
  assert.equal(readBatchHeader(stored[0]).baseTimestamp, -1);
});

Deno.test("parseJsonRecords() walks a body record by record and agrees with JSON.parse", async () => {
  const text = fc.string({ unit: "binary" });
  const record = fc.record({
    key: fc.option(text, { nil: null }),
    value: fc.option(text, { nil: null }),
    headers: fc.dictionary(fc.string({ maxLength: 5 }), fc.option(text, { nil: null }), {
      maxKeys: 3,
    }),
  }, { requiredKeys: ["value"] });
  await fc.assert(
    fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 10 }), fc.nat(4), async (
      records,
      indent,
    ) => {
      const body = JSON.stringify({ records }, null, indent);
      const walked = await parseJsonRecords(enc.encode(body));
      const parsed = JSON.parse(body).records.map((r: unknown, i: number) => parseRecord(r, i));
      assert.deepEqual(walked, parsed);
    }),
    { numRuns: 100 },
  );
  const refused = [
    ["", "not valid JSON"],
    ["[]", "must be a JSON object"],
    ['{"records":[{"value":"a"},]}', "not valid JSON"],
    ['{"records":[{"value":"a"}],}', "not valid JSON"],
    ['{"records":[{"value":"a"}] "x":1}', "not valid JSON"],
    ['{"records":[{"value":"a"}]} x', "not valid JSON"],
    ['{"records":[{"value":"a"}', "not valid JSON"],
    ['{"records":[{"value":"a"]]}', "Record 0 is not valid JSON"],
    ['{"records":[{"value":"a"}, {"value": tru}]}', "Record 1 is not valid JSON"],
    ['{"records":[], "records":[]}', '"records" twice'],
    ['{"records":5}', 'must have a "records" array'],
    ['{"other":[]}', 'unknown field "other"'],
    ["{}", 'must have a "records" array'],
    ['{"records":[]}', '"records" is empty'],
  ];
  for (const [body, message] of refused) {
    await assert.rejects(
      () => parseJsonRecords(enc.encode(body)),
      (e: Error) => e.message.includes(message),
      body,
    );
  }
  // Brackets, quotes and escapes inside strings do not confuse the walk.
  const tricky = await parseJsonRecords(
    enc.encode(' { "records" : [ {"value":"]}\\"[{,"} , {"value":"é\\u0000"} ] } '),
  );
  assert.deepEqual(tricky.map((r) => new TextDecoder().decode(r.value!)), [']}"[{,', "é\u0000"]);
});
