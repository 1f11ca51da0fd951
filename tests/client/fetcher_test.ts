/**
 * The fetcher's handling of what a broker may answer, with a fake `fetch`: the JSON format
 * (curl/browser) as a fallback, CRC damage, and offsets beyond 2^53.
 */
import assert from "node:assert/strict";
import { fetchPartition } from "../../src/client/fetcher.ts";
import { Transport } from "../../src/client/transport.ts";
import { RillError } from "../../src/protocol/errors.ts";
import { encodeBatch, setBaseOffset } from "../../src/protocol/record_batch.ts";

const opts = { maxBytes: 1 << 20, maxWaitMs: 0, minBytes: 1 };
const transport = (answer: () => Response) =>
  new Transport({ brokers: ["http://broker"], fetch: () => Promise.resolve(answer()) });

Deno.test("fetchPartition understands the JSON format, base64 included", async () => {
  const t = transport(() =>
    Response.json({
      records: [
        { offset: 4, timestamp: 10, key: null, value: "skipped", headers: {} },
        {
          offset: 5,
          timestamp: 11,
          key: "k",
          value: "AP8=",
          valueEncoding: "base64",
          headers: { h: "v" },
        },
      ],
      nextOffset: 6,
      highWatermark: 9,
      logStartOffset: 0,
    })
  );
  const r = await fetchPartition(t, "t", 0, 5, opts);
  assert.deepEqual([r.nextOffset, r.highWatermark, r.logStartOffset], [6, 9, 0]);
  assert.equal(r.messages.length, 1);
  const [m] = r.messages;
  assert.deepEqual([m.offset, m.timestamp, m.keyString(), m.headerString("h")], [5, 11, "k", "v"]);
  assert.deepEqual(m.value, new Uint8Array([0, 255]));
});

Deno.test("fetchPartition reads raw batches, skipping records below the offset asked for", async () => {
  const batch = encodeBatch([0, 1, 2].map((i) => ({ value: new TextEncoder().encode(`v${i}`) })));
  setBaseOffset(batch, 10);
  const t = transport(() =>
    new Response(batch as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": "application/vnd.rill.batch",
        "rill-next-offset": "13",
        "rill-high-watermark": "13",
        "rill-log-start-offset": "10",
      },
    })
  );
  const r = await fetchPartition(t, "t", 0, 11, opts);
  assert.deepEqual(r.messages.map((m) => [m.offset, m.valueString()]), [[11, "v1"], [12, "v2"]]);
  assert.equal(r.nextOffset, 13);
});

Deno.test("fetchPartition refuses a damaged batch and an offset beyond 2^53", async () => {
  const batch = encodeBatch([{ value: new Uint8Array([1, 2, 3]) }]);
  batch[batch.length - 2] ^= 0xff;
  const headers = (next: string) => ({
    "content-type": "application/vnd.rill.batch",
    "rill-next-offset": next,
    "rill-high-watermark": "1",
    "rill-log-start-offset": "0",
  });
  await assert.rejects(
    fetchPartition(
      transport(() => new Response(batch as Uint8Array<ArrayBuffer>, { headers: headers("1") })),
      "t",
      0,
      0,
      opts,
    ),
    (e: unknown) => e instanceof RillError && e.code === "CORRUPT_MESSAGE" && /CRC/.test(e.message),
  );
  await assert.rejects(
    fetchPartition(
      transport(() => new Response(new Uint8Array(0), { headers: headers("18014398509481984") })),
      "t",
      0,
      0,
      opts,
    ),
    /2\^53/,
  );
});

Deno.test("Transport turns error bodies into RillErrors and network failures into retriable ones", async () => {
  const t = transport(() =>
    Response.json(
      {
        error: {
          code: "OFFSET_OUT_OF_RANGE",
          message: "out",
          retriable: false,
          logStartOffset: 3,
          highWatermark: 7,
        },
      },
      { status: 416 },
    )
  );
  await assert.rejects(
    fetchPartition(t, "t", 0, 0, opts),
    (e: unknown) =>
      e instanceof RillError && e.code === "OFFSET_OUT_OF_RANGE" &&
      e.details.logStartOffset === 3 &&
      e.details.highWatermark === 7,
  );
  const down = new Transport({
    brokers: ["http://a", "http://b"],
    fetch: () => Promise.reject(new TypeError("connection refused")),
  });
  await assert.rejects(
    down.request("GET", "/healthz"),
    (e: unknown) => e instanceof RillError && e.code === "BROKER_NOT_AVAILABLE" && e.retriable,
  );
  assert.equal(down.broker, "http://b", "moves to the next bootstrap broker");
});

/** A batch response whose body arrives in `chunk`-byte pieces, with a Content-Length. */
function chunkedAnswer(
  bytes: Uint8Array,
  chunk: number,
  opts: { bytesType: boolean; length?: number },
) {
  let at = 0;
  const source = {
    pull(c: ReadableStreamDefaultController<Uint8Array> | ReadableByteStreamController) {
      if (at >= bytes.length) {
        c.close();
        // a byte source ends a pending BYOB read so (as fetch bodies do)
        if ("byobRequest" in c) c.byobRequest?.respond(0);
        return;
      }
      c.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  };
  const body = opts.bytesType
    ? new ReadableStream({ type: "bytes", ...source } as UnderlyingByteSource)
    : new ReadableStream<Uint8Array>(source as UnderlyingDefaultSource<Uint8Array>);
  return new Response(body, {
    headers: {
      "content-type": "application/vnd.rill.batch",
      "content-length": String(opts.length ?? bytes.length),
      "rill-next-offset": "0",
      "rill-high-watermark": "30",
      "rill-log-start-offset": "0",
    },
  });
}

Deno.test("fetchPartition assembles a body that arrives in pieces, and a body cut short is retriable", async () => {
  const batches = [0, 10, 20].map((base) => {
    const b = encodeBatch(
      Array.from({ length: 10 }, (_, i) => ({ value: new TextEncoder().encode(`v${base + i}`) })),
    );
    setBaseOffset(b, base);
    return b;
  });
  const all = new Uint8Array(batches.reduce((n, b) => n + b.length, 0));
  batches.reduce((at, b) => (all.set(b, at), at + b.length), 0);
  const want = Array.from({ length: 25 }, (_, i) => `v${i + 5}`);
  for (const bytesType of [true, false]) {
    for (const chunk of [1, 7, 100, all.length]) {
      const r = await fetchPartition(
        transport(() => chunkedAnswer(all, chunk, { bytesType })),
        "t",
        0,
        5,
        opts,
      );
      assert.deepEqual(r.messages.map((m) => m.valueString()), want, `chunks of ${chunk}`);
      assert.equal(r.nextOffset, 30);
    }
  }
  await assert.rejects(
    fetchPartition(
      transport(() => chunkedAnswer(all, 50, { bytesType: true, length: all.length + 10 })),
      "t",
      0,
      0,
      opts,
    ),
    (e: unknown) =>
      e instanceof RillError && e.code === "BROKER_NOT_AVAILABLE" && e.retriable &&
      /ended after/.test(e.message),
  );
});
