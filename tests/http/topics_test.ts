import assert from "node:assert/strict";
import { openTestBroker } from "./_app.ts";

Deno.test("topic routes: create, list, describe, alter, delete", async () => {
  await using t = await openTestBroker();
  let res = await t.call("POST", "/v1/topics", {
    name: "orders",
    partitions: 2,
    configs: { "retention.ms": "60000" },
  });
  assert.equal(res.status, 201);
  assert.equal(res.body.name, "orders");
  assert.equal(res.body.replicationFactor, 1);
  assert.deepEqual(res.body.configs, { "retention.ms": "60000" });
  assert.equal(typeof res.body.topicId, "string");
  assert.deepEqual(res.body.partitions[1], {
    partition: 1,
    leader: 1,
    replicas: [1],
    isr: [1],
    leaderEpoch: 0,
    logStartOffset: 0,
    highWatermark: 0,
    logEndOffset: 0,
    logFailure: null,
  });

  res = await t.call("POST", "/v1/topics", { name: "audit" });
  assert.equal(res.status, 201);
  assert.equal(res.body.partitions.length, 1, "partitions default to 1");

  res = await t.call("GET", "/v1/topics");
  assert.deepEqual(res.body, {
    topics: [
      { name: "audit", partitions: 1, replicationFactor: 1 },
      { name: "orders", partitions: 2, replicationFactor: 1 },
    ],
  });

  res = await t.call("PATCH", "/v1/topics/orders", {
    partitions: 3,
    configs: { "retention.ms": null, "segment.bytes": "1048576" },
  });
  assert.equal(res.status, 200);
  assert.equal(res.body.partitions.length, 3);
  assert.deepEqual(res.body.configs, { "segment.bytes": "1048576" });
  // The new partition takes records at once.
  res = await t.call("POST", "/v1/topics/orders/records", {
    records: [{ value: "v", partition: 2 }],
  });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.offsets.map((o: { offset: number }) => o.offset), [0]);

  res = await t.call("GET", "/v1/topics/orders");
  assert.equal(res.body.partitions[2].highWatermark, 1);

  res = await t.call("DELETE", "/v1/topics/orders");
  assert.equal(res.status, 204);
  assert.equal(res.body, null);
  res = await t.call("GET", "/v1/topics/orders");
  assert.equal(res.status, 404);
  assert.equal(res.body.error.code, "UNKNOWN_TOPIC_OR_PARTITION");
  // Its data is gone from disk.
  const dirs = [];
  for await (const e of Deno.readDir(t.dataDir)) if (e.isDirectory) dirs.push(e.name);
  assert.deepEqual(dirs, ["audit-0"]);
});

Deno.test("topic routes: every bad request gets its status and code and changes nothing", async () => {
  await using t = await openTestBroker();
  assert.equal((await t.call("POST", "/v1/topics", { name: "taken" })).status, 201);
  const cases: [string, string, unknown, number, string, Record<string, string>?][] = [
    ["POST", "/v1/topics", { name: "taken" }, 409, "TOPIC_ALREADY_EXISTS"],
    ["POST", "/v1/topics", {}, 400, "INVALID_REQUEST"],
    ["POST", "/v1/topics", { name: 7 }, 400, "INVALID_REQUEST"],
    ["POST", "/v1/topics", { name: "a/b" }, 400, "INVALID_TOPIC_EXCEPTION"],
    ["POST", "/v1/topics", { name: ".." }, 400, "INVALID_TOPIC_EXCEPTION"],
    ["POST", "/v1/topics", { name: "x".repeat(250) }, 400, "INVALID_TOPIC_EXCEPTION"],
    ["POST", "/v1/topics", { name: "n", partitions: 0 }, 400, "INVALID_PARTITIONS"],
    ["POST", "/v1/topics", { name: "n", partitions: 2.5 }, 400, "INVALID_PARTITIONS"],
    ["POST", "/v1/topics", { name: "n", partitions: 100000 }, 400, "INVALID_PARTITIONS"],
    ["POST", "/v1/topics", { name: "n", partitions: "3" }, 400, "INVALID_REQUEST"],
    ["POST", "/v1/topics", { name: "n", replicationFactor: 0 }, 400, "INVALID_REPLICATION_FACTOR"],
    ["POST", "/v1/topics", { name: "n", replicationFactor: 3 }, 400, "INVALID_REPLICATION_FACTOR"],
    ["POST", "/v1/topics", { name: "n", configs: { "retention.ms": 5 } }, 400, "INVALID_CONFIG"],
    ["POST", "/v1/topics", { name: "n", configs: { "bogus": "1" } }, 400, "INVALID_CONFIG"],
    ["POST", "/v1/topics", { name: "n", configs: "x" }, 400, "INVALID_REQUEST"],
    ["POST", "/v1/topics", { name: "n", extra: 1 }, 400, "INVALID_REQUEST"],
    ["POST", "/v1/topics", "{not json", 400, "INVALID_REQUEST", {
      "content-type": "application/json",
    }],
    ["POST", "/v1/topics", "[1,2]", 400, "INVALID_REQUEST", { "content-type": "application/json" }],
    ["POST", "/v1/topics", "name=n", 415, "UNSUPPORTED_MEDIA_TYPE", {
      "content-type": "application/x-www-form-urlencoded",
    }],
    ["GET", "/v1/topics/missing", undefined, 404, "UNKNOWN_TOPIC_OR_PARTITION"],
    ["GET", "/v1/topics/bad%20name", undefined, 400, "INVALID_TOPIC_EXCEPTION"],
    ["PATCH", "/v1/topics/missing", { partitions: 2 }, 404, "UNKNOWN_TOPIC_OR_PARTITION"],
    ["PATCH", "/v1/topics/taken", { partitions: 0 }, 400, "INVALID_PARTITIONS"],
    ["PATCH", "/v1/topics/taken", { partitions: "2" }, 400, "INVALID_REQUEST"],
    ["PATCH", "/v1/topics/taken", { configs: { "segment.bytes": "1" } }, 400, "INVALID_CONFIG"],
    ["PATCH", "/v1/topics/taken", { configs: null }, 400, "INVALID_REQUEST"],
    ["PATCH", "/v1/topics/taken", { name: "other" }, 400, "INVALID_REQUEST"],
    ["DELETE", "/v1/topics/missing", undefined, 404, "UNKNOWN_TOPIC_OR_PARTITION"],
    ["GET", "/v1/nothing-here", undefined, 404, "NOT_FOUND"],
  ];
  for (const [method, path, body, status, code, headers] of cases) {
    const res = await t.call(method, path, body, headers);
    const what = `${method} ${path} ${typeof body === "string" ? body : JSON.stringify(body)}`;
    assert.equal(res.status, status, what);
    assert.equal(res.body.error.code, code, what);
    assert.equal(typeof res.body.error.message, "string");
    assert.ok(!res.body.error.message.includes("\n"), `one sentence: ${res.body.error.message}`);
    assert.ok(!res.body.error.message.includes(t.dataDir), "no paths in messages");
  }
  // PATCH with more partitions than before fails for decreasing; the topic is unchanged.
  const res = await t.call("GET", "/v1/topics/taken");
  assert.equal(res.body.partitions.length, 1);
  assert.deepEqual(res.body.configs, {});
  assert.deepEqual(
    (await t.call("GET", "/v1/topics")).body.topics.map((x: { name: string }) => x.name),
    [
      "taken",
    ],
  );
});

