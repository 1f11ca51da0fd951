/**
 * An idempotent producer's batch whose attempt overtook its predecessor's, refused by a real
 * broker as out of order, the refusal reaching the producer only after the predecessor was
 * acknowledged (nothing earlier left unresolved): the batch is sent again and lands, every
 * send resolves with its offset, each record is stored once, in order, and the producer keeps
 * its identity. Made to happen every run: over WebSocket by a relay that drops the first
 * attempts of three batches, cuts the connection and orders the resends' frames and answers
 * (the third's refusal, handled while the second is unresolved, waits for it); over HTTP
 * (requests on separate connections) by a proxy that orders the requests and answers. With
 * 7a0092c's rule taken out, both fail every run.
 */
import assert from "node:assert/strict";
import { Rill } from "../../mod.ts";
import { decodeFrame } from "../../src/protocol/ws_frames.ts";
import {
  decodeProducedFrame,
  decodeProduceFrame,
  startsWith,
  WS_PRODUCE,
  WS_PRODUCED,
} from "../../src/protocol/ws_produce_frames.ts";
import { readBatchHeader } from "../../src/protocol/record_batch.ts";
import { readPartition } from "../_helpers/read_records.ts";
import { type RelayFrame, serveWsRelay } from "../_helpers/ws_relay.ts";
import { serveBroker } from "../ws/_served.ts";

/** A produce frame's request id and its batch's base sequence, or null for other frames. */
function produceOf(payload: Uint8Array): { id: number; seq: number } | null {
  if (startsWith(payload, WS_PRODUCE)) {
    const f = decodeProduceFrame(payload);
    return { id: f.id, seq: readBatchHeader(f.payload).baseSequence };
  }
  if (payload[0] === 0xff) return null;
  const { header, payload: batch } = decodeFrame(payload);
  if (header.op !== "produce") return null;
  return { id: header.id as number, seq: readBatchHeader(batch).baseSequence };
}

/** An answer frame's request id and error code (null when it is not an error). */
function answerOf(payload: Uint8Array): { id: number; error: string | null } | null {
  if (startsWith(payload, WS_PRODUCED)) return { id: decodeProducedFrame(payload).id, error: null };
  if (payload[0] === 0xff) return null;
  const { header } = decodeFrame(payload);
  if (header.op === "error") {
    return { id: header.id as number, error: (header.error as { code: string }).code };
  }
  return header.op === "produced" ? { id: header.id as number, error: null } : null;
}

async function checkStored(url: string, metas: { offset: number }[][]) {
  const n = metas.length;
  assert.deepEqual(metas.map(([m]) => m.offset), [...Array(n).keys()], "each send's offset");
  const values = (await readPartition(url, "t", 0)).map((r) => r.value);
  assert.deepEqual(values, [...Array(n).keys()].map((i) => `v${i}`), "each record once, in order");
}

