import assert from "node:assert/strict";
import { Broker } from "../../src/broker/broker.ts";
import type { FetchManyResult, PartitionFetchResult } from "../../src/broker/fetch_session.ts";
import { RepeatedFetch } from "../../src/broker/repeated_fetch.ts";
import { decodeBatch, encodeBatch, splitBatches } from "../../src/protocol/record_batch.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function openBroker(
  path: string,
  config: Record<string, number> = {},
): Promise<Broker & AsyncDisposable> {
  const broker = await Broker.open({
    id: 1,
    dataDir: path,
    kv: ":memory:" as string,
    advertisedUrl: "http://broker-1.test",
    config,
    log: () => {},
  });
  return Object.assign(broker, { [Symbol.asyncDispose]: () => broker.close() });
}

/** Appends `count` records of `size` bytes to a partition, as one batch. */
async function produce(
  broker: Broker,
  topic: string,
  partition: number,
  count: number,
  size = 10,
  tag = "v",
): Promise<void> {
  const records = Array.from({ length: count }, (_, i) => ({
    value: enc.encode(`${tag}${i}`.padEnd(size, ".")),
  }));
  await broker.produceBatches(topic, partition, encodeBatch(records), 1);
}

function values(bytes: Uint8Array): string[] {
  return splitBatches(bytes).flatMap((b) =>
    decodeBatch(b).records.map((r) => dec.decode(r.value!).replace(/\.+$/, ""))
  );
}

function byPartition(answer: FetchManyResult): Map<string, PartitionFetchResult> {
  return new Map(answer.partitions.map((p) => [`${p.topic}-${p.partition}`, p]));
}

const MiB = 1024 * 1024;

Deno.test("fetchMany answers every partition with its own bytes, offsets and errors", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 3 });
  await produce(broker, "t", 0, 3, 10, "a");
  await produce(broker, "t", 2, 2, 10, "c");
  const answer = await broker.fetchMany({
    partitions: [
      { topic: "t", partition: 0, offset: 1, maxBytes: MiB },
      { topic: "t", partition: 1, offset: 0, maxBytes: MiB },
      { topic: "t", partition: 2, offset: 0, maxBytes: MiB },
      { topic: "t", partition: 7, offset: 0, maxBytes: MiB },
      { topic: "nope", partition: 0, offset: 0, maxBytes: MiB },
    ],
    maxWaitMs: 0,
    minBytes: 1,
  });
  try {
    const got = byPartition(answer);
    assert.equal(answer.session, null);
    assert.deepEqual(
      values(got.get("t-0")!.bytes),
      ["a0", "a1", "a2"],
      "whole batch from offset 1",
    );
    assert.equal(got.get("t-0")!.nextOffset, 3);
    assert.equal(got.get("t-0")!.highWatermark, 3);
    assert.equal(got.get("t-0")!.logStartOffset, 0);
    assert.equal(got.get("t-1")!.bytes.length, 0);
    assert.equal(got.get("t-1")!.nextOffset, 0);
    assert.equal(got.get("t-1")!.error, null);
    assert.deepEqual(values(got.get("t-2")!.bytes), ["c0", "c1"]);
    assert.equal(got.get("t-7")!.error?.code, "UNKNOWN_TOPIC_OR_PARTITION");
    assert.equal(got.get("nope-0")!.error?.code, "UNKNOWN_TOPIC_OR_PARTITION");
    assert.equal(answer.totalBytes, got.get("t-0")!.bytes.length + got.get("t-2")!.bytes.length);
  } finally {
    answer.release();
  }
  // One partition out of range does not fail the others.
  const mixed = await broker.fetchMany({
    partitions: [
      { topic: "t", partition: 2, offset: 99, maxBytes: MiB },
      { topic: "t", partition: 0, offset: 0, maxBytes: MiB },
    ],
    maxWaitMs: 0,
    minBytes: 1,
  });
  const got = byPartition(mixed);
  assert.equal(got.get("t-2")!.error?.code, "OFFSET_OUT_OF_RANGE");
  assert.deepEqual(got.get("t-2")!.error?.details, { logStartOffset: 0, highWatermark: 2 });
  assert.deepEqual(values(got.get("t-0")!.bytes), ["a0", "a1", "a2"]);
  mixed.release();
});

