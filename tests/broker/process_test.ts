/**
 * The broker as a real process: graceful stop on SIGTERM, and no acknowledged record lost
 * when it is killed with SIGKILL in the middle of a produce stream.
 */
import assert from "node:assert/strict";
import { encodeBatch } from "../../src/protocol/mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { tempDir } from "../_helpers/temp_dir.ts";

const enc = new TextEncoder();

async function post(url: string, body: unknown): Promise<Response> {
  return await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

Deno.test("SIGTERM: the broker stops gracefully, exits 0, and restarts with a clean recovery", async () => {
  await using dir = await tempDir();
  const data = `${dir.path}/data`;
  const broker = await startBroker({ dataDir: data });
  try {
    assert.equal((await post(`${broker.url}/v1/topics`, { name: "t", partitions: 2 })).status, 201);
    const res = await post(`${broker.url}/v1/topics/t/records?acks=1`, {
      records: [{ value: "a", partition: 0 }, { value: "b", partition: 1 }],
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    // An open SSE stream must not hold the shutdown up (long polls: see long_poll_test.ts).
    const sse = await fetch(`${broker.url}/v1/topics/t/partitions/0/records?offset=1`, {
      headers: { accept: "text/event-stream" },
    });
    const streamEnded = sse.body!.pipeTo(new WritableStream()).then(() => "ended", () => "ended");
    const status = await broker.stop();
    assert.equal(await streamEnded, "ended");
    assert.equal(status.code, 0);
    assert.match(broker.stderr(), /SIGTERM received/);
    assert.match(broker.stderr(), /stopped/);
  } finally {
    await broker[Symbol.asyncDispose]();
  }
  await using again = await startBroker({ dataDir: data });
  assert.match(again.stderr(), /opened 2 partition log\(s\): 2 clean, 0 recovered/);
  const res = await fetch(`${again.url}/v1/topics/t/partitions/1/records?offset=0`);
  assert.deepEqual((await res.json()).records.map((r: { value: string }) => r.value), ["b"]);
  assert.equal((await again.stop()).code, 0);
});

Deno.test("SIGKILL during a produce stream: every acknowledged record reads back, no gaps, no duplicates", async () => {
  await using dir = await tempDir();
  const data = `${dir.path}/data`;
  const first = await startBroker({ dataDir: data });
  type Acked = { partition: number; offset: number; key: string; value: string };
  const acked: Acked[] = [];
  try {
    const created = await post(`${first.url}/v1/topics`, {
      name: "durable",
      partitions: 2,
      configs: { "flush.messages": "1" },
    });
    assert.equal(created.status, 201);
    await created.body?.cancel();

    let stop = false;
    let seq = 0;
    // Four producers in parallel, alternating JSON and raw batch bodies, acks=1.
    const producer = async (worker: number) => {
      for (let i = 0; !stop && i < 100_000; i++) {
        const partition = (worker + i) % 2;
        const n = 1 + (i % 5);
        const recs = Array.from({ length: n }, () => {
          const id = seq++;
          return { key: `k${id}`, value: `value-${id}-${"x".repeat(id % 50)}` };
        });
        try {
          let offsets: number[];
          if (i % 2 === 0) {
            const res = await post(`${first.url}/v1/topics/durable/records?acks=1`, {
              records: recs.map((r) => ({ ...r, partition })),
            });
            if (res.status !== 200) throw new Error(`status ${res.status}`);
            offsets = (await res.json()).offsets.map((o: { offset: number }) => o.offset);
          } else {
            const batch = encodeBatch(
              recs.map((r) => ({ key: enc.encode(r.key), value: enc.encode(r.value) })),
            );
            const res = await fetch(
              `${first.url}/v1/topics/durable/records?acks=1&partition=${partition}`,
              {
                method: "POST",
                headers: { "content-type": "application/vnd.rill.batch" },
                body: batch as Uint8Array<ArrayBuffer>,
              },
            );
            if (res.status !== 200) throw new Error(`status ${res.status}`);
            const body = await res.json();
            offsets = recs.map((_, j) => body.baseOffset + j);
          }
          recs.forEach((r, j) => acked.push({ partition, offset: offsets[j], ...r }));
        } catch {
          return; // the broker died under us: this request is not acknowledged
        }
      }
    };
    const workers = [0, 1, 2, 3].map(producer);
    // Kill once enough is acknowledged, while requests are still in flight.
    for (let i = 0; i < 100_000 && acked.length < 400; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    first.kill("SIGKILL");
    await first.exited;
    stop = true;
    await Promise.all(workers);
  } finally {
    await first[Symbol.asyncDispose]();
  }
  assert.ok(acked.length >= 400, `acknowledged ${acked.length}`);

  await using second = await startBroker({ dataDir: data });
  assert.match(second.stderr(), /0 clean, 2 recovered/, "the kill left the logs unclean");
  for (const partition of [0, 1]) {
    const log: { offset: number; key: string; value: string }[] = [];
    let offset = 0;
    for (let i = 0; i < 10_000; i++) {
      const res = await fetch(
        `${second.url}/v1/topics/durable/partitions/${partition}/records?offset=${offset}`,
      );
      const body = await res.json();
      log.push(...body.records);
      if (body.nextOffset >= body.highWatermark) break;
      offset = body.nextOffset;
    }
    log.forEach((r, i) => assert.equal(r.offset, i, `partition ${partition}: no gap at ${i}`));
    const keys = new Set(log.map((r) => r.key));
    assert.equal(keys.size, log.length, `partition ${partition}: no duplicates`);
    for (const a of acked.filter((a) => a.partition === partition)) {
      const r = log[a.offset];
      assert.ok(r, `acknowledged offset ${a.offset} of partition ${partition} is there`);
      assert.equal(r.key, a.key);
      assert.equal(r.value, a.value);
    }
  }
  assert.equal((await second.stop()).code, 0);
});

Deno.test("a second broker process on the same data directory is refused", async () => {
  await using dir = await tempDir();
  await using first = await startBroker({ dataDir: `${dir.path}/data` });
  await assert.rejects(
    () => startBroker({ dataDir: `${dir.path}/data`, id: 1 }),
    /in use by another broker process/,
  );
  // The first one is unharmed.
  assert.equal((await fetch(`${first.url}/healthz`).then((r) => r.json())).status, "ok");
});
