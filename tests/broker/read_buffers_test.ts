/**
 * Fetch answers are read into pooled buffers (src/broker/read_buffers.ts): a buffer goes
 * back to the pool once its answer is made, and must never be shared by two requests at
 * once. The pool's own rules, then concurrent raw fetches through the app (consumers and
 * followers) checked byte for byte against the log.
 */
import assert from "node:assert/strict";
import {
  MAX_IDLE_BYTES,
  MAX_IDLE_SMALL_BYTES,
  MAX_POOLED_BYTES,
  ReadArena,
  ReadBufferPool,
} from "../../src/broker/read_buffers.ts";
import { encodeBatch, readBatchHeader, splitBatches } from "../../src/protocol/record_batch.ts";
import { openTestBroker } from "../http/_app.ts";

Deno.test("ReadBufferPool lends one buffer per request, reuses it after release, keeps idle bytes bounded", () => {
  const pool = new ReadBufferPool();
  const a = pool.lend();
  const b = pool.lend();
  const bufA = a.alloc(1000);
  assert.ok(bufA.length >= 1000);
  assert.equal(a.alloc(500), bufA, "a second read of one request gets the same buffer");
  const bufB = b.alloc(1000);
  assert.notEqual(bufB.buffer, bufA.buffer, "two requests in flight never share a buffer");
  const grown = a.alloc(bufA.length + 1);
  assert.ok(grown.length > bufA.length, "a larger read gets a larger buffer");
  a.release();
  a.release(); // twice is harmless
  b.release();
  const c = pool.lend();
  const reused = c.alloc(1000);
  assert.ok(reused === bufA || reused === bufB, "a released buffer is lent again");
  c.release();
  const big = pool.lend();
  const own = big.alloc(MAX_POOLED_BYTES + 1);
  big.release();
  assert.equal(own.length, MAX_POOLED_BYTES + 1);
  const idle = pool.idleBytes;
  const many = Array.from({ length: 8 }, () => pool.lend());
  for (const l of many) l.alloc(MAX_POOLED_BYTES);
  for (const l of many) l.release();
  assert.ok(pool.idleBytes <= MAX_IDLE_BYTES, `idle ${pool.idleBytes} bytes`);
  assert.ok(pool.idleBytes >= idle);
});

Deno.test("ReadBufferPool: when its idle buffers are at the bound, a larger one given back takes the place of smaller ones", () => {
  const pool = new ReadBufferPool();
  // The pool full of small buffers.
  const small = Array.from({ length: 2 * MAX_IDLE_BYTES / (256 * 1024) }, () => pool.lend());
  for (const l of small) l.alloc(1);
  for (const l of small) l.release();
  assert.equal(pool.idleBytes, MAX_IDLE_BYTES);
  // A large read takes a new buffer; given back, it is kept in place of small ones and lent
  // to the next large read.
  const large = pool.lend();
  const buf = large.alloc(1024 * 1024);
  large.release();
  assert.ok(pool.idleBytes <= MAX_IDLE_BYTES);
  const next = pool.lend();
  assert.equal(next.alloc(1024 * 1024), buf, "the large buffer is reused");
  next.release();
});

