/**
 * The pieces under /metrics and the logs, each against real parts: the KV wrapper on a real
 * (in-memory) Deno KV, the registry's naming rules, the broker's counters through its HTTP
 * app, and the logger's levels, formats and redaction.
 */
import assert from "node:assert/strict";
import { instrumentKv } from "../../src/coordination/kv_instrument.ts";
import {
  checkMetricName,
  countBatchRecords,
  labelText,
  Metrics,
} from "../../src/observability/metrics.ts";
import { Logger, redact } from "../../src/observability/log.ts";
import { connectionCounter, establishedConnections } from "../../src/observability/connections.ts";
import { encodeBatch } from "../../src/protocol/record_batch.ts";
import { openTestBroker } from "../http/_app.ts";

Deno.test("instrumentKv reports every operation with its kind and outcome", async () => {
  const seen: string[] = [];
  const raw = await Deno.openKv(":memory:");
  const kv = instrumentKv(raw, (op, seconds, outcome) => {
    assert.ok(seconds >= 0);
    seen.push(`${op}:${outcome}`);
  });
  try {
    await kv.set(["a"], 1);
    const entry = await kv.get(["a"]);
    await kv.getMany([["a"], ["b"]]);
    for await (const _ of kv.list({ prefix: [] })) { /* drain */ }
    const refused = await kv.atomic().check({ key: ["a"], versionstamp: null }).set(["a"], 2)
      .commit();
    assert.equal(refused.ok, false);
    const done = await kv.atomic().check(entry).set(["a"], 3).commit();
    assert.equal(done.ok, true);
    await kv.delete(["a"]);
    assert.equal((await raw.get(["a"])).value, null, "the wrapper acts on the real KV");
    assert.deepEqual(seen, [
      "set:ok",
      "get:ok",
      "get_many:ok",
      "list:ok",
      "commit:conflict",
      "commit:ok",
      "delete:ok",
    ]);
  } finally {
    raw.close();
  }
});

Deno.test("metric names follow rill_ / _total / unit conventions", () => {
  checkMetricName("rill_kafka_requests_total", "counter");
  checkMetricName("rill_ws_connections", "gauge");
  assert.throws(() => checkMetricName("kafka_requests_total", "counter"), /rill_/);
  assert.throws(() => checkMetricName("rill_kafka_requests", "counter"), /_total/);
  assert.throws(() => checkMetricName("rill_open_total", "gauge"), /Only counters/);
  const m = new Metrics({ process: false });
  assert.throws(() => m.counter({ name: "rill_bad", help: "x" }), /_total/);
});

Deno.test("a table renders its rows as text: escaped labels, NaN left out, names unique", async () => {
  const m = new Metrics({ process: false });
  const rows: [string, string, number, number][] = [
    ['we"ird\\name\n', "0", 5, NaN],
    ["plain", "1", 7, 1.5],
  ];
  m.table({
    families: [
      { name: "rill_test_a", help: "A." },
      { name: "rill_test_b", help: "B." },
    ],
    collect: (row) => {
      for (const [g, p, a, b] of rows) row(labelText(["group", "partition"], [g, p]), [a, b]);
    },
  });
  const text = await m.render();
  assert.ok(text.includes("# HELP rill_test_a A.\n# TYPE rill_test_a gauge\n"));
  assert.ok(text.includes('rill_test_a{group="we\\"ird\\\\name\\n",partition="0"} 5\n'));
  assert.ok(text.includes('rill_test_b{group="plain",partition="1"} 1.5\n'));
  assert.equal(text.match(/^rill_test_b/gm)?.length, 1, "the NaN series is left out");
  assert.throws(() => m.gauge({ name: "rill_test_a", help: "x", collect: () => {} }), /declared/);
  assert.throws(() => m.table({ families: [{ name: "rill_requests_total", help: "x" }] } as never));
  // A row that disappears is gone at the next scrape.
  rows.pop();
  assert.ok(!(await m.render()).includes('group="plain"'));
});

Deno.test("process metrics: the event-loop delay gauges show a blocked loop", async () => {
  const m = new Metrics();
  try {
    await m.render(); // starts a new window
    const until = performance.now() + 400;
    while (performance.now() < until) { /* block the event loop */ }
    // The sampler's overdue tick runs as soon as the loop is free, before this timer.
    await new Promise((r) => setTimeout(r, 150));
    const text = await m.render();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
    // At least the block less one sampling period (100 ms).
    assert.ok(value("rill_nodejs_eventloop_lag_max_seconds") >= 0.29, text);
    assert.ok(value("rill_process_open_fds") > 2);
    assert.ok(value("rill_process_resident_memory_bytes") > 1e6);
  } finally {
    m.close();
  }
});