Deno.test("fetchMany refuses a malformed request with INVALID_REQUEST", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 1 });
  const bad = [
    [{ topic: "t", partition: -1, offset: 0, maxBytes: 1 }],
    [{ topic: "t", partition: 0, offset: 0.5, maxBytes: 1 }],
    [{ topic: "t", partition: 0, offset: 0, maxBytes: 0 }],
    [{ topic: "", partition: 0, offset: 0, maxBytes: 1 }],
    [{ topic: "t", partition: 0, offset: 0, maxBytes: 1 }, {
      topic: "t",
      partition: 0,
      offset: 5,
      maxBytes: 1,
    }],
  ];
  for (const partitions of bad) {
    await assert.rejects(
      broker.fetchMany({ partitions, maxWaitMs: 0, minBytes: 1 }),
      (e: Error & { code?: string }) => e.code === "INVALID_REQUEST",
      JSON.stringify(partitions),
    );
  }
  assert.equal(broker.fetchSessions.size, 0);
});

Deno.test("fetchMany long-polls all partitions at once and is woken by an append to any", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 4 });
  const partitions = [0, 1, 2, 3].map((p) => ({
    topic: "t",
    partition: p,
    offset: 0,
    maxBytes: MiB,
  }));
  let settled = false;
  const pending = broker.fetchMany({ partitions, maxWaitMs: 60_000, minBytes: 1 }).finally(() =>
    settled = true
  );
  const replicas = await Promise.all([0, 1, 2, 3].map((p) => broker.replica("t", p)));
  // One wait listens on every partition (and nothing answered yet).
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(replicas.map((r) => r.waiters.size), [1, 1, 1, 1]);
  assert.equal(settled, false);
  await produce(broker, "t", 3, 2, 10, "d");
  const answer = await pending; // answered by the append, long before the 60 s wait
  const got = byPartition(answer);
  assert.deepEqual(values(got.get("t-3")!.bytes), ["d0", "d1"]);
  assert.equal(got.get("t-0")!.bytes.length, 0);
  answer.release();
  assert.deepEqual(replicas.map((r) => r.waiters.size), [0, 0, 0, 0], "listeners removed");
});

Deno.test("fetchMany waits for minBytes summed over partitions", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 2 });
  const one = encodeBatch([{ value: enc.encode("x".repeat(100)) }]).length;
  let settled = false;
  const pending = broker.fetchMany({
    partitions: [0, 1].map((p) => ({ topic: "t", partition: p, offset: 0, maxBytes: MiB })),
    maxWaitMs: 60_000,
    minBytes: one + 1,
  }).finally(() => settled = true);
  await new Promise((r) => setTimeout(r, 0));
  await broker.produceBatches("t", 0, encodeBatch([{ value: enc.encode("x".repeat(100)) }]), 1);
  const p0 = await broker.replica("t", 0);
  assert.equal(p0.waiters.size, 1, "one batch is not enough: still waiting");
  assert.equal(settled, false);
  await broker.produceBatches("t", 1, encodeBatch([{ value: enc.encode("y".repeat(100)) }]), 1);
  const answer = await pending;
  assert.equal(answer.totalBytes, 2 * one);
  assert.deepEqual(answer.partitions.map((p) => p.bytes.length), [one, one]);
  answer.release();
});

Deno.test("fetchMany ends its wait on maxWaitMs and on abort, answering what there is", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 2 });
  await produce(broker, "t", 0, 1);
  const timedOut = await broker.fetchMany({
    partitions: [0, 1].map((p) => ({ topic: "t", partition: p, offset: 0, maxBytes: MiB })),
    maxWaitMs: 20,
    minBytes: MiB,
  });
  assert.equal(timedOut.partitions[0].bytes.length > 0, true, "less than minBytes, after the wait");
  timedOut.release();
  const ac = new AbortController();
  const aborted = broker.fetchMany({
    partitions: [{ topic: "t", partition: 1, offset: 0, maxBytes: MiB }],
    maxWaitMs: 60_000,
    minBytes: 1,
    signal: ac.signal,
  });
  ac.abort();
  const answer = await aborted;
  assert.equal(answer.partitions[0].bytes.length, 0);
  assert.equal((await broker.replica("t", 1)).waiters.size, 0);
  answer.release();
});

