import assert from "node:assert/strict";
import { Broker } from "../../src/broker/broker.ts";
import type { FetchManyResult } from "../../src/broker/fetch_session.ts";
import { FOLLOWED_APPENDS } from "../../src/broker/tail_reads.ts";
import { decodeBatch, encodeBatch, splitBatches } from "../../src/protocol/record_batch.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

// Reads at the same position share one read of the file (Replica.read): each still gets
// exactly its own answer, valid for as long as it holds it.

const enc = new TextEncoder();
const dec = new TextDecoder();
const MiB = 1024 * 1024;

async function openBroker(path: string): Promise<Broker & AsyncDisposable> {
  const broker = await Broker.open({
    id: 1,
    dataDir: path,
    kv: `${path}/meta.kv`,
    advertisedUrl: "http://broker-1.test",
    log: () => {},
  });
  return Object.assign(broker, { [Symbol.asyncDispose]: () => broker.close() });
}

async function produce(broker: Broker, values: string[], topic = "t"): Promise<void> {
  const batch = encodeBatch(values.map((v) => ({ value: enc.encode(v) })));
  await broker.produceBatches(topic, 0, batch, 1);
}

function values(answer: FetchManyResult): string[] {
  return splitBatches(answer.partitions[0].bytes).flatMap((b) =>
    decodeBatch(b).records.map((r) => dec.decode(r.value!))
  );
}

const poll = (broker: Broker, offset: number, maxBytes: number, topic = "t") =>
  broker.fetchMany({
    partitions: [{ topic, partition: 0, offset, maxBytes }],
    maxWaitMs: 60_000,
    minBytes: 1,
  });

/**
 * A fetch waiting on partition 0 of "t" for more bytes than come, so the broker keeps what
 * is appended for the readers following the log; the returned function ends it.
 */
function waitOnPartition(broker: Broker): () => Promise<void> {
  const abort = new AbortController();
  const waiting = broker.fetchMany({
    partitions: [{ topic: "t", partition: 0, offset: 0, maxBytes: MiB }],
    maxWaitMs: 60_000,
    minBytes: 100 * MiB,
    signal: abort.signal,
  });
  return async () => {
    abort.abort();
    (await waiting).release();
  };
}

Deno.test("long polls woken by one append each get its records, and keep them after others release theirs", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 1 });
  await broker.createTopic({ name: "u", partitions: 1 });
  const others = Array.from({ length: 10 }, (_, i) => `u${i}`.padEnd(20, "."));
  await produce(broker, others, "u");
  await produce(broker, ["a0"]);
  const polls = Array.from({ length: 8 }, (_, i) => poll(broker, 1, i % 2 === 0 ? MiB : 1));
  await produce(broker, ["b1", "b2"]);
  const answers = await Promise.all(polls);
  const copies = answers.map((a) => a.partitions[0].bytes.slice());
  for (const a of answers) {
    assert.deepEqual(values(a), ["b1", "b2"]);
    assert.equal(a.partitions[0].nextOffset, 3);
  }
  // One by one the answers go back, and their read buffers are reused by a read of other
  // records: the answers not given back yet keep their bytes.
  for (let i = 0; i < answers.length; i++) {
    answers[i].release();
    const other = await poll(broker, i, MiB, "u");
    assert.deepEqual(values(other), others);
    other.release();
    for (let k = i + 1; k < answers.length; k++) {
      assert.deepEqual(answers[k].partitions[0].bytes, copies[k], `answer ${k} kept its bytes`);
    }
  }
});

Deno.test("a read with a smaller maxBytes at the same position gets only what fits, the first batch whole", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 1 });
  await produce(broker, ["a0", "a1"]);
  await produce(broker, ["b2"]);
  await produce(broker, ["c3"]);
  const all = await poll(broker, 0, MiB);
  assert.deepEqual(values(all), ["a0", "a1", "b2", "c3"]);
  const first = await poll(broker, 0, 1);
  assert.deepEqual(values(first), ["a0", "a1"], "only the first batch");
  assert.equal(first.partitions[0].nextOffset, 2);
  const twoBatches = all.partitions[0].bytes.length -
    splitBatches(all.partitions[0].bytes)[2].length;
  const two = await poll(broker, 0, twoBatches);
  assert.deepEqual(values(two), ["a0", "a1", "b2"]);
  // After an append the same position reads the new record too.
  await produce(broker, ["d4"]);
  const again = await poll(broker, 0, MiB);
  assert.deepEqual(values(again), ["a0", "a1", "b2", "c3", "d4"]);
  for (const a of [all, first, two, again]) a.release();
});

