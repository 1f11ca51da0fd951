/**
 * Slow clients (issue 7): a request body that arrives too slowly, or never, is answered 408
 * REQUEST_BODY_TIMEOUT once the broker's `--request-body-timeout-ms` has passed since the
 * route began reading it, and the request changes nothing. Without that bound, Deno.serve
 * waits for a declared body for ever, and each such request keeps its handler, its buffered
 * bytes and its share of the broker-wide body budget (quotas.ts, 256 MiB: 32 stalled 8 MiB
 * bodies lock every producer out).
 *
 * The clients here are raw `Deno.connect` sockets speaking HTTP/1.1 by hand.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { BROKER_HELP, parseBrokerArgs } from "../../src/cli/broker.ts";
import { UsageError } from "../../src/cli/common.ts";
import { onError } from "../../src/http/errors.ts";
import { bodyTimeout, readBodyBytes } from "../../src/http/params.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { encodeBatch } from "../../src/protocol/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A raw HTTP/1.1 connection to a broker URL. */
async function connect(url: string): Promise<Deno.TcpConn> {
  const u = new URL(url);
  return await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
}

/**
 * Reads one HTTP/1.1 response with a Content-Length body.
 *
 * @param conn the connection
 * @param guardMs a hang guard (not an assertion of speed): reject when nothing came by then
 * @returns the status and the parsed JSON body
 */
async function readResponse(
  conn: Deno.Conn,
  guardMs = 30_000,
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any }> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${guardMs} ms`)), guardMs);
  });
  try {
    for (;;) {
      const text = decoder.decode(buf);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1]);
        const bodyStart = encoder.encode(text.slice(0, end + 4)).length;
        if (buf.length - bodyStart >= length) {
          return {
            status: Number(text.slice(9, 12)),
            body: JSON.parse(decoder.decode(buf.subarray(bodyStart, bodyStart + length))),
          };
        }
      }
      const n = await Promise.race([conn.read(chunk), guard]);
      if (n === null) throw new Error(`the connection closed after ${JSON.stringify(text)}`);
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The head of a produce request declaring `length` body bytes: JSON records, or with `raw`
 * a raw batch to partition 0 (the client library's request, which the record lane takes).
 */
function produceHead(topic: string, length: number, raw = false): Uint8Array {
  return encoder.encode(
    raw
      ? `POST /v1/topics/${topic}/records?partition=0&acks=1 HTTP/1.1\r\nHost: rill\r\n` +
        `Content-Type: application/vnd.rill.batch\r\nContent-Length: ${length}\r\n\r\n`
      : `POST /v1/topics/${topic}/records HTTP/1.1\r\nHost: rill\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`,
  );
}

function assertTimedOut(res: { status: number; body: { error: Record<string, unknown> } }) {
  assert.equal(res.status, 408, JSON.stringify(res.body));
  assert.equal(res.body.error.code, "REQUEST_BODY_TIMEOUT");
  assert.equal(res.body.error.retriable, true);
  assert.match(String(res.body.error.message), /^The request body did not arrive within \d+ ms$/);
}

Deno.test("slow request bodies against a broker process: 408 REQUEST_BODY_TIMEOUT, nothing changed", async (t) => {
  await using broker = await startBroker({ extraArgs: ["--request-body-timeout-ms", "300"] });
  const created = await fetch(`${broker.url}/v1/topics`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "slow" }),
  });
  assert.equal(created.status, 201);
  await created.body?.cancel();
  const records = async () => {
    const res = await fetch(`${broker.url}/v1/topics/slow/partitions/0/records?offset=0`);
    return (await res.json()).records;
  };

  await t.step("a declared body that never arrives", async () => {
    using conn = await connect(broker.url);
    await conn.write(produceHead("slow", 1000));
    await conn.write(encoder.encode(`{"records":[{"value":"half`));
    assertTimedOut(await readResponse(conn));
    assert.deepEqual(await records(), []);
  });

  await t.step("a raw batch declared but sent only in part (the record lane)", async () => {
    const counts = async () => {
      const text = await (await fetch(`${broker.url}/metrics`)).text();
      const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
      return [
        value(/rill_request_errors_total\{[^}]*code="REQUEST_BODY_TIMEOUT"[^}]*\} (\d+)/),
        value(
          /rill_requests_total\{[^}]*route="\/v1\/topics\/:topic\/records",status="408"\} (\d+)/,
        ),
      ];
    };
    const before = await counts();
    const batch = encodeBatch([{ value: encoder.encode("never") }]);
    using conn = await connect(broker.url);
    await conn.write(produceHead("slow", batch.length, true));
    await conn.write(batch.subarray(0, 20));
    assertTimedOut(await readResponse(conn));
    assert.deepEqual(await records(), []);
    // Counted once, as the app counts a refused produce.
    assert.deepEqual(await counts(), before.map((n) => n + 1));
  });

  await t.step("a body dribbled a byte at a time, slower than the deadline", async () => {
    using conn = await connect(broker.url);
    const body = encoder.encode(JSON.stringify({ records: [{ value: "x".repeat(2000) }] }));
    await conn.write(produceHead("slow", body.length));
    // the client's pace (a byte every 20 ms), not a wait for the broker
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < body.length) conn.write(body.subarray(sent, ++sent)).catch(() => {});
    }, 20);
    try {
      assertTimedOut(await readResponse(conn));
    } finally {
      clearInterval(drip);
    }
    assert.ok(sent < body.length);
    assert.deepEqual(await records(), []);
  });

  await t.step("a whole body sent at once is not affected", async () => {
    using conn = await connect(broker.url);
    const body = encoder.encode(JSON.stringify({ records: [{ value: "whole" }] }));
    await conn.write(produceHead("slow", body.length));
    await conn.write(body);
    const res = await readResponse(conn);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      (await records()).map((r: { value: string }) => r.value),
      ["whole"],
    );
  });

  await t.step("stalled 8 MiB bodies give their share of the body budget back", async () => {
    // 32 × 8 MiB is the broker-wide budget of bodies being read (quotas.ts): were they held
    // for ever, every later request with a body would be refused 429.
    const conns = await Promise.all(Array.from({ length: 32 }, () => connect(broker.url)));
    try {
      await Promise.all(conns.map((c) => c.write(produceHead("slow", 8 * 1024 * 1024))));
      const answers = await Promise.all(conns.map((c) => readResponse(c)));
      for (const a of answers) assertTimedOut(a);
    } finally {
      for (const c of conns) c.close();
    }
    const res = await fetch(`${broker.url}/v1/topics/slow/records`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ records: [{ value: "after" }] }),
    });
    assert.equal(res.status, 200, await res.text());
  });
});