Deno.test("fetchMany keeps per-partition and total maxBytes, except the first batch of the answer", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 3 });
  for (let p = 0; p < 3; p++) {
    for (let b = 0; b < 4; b++) await produce(broker, "t", p, 10, 100, `p${p}b${b}-`);
  }
  const batch = (await broker.fetch("t", 0, 0, { maxBytes: 1, maxWaitMs: 0, minBytes: 1 }))
    .bytes.length;
  // Per partition: 1 byte still returns the first batch whole.
  const tiny = await broker.fetchMany({
    partitions: [0, 1, 2].map((p) => ({ topic: "t", partition: p, offset: 0, maxBytes: 1 })),
    maxWaitMs: 0,
    minBytes: 1,
  });
  assert.deepEqual(tiny.partitions.map((p) => p.bytes.length), [batch, batch, batch]);
  assert.deepEqual(tiny.partitions.map((p) => p.nextOffset), [10, 10, 10]);
  tiny.release();
  // Total 2.5 batches: two whole batches of partition 0, nothing more fits elsewhere.
  const total = await broker.fetchMany({
    partitions: [0, 1, 2].map((p) => ({ topic: "t", partition: p, offset: 0, maxBytes: MiB })),
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: Math.floor(2.5 * batch),
  });
  assert.deepEqual(total.partitions.map((p) => p.bytes.length), [2 * batch, 0, 0]);
  assert.deepEqual(total.partitions.map((p) => p.nextOffset), [20, 0, 0]);
  assert.deepEqual(total.partitions.map((p) => p.highWatermark), [40, 40, 40]);
  total.release();
  // A total smaller than one batch: the first batch of the answer, whole.
  const small = await broker.fetchMany({
    partitions: [0, 1].map((p) => ({ topic: "t", partition: p, offset: 0, maxBytes: MiB })),
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 10,
  });
  assert.deepEqual(small.partitions.map((p) => p.bytes.length), [batch, 0]);
  small.release();
});

Deno.test("fetch sessions: incremental requests, answers with only what is new, epochs, forgotten partitions", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 3 });
  await produce(broker, "t", 0, 2, 10, "a");
  const full = await broker.fetchMany({
    partitions: [0, 1, 2].map((p) => ({ topic: "t", partition: p, offset: 0, maxBytes: MiB })),
    maxWaitMs: 0,
    minBytes: 1,
    session: { id: 0, epoch: 0 },
  });
  assert.ok(full.session !== null && full.session.id > 0);
  assert.equal(full.session.epoch, 1);
  assert.equal(full.partitions.length, 3, "a full answer names every partition");
  full.release();
  const id = full.session.id;

  // Incremental: only partition 0 moved (the client sends its new offset), data arrives on 2.
  await produce(broker, "t", 2, 1, 10, "c");
  const inc = await broker.fetchMany({
    partitions: [{ topic: "t", partition: 0, offset: 2, maxBytes: MiB }],
    maxWaitMs: 0,
    minBytes: 1,
    session: { id, epoch: 1 },
  });
  assert.deepEqual(inc.session, { id, epoch: 2 });
  assert.deepEqual(inc.partitions.map((p) => `${p.partition}:${values(p.bytes)}`), ["2:c0"]);
  inc.release();

  // Nothing new anywhere: an incremental request with no partitions waits on the session's set.
  const waiting = broker.fetchMany({
    partitions: [{ topic: "t", partition: 2, offset: 1, maxBytes: MiB }],
    maxWaitMs: 60_000,
    minBytes: 1,
    session: { id, epoch: 2 },
  });
  await new Promise((r) => setTimeout(r, 0));
  await produce(broker, "t", 1, 1, 10, "b");
  const woke = await waiting;
  assert.deepEqual(woke.partitions.map((p) => `${p.partition}:${values(p.bytes)}`), ["1:b0"]);
  woke.release();

  // Stale or replayed epoch, unknown id.
  await assert.rejects(
    broker.fetchMany({ partitions: [], maxWaitMs: 0, minBytes: 1, session: { id, epoch: 2 } }),
    (e: Error & { code?: string }) => e.code === "INVALID_FETCH_SESSION_EPOCH",
  );
  await assert.rejects(
    broker.fetchMany({
      partitions: [],
      maxWaitMs: 0,
      minBytes: 1,
      session: { id: id ^ 1, epoch: 1 },
    }),
    (e: Error & { code?: string }) => e.code === "FETCH_SESSION_ID_NOT_FOUND",
  );

  // Forget partition 1: data there no longer shows.
  await produce(broker, "t", 1, 1, 10, "b");
  const forgot = await broker.fetchMany({
    partitions: [],
    forgotten: [{ topic: "t", partition: 1 }],
    maxWaitMs: 0,
    minBytes: 1,
    session: { id, epoch: 3 },
  });
  assert.deepEqual(forgot.partitions, []);
  forgot.release();

  // Epoch -1 closes the session.
  const closing = await broker.fetchMany({
    partitions: [],
    maxWaitMs: 0,
    minBytes: 1,
    session: { id, epoch: -1 },
  });
  assert.equal(closing.session, null);
  assert.equal(broker.fetchSessions.size, 0);
});

