/**
 * The record lane (src/http/record_lane.ts) answers a client's raw-batch produce and fetch
 * exactly as the app does through its middleware chain. A query parameter the lane does not
 * know (`x=1`, ignored by the records route) sends the same request through the app, for
 * comparison.
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/http/app.ts";
import { encodeBatch } from "../../src/protocol/mod.ts";
import { openTestBroker } from "./_app.ts";
import { fetchPartitionsAt, laneHeaders, produceTopic } from "../../src/http/record_lane.ts";
import { CLUSTER_SECRET_HEADER } from "../../src/http/auth.ts";
import { openSecureBroker } from "../security/_secure_app.ts";

const enc = new TextEncoder();
const BATCH = "application/vnd.rill.batch";

/** Status, headers and body of an answer, with offsets blanked (they differ by one append). */
async function snapshot(res: Response) {
  const text = new TextDecoder().decode(await res.arrayBuffer());
  return {
    status: res.status,
    headers: [...res.headers].filter(([k]) => k !== "content-length"),
    body: text.replace(/"(baseOffset|lastOffset)":\d+/g, '"$1":N'),
  };
}

Deno.test("record lane: a produce gets the same answers as through the app", async () => {
  await using t = await openTestBroker();
  assert.equal((await t.call("POST", "/v1/topics", { name: "t", partitions: 2 })).status, 201);
  const batch = () =>
    encodeBatch([{ key: null, value: enc.encode("v") }]) as Uint8Array<ArrayBuffer>;
  const cases: [string, Uint8Array<ArrayBuffer>][] = [
    ["partition=0&acks=1", batch()],
    ["partition=1", batch()], // acks=all
    ["partition=0&acks=0", batch()], // 204
    ["partition=2&acks=1", batch()], // UNKNOWN_TOPIC_OR_PARTITION
    ["partition=x&acks=1", batch()], // INVALID_REQUEST
    ["partition=0&acks=2", batch()], // INVALID_REQUEST
    ["partition=0&acks=1", new Uint8Array([1, 2, 3])], // CORRUPT_MESSAGE / INVALID_RECORD
  ];
  for (const [q, body] of cases) {
    const init = () => ({ method: "POST", body: body.slice(), headers: { "content-type": BATCH } });
    const lane = await snapshot(await t.app.request(`/v1/topics/t/records?${q}`, init()));
    const app = await snapshot(await t.app.request(`/v1/topics/t/records?${q}&x=1`, init()));
    assert.deepEqual(lane, app, q);
  }
  for (const topic of ["nope", "bad name"]) {
    const path = `/v1/topics/${encodeURIComponent(topic)}/records?partition=0&acks=1`;
    const init = () => ({ method: "POST", body: batch(), headers: { "content-type": BATCH } });
    const lane = await snapshot(await t.app.request(path, init()));
    const app = await snapshot(await t.app.request(`${path}&x=1`, init()));
    assert.deepEqual(lane, app, topic);
  }
  // Both paths appended: 2 (p0, acks=1) + 2 (p0, acks=0) on partition 0.
  const end = await t.call("GET", "/v1/topics/t/partitions/0/offsets?at=latest");
  assert.equal(end.body.offset, 4);
});