Deno.test("concurrent raw fetches of consumers and followers each get their own bytes", async () => {
  await using t = await openTestBroker();
  assert.equal((await t.call("POST", "/v1/topics", { name: "pool", partitions: 2 })).status, 201);
  const enc = new TextEncoder();
  const stored: Uint8Array[][] = [[], []];
  for (let i = 0; i < 40; i++) {
    const p = i % 2;
    const value = enc.encode(`p${p}-${i}-`.padEnd(2000 + i * 37, String.fromCharCode(97 + i % 26)));
    const batch = encodeBatch([{ key: null, value }, { key: null, value }]);
    const res = await t.call("POST", `/v1/topics/pool/records?acks=1&partition=${p}`, batch, {
      "content-type": "application/vnd.rill.batch",
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    stored[p].push(batch);
  }
  const requests = Array.from({ length: 60 }, (_, i) => {
    const p = i % 2;
    const offset = (i * 7) % 40;
    const follower = i % 3 === 0;
    const q = `offset=${offset}&maxBytes=${5000 + (i % 5) * 3000}` +
      (follower ? "&replicaId=1&leaderEpoch=0" : "");
    return {
      p,
      offset,
      run: () =>
        t.app.request(`/v1/topics/pool/partitions/${p}/records?${q}`, {
          headers: { accept: "application/vnd.rill.batch" },
        }),
    };
  });
  const answers = await Promise.all(requests.map((r) => r.run()));
  for (const [i, res] of answers.entries()) {
    const { p, offset } = requests[i];
    assert.equal(res.status, 200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const batches = splitBatches(bytes);
    assert.ok(batches.length > 0, `request ${i} got batches`);
    for (const b of batches) {
      const h = readBatchHeader(b);
      const k = h.baseOffset / 2; // two records a batch
      assert.ok(h.baseOffset + 1 >= offset);
      // The batch as sent, from its magic byte on (the broker sets the base offset and the
      // partition leader epoch before it).
      assert.deepEqual(b.subarray(16), stored[p][k].subarray(16), `request ${i}, batch ${k}`);
    }
  }
});

Deno.test("large raw fetches served by Deno.serve keep their bytes until they are delivered", async () => {
  // A large answer is a stream of its pooled buffer (routes/records.ts lentBatchAnswer),
  // lent until the answer has gone out. One 16 MiB answer is held unread while 30 other
  // fetches (consumers' and a follower's, 1 byte to 3 MiB) run through the same pool and
  // finish; then every answer is checked byte for byte against what was produced.
  await using t = await openTestBroker();
  assert.equal((await t.call("POST", "/v1/topics", { name: "held", partitions: 2 })).status, 201);
  const stored: Uint8Array[][] = [[], []];
  for (let i = 0; i < 100; i++) {
    const p = i < 80 ? 0 : 1;
    const value = new Uint8Array(256 * 1024).fill(i + 1);
    const batch = encodeBatch([{ key: null, value }]);
    const res = await t.call("POST", `/v1/topics/held/records?acks=1&partition=${p}`, batch, {
      "content-type": "application/vnd.rill.batch",
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    stored[p].push(batch);
  }
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req, info) => t.app.fetch(req, info),
  );
  const base = `http://127.0.0.1:${server.addr.port}/v1/topics/held/partitions`;
  const get = (p: number, q: string) =>
    fetch(`${base}/${p}/records?${q}`, { headers: { accept: "application/vnd.rill.batch" } });
  const check = async (res: Response, p: number, first: number, label: string) => {
    assert.equal(res.status, 200, label);
    const batches = splitBatches(new Uint8Array(await res.arrayBuffer()));
    assert.ok(batches.length > 0, label);
    for (const [j, b] of batches.entries()) {
      assert.equal(readBatchHeader(b).baseOffset, first + j, label);
      assert.deepEqual(b.subarray(16), stored[p][first + j].subarray(16), `${label}, batch ${j}`);
    }
    return batches.length;
  };
  const held = await get(0, `offset=0&maxBytes=${16 * 1024 * 1024}`);
  try {
    const others = Array.from({ length: 30 }, async (_, i) => {
      const p = i % 2;
      const offset = p === 0 ? 64 + (i % 16) : i % 20;
      const replica = i % 3 === 0 ? "&replicaId=1&leaderEpoch=0" : "";
      await check(
        await get(p, `offset=${offset}&maxBytes=${1 + (i % 4) * 1024 * 1024}${replica}`),
        p,
        offset,
        `fetch ${i}`,
      );
    });
    await Promise.all(others);
    assert.ok(await check(held, 0, 0, "the held answer") >= 60);
  } finally {
    // On a failure, let the server finish (its shutdown waits for the held answer).
    if (!held.bodyUsed) await held.body?.cancel();
  }
});

Deno.test("ReadArena gives distinct regions until reset, takes them back on rollback, returns its chunks on release", () => {
  const pool = new ReadBufferPool();
  const arena = new ReadArena(pool);
  const a = arena.alloc(100);
  const b = arena.alloc(200);
  a.fill(1);
  b.fill(2);
  assert.ok(a.every((x) => x === 1), "b did not overwrite a");
  assert.ok(
    a.buffer.byteLength <= 64 * 1024,
    "small reads take a small chunk (a long poll woken by one record), not a pooled 1 MiB",
  );
  const mark = arena.mark();
  const dropped = arena.alloc(300);
  arena.rollback(mark);
  const c = arena.alloc(300);
  assert.equal(c.byteOffset, dropped.byteOffset, "a rolled back region is given again");
  const big = arena.alloc(3 * 1024 * 1024);
  assert.equal(big.length, 3 * 1024 * 1024, "a read larger than a chunk gets a chunk its size");
  arena.reset();
  assert.equal(arena.alloc(10).byteOffset, a.byteOffset, "reset starts over in the first chunk");
  assert.equal(pool.idleBytes, 0);
  arena.release();
  assert.ok(pool.idleBytes >= 4 * 1024 * 1024, "the pooled chunk went back");
});

Deno.test("ReadArena's small chunks are reused by the next arena once released, never while held", () => {
  const pool = new ReadBufferPool();
  const first = new ReadArena(pool);
  const a = first.alloc(100);
  const held = new ReadArena(pool);
  const b = held.alloc(100);
  assert.notEqual(b.buffer, a.buffer, "two arenas in flight never share a chunk");
  first.release();
  first.release(); // twice is harmless: the chunk is not given back twice
  const next = new ReadArena(pool);
  const c = next.alloc(100);
  assert.equal(c.buffer, a.buffer, "a released small chunk serves the next long poll");
  const other = new ReadArena(pool);
  assert.notEqual(other.alloc(100).buffer, c.buffer, "given once, lent once");
  // Idle small chunks are bounded.
  const many = Array.from({ length: 200 }, () => {
    const arena = new ReadArena(pool);
    arena.alloc(60 * 1024);
    return arena;
  });
  for (const arena of many) arena.release();
  assert.ok(pool.idleSmallBytes > 0);
  assert.ok(pool.idleSmallBytes <= MAX_IDLE_SMALL_BYTES, `${pool.idleSmallBytes} idle`);
  held.release();
  next.release();
});

Deno.test("ReadArena: a read past the small chunks takes a buffer about its size, reused once released", () => {
  const pool = new ReadBufferPool();
  const arena = new ReadArena(pool);
  const r = arena.alloc(200 * 1024);
  assert.equal(
    r.buffer.byteLength,
    256 * 1024,
    "a consumer 200 KiB behind takes 256 KiB, not 1 MiB",
  );
  arena.release();
  const next = new ReadArena(pool);
  assert.equal(next.alloc(150 * 1024).buffer, r.buffer, "the released buffer serves the next read");
  next.release();
});