Deno.test("fetch sessions: the cache is bounded, the least recently used session goes first", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path, { fetchSessionCacheSlots: 2 });
  await broker.createTopic({ name: "t", partitions: 1 });
  const open = async () => {
    const a = await broker.fetchMany({
      partitions: [{ topic: "t", partition: 0, offset: 0, maxBytes: 100 }],
      maxWaitMs: 0,
      minBytes: 1,
      session: { id: 0, epoch: 0 },
    });
    a.release();
    return a.session!;
  };
  const s1 = await open();
  const s2 = await open();
  // Use s1, so s2 is the least recently used.
  (await broker.fetchMany({ partitions: [], maxWaitMs: 0, minBytes: 1, session: s1 })).release();
  const s3 = await open();
  assert.equal(broker.fetchSessions.size, 2);
  await assert.rejects(
    broker.fetchMany({ partitions: [], maxWaitMs: 0, minBytes: 1, session: s2 }),
    (e: Error & { code?: string }) => e.code === "FETCH_SESSION_ID_NOT_FOUND",
  );
  for (const s of [{ id: s1.id, epoch: 2 }, s3]) {
    (await broker.fetchMany({ partitions: [], maxWaitMs: 0, minBytes: 1, session: s })).release();
  }
});

Deno.test("fetch sessions are fair: a hot partition's backlog does not starve a quiet one", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 2 });
  for (let b = 0; b < 40; b++) await produce(broker, "t", 0, 100, 100, `hot${b}-`);
  await produce(broker, "t", 1, 1, 10, "quiet");
  const batch = (await broker.fetch("t", 0, 0, { maxBytes: 1, maxWaitMs: 0, minBytes: 1 }))
    .bytes.length;
  // The total fits 2 hot batches; the hot partition comes first in the request.
  const offsets = [0, 0];
  let session = { id: 0, epoch: 0 };
  let quietAfter = -1;
  for (let turn = 0; turn < 10 && quietAfter < 0; turn++) {
    const answer = await broker.fetchMany({
      partitions: turn === 0
        ? [0, 1].map((p) => ({ topic: "t", partition: p, offset: 0, maxBytes: MiB }))
        : [{ topic: "t", partition: 0, offset: offsets[0], maxBytes: MiB }],
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 2 * batch,
      session,
    });
    session = answer.session!;
    for (const p of answer.partitions) {
      offsets[p.partition] = p.nextOffset;
      if (p.partition === 1 && p.bytes.length > 0) quietAfter = turn;
    }
    answer.release();
  }
  assert.equal(quietAfter, 1, "the quiet partition's record comes in the second answer");
  assert.equal(offsets[0], 300, "two hot batches, then one beside the quiet partition's");
});