Deno.test("reads of the tail kept in memory answer as the log file does, at every offset and size", async () => {
  await using dir = await tempDir();
  const asked: { offset: number; maxBytes: number }[] = [];
  const answered: Uint8Array[] = [];
  const sizes = [5, 300, 40, 2000, 20, 9000, 60];
  let count = 0;
  {
    await using broker = await openBroker(dir.path);
    await broker.createTopic({ name: "t", partitions: 1 });
    // A fetch waits on the partition all along (for more bytes than come), so the broker
    // keeps what is appended for the readers following the log.
    const stopWaiting = waitOnPartition(broker);
    for (let i = 0; i < 60; i++) {
      const n = 1 + (i % 3);
      await produce(
        broker,
        Array.from(
          { length: n },
          (_, k) => `r${count + k}`.padEnd(sizes[(i + k) % sizes.length], "."),
        ),
      );
      count += n;
    }
    for (let offset = 0; offset < count; offset += 7) {
      for (const maxBytes of [1, 500, 4000, 20_000, MiB]) {
        const a = await poll(broker, offset, maxBytes);
        asked.push({ offset, maxBytes });
        answered.push(a.partitions[0].bytes.slice());
        assert.equal(a.partitions[0].error, null);
        a.release();
      }
    }
    await stopWaiting();
  }
  // Reopened, the broker keeps nothing in memory: every read comes from the log file.
  await using broker = await openBroker(dir.path);
  for (let i = 0; i < asked.length; i++) {
    const a = await poll(broker, asked[i].offset, asked[i].maxBytes);
    assert.deepEqual(
      answered[i],
      a.partitions[0].bytes,
      `offset ${asked[i].offset}, maxBytes ${asked[i].maxBytes}`,
    );
    a.release();
  }
  const all = await poll(broker, 0, 100 * MiB);
  assert.equal(values(all).length, count);
  all.release();
});

Deno.test("the tail stays in memory while consumers read between appends, shared by reads at any offset", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 1 });
  // Reads that do not wait: no fetch waits on the partition at any append below.
  const read = (offset: number) =>
    broker.fetchMany({
      partitions: [{ topic: "t", partition: 0, offset, maxBytes: MiB }],
      maxWaitMs: 0,
      minBytes: 1,
    });
  (await read(0)).release();
  await produce(broker, ["a0"]);
  await produce(broker, ["b1"]);
  const from0 = await read(0);
  const from1 = await read(1);
  assert.deepEqual(values(from0), ["a0", "b1"]);
  assert.deepEqual(values(from1), ["b1"]);
  assert.equal(
    from0.partitions[0].bytes.buffer,
    from1.partitions[0].bytes.buffer,
    "both read the batches kept in memory, not a copy each",
  );
  from0.release();
  from1.release();
  // Appends with no read among them: no one follows, the log is read from its file.
  for (let i = 0; i < FOLLOWED_APPENDS; i++) await produce(broker, [`c${i + 2}`]);
  await produce(broker, ["d"]);
  await produce(broker, ["e"]);
  const fromD = await read(FOLLOWED_APPENDS + 2);
  const fromE = await read(FOLLOWED_APPENDS + 3);
  assert.deepEqual(values(fromD), ["d", "e"]);
  assert.deepEqual(values(fromE), ["e"]);
  assert.notEqual(fromD.partitions[0].bytes.buffer, fromE.partitions[0].bytes.buffer);
  fromD.release();
  fromE.release();
});

Deno.test("appends written together while a fetch waits all stay in memory: a read gets every record", async () => {
  await using dir = await tempDir();
  await using broker = await openBroker(dir.path);
  await broker.createTopic({ name: "t", partitions: 1 });
  const stopWaiting = waitOnPartition(broker);
  // Written one after the other in one turn, answered a turn later (a fetch waits): the
  // first's answer finds the high watermark past the others already.
  await Promise.all([produce(broker, ["a0"]), produce(broker, ["b1"]), produce(broker, ["c2"])]);
  const read = (offset: number) =>
    broker.fetchMany({
      partitions: [{ topic: "t", partition: 0, offset, maxBytes: MiB }],
      maxWaitMs: 0,
      minBytes: 1,
    });
  const from0 = await read(0);
  const from2 = await read(2);
  assert.deepEqual(values(from0), ["a0", "b1", "c2"]);
  assert.deepEqual(values(from2), ["c2"]);
  assert.equal(
    from0.partitions[0].bytes.buffer,
    from2.partitions[0].bytes.buffer,
    "both read the batches kept in memory, not the log file",
  );
  from0.release();
  from2.release();
  await stopWaiting();
});
