/**
 * Compacted topics through the broker: `cleanup.policy` and the other compaction configs,
 * keyless records refused, and the log cleaner pass leaving the latest record per key.
 */
import assert from "node:assert/strict";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { openTestBroker, type TestBroker } from "../http/_app.ts";

const enc = new TextEncoder();
const BATCH = { "content-type": "application/vnd.rill.batch" };

interface JsonRecord {
  offset: number;
  key: string | null;
  value: string | null;
}

/** Reads a partition from its log start to its high watermark as JSON records. */
async function readAll(t: TestBroker, topic: string): Promise<JsonRecord[]> {
  const out: JsonRecord[] = [];
  let offset = 0;
  for (let guard = 0; guard < 10_000; guard++) {
    const res = await t.call("GET", `/v1/topics/${topic}/partitions/0/records?offset=${offset}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const r of res.body.records) out.push({ offset: r.offset, key: r.key, value: r.value });
    if (res.body.nextOffset >= res.body.highWatermark) return out;
    assert.ok(res.body.nextOffset > offset, "each fetch moves on");
    offset = res.body.nextOffset;
  }
  throw new Error("never reached the high watermark");
}

/** Bounded wait for the background cleaner (no event to await). */
async function eventually(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`never happened: ${what}`);
}

Deno.test("cleanup.policy accepts delete, compact and both; bad compaction configs are refused", async () => {
  await using t = await openTestBroker();
  for (const policy of ["delete", "compact", "compact,delete", "delete,compact"]) {
    const res = await t.call("POST", "/v1/topics", {
      name: `p-${policy.replace(",", "-")}`,
      configs: {
        "cleanup.policy": policy,
        "min.cleanable.dirty.ratio": "0.25",
        "delete.retention.ms": "1000",
        "min.compaction.lag.ms": "0",
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  const compactOnly = await t.broker.replica("p-compact", 0);
  assert.equal(compactOnly.log.config.compact, true);
  assert.equal(compactOnly.log.config.retentionMs, -1, "compact alone: retention deletes nothing");
  assert.equal(compactOnly.log.config.minCleanableDirtyRatio, 0.25);
  assert.equal(compactOnly.log.config.deleteRetentionMs, 1000);
  const both = await t.broker.replica("p-compact-delete", 0);
  assert.equal(both.log.config.compact, true);
  assert.notEqual(both.log.config.retentionMs, -1);
  for (
    const [configs, message] of [
      [{ "cleanup.policy": "compacted" }, /cleanup\.policy/],
      [{ "cleanup.policy": "delete,delete" }, /cleanup\.policy/],
      [{ "min.cleanable.dirty.ratio": "2" }, /min\.cleanable\.dirty\.ratio/],
      [{ "delete.retention.ms": "-5" }, /delete\.retention\.ms/],
      [{ "min.compaction.lag.ms": "1.5" }, /min\.compaction\.lag\.ms/],
    ] as const
  ) {
    const res = await t.call("POST", "/v1/topics", { name: "bad", configs });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, "INVALID_CONFIG");
    assert.match(res.body.error.message, message);
  }
  assert.equal((await t.call("GET", "/v1/topics/bad")).status, 404, "nothing was created");
});

Deno.test("a compacted topic refuses records without a key and appends nothing", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "c", configs: { "cleanup.policy": "compact" } });
  const ok = await t.call("POST", "/v1/topics/c/records", {
    records: [{ key: "a", value: "1" }],
  });
  assert.equal(ok.status, 200);

  const json = await t.call("POST", "/v1/topics/c/records", {
    records: [{ key: "b", value: "2" }, { value: "no key" }],
  });
  assert.equal(json.status, 400);
  assert.equal(json.body.error.code, "INVALID_RECORD");
  assert.equal(
    json.body.error.message,
    'Compacted topic "c" accepts only records with a key; record 1 has none',
  );

  const batch = encodeBatch([
    { key: enc.encode("b"), value: enc.encode("2") },
    { key: null, value: enc.encode("no key") },
  ]);
  const raw = await t.call("POST", "/v1/topics/c/records?partition=0", batch, BATCH);
  assert.equal(raw.status, 400);
  assert.equal(raw.body.error.code, "INVALID_RECORD");
  assert.match(raw.body.error.message, /record 1 of batch 0 has none/);

  assert.equal((await t.broker.replica("c", 0)).log.logEndOffset, 1, "only the keyed record");
  // A tombstone has a key: it is accepted.
  const tomb = await t.call("POST", "/v1/topics/c/records", {
    records: [{ key: "a", value: null }],
  });
  assert.equal(tomb.status, 200);
});

Deno.test("the log cleaner leaves the latest record per key, at its offset, readable over HTTP", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", {
    name: "users",
    configs: { "cleanup.policy": "compact", "segment.bytes": "1024" },
  });
  const latest = new Map<string, JsonRecord>();
  for (let i = 0; i < 120; i++) {
    const key = `user-${i % 6}`;
    const value = i % 25 === 24 ? null : `v${i}-${"x".repeat(40)}`;
    const res = await t.call("POST", "/v1/topics/users/records?acks=all", {
      records: [{ key, value, partition: 0 }],
    });
    latest.set(key, { offset: res.body.offsets[0].offset, key, value });
  }
  const replica = await t.broker.replica("users", 0);
  const before = replica.log.size;
  const all = await readAll(t, "users");
  assert.equal(all.length, 120);

  assert.ok((await t.broker.cleanLogs()) > 0, "the pass removed records");
  assert.ok(replica.log.size < before / 2, `${replica.log.size} of ${before} bytes left`);
  const after = await readAll(t, "users");
  // The active segment is untouched; below it, one record per key: its latest there.
  let activeStart = 0;
  for await (const e of Deno.readDir(replica.log.dir)) {
    const m = /^(\d{20})\.log$/.exec(e.name);
    if (m) activeStart = Math.max(activeStart, Number(m[1]));
  }
  assert.ok(activeStart > 0);
  const expected = all.filter((r) =>
    r.offset >= activeStart ||
    all.findLast((x) => x.key === r.key && x.offset < activeStart)!.offset === r.offset
  );
  assert.deepEqual(after, expected);
  for (const r of latest.values()) {
    assert.ok(after.some((x) => x.offset === r.offset && x.value === r.value), `latest ${r.key}`);
  }
  assert.equal(
    new Set(after.filter((r) => r.offset < activeStart).map((r) => r.key)).size,
    after.filter((r) => r.offset < activeStart).length,
  );
  // A fetch from a removed offset answers the next record kept (following nextOffset past
  // an empty batch, as a consumer does).
  for (const removed of all.filter((r) => !after.some((x) => x.offset === r.offset))) {
    let offset = removed.offset;
    let first: JsonRecord | undefined;
    for (let guard = 0; !first && guard < 100; guard++) {
      const res = await t.call("GET", `/v1/topics/users/partitions/0/records?offset=${offset}`);
      assert.ok(res.body.nextOffset > offset);
      first = res.body.records[0];
      offset = res.body.nextOffset;
    }
    assert.equal(first?.offset, after.find((x) => x.offset > removed.offset)!.offset);
  }
});

Deno.test("the broker compacts in the background, every logCleanerBackoffMs", async () => {
  await using t = await openTestBroker({ config: { logCleanerBackoffMs: 10 } });
  await t.call("POST", "/v1/topics", {
    name: "bg",
    configs: { "cleanup.policy": "compact", "segment.bytes": "1024" },
  });
  for (let i = 0; i < 60; i++) {
    await t.call("POST", "/v1/topics/bg/records", {
      records: [{ key: `k${i % 3}`, value: `v${i}-${"y".repeat(40)}`, partition: 0 }],
    });
  }
  const replica = await t.broker.replica("bg", 0);
  await eventually(async () => (await readAll(t, "bg")).length < 30, "compaction ran");
  assert.equal(replica.log.logEndOffset, 60);
});
