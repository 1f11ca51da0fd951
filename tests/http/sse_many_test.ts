/**
 * Server-sent events over many partitions from one stream (src/http/sse_many.ts), and
 * resuming after `Last-Event-ID` (which wins over `?offset`), in process and across a
 * broker restart with the runtime's own `EventSource`.
 */
import assert from "node:assert/strict";
import { openTestBroker } from "./_app.ts";
import { Cluster } from "../replication/_cluster.ts";

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
}

/** Reads the events (not comments) of a stream. */
function events(body: ReadableStream<Uint8Array>) {
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
          let any = false;
          for (const line of block.split("\n")) {
            if (line.startsWith(":") || line.startsWith("retry:")) continue;
            const c = line.indexOf(":");
            ev[line.slice(0, c) as keyof SseEvent] = line.slice(c + 1).trimStart();
            any = true;
          }
          if (any) return ev;
          continue;
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

Deno.test("SSE over a topic's partitions: one stream, each record with its partition, ids that resume", async () => {
  await using t = await openTestBroker({ config: { sseKeepAliveMs: 60_000 } });
  await t.call("POST", "/v1/topics", { name: "t", partitions: 3 });
  await t.call("POST", "/v1/topics/t/records", {
    records: [
      { value: "a", partition: 0 },
      { value: "b", partition: 1 },
      { value: "c", partition: 2 },
      { value: "d", partition: 1 },
    ],
  });
  const res = await t.app.request("/v1/topics/t/records?offset=earliest", {
    headers: { accept: "text/event-stream" },
  });
  assert.equal(res.status, 200);
  const s = events(res.body!);
  const got: { partition: number; offset: number; value: string; id: string }[] = [];
  for (let i = 0; i < 4; i++) {
    const ev = (await s.next())!;
    const d = JSON.parse(ev.data!);
    got.push({ partition: d.partition, offset: d.offset, value: d.value, id: ev.id! });
  }
  assert.deepEqual(
    got.map((g) => `${g.partition}/${g.offset}=${g.value}`).sort(),
    ["0/0=a", "1/0=b", "1/1=d", "2/0=c"],
  );
  const lastId = got[3].id;
  assert.match(lastId, /^\d+:\d+(,\d+:\d+)*$/);
  // New records on any partition are pushed on the same stream.
  const waiting = s.next();
  await t.call("POST", "/v1/topics/t/records", { records: [{ value: "e", partition: 2 }] });
  const e = (await waiting)!;
  assert.deepEqual(
    { ...JSON.parse(e.data!), timestamp: 0 },
    { partition: 2, offset: 1, timestamp: 0, key: null, value: "e", headers: {} },
  );
  await s.cancel();

  // Reconnecting with the last id to the first URL (offset=earliest): nothing twice.
  await t.call("POST", "/v1/topics/t/records", { records: [{ value: "f", partition: 0 }] });
  const again = await t.app.request("/v1/topics/t/records?offset=earliest", {
    headers: { accept: "text/event-stream", "last-event-id": e.id! },
  });
  const s2 = events(again.body!);
  const f = JSON.parse((await s2.next())!.data!);
  assert.deepEqual([f.partition, f.offset, f.value], [0, 1, "f"]);
  await s2.cancel();
  assert.equal(t.broker.fetchSessions.size, 0, "the streams closed their fetch sessions");
});

Deno.test("SSE selections: ?partitions, ?offsets; bad input is a 400/404 with a sentence", async () => {
  await using t = await openTestBroker({ config: { sseKeepAliveMs: 60_000 } });
  await t.call("POST", "/v1/topics", { name: "t", partitions: 3 });
  await t.call("POST", "/v1/topics/t/records", {
    records: [0, 1, 2].flatMap((
      p,
    ) => [{ value: `${p}-0`, partition: p }, { value: `${p}-1`, partition: p }]),
  });
  const res = await t.app.request("/v1/topics/t/records?partitions=2,0&offsets=0:1,2:0", {
    headers: { accept: "text/event-stream" },
  });
  const s = events(res.body!);
  const values = [];
  for (let i = 0; i < 3; i++) values.push(JSON.parse((await s.next())!.data!).value);
  assert.deepEqual(values.sort(), ["0-1", "2-0", "2-1"]);
  await s.cancel();
  const sse = { accept: "text/event-stream" };
  for (
    const [path, status] of [
      ["/v1/topics/t/records?partitions=7", 404],
      ["/v1/topics/t/records?partitions=x", 400],
      ["/v1/topics/t/records?offsets=0-1", 400],
      ["/v1/topics/nope/records", 404],
    ] as const
  ) {
    const r = await t.call("GET", path, undefined, sse);
    assert.equal(r.status, status, path);
    assert.match(r.body.error.message, /\S/);
  }
  const tail = await t.app.request("/v1/topics/t/records", { headers: sse });
  assert.equal(tail.status, 200, "no selection: every partition from the end");
  const st = events(tail.body!);
  const next = st.next();
  await t.call("POST", "/v1/topics/t/records", { records: [{ value: "new", partition: 1 }] });
  assert.equal(JSON.parse((await next)!.data!).value, "new", "only what came after");
  await st.cancel();
  const plain = await t.call("GET", "/v1/topics/t/records");
  assert.equal(plain.status, 400);
  assert.match(plain.body.error.message, /text\/event-stream/);
});

Deno.test("SSE on one partition: Last-Event-ID wins over ?offset", async () => {
  await using t = await openTestBroker({ config: { sseKeepAliveMs: 60_000 } });
  await t.call("POST", "/v1/topics", { name: "t" });
  await t.call("POST", "/v1/topics/t/records", {
    records: [{ value: "0" }, { value: "1" }, { value: "2" }],
  });
  const res = await t.app.request("/v1/topics/t/partitions/0/records?offset=0", {
    headers: { accept: "text/event-stream", "last-event-id": "1" },
  });
  const s = events(res.body!);
  const first = (await s.next())!;
  assert.equal(first.id, "2", "resumed after the last event seen, not from ?offset=0");
  await s.cancel();
});

Deno.test("an EventSource over a whole topic resumes across a broker restart: each record once", async () => {
  await using cluster = await Cluster.start(1);
  await cluster.createTopic("tail", 4, 1);
  const url = cluster.url(1);
  const produce = async (from: number, to: number) => {
    const records = [];
    for (let i = from; i < to; i++) records.push({ value: String(i), partition: i % 4 });
    const r = await fetch(`${url}/v1/topics/tail/records?acks=1`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ records }),
    });
    assert.equal(r.status, 200, await r.text());
  };
  await produce(0, 40);
  const seen = new Map<string, number>();
  let errors = 0;
  let want = 40;
  let reached: () => void = () => {};
  const source = new EventSource(`${url}/v1/topics/tail/records?offset=earliest`);
  source.onmessage = (m) => {
    const v = JSON.parse(m.data).value as string;
    seen.set(v, (seen.get(v) ?? 0) + 1);
    if (seen.size >= want) reached();
  };
  source.onerror = () => errors++;
  try {
    await new Promise<void>((r) => (reached = r));
    await cluster.kill(1);
    await cluster.startBroker(1);
    want = 80;
    const all = new Promise<void>((r) => (reached = r));
    await produce(40, 80);
    await all; // the EventSource reconnected by itself, with Last-Event-ID
    assert.ok(errors >= 1, "the stream did break");
    for (let i = 0; i < 80; i++) assert.equal(seen.get(String(i)), 1, `record ${i} once`);
  } finally {
    source.close();
  }
});