Deno.test({
  name: "establishedConnections counts the accepted sockets of a port; the counter caches it",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    const count = connectionCounter(port, 60_000);
    assert.equal(await count(), 0);
    const clients = await Promise.all(
      [1, 2, 3].map(() => Deno.connect({ hostname: "127.0.0.1", port })),
    );
    const accepted = await Promise.all(clients.map(() => l.accept()));
    try {
      assert.equal(await establishedConnections(port), 3);
      assert.equal(await count(), 0, "the cached count is kept until it is 60 s old");
    } finally {
      for (const c of [...clients, ...accepted]) c.close();
      l.close();
    }
  },
});

Deno.test("countBatchRecords reads record counts from batch headers", () => {
  const a = encodeBatch([{ value: new Uint8Array(3) }, { value: new Uint8Array(4) }]);
  const b = encodeBatch([{ value: new Uint8Array(5) }]);
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  assert.equal(countBatchRecords(both), 3);
  assert.equal(countBatchRecords(new Uint8Array(0)), 0);
  // A view into a larger buffer (as a read's bytes are), and counts past one byte.
  const many = encodeBatch(Array.from({ length: 300 }, () => ({ value: new Uint8Array(1) })));
  const inside = new Uint8Array(7 + many.length + b.length + 5);
  inside.set(many, 7);
  inside.set(b, 7 + many.length);
  assert.equal(countBatchRecords(inside.subarray(7, 7 + many.length + b.length)), 301);
});

Deno.test("a broker's /metrics counts produce and fetch per topic and partition gauges", async () => {
  await using t = await openTestBroker();
  assert.equal((await t.call("POST", "/v1/topics", { name: "m", partitions: 2 })).status, 201);
  const produced = await t.call("POST", "/v1/topics/m/records?acks=1", {
    records: [{ value: "a", partition: 0 }, { value: "bb", partition: 0 }, {
      value: "c",
      partition: 1,
    }],
  });
  assert.equal(produced.status, 200);
  const fetched = await t.call("GET", "/v1/topics/m/partitions/0/records?offset=0");
  assert.equal(fetched.body.records.length, 2);
  assert.equal((await t.call("GET", "/v1/topics/m/partitions/9/records?offset=0")).status, 404);
  const res = await t.app.request("/metrics");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
  const text = await res.text();
  const value = (series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(series + " "));
    assert.ok(line, `${series} is exposed`);
    return Number(line.slice(series.length + 1));
  };
  assert.equal(value('rill_topic_in_records_total{topic="m"}'), 3);
  assert.equal(value('rill_topic_out_records_total{topic="m"}'), 2);
  assert.ok(value('rill_topic_in_bytes_total{topic="m"}') > 0);
  assert.equal(value('rill_produce_request_duration_seconds_count{api="http",acks="1"}'), 1);
  assert.equal(value('rill_fetch_request_duration_seconds_count{api="http",kind="consumer"}'), 2);
  assert.equal(value('rill_partition_log_end_offset{topic="m",partition="0"}'), 2);
  assert.equal(value('rill_partition_high_watermark{topic="m",partition="1"}'), 1);
  assert.equal(value('rill_partition_under_replicated{topic="m",partition="0"}'), 0);
  assert.equal(value("rill_partitions_led"), 2);
  assert.equal(value('rill_request_errors_total{api="http",code="UNKNOWN_TOPIC_OR_PARTITION"}'), 1);
  assert.ok(value('rill_kv_operation_duration_seconds_count{op="commit"}') >= 1);
});

Deno.test("Logger: levels filter, text and JSON lines, secrets masked", () => {
  const lines: string[] = [];
  const log = new Logger({
    format: "json",
    level: "info",
    brokerId: 3,
    role: "broker",
    write: (l) => lines.push(l),
    now: () => 0,
  });
  log.addSecret("the-cluster-secret-value");
  log.debug("not written");
  log.warn("fetch failed with the-cluster-secret-value", {
    topic: "t",
    partition: 2,
    code: "NOT_LEADER_OR_FOLLOWER",
    apiKey: "rk_0123456789abcdef.zzz",
  });
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]), {
    time: "1970-01-01T00:00:00.000Z",
    level: "warn",
    broker: 3,
    role: "broker",
    msg: "fetch failed with [redacted]",
    topic: "t",
    partition: 2,
    code: "NOT_LEADER_OR_FOLLOWER",
    apiKey: "[redacted]",
  });
  const text: string[] = [];
  new Logger({ brokerId: 1, role: "follower", write: (l) => text.push(l), now: () => 0 })
    .info("copied", { topic: "t", partition: 0 });
  assert.equal(
    text[0],
    "1970-01-01T00:00:00.000Z INFO  rill follower 1: copied  topic=t partition=0",
  );
  assert.equal(
    redact("Authorization: Bearer rk_0123456789abcdef.s3cr3t and rb_abcDEF1234567890abcdefXYZ"),
    "Authorization: Bearer [redacted] and rb_[redacted]",
  );
  assert.equal(redact("key rk_0123456789abcdef.s3cr3t"), "key rk_0123456789abcdef.[redacted]");
});