Deno.test("ws producer: resends that overtook their predecessor's after a broken connection are sent again once it is acknowledged", async () => {
  await using s = await serveBroker();
  await s.topic("t", 1);
  // Sequences 1 to 3 in flight when the connection breaks; after the cut, the resends of 2
  // and 3 reach the broker before 1's.
  const sent = [1, 2, 3].map(() => Promise.withResolvers<void>());
  const refused = [2, 3].map(() => Promise.withResolvers<string>());
  const releaseRefusals = Promise.withResolvers<void>();
  let firstConn = -1;
  /** per sequence, the request id of its first resend (on the connection after the cut) */
  const ids = new Map<number, number>();
  const resends = [0, 0, 0, 0];
  const rule = (f: RelayFrame) => {
    if (f.opcode !== 2) return "pass";
    if (f.direction === "toBroker") {
      const p = produceOf(f.payload);
      if (p === null) return "pass";
      if (p.seq === 0) {
        firstConn = f.conn;
        return "pass";
      }
      if (f.conn === firstConn) {
        // The first attempts of sequences 1 to 3 never reach the broker; then the cut.
        sent[p.seq - 1].resolve();
        return "drop";
      }
      if (ids.has(p.seq)) {
        resends[p.seq]++;
        return "pass";
      }
      ids.set(p.seq, p.id);
      // Sequence 1's resend reaches the broker only once it refused 2 and 3 (it holds each
      // a while first, waiting for sequence 1).
      return p.seq === 1 ? Promise.all(refused.map((r) => r.promise)) : "pass";
    }
    const a = answerOf(f.payload);
    if (a === null || a.error === null || f.conn === firstConn) return "pass";
    const seq = a.id === ids.get(2) ? 2 : a.id === ids.get(3) ? 3 : -1;
    if (seq < 0) return "pass";
    refused[seq - 2].resolve(a.error);
    // The refusals reach the producer after sequence 1's acknowledgement.
    return releaseRefusals.promise;
  };
  await using relay = serveWsRelay(Number(new URL(s.url).port), rule);
  const producer = new Rill({ brokers: [relay.url], transport: "ws" }).producer();
  await producer.connect();
  const identity = await producer.identity();
  // A first batch acknowledged: then several batches of the partition go in flight.
  const sends = [producer.send({ topic: "t", messages: [{ value: "v0", partition: 0 }] })];
  await sends[0];
  for (let i = 1; i <= 3; i++) {
    sends.push(producer.send({ topic: "t", messages: [{ value: `v${i}`, partition: 0 }] }));
    await sent[i - 1].promise; // the next goes in a batch of its own
  }
  relay.cut();
  await sends[1];
  for (const r of refused) assert.equal(await r.promise, "OUT_OF_ORDER_SEQUENCE_NUMBER");
  releaseRefusals.resolve();
  const metas = await Promise.all(sends);
  assert.deepEqual(resends, [0, 0, 1, 1], "sequences 2 and 3 sent once more after their refusal");
  assert.deepEqual(await producer.identity(), identity, "the same producer id and epoch");
  await checkStored(s.url, metas);
  await producer.disconnect();
});

Deno.test("http producer: a request that overtook its predecessor's is sent again once that one is acknowledged", async () => {
  await using s = await serveBroker();
  await s.topic("t", 1);
  const arrived = { v1: Promise.withResolvers<void>(), v2: Promise.withResolvers<void>() };
  const refused = Promise.withResolvers<string>();
  const releaseRefusal = Promise.withResolvers<void>();
  const attempts = [0, 0, 0];
  // A proxy: sequence 1's request reaches the broker only once it refused sequence 2's,
  // whose refusal reaches the producer only once sequence 1 was acknowledged.
  const proxy = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const body = req.body ? new Uint8Array(await req.arrayBuffer()) : undefined;
    const seq = req.method === "POST" && url.pathname.endsWith("/records")
      ? readBatchHeader(body!).baseSequence
      : -1;
    const attempt = seq >= 0 ? attempts[seq]++ : -1;
    if (seq === 1 && attempt === 0) {
      arrived.v1.resolve();
      await refused.promise;
    }
    if (seq === 2 && attempt === 0) arrived.v2.resolve();
    const res = await fetch(s.url + url.pathname + url.search, {
      method: req.method,
      headers: req.headers,
      body,
    });
    const answer = res.status === 204 ? null : new Uint8Array(await res.arrayBuffer());
    if (seq === 2 && attempt === 0 && res.status !== 200 && res.status !== 204) {
      refused.resolve(JSON.parse(new TextDecoder().decode(answer!)).error.code);
      await releaseRefusal.promise;
    }
    return new Response(answer, { status: res.status, headers: res.headers });
  });
  try {
    const producer = new Rill({
      brokers: [`http://127.0.0.1:${proxy.addr.port}`],
      transport: "http",
    })
      .producer();
    await producer.connect();
    const identity = await producer.identity();
    const m0 = await producer.send({ topic: "t", messages: [{ value: "v0", partition: 0 }] });
    const s1 = producer.send({ topic: "t", messages: [{ value: "v1", partition: 0 }] });
    await arrived.v1.promise; // v2 goes in a batch of its own
    const s2 = producer.send({ topic: "t", messages: [{ value: "v2", partition: 0 }] });
    await arrived.v2.promise;
    const m1 = await s1;
    assert.equal(await refused.promise, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    releaseRefusal.resolve();
    const m2 = await s2;
    assert.deepEqual(attempts, [1, 1, 2], "sequence 2 sent once more after its refusal");
    assert.deepEqual(await producer.identity(), identity, "the same producer id and epoch");
    await checkStored(s.url, [m0, m1, m2]);
    await producer.disconnect();
  } finally {
    await proxy.shutdown();
  }
});