Deno.test("fetchMany for a follower: leader epoch fenced per partition, reads past the high watermark", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 2 });
  await produce(broker, "t", 0, 2);
  const r0 = await broker.replica("t", 0);
  const answer = await broker.fetchMany({
    partitions: [
      { topic: "t", partition: 0, offset: 0, maxBytes: MiB, leaderEpoch: r0.leaderEpoch },
      { topic: "t", partition: 1, offset: 0, maxBytes: MiB, leaderEpoch: r0.leaderEpoch + 5 },
    ],
    maxWaitMs: 0,
    minBytes: 1,
    replicaId: 1,
  });
  const got = byPartition(answer);
  assert.equal(values(got.get("t-0")!.bytes).length, 2);
  assert.equal(got.get("t-1")!.error?.code, "FENCED_LEADER_EPOCH");
  answer.release();
});

Deno.test("fetchMany gives its read buffers back on release", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 4 });
  // ~200 KB a partition: past the arena's own small chunks (read_buffers.ts), so pooled.
  for (let p = 0; p < 4; p++) await produce(broker, "t", p, 200, 1000);
  const idle = broker.readBuffers.idleBytes;
  const answer = await broker.fetchMany({
    partitions: [0, 1, 2, 3].map((p) => ({ topic: "t", partition: p, offset: 0, maxBytes: MiB })),
    maxWaitMs: 0,
    minBytes: 1,
  });
  // Four answers, each intact while lent.
  assert.deepEqual(answer.partitions.map((p) => values(p.bytes).length), [200, 200, 200, 200]);
  assert.deepEqual(values(answer.partitions[2].bytes)[199], "v199");
  answer.release();
  assert.ok(broker.readBuffers.idleBytes > idle, "the chunk went back to the pool");
});

Deno.test("a fetch at the log end gets the append that woke it as written, not the producer's buffer reused afterwards", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 1 });
  const partitions = [{ topic: "t", partition: 0, offset: 0, maxBytes: MiB }];
  const waiting = broker.fetchMany({ partitions, maxWaitMs: 60_000, minBytes: 1 });
  const body = encodeBatch([{ value: enc.encode("a") }, { value: enc.encode("b") }]);
  await broker.produceBatches("t", 0, body, 1);
  // The producer's buffer is reused (as the Kafka listener reuses its frame buffers).
  body.fill(0xee);
  const woken = await waiting;
  // And a fetch from the same offset after it, answered at once.
  const again = await broker.fetchMany({ partitions, maxWaitMs: 0, minBytes: 1 });
  for (const answer of [woken, again]) {
    const [p] = answer.partitions;
    assert.equal(p.error, null);
    assert.deepEqual(values(p.bytes), ["a", "b"]);
    assert.equal(p.nextOffset, 2);
    const [batch] = splitBatches(p.bytes);
    assert.equal(decodeBatch(batch, true).header.baseOffset, 0);
    answer.release();
  }
});

Deno.test("a consumer's long poll on a leader that becomes a follower ends at once with NOT_LEADER_OR_FOLLOWER", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 2 });
  const partitions = [0, 1].map((p) => ({ topic: "t", partition: p, offset: 0, maxBytes: MiB }));
  const replica = await broker.replica("t", 1);
  let settled = false;
  const pending = broker.fetchMany({ partitions, maxWaitMs: 60_000, minBytes: 1 }).finally(() =>
    settled = true
  );
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(replica.waiters.size, 1, "the fetch waits on the partition");
  assert.equal(settled, false);
  // Leadership moves to broker 2 (as the controller's new partition state makes it).
  replica.becomeFollower(replica.leaderEpoch + 1, 2);
  assert.equal(replica.waiters.size, 0, "the wait ended with the leadership, not at maxWaitMs");
  const answer = await pending;
  const got = byPartition(answer);
  assert.equal(got.get("t-1")!.error?.code, "NOT_LEADER_OR_FOLLOWER");
  assert.equal(got.get("t-0")!.error, null);
  answer.release();
});

