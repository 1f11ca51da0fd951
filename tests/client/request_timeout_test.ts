/**
 * `requestTimeoutMs` against a broker process that stops answering: SIGSTOP leaves its
 * port accepting connections (the kernel completes them) while nothing answers, over HTTP
 * and over WebSocket (a request on an open connection, and the opening of a new one). Each
 * wait is guarded by a minute, so a missing timeout fails instead of hanging.
 */
import assert from "node:assert/strict";
import { Rill, RillError } from "../../mod.ts";
import { WsConnection } from "../../src/client/ws_connection.ts";
import { startBroker } from "../_helpers/broker_process.ts";

/** The rejection of `p`, or a failure when it settles otherwise or not within a minute. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  let guard: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<"hung">((resolve) => guard = setTimeout(() => resolve("hung"), 60_000));
  try {
    const outcome = await Promise.race([p.then(() => "resolved" as const, (e) => ({ e })), hung]);
    if (outcome === "hung") assert.fail("the request was still waiting a minute later");
    if (outcome === "resolved") assert.fail("the request was answered");
    return outcome.e;
  } finally {
    clearTimeout(guard);
  }
}

function assertTimedOut(e: unknown): void {
  assert.ok(e instanceof RillError, `not a RillError: ${e}`);
  assert.equal(e.code, "REQUEST_TIMED_OUT", e.message);
  assert.equal(e.retriable, true);
  assert.match(e.message, /within \d+ ms \(requestTimeoutMs\)/);
}

Deno.test("requestTimeoutMs: a broker that stops answering fails HTTP and WebSocket requests with the retriable REQUEST_TIMED_OUT", async (t) => {
  await using broker = await startBroker();
  const options = { brokers: [broker.url], requestTimeoutMs: 500, retry: { retries: 0 } };
  const http = new Rill({ ...options, transport: "http" });
  const ws = new Rill({ ...options, transport: "ws" });
  await http.admin().createTopics({ topics: [{ topic: "t", numPartitions: 1 }] });
  const httpProducer = http.producer({ acks: 1 });
  const wsProducer = ws.producer({ acks: 1 });
  const send = (p: typeof httpProducer, value: string) =>
    p.send({ topic: "t", messages: [{ value, partition: 0 }] });
  await send(httpProducer, "a");
  await send(wsProducer, "b"); // its WebSocket connection is open
  let stopped = false;
  try {
    broker.kill("SIGSTOP");
    stopped = true;

    // A timed-out produce's outcome is unknown (the broker may append it once it runs again).
    await t.step("over HTTP: a produce and an admin call", async () => {
      assertTimedOut(await rejection(send(httpProducer, "unknown")));
      assertTimedOut(await rejection(http.admin().listTopics()));
    });

    await t.step("over WebSocket: a request on the open connection, and opening one", async () => {
      const onOpen = await rejection(send(wsProducer, "unknown"));
      assertTimedOut(onOpen);
      assert.match((onOpen as Error).message, /did not answer a request within 500 ms/);
      // The producer asks for a new producer id first (over HTTP): that times out too.
      assertTimedOut(await rejection(send(wsProducer, "unknown")));
      const opening = await rejection(WsConnection.open(broker.url, { requestTimeoutMs: 500 }));
      assertTimedOut(opening);
      assert.match((opening as Error).message, /did not open a WebSocket connection/);
    });

    broker.kill("SIGCONT");
    stopped = false;
    await t.step("answering again: both send (over a new WebSocket connection)", async () => {
      const [h] = await send(httpProducer, "c");
      const [w] = await send(wsProducer, "d");
      assert.notEqual(h.offset, w.offset);
    });
  } finally {
    if (stopped) broker.kill("SIGCONT");
    await httpProducer.disconnect();
    await wsProducer.disconnect();
  }
});

Deno.test("requestTimeoutMs: a long poll may be held for its maxWaitMs on top of the timeout", async () => {
  await using broker = await startBroker();
  await new Rill({ brokers: [broker.url] }).admin().createTopics({
    topics: [{ topic: "quiet", numPartitions: 1 }],
  });
  const conn = await WsConnection.open(broker.url, { requestTimeoutMs: 300 });
  try {
    // Nothing arrives: the broker holds the fetch its 1.5 s, five times the timeout.
    const answer = await conn.fetch({
      partitions: [{ topic: "quiet", partition: 0, offset: 0 }],
      maxWaitMs: 1500,
    });
    assert.equal(answer.partitions.length, 1);
    assert.equal(answer.partitions[0].error, undefined);
    assert.equal(conn.open, true);
  } finally {
    conn.close();
  }
});

Deno.test("requestTimeoutMs must be a positive integer", () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(
      () => new Rill({ brokers: ["http://127.0.0.1:1"], requestTimeoutMs: bad }),
      (e) =>
        e instanceof TypeError && /requestTimeoutMs must be a positive integer/.test(e.message),
    );
  }
});
