/**
 * An idempotent producer with several batches of one partition in flight, against a fake
 * broker that checks sequence numbers as a leader does: the first batch of a partition goes
 * alone, later ones go up to maxInFlightRequests at once; a batch refused as out of order
 * because it overtook an earlier one is resent after it; if the earlier one failed for
 * good, the later ones fail too. A plain producer keeps one request per partition.
 */
import assert from "node:assert/strict";
import { Rill, RillError } from "../../mod.ts";
import { decodeBatch, readBatchHeader } from "../../src/protocol/record_batch.ts";

interface Post {
  partition: number;
  producerId: number;
  baseSequence: number;
  values: string[];
  /** answers given before it arrived */
  answersBefore: number;
  answer?: string;
}

const dec = new TextDecoder();

/**
 * A fake leader of topic "t" (2 partitions) that appends a batch only if its sequence
 * follows on. `gate(post)` may return a promise the request waits for before it is handled,
 * and `fail(post)` an error answer instead of the append.
 */
function sequencedBroker(opts: {
  gate?: (p: Post) => Promise<void> | undefined;
  fail?: (p: Post) => Response | undefined;
  /** append, then answer with a retriable error as if the answer was lost */
  lose?: (p: Post) => boolean;
} = {}) {
  /** per producer and partition, its last 5 appended batches (for duplicates) */
  const window = new Map<string, { seq: number; count: number; offset: number }[]>();
  const logs: string[][] = [[], []];
  const expected = new Map<string, number>();
  const posts: Post[] = [];
  const inFlight = [0, 0];
  const maxInFlight = [0, 0];
  let nextId = 40;
  let answers = 0;
  const answered: (() => void)[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    if (url.pathname === "/v1/producers") {
      return Response.json({ producerId: nextId++, producerEpoch: 0 });
    }
    if ((init?.method ?? "GET") === "GET") {
      return Response.json({ name: "t", partitions: [{ partition: 0 }, { partition: 1 }] });
    }
    const partition = Number(url.searchParams.get("partition"));
    const bytes = new Uint8Array(init!.body as Uint8Array).slice();
    const h = readBatchHeader(bytes);
    const post: Post = {
      partition,
      producerId: h.producerId,
      baseSequence: h.baseSequence,
      values: decodeBatch(bytes, true).records.map((r) => dec.decode(r.value!)),
      answersBefore: answers,
    };
    posts.push(post);
    maxInFlight[partition] = Math.max(maxInFlight[partition], ++inFlight[partition]);
    try {
      await opts.gate?.(post);
      await new Promise((r) => setTimeout(r, 1));
      const failure = opts.fail?.(post);
      if (failure) {
        post.answer = "failed";
        return failure;
      }
      const k = `${h.producerId}/${partition}`;
      const want = expected.get(k) ?? 0;
      const dup = h.producerId >= 0 &&
        window.get(k)?.find((w) => w.seq === h.baseSequence && w.count === h.recordCount);
      if (dup) {
        post.answer = "duplicate";
        return Response.json({
          partition,
          baseOffset: dup.offset,
          lastOffset: dup.offset + dup.count - 1,
        });
      }
      if (h.producerId >= 0 && h.baseSequence !== want) {
        post.answer = "OUT_OF_ORDER_SEQUENCE_NUMBER";
        return Response.json({
          error: {
            code: "OUT_OF_ORDER_SEQUENCE_NUMBER",
            message: `sent ${h.baseSequence}, expected ${want}`,
            expectedSequence: want,
          },
        }, { status: 400 });
      }
      expected.set(k, want + h.recordCount);
      const base = logs[partition].length;
      logs[partition].push(...post.values);
      const w = window.get(k) ?? [];
      w.push({ seq: h.baseSequence, count: h.recordCount, offset: base });
      if (w.length > 5) w.shift();
      window.set(k, w);
      if (opts.lose?.(post)) {
        post.answer = "lost";
        return Response.json({ error: { code: "REQUEST_TIMED_OUT", message: "lost" } }, {
          status: 503,
        });
      }
      post.answer = "appended";
      return Response.json({ partition, baseOffset: base, lastOffset: base + h.recordCount - 1 });
    } finally {
      inFlight[partition]--;
      answers++;
      for (const f of answered.splice(0)) f();
    }
  };
  /** resolves after the next answer */
  const nextAnswer = () => new Promise<void>((r) => answered.push(r));
  return { fetch, logs, posts, maxInFlight, nextAnswer };
}