Deno.test("record lane: Prefer: return=minimal answers 204 with the offsets in headers, as the app does", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", partitions: 1 });
  await t.call("POST", "/v1/topics", {
    name: "lat",
    partitions: 1,
    configs: { "message.timestamp.type": "LogAppendTime" },
  });
  const two = () =>
    encodeBatch([{ key: null, value: enc.encode("a") }, {
      key: null,
      value: enc.encode("b"),
    }]) as Uint8Array<ArrayBuffer>;
  const post = (path: string, prefer: string, origin?: string) =>
    t.app.request(path, {
      method: "POST",
      body: two(),
      headers: { "content-type": BATCH, prefer, ...(origin ? { origin } : {}) },
    });
  const answers: Record<string, string | null>[] = [];
  // Through the lane, then through the app (x=1): offsets 0-1, then 2-3.
  for (const q of ["partition=0&acks=1", "partition=0&acks=1&x=1"]) {
    const res = await post(`/v1/topics/t/records?${q}`, "return=minimal", "https://app.example");
    assert.equal(res.status, 204, q);
    assert.equal(await res.text(), "");
    const h = Object.fromEntries(res.headers);
    answers.push(h);
    assert.equal(h["preference-applied"], "return=minimal");
    assert.equal(h["rill-log-append-time"], undefined);
    // A browser (Origin sent) may read the offsets.
    assert.equal(h["access-control-allow-origin"], "*");
    assert.match(h["access-control-expose-headers"], /Rill-Base-Offset/);
  }
  assert.deepEqual(answers.map((h) => [h["rill-base-offset"], h["rill-last-offset"]]), [
    ["0", "1"],
    ["2", "3"],
  ]);
  assert.deepEqual(Object.keys(answers[0]).sort(), Object.keys(answers[1]).sort());
  // Without an Origin (a server's produce) no CORS headers, through the lane as through the app.
  const bare: string[][] = [];
  for (const q of ["partition=0&acks=1", "partition=0&acks=1&x=1"]) {
    const res = await post(`/v1/topics/t/records?${q}`, "return=minimal");
    assert.equal(res.status, 204, q);
    await res.body?.cancel();
    bare.push([...res.headers.keys()].filter((k) => !k.startsWith("rill-")).sort());
  }
  assert.deepEqual(bare, [["preference-applied"], ["preference-applied"]]);
  // An error answer alike; a GET (which a cache may keep for a browser) keeps them.
  for (const q of ["partition=9&acks=1", "partition=9&acks=1&x=1"]) {
    const res = await post(`/v1/topics/t/records?${q}`, "return=minimal");
    assert.equal(res.status, 404, q);
    assert.equal(res.headers.get("access-control-allow-origin"), null, q);
    assert.equal((await res.json()).error.code, "UNKNOWN_TOPIC_OR_PARTITION");
  }
  const get = await t.app.request("/v1/topics/t/partitions/0/records?offset=0", {
    headers: { accept: BATCH },
  });
  assert.equal(get.status, 200);
  assert.equal(get.headers.get("access-control-allow-origin"), "*");
  await get.body?.cancel();
  // Other preferences, parameters, case and quotes; an unknown or other return value gets JSON.
  for (const prefer of ['respond-async, RETURN="minimal"; x=1', "wait=5,return=minimal"]) {
    for (const q of ["partition=0&acks=1", "partition=0&acks=1&x=1"]) {
      const res = await post(`/v1/topics/t/records?${q}`, prefer);
      assert.equal(res.status, 204, prefer);
      assert.ok(Number(res.headers.get("rill-base-offset")) >= 4);
    }
  }
  for (const prefer of ["return=representation", "minimal", "return=minimal-ish"]) {
    for (const q of ["partition=0&acks=1", "partition=0&acks=1&x=1"]) {
      const res = await post(`/v1/topics/t/records?${q}`, prefer);
      assert.equal(res.status, 200, prefer);
      assert.equal((await res.json()).recordCount, 2);
    }
  }
  // A topic stamping LogAppendTime names the time; acks=0 and errors answer as without it.
  for (const q of ["partition=0&acks=1", "partition=0&acks=1&x=1"]) {
    const before = Date.now();
    const res = await post(`/v1/topics/lat/records?${q}`, "return=minimal");
    assert.equal(res.status, 204);
    assert.ok(Number(res.headers.get("rill-log-append-time")) >= before);
  }
  for (const q of ["partition=0&acks=0", "partition=5&acks=1", "partition=0&acks=9"]) {
    const lane = await snapshot(await post(`/v1/topics/t/records?${q}`, "return=minimal"));
    const app = await snapshot(await post(`/v1/topics/t/records?${q}&x=1`, "return=minimal"));
    assert.deepEqual(lane, app, q);
    assert.notEqual(lane.status, 200, q);
  }
});

Deno.test("record lane: a consumer's raw fetch gets the same answers as through the app", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", partitions: 1 });
  for (let i = 0; i < 3; i++) {
    const batch = encodeBatch([{ key: null, value: enc.encode(`v${i}`) }]);
    await t.call("POST", "/v1/topics/t/records?acks=1&partition=0", batch, {
      "content-type": BATCH,
    });
  }
  const base = "/v1/topics/t/partitions/0/records";
  for (
    const q of [
      "offset=0",
      "offset=1&maxBytes=1&maxWaitMs=0&minBytes=1",
      "offset=3",
      "offset=9", // OFFSET_OUT_OF_RANGE
      "offset=0&maxBytes=0",
      "offset=x",
    ]
  ) {
    const init = { headers: { accept: `${BATCH}, application/json;q=0.5` } };
    const lane = await snapshot(await t.app.request(`${base}?${q}`, init));
    const app = await snapshot(await t.app.request(`${base}?${q}&x=1`, init));
    assert.deepEqual(lane, app, q);
  }
});

