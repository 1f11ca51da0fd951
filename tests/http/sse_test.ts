import assert from "node:assert/strict";
import { openTestBroker } from "./_app.ts";

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** Reads server-sent events from a response body, one at a time. */
function sseReader(body: ReadableStream<Uint8Array>) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    async next(): Promise<SseEvent | null> {
      for (let i = 0; i < 10_000; i++) {
        const end = buffer.indexOf("\n\n");
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const ev: SseEvent = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) ev.comment = line.slice(1).trim();
            else {
              const i = line.indexOf(":");
              const field = line.slice(0, i) as "id" | "event" | "data";
              ev[field] = line.slice(i + 1).trimStart();
            }
          }
          return ev;
        }
        const { value, done } = await reader.read();
        if (done) return null;
        buffer += value;
      }
      throw new Error("no event");
    },
    cancel: () => reader.cancel(),
  };
}

Deno.test("SSE: pushes committed records from an offset as they arrive, then stops on disconnect", async () => {
  await using t = await openTestBroker({ config: { sseKeepAliveMs: 60_000 } });
  await t.call("POST", "/v1/topics", { name: "t" });
  await t.call("POST", "/v1/topics/t/records", {
    records: [{ value: "old-0" }, { value: "old-1" }],
  });
  const res = await t.app.request("/v1/topics/t/partitions/0/records?offset=1", {
    headers: { accept: "text/event-stream" },
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
  const events = sseReader(res.body!);
  let ev = await events.next();
  assert.equal(ev?.id, "1");
  assert.deepEqual(JSON.parse(ev!.data!), {
    offset: 1,
    timestamp: JSON.parse(ev!.data!).timestamp,
    key: null,
    value: "old-1",
    headers: {},
  });

  // Records produced after the stream started are pushed.
  const replica = await t.broker.replica("t", 0);
  const next = events.next();
  await t.call("POST", "/v1/topics/t/records", {
    records: [{ key: "k", value: "new-2", headers: { h: "v" } }, { value: "new-3" }],
  });
  ev = await next;
  assert.equal(ev?.id, "2");
  assert.equal(JSON.parse(ev!.data!).value, "new-2");
  assert.deepEqual(JSON.parse(ev!.data!).headers, { h: "v" });
  ev = await events.next();
  assert.equal(ev?.id, "3");

  // Waiting for more; the client goes away; the stream stops waiting.
  const pendingRead = events.next();
  for (let i = 0; i < 1000 && replica.waiters.size === 0; i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.equal(replica.waiters.size, 1);
  await events.cancel();
  assert.equal(await pendingRead.catch(() => null), null);
  assert.equal(replica.waiters.size, 0, "the server stopped waiting for the gone client");
});

Deno.test("SSE: keep-alive comments on an idle stream, Last-Event-ID resumes, shutdown ends it", async () => {
  await using t = await openTestBroker({ config: { sseKeepAliveMs: 20 } });
  await t.call("POST", "/v1/topics", { name: "t" });
  await t.call("POST", "/v1/topics/t/records", {
    records: [{ value: "a" }, { value: "b" }, { value: "c" }],
  });
  const res = await t.app.request("/v1/topics/t/partitions/0/records", {
    headers: { accept: "text/event-stream", "last-event-id": "0" },
  });
  const events = sseReader(res.body!);
  assert.equal((await events.next())?.id, "1", "resumes after the last event seen");
  assert.equal((await events.next())?.id, "2");
  assert.equal((await events.next())?.comment, "keep-alive");
  t.broker.beginShutdown();
  // Bounded: a keep-alive may already be on its way before the end.
  let ev: SseEvent | null = { comment: "" };
  for (let i = 0; i < 5 && ev !== null; i++) ev = await events.next();
  assert.equal(ev, null, "the stream ended");
});

Deno.test("SSE over a real socket: records arrive, and a client abort frees the server side", async () => {
  await using t = await openTestBroker({ config: { sseKeepAliveMs: 60_000 } });
  await t.call("POST", "/v1/topics", { name: "t" });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, t.app.fetch);
  try {
    const ac = new AbortController();
    const res = await fetch(
      `http://127.0.0.1:${server.addr.port}/v1/topics/t/partitions/0/records?offset=0`,
      {
        headers: { accept: "text/event-stream" },
        signal: ac.signal,
      },
    );
    const events = sseReader(res.body!);
    const first = events.next();
    await t.call("POST", "/v1/topics/t/records", { records: [{ value: "over-the-wire" }] });
    const ev = await first;
    assert.equal(JSON.parse(ev!.data!).value, "over-the-wire");
    const replica = await t.broker.replica("t", 0);
    for (let i = 0; i < 1000 && replica.waiters.size === 0; i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    ac.abort();
    await events.next().catch(() => null);
    for (let i = 0; i < 2000 && replica.waiters.size > 0; i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal(replica.waiters.size, 0, "the server noticed the disconnect");
  } finally {
    await server.shutdown();
  }
});