const values = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `v${from + i}`);

Deno.test("idempotent producer: several batches of a partition in flight after the first, in order", async () => {
  const b = sequencedBroker();
  const producer = new Rill({ brokers: ["http://fake"], fetch: b.fetch })
    .producer({ batchBytes: 100 });
  const sends = [];
  for (let s = 0; s < 20; s++) {
    sends.push(
      producer.send({
        topic: "t",
        messages: values(s * 10, s * 10 + 10).map((value) => ({ value, partition: 0 })),
      }),
    );
  }
  await Promise.all(sends);
  assert.deepEqual(b.logs[0], values(0, 200), "every record once, in send order");
  assert.equal(b.maxInFlight[0], 5, "up to maxInFlightRequests batches of one partition");
  assert.equal(b.posts.filter((p) => p.answer !== "appended").length, 0);
});

Deno.test("the first batch of a partition goes alone; a plain producer keeps one per partition", async () => {
  // The fake leader is slow to answer the first batch: nothing else of the partition is
  // sent before that answer.
  const b = sequencedBroker({
    gate: (p) => (p.baseSequence === 0 ? new Promise((r) => setTimeout(r, 20)) : undefined),
  });
  const producer = new Rill({ brokers: ["http://fake"], fetch: b.fetch })
    .producer({ batchBytes: 1 });
  await Promise.all(
    values(0, 10).map((value) =>
      producer.send({ topic: "t", messages: [{ value, partition: 0 }] })
    ),
  );
  assert.deepEqual(b.logs[0], values(0, 10));
  assert.equal(b.posts[0].baseSequence, 0);
  assert.ok(b.posts.slice(1).every((p) => p.answersBefore >= 1), "the first batch went alone");
  assert.ok(b.maxInFlight[0] > 1, "later batches went several at a time");

  const plain = sequencedBroker();
  const p2 = new Rill({ brokers: ["http://fake"], fetch: plain.fetch })
    .producer({ batchBytes: 1, idempotent: false });
  await Promise.all(
    values(0, 20).map((value) => p2.send({ topic: "t", messages: [{ value, partition: 0 }] })),
  );
  assert.equal(plain.maxInFlight[0], 1, "a plain producer has one request per partition");
  assert.deepEqual(plain.logs[0], values(0, 20));
});

Deno.test("a batch refused as out of order after overtaking an earlier one is resent after it", async () => {
  const gate: { hold?: Promise<void> } = {};
  const b = sequencedBroker({
    // The batch after the partition's first one waits until a later batch was refused.
    gate: (p) => (p.baseSequence === 1 ? gate.hold : undefined),
  });
  const producer = new Rill({ brokers: ["http://fake"], fetch: b.fetch })
    .producer({ batchBytes: 1 });
  await producer.send({ topic: "t", messages: [{ value: "v0", partition: 0 }] });
  gate.hold = new Promise<void>((resolve) => {
    // released once some later batch got its answer (out of order)
    const wait = () =>
      b.nextAnswer().then(() => {
        if (b.posts.some((p) => p.answer === "OUT_OF_ORDER_SEQUENCE_NUMBER")) resolve();
        else wait();
      });
    wait();
  });
  const meta = await Promise.all(
    values(1, 6).map((value) => producer.send({ topic: "t", messages: [{ value, partition: 0 }] })),
  );
  assert.ok(b.posts.some((p) => p.answer === "OUT_OF_ORDER_SEQUENCE_NUMBER"), "a batch overtook");
  assert.deepEqual(b.logs[0], values(0, 6), "every record once, in send order");
  assert.deepEqual(meta.map(([m]) => m.offset), [1, 2, 3, 4, 5]);
  assert.equal(new Set(b.posts.map((p) => p.producerId)).size, 1, "no new identity");
});