Deno.test("record lane: a long poll waits for the append, holding a stream slot", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", partitions: 1 });
  const app = createApp(t.broker, { quotas: { maxStreams: 1 } });
  const poll = app.request("/v1/topics/t/partitions/0/records?offset=0&maxWaitMs=5000", {
    headers: { accept: BATCH },
  });
  // The slot is taken: a second long poll goes through the app, which throttles it.
  let second: Response;
  do {
    second = await app.request("/v1/topics/t/partitions/0/records?offset=0&maxWaitMs=10", {
      headers: { accept: BATCH },
    });
    if (second.status !== 429) await second.body?.cancel();
  } while (second.status !== 429);
  assert.equal((await second.json()).error.code, "THROTTLING_QUOTA_EXCEEDED");
  const produced = await app.request("/v1/topics/t/records?partition=0&acks=1", {
    method: "POST",
    body: encodeBatch([{ key: null, value: enc.encode("late") }]) as Uint8Array<ArrayBuffer>,
    headers: { "content-type": BATCH },
  });
  assert.equal(produced.status, 200);
  await produced.body?.cancel();
  const res = await poll;
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("rill-next-offset"), "1");
  assert.ok((await res.arrayBuffer()).byteLength > 0);
});

Deno.test("record lane: with auth on, credentials and ACLs are checked as by the app", async () => {
  await using s = await openSecureBroker();
  await s.call("POST", "/v1/topics", s.admin, { name: "t", partitions: 1 });
  const writer = await s.key("writer");
  const reader = await s.key("reader");
  await s.allow("writer", "topic", "t", "write");
  await s.allow("reader", "topic", "t", "read");
  const produce = (token: string | undefined) =>
    s.app.request("/v1/topics/t/records?partition=0&acks=1", {
      method: "POST",
      body: encodeBatch([{ key: null, value: enc.encode("v") }]) as Uint8Array<ArrayBuffer>,
      headers: {
        "content-type": BATCH,
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
    });
  const fetchAs = (token: string) =>
    s.app.request("/v1/topics/t/partitions/0/records?offset=0", {
      headers: { accept: BATCH, authorization: `Bearer ${token}` },
    });
  const { requests } = s.broker.metrics;
  const refused = (status: string) =>
    requests.get({ api: "http", route: "/v1/topics/:topic/records", status }) ?? 0;
  const none = await produce(undefined);
  assert.equal(none.status, 401);
  await none.body?.cancel();
  const denied = await produce(reader);
  assert.equal(denied.status, 403);
  assert.equal((await denied.json()).error.code, "TOPIC_AUTHORIZATION_FAILED");
  // Answered by the app, which counts each once (the lane that handed it over does not).
  assert.equal(refused("403"), 1);
  assert.ok(s.audit.some((l) => l.includes("authorization_denied") && l.includes("reader")));
  const ok = await produce(writer);
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).baseOffset, 0);
  const notReader = await fetchAs(writer);
  assert.equal(notReader.status, 403);
  await notReader.body?.cancel();
  const read = await fetchAs(reader);
  assert.equal(read.status, 200);
  assert.equal(read.headers.get("rill-next-offset"), "1");
  await read.body?.cancel();
});

Deno.test("record lane: a produce is counted in the request and latency metrics as through the app", async () => {
  await using t = await openTestBroker();
  await t.call("POST", "/v1/topics", { name: "t", partitions: 1 });
  const { requests, produceDuration, requestErrors } = t.broker.metrics;
  const route = "/v1/topics/:topic/records";
  const counts = () => ({
    ok: requests.get({ api: "http", route, status: "200" }),
    noContent: requests.get({ api: "http", route, status: "204" }),
    bad: requests.get({ api: "http", route, status: "400" }),
    acks1: produceDuration.count({ api: "http", acks: "1" }),
    acks0: produceDuration.count({ api: "http", acks: "0" }),
    acksAll: produceDuration.count({ api: "http", acks: "all" }),
    acksInvalid: produceDuration.count({ api: "http", acks: "invalid" }),
    invalid: requestErrors.get({ api: "http", code: "INVALID_REQUEST" }),
  });
  // acks=1 twice, acks=0 (204), none (all), acks=-1 (all), acks=2 (400, invalid).
  const queries = [
    "partition=0&acks=1",
    "partition=0&acks=1",
    "acks=0&partition=0",
    "partition=0",
    "partition=0&acks=-1",
    "partition=0&acks=2",
  ];
  const produce = async (suffix: string) => {
    const before = counts();
    for (const q of queries) {
      const res = await t.app.request(`/v1/topics/t/records?${q}${suffix}`, {
        method: "POST",
        body: encodeBatch([{ key: null, value: enc.encode("v") }]) as Uint8Array<ArrayBuffer>,
        headers: { "content-type": BATCH },
      });
      await res.body?.cancel();
    }
    const after = counts();
    return Object.fromEntries(
      Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]]),
    );
  };
  const lane = await produce("");
  const app = await produce("&x=1");
  assert.deepEqual(lane, {
    ok: 4,
    noContent: 1,
    bad: 1,
    acks1: 2,
    acks0: 1,
    acksAll: 2,
    acksInvalid: 1,
    invalid: 1,
  });
  assert.deepEqual(lane, app);
});

