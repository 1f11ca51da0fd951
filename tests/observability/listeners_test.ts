/**
 * The WebSocket endpoint's and the Kafka listener's request metrics, driven by real clients:
 * the client of mod.ts over its WebSocket transport, and kcat (librdkafka) against the Kafka
 * listener of a broker process. Each test reads /metrics as Prometheus would and checks the
 * series against what its clients did.
 */
import assert from "node:assert/strict";
import { Rill, RillError } from "../../mod.ts";
import { serveBroker } from "../ws/_served.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { createTopic, KCAT, run, spawn } from "../kafka/_kafka.ts";

/** The value of each series of a scrape, by its name and labels as written. */
async function scrape(url: string): Promise<(series: string) => number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return (series) => values.get(series);
}

/** Scrapes until `check` holds (a gauge read at scrape time following a socket's close). */
async function scrapeUntil(
  url: string,
  check: (v: (series: string) => number | undefined) => boolean,
): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check(await scrape(url))) {
    if (Date.now() > deadline) throw new Error("the metrics never showed the expected values");
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("WebSocket: produce and fetch frames counted by op, acks and error code; connections gauge", async () => {
  await using s = await serveBroker();
  await s.topic("t", 2);
  const rill = new Rill({ brokers: [s.url], transport: "ws" });
  const producer = rill.producer({ acks: 1 });
  for (let i = 0; i < 3; i++) {
    await producer.send({ topic: "t", messages: [{ value: `v${i}`, partition: i % 2 }] });
  }
  const all = rill.producer({ acks: -1 });
  await all.send({ topic: "t", messages: [{ value: "w", partition: 0 }] });
  // A partition that does not exist: the broker answers the frame with an error.
  await assert.rejects(
    all.send({ topic: "t", messages: [{ value: "x", partition: 7 }] }),
    (e) => e instanceof RillError && e.code === "UNKNOWN_TOPIC_OR_PARTITION",
  );
  // The default consumer reads through a push subscription; one with `minBytes: 2` long-polls
  // with fetch frames.
  const readAll = async (options: { minBytes?: number }) => {
    const consumer = rill.consumer({ maxWaitMs: 5000, ...options });
    await consumer.assign([
      { topic: "t", partition: 0, offset: "earliest" },
      { topic: "t", partition: 1, offset: "earliest" },
    ]);
    let seen = 0;
    let done!: () => void;
    const read = new Promise<void>((r) => done = r);
    await consumer.run({
      eachMessage: () => {
        if (++seen === 4) done();
      },
    });
    await read;
    return consumer;
  };
  const pushed = await readAll({});
  const polled = await readAll({ minBytes: 2 });
  const v = await scrape(s.url);
  assert.ok((v("rill_ws_connections") ?? 0) >= 1, "the client's connection is open");
  assert.equal(v('rill_produce_request_duration_seconds_count{api="ws",acks="1"}'), 3);
  assert.equal(v('rill_produce_request_duration_seconds_count{api="ws",acks="all"}'), 2);
  assert.equal(v('rill_requests_total{api="ws",route="produce",status="200"}'), 4);
  assert.equal(v('rill_requests_total{api="ws",route="produce",status="404"}'), 1);
  assert.equal(v('rill_request_errors_total{api="ws",code="UNKNOWN_TOPIC_OR_PARTITION"}'), 1);
  assert.ok((v('rill_requests_total{api="ws",route="subscribe",status="200"}') ?? 0) >= 1);
  assert.ok((v('rill_requests_total{api="ws",route="fetch",status="200"}') ?? 0) >= 1);
  assert.ok(
    (v('rill_fetch_request_duration_seconds_count{api="ws",kind="consumer"}') ?? 0) >= 1,
  );
  // The records went through the broker's produce path: counted once per batch, per topic.
  assert.equal(v('rill_topic_in_records_total{topic="t"}'), 4);
  assert.equal(
    v('rill_requests_total{api="http",route="/v1/topics/:topic/records",status="200"}'),
    undefined,
    "nothing was produced over HTTP",
  );
  await pushed.stop();
  await polled.stop();
  await producer.disconnect();
  await all.disconnect();
  await scrapeUntil(s.url, (x) => x("rill_ws_connections") === 0);
});

Deno.test({
  name:
    "Kafka listener: kcat's requests counted by API key, acks and error code; connections gauge",
  ignore: !KCAT,
  async fn() {
    await using broker = await startBroker();
    await createTopic(broker.url, "k", 1);
    const p = await run("kcat", ["-b", broker.kafka!, "-P", "-t", "k"], {
      stdin: "a\nb\nc\n",
    });
    assert.equal(p.code, 0, p.stderr);
    const c = await run("kcat", ["-b", broker.kafka!, "-C", "-t", "k", "-o", "beginning", "-e"]);
    assert.equal(c.stdout, "a\nb\nc\n", c.stderr);
    // Metadata for a topic that does not exist: answered with the error for that topic.
    const missing = await run("kcat", ["-b", broker.kafka!, "-L", "-t", "nosuch"]);
    assert.match(missing.stdout + missing.stderr, /nosuch/);
    const v = await scrape(broker.url);
    assert.ok((v('rill_requests_total{api="kafka",route="Produce",status="ok"}') ?? 0) >= 1);
    assert.ok((v('rill_requests_total{api="kafka",route="Fetch",status="ok"}') ?? 0) >= 1);
    assert.ok((v('rill_requests_total{api="kafka",route="ApiVersions",status="ok"}') ?? 0) >= 3);
    assert.ok((v('rill_requests_total{api="kafka",route="Metadata",status="ok"}') ?? 0) >= 2);
    assert.ok((v('rill_requests_total{api="kafka",route="Metadata",status="error"}') ?? 0) >= 1);
    assert.ok(
      (v('rill_request_errors_total{api="kafka",code="UNKNOWN_TOPIC_OR_PARTITION"}') ?? 0) >= 1,
    );
    // kcat produces with acks=all (librdkafka's default) and consumes as a consumer.
    assert.equal(
      v('rill_produce_request_duration_seconds_count{api="kafka",acks="all"}'),
      v('rill_requests_total{api="kafka",route="Produce",status="ok"}'),
    );
    assert.ok(
      (v('rill_fetch_request_duration_seconds_count{api="kafka",kind="consumer"}') ?? 0) >= 1,
    );
    assert.equal(v('rill_topic_in_records_total{topic="k"}'), 3);
    await scrapeUntil(broker.url, (x) => x("rill_kafka_connections") === 0);

    // A request for an API the listener does not serve closes its connection.
    const [host, port] = broker.kafka!.split(":");
    const conn = await Deno.connect({ hostname: host, port: Number(port) });
    const frame = new DataView(new ArrayBuffer(14));
    frame.setInt32(0, 10); // size
    frame.setInt16(4, 99); // API key 99
    frame.setInt16(6, 0); // version
    frame.setInt32(8, 1); // correlation id
    frame.setInt16(12, -1); // no client id
    await conn.write(new Uint8Array(frame.buffer));
    assert.equal(await conn.read(new Uint8Array(16)), null, "the broker closed the connection");
    conn.close();
    const after = await scrape(broker.url);
    assert.equal(after('rill_requests_total{api="kafka",route="unknown",status="closed"}'), 1);
    assert.equal(after('rill_request_errors_total{api="kafka",code="INVALID_REQUEST"}'), 1);

    // A consumer that stays connected shows in the connections gauge until it leaves.
    const tail = spawn("kcat", ["-b", broker.kafka!, "-C", "-t", "k", "-o", "beginning"]);
    try {
      await tail.waitLine((l) => l.includes("Reached end of topic k"));
      await scrapeUntil(broker.url, (x) => (x("rill_kafka_connections") ?? 0) >= 1);
    } finally {
      tail.kill("SIGKILL");
      await tail.status;
    }
    await scrapeUntil(broker.url, (x) => x("rill_kafka_connections") === 0);
  },
});