Deno.test("when an earlier batch fails for good, the batches after it fail too and the producer starts over", async () => {
  const gate: { hold?: Promise<void> } = {};
  const b = sequencedBroker({
    gate: (p) => (p.baseSequence === 1 && p.producerId === 40 ? gate.hold : undefined),
    fail: (p) =>
      p.baseSequence === 1 && p.producerId === 40
        ? Response.json({ error: { code: "MESSAGE_TOO_LARGE", message: "too big" } }, {
          status: 413,
        })
        : undefined,
  });
  const producer = new Rill({ brokers: ["http://fake"], fetch: b.fetch })
    .producer({ batchBytes: 1 });
  await producer.send({ topic: "t", messages: [{ value: "v0", partition: 0 }] });
  gate.hold = b.nextAnswer(); // the big batch waits until the one after it was refused
  const big = producer.send({ topic: "t", messages: [{ value: "big", partition: 0 }] });
  const after = producer.send({ topic: "t", messages: [{ value: "after", partition: 0 }] });
  await assert.rejects(big, (e) => e instanceof RillError && e.code === "MESSAGE_TOO_LARGE");
  await assert.rejects(
    after,
    (e) =>
      e instanceof RillError && e.code === "OUT_OF_ORDER_SEQUENCE_NUMBER" &&
      /earlier batch .* failed for good/.test(e.message),
  );
  const [m] = await producer.send({ topic: "t", messages: [{ value: "next", partition: 0 }] });
  assert.deepEqual(b.logs[0], ["v0", "next"], "nothing after the failed batch was written");
  assert.equal(m.offset, 1);
  assert.deepEqual(
    b.posts.filter((p) => p.answer === "appended").map((p) => [p.producerId, p.baseSequence]),
    [[40, 0], [41, 0]],
    "the producer took a new identity",
  );
});

Deno.test("batches acknowledged after an unresolved one count against the limit, so its retry is still a duplicate", async () => {
  let lost = false;
  const b = sequencedBroker({
    lose: (p) => p.baseSequence === 1 && !lost && (lost = true),
  });
  const producer = new Rill({
    brokers: ["http://fake"],
    fetch: b.fetch,
    retry: { retries: 5, initialRetryTime: 30 },
  }).producer({ batchBytes: 1 });
  await producer.send({ topic: "t", messages: [{ value: "v0", partition: 0 }] });
  const meta = await Promise.all(
    values(1, 30).map((value) =>
      producer.send({ topic: "t", messages: [{ value, partition: 0 }] })
    ),
  );
  assert.deepEqual(meta.map(([m]) => m.offset), values(1, 30).map((_, i) => i + 1));
  assert.deepEqual(b.logs[0], values(0, 30), "every record once, in send order");
  const retry = b.posts.findIndex((p) => p.answer === "duplicate");
  assert.ok(retry > 0, "the batch whose answer was lost was retried and found a duplicate");
  const before = b.posts.slice(0, retry).map((p) => p.baseSequence);
  assert.ok(Math.max(...before) <= 5, `at most 4 batches after it were sent: ${before}`);
});

Deno.test("maxInFlightRequests above 5 is refused for an idempotent producer", () => {
  const rill = new Rill({ brokers: ["http://fake"], fetch: sequencedBroker().fetch });
  assert.throws(
    () => rill.producer({ maxInFlightRequests: 6 }),
    (e) => e instanceof RangeError && /at most 5 for an idempotent producer/.test(e.message),
  );
  rill.producer({ maxInFlightRequests: 6, idempotent: false });
  rill.producer({ maxInFlightRequests: 6, acks: 0 });
  rill.producer({ maxInFlightRequests: 5 });
});