Deno.test("record lane: laneHeaders reads what Headers.get and forEach give, served or made in code", async () => {
  /** What the lanes read, through the public API. */
  const expected = (headers: Headers) => {
    let bytes = 0;
    headers.forEach((value, name) => bytes += name.length + value.length + 4);
    return {
      bytes,
      type: headers.get("content-type"),
      length: headers.get("content-length"),
      accept: headers.get("accept"),
      authorization: headers.get("authorization"),
      secret: headers.get(CLUSTER_SECRET_HEADER),
      prefer: headers.get("prefer"),
      origin: headers.get("origin"),
    };
  };
  const seen: { lane: ReturnType<typeof laneHeaders>; api: ReturnType<typeof expected> }[] = [];
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const lane = laneHeaders(req.headers);
    seen.push({ lane, api: expected(req.headers) });
    return new Response(null, { status: 204 });
  });
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const sent: HeadersInit[] = [
    {
      "content-type": BATCH,
      prefer: "return=minimal",
      authorization: "Bearer k",
      origin: "https://a.b",
    },
    { "Content-Type": BATCH, "X-Other": "1", [CLUSTER_SECRET_HEADER]: "s" },
    [["prefer", "return=minimal"], ["prefer", "respond-async"], ["accept", BATCH]],
    [["x-repeated", "a"], ["x-repeated", "b"], ["content-type", BATCH]],
  ];
  for (const headers of sent) {
    const res = await fetch(url, { method: "POST", body: "abc", headers });
    await res.body?.cancel();
    // The same headers on a Request made in code (names as given, no server behind it).
    const made = new Request(url, { method: "POST", body: "abc", headers });
    seen.push({ lane: laneHeaders(made.headers), api: expected(made.headers) });
  }
  assert.equal(seen.length, sent.length * 2);
  for (const { lane, api } of seen) {
    // A header sent twice counts its name twice: at least forEach's sum, never less.
    assert.ok(lane.bytes >= api.bytes, `${lane.bytes} < ${api.bytes}`);
    assert.deepEqual({ ...lane, bytes: 0 }, { ...api, bytes: 0 });
  }
  // Without repeated headers the sums are equal.
  assert.equal(seen[0].lane.bytes, seen[0].api.bytes);
  assert.equal(seen[1].lane.bytes, seen[1].api.bytes);
  // Repeated values of a header the lane reads are combined, as `get` does.
  assert.equal(seen[4].lane.prefer, "return=minimal, respond-async");
});

Deno.test("record lane: its paths are the routes' own, a topic and partition without / or %", () => {
  const produce = /^\/v1\/topics\/([^/%]+)\/records$/;
  const fetch = /^\/v1\/topics\/([^/%]+)\/partitions\/([^/%]+)\/records$/;
  const paths = [
    "/v1/topics/t/records",
    "/v1/topics/a.b-c_9/records",
    "/v1/topics//records",
    "/v1/topics/a/b/records",
    "/v1/topics/a%20b/records",
    "/v1/topics/t/record",
    "/v2/topics/t/records",
    "/v1/topics/t/partitions/0/records",
    "/v1/topics/t/partitions/12/records",
    "/v1/topics/t/partitions//records",
    "/v1/topics//partitions/0/records",
    "/v1/topics/t/partitions/0/1/records",
    "/v1/topics/t/x/partitions/0/records",
    "/v1/topics/t/partitions/%30/records",
    "/v1/topics/t%2F/partitions/0/records",
    "/v1/topics/partitions/records",
    "/v1/topics/t/partitionsX0/records",
    "/v1/topics/records",
    "/v1/topics/",
  ];
  for (const path of paths) {
    const url = `http://127.0.0.1:8092${path}?q=1`;
    const pathStart = url.indexOf("/", 7);
    const end = url.indexOf("?");
    assert.equal(produceTopic(url, pathStart, end), produce.exec(path)?.[1] ?? null, path);
    const at = fetchPartitionsAt(url, pathStart, end);
    const m = fetch.exec(path);
    assert.deepEqual(
      at < 0 ? null : [url.slice(pathStart + 11, at), url.slice(at + 12, end - 8)],
      m === null ? null : [m[1], m[2]],
      path,
    );
  }
});