Deno.test("readBodyBytes() gives up on a body stream that never ends after bodyTimeout(), and cancels it", async () => {
  const app = new Hono();
  app.onError(onError);
  app.use("*", bodyTimeout(50));
  app.post("/", async (c) => c.json({ bytes: (await readBodyBytes(c, 1024)).length }));
  let cancelled!: () => void;
  const cancel = new Promise<void>((r) => cancelled = r);
  const stalled = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode("abc")); // and never more, nor the end
    },
    cancel() {
      cancelled();
    },
  });
  const res = await app.request(
    "/",
    { method: "POST", body: stalled, duplex: "half" } as RequestInit,
  );
  assert.equal(res.status, 408);
  assertTimedOut({ status: res.status, body: await res.json() });
  // the read is cancelled, not abandoned: nothing the client sends later is taken in
  await cancel;
  // a finished body of the same route is read as before
  const ok = await app.request("/", { method: "POST", body: "abcd" });
  assert.deepEqual(await ok.json(), { bytes: 4 });
});

Deno.test("rill broker --request-body-timeout-ms: parsed, checked and listed in --help", () => {
  assert.equal(
    parseBrokerArgs(["--request-body-timeout-ms", "1500"]).replication.config.requestBodyTimeoutMs,
    1500,
  );
  assert.equal(parseBrokerArgs([]).replication.config.requestBodyTimeoutMs, undefined);
  for (const bad of ["0", "-1", "1.5", "soon"]) {
    assert.throws(
      () => parseBrokerArgs(["--request-body-timeout-ms", bad]),
      UsageError,
      `--request-body-timeout-ms ${bad}`,
    );
  }
  assert.match(BROKER_HELP, /--request-body-timeout-ms N/);
});