Deno.test("topic routes: a body over max.request.bytes gets 413 RECORD_LIST_TOO_LARGE", async () => {
  await using t = await openTestBroker({ config: { maxRequestBytes: 1024 } });
  const res = await t.call("POST", "/v1/topics", {
    name: "big",
    configs: {},
    pad: "x".repeat(2000),
  });
  assert.equal(res.status, 413);
  assert.equal(res.body.error.code, "RECORD_LIST_TOO_LARGE");
  assert.equal((await t.call("GET", "/v1/topics")).body.topics.length, 0);
});

Deno.test("topic and group routes: a legal-size body of too many JSON objects gets 413 before it is parsed (issue 14)", async () => {
  await using t = await openTestBroker();
  // 4 MiB of empty objects, under max.request.bytes: JSON.parse of it held the loop for seconds.
  const many = `{"name":"many","configs":{"x":[${new Array(1_000_000).fill("{}").join(",")}]}}`;
  const res = await t.call("POST", "/v1/topics", many, { "content-type": "application/json" });
  assert.equal(res.status, 413, JSON.stringify(res.body));
  assert.equal(res.body.error.code, "RECORD_LIST_TOO_LARGE");
  assert.match(res.body.error.message, /more than 50000 JSON objects and arrays/);
  assert.equal((await t.call("GET", "/v1/topics")).body.topics.length, 0);
  const commit = await t.call(
    "POST",
    "/v1/groups/g/offsets",
    `{"offsets":[${new Array(60_000).fill('{"topic":"t","partition":0,"offset":1}').join(",")}]}`,
    { "content-type": "application/json" },
  );
  assert.equal(commit.status, 413, JSON.stringify(commit.body).slice(0, 200));
  // A body with fewer containers is parsed as before.
  const ok = await t.call("POST", "/v1/topics", { name: "fine", configs: {} });
  assert.equal(ok.status, 201);
});

Deno.test("GET /healthz and /v1/cluster describe the broker", async () => {
  await using t = await openTestBroker();
  let res = await t.call("GET", "/healthz");
  assert.deepEqual(res.body, {
    status: "ok",
    brokerId: 1,
    role: "broker",
    kv: { reachable: true, unreachableSince: null, oldestPendingMs: 0 },
  });
  res = await t.call("GET", "/v1/cluster");
  assert.equal(res.body.clusterId, t.broker.clusterId);
  assert.equal(res.body.controllerId, 1);
  assert.deepEqual(
    res.body.brokers.map((b: Record<string, unknown>) => [b.id, b.url, b.role, b.alive]),
    [[1, "http://broker-1.test", "broker", true]],
  );
});

Deno.test("CORS: browsers on other origins may call the API and read the Rill-* headers", async () => {
  await using t = await openTestBroker();
  const pre = await t.app.request("/v1/topics", {
    method: "OPTIONS",
    headers: {
      origin: "https://app.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type",
    },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "*");
  assert.match(pre.headers.get("access-control-allow-methods") ?? "", /POST/);
  const res = await t.app.request("/healthz", { headers: { origin: "https://app.example" } });
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.match(res.headers.get("access-control-expose-headers") ?? "", /Rill-Next-Offset/);
  await res.body?.cancel();
  // Error answers carry them too, so browser code can read the error body.
  const missing = await t.app.request("/v1/topics/nope", { headers: { origin: "https://a.b" } });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("access-control-allow-origin"), "*");
  assert.equal((await missing.json()).error.code, "UNKNOWN_TOPIC_OR_PARTITION");
});