Deno.test("a repeated fetch (push subscription) keeps one listener per partition while it lives, waits without a deadline, and leaves none once closed", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 2 });
  const repeat = new RepeatedFetch();
  const [r0, r1] = await Promise.all([0, 1].map((p) => broker.replica("t", p)));
  const ask = (offsets: number[]) =>
    broker.fetchMany({
      partitions: offsets.map((offset, partition) => ({
        topic: "t",
        partition,
        offset,
        maxBytes: MiB,
      })),
      maxWaitMs: Infinity,
      minBytes: 1,
      repeat,
    });
  let next = [0, 0];
  for (const round of [0, 1, 2]) {
    const answer = ask(next);
    await new Promise((r) => setTimeout(r, 20));
    // Waiting, on each partition once; an Infinity wait has not timed out.
    assert.deepEqual([r0.waiters.size, r1.waiters.size], [1, 1], `round ${round}`);
    await produce(broker, "t", round % 2, 2, 10, `r${round}-`);
    const got = await answer;
    try {
      const p = byPartition(got).get(`t-${round % 2}`)!;
      assert.deepEqual(values(p.bytes), [`r${round}-0`, `r${round}-1`]);
      next = got.partitions.map((x) => x.nextOffset);
    } finally {
      got.release();
    }
    // Between fetches the listener stays: no listen and unlisten per push.
    assert.deepEqual([r0.waiters.size, r1.waiters.size], [1, 1]);
  }
  assert.deepEqual(next, [4, 2]);
  // Named with fewer partitions: the listener moves with them.
  const one = broker.fetchMany({
    partitions: [{ topic: "t", partition: 1, offset: 2, maxBytes: MiB }],
    maxWaitMs: Infinity,
    minBytes: 1,
    repeat,
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual([r0.waiters.size, r1.waiters.size], [0, 1]);
  // Closing ends the wait with nothing and takes the listener off.
  repeat.close();
  const ended = await one;
  ended.release();
  assert.equal(ended.totalBytes, 0);
  assert.deepEqual([r0.waiters.size, r1.waiters.size], [0, 0]);
  // A closed repeated fetch answers at once.
  const after = await ask([4, 2]);
  after.release();
  assert.deepEqual([r0.waiters.size, r1.waiters.size], [0, 0]);
});

Deno.test("a repeated fetch reads at once while behind (cut by maxBytes, or asked from an earlier offset), and waits once caught up", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 1 });
  for (const round of [0, 1, 2]) await produce(broker, "t", 0, 1, 10, `b${round}-`);
  const repeat = new RepeatedFetch();
  // One batch a fetch: maxBytes 1 lets only the first batch through.
  const ask = (offset: number) =>
    broker.fetchMany({
      partitions: [{ topic: "t", partition: 0, offset, maxBytes: 1 }],
      maxWaitMs: Infinity,
      minBytes: 1,
      repeat,
    });
  const seen: string[] = [];
  let next = 0;
  for (let i = 0; i < 3; i++) {
    // Behind the high watermark: answered without a wait (no append comes meanwhile).
    const got = await ask(next);
    try {
      seen.push(...values(got.partitions[0].bytes));
      next = got.partitions[0].nextOffset;
    } finally {
      got.release();
    }
  }
  assert.deepEqual(seen, ["b0-0", "b1-0", "b2-0"]);
  // Caught up: the next fetch waits for an append.
  let answered = false;
  const waiting = ask(next).then((r) => {
    answered = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(answered, false, "a caught-up repeated fetch waits");
  await produce(broker, "t", 0, 1, 10, "b3-");
  const woke = await waiting;
  try {
    assert.deepEqual(values(woke.partitions[0].bytes), ["b3-0"]);
    assert.equal(woke.partitions[0].nextOffset, 4);
  } finally {
    woke.release();
  }
  // Asked again from an earlier offset (as after a seek): read at once, not a wait.
  const again = await ask(1);
  try {
    assert.deepEqual(values(again.partitions[0].bytes), ["b1-0"]);
  } finally {
    again.release();
  }
  repeat.close();
});
