/**
 * kcat (librdkafka 2.0.2, Debian's package) against a real broker process through the
 * Kafka listener: metadata, produce with keys and headers, consume with CRC checks, and a
 * consumer group of two kcat processes splitting the partitions.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startBroker } from "../_helpers/broker_process.ts";
import { Rill } from "../../mod.ts";
import { readBatchHeader, splitBatches } from "../../src/protocol/record_batch.ts";
import { createTopic, KCAT, run, spawn } from "./_kafka.ts";

Deno.test({
  name: "kcat -L lists the broker's advertised Kafka address and the topics' partitions",
  ignore: !KCAT,
  async fn() {
    await using broker = await startBroker();
    assert.ok(broker.kafka, "the broker prints its Kafka address");
    await createTopic(broker.url, "orders", 3);
    const r = await run("kcat", ["-b", broker.kafka!, "-L", "-J"]);
    assert.equal(r.code, 0, r.stderr);
    const meta = JSON.parse(r.stdout);
    assert.deepEqual(meta.brokers, [{ id: 1, name: broker.kafka }]);
    // The cluster listing tells the same address.
    const cluster = await (await fetch(`${broker.url}/v1/cluster`)).json();
    assert.equal(cluster.brokers[0].kafka, broker.kafka);
    const status = await run(Deno.execPath(), [
      "run",
      "-A",
      new URL("../../cli.ts", import.meta.url).pathname,
      "cluster",
      "status",
      "--broker",
      broker.url,
    ]);
    assert.match(status.stdout, new RegExp(`Broker: 1\\t.*\\tKafka: ${broker.kafka}[\\t\\n]`));
    const t = meta.topics.find((x: { topic: string }) => x.topic === "orders");
    assert.equal(t.partitions.length, 3);
    for (const p of t.partitions) {
      assert.equal(p.leader, 1);
      assert.deepEqual(p.isrs, [{ id: 1 }]);
    }
    // The ApiVersions v3 probe is answered in v3: no fallback, no protocol error.
    const d = await run("kcat", ["-b", broker.kafka!, "-L", "-d", "protocol"]);
    assert.equal(d.code, 0);
    assert.doesNotMatch(d.stderr, /PROTOERR|UNSUPPORTED_VERSION|Failed to parse/);
  },
});

Deno.test({
  name:
    "kcat -P with keys and headers, then -C -o beginning with CRC checks, returns the same records",
  ignore: !KCAT,
  async fn() {
    await using broker = await startBroker();
    await createTopic(broker.url, "t1", 1);
    const p = await run("kcat", [
      "-b",
      broker.kafka!,
      "-P",
      "-t",
      "t1",
      "-K:",
      "-H",
      "a=b",
      "-H",
      "c=d",
    ], {
      stdin: "k1:v1\nk2:v2\n:empty-key\n",
    });
    assert.equal(p.code, 0, p.stderr);
    const c = await run("kcat", [
      "-b",
      broker.kafka!,
      "-C",
      "-t",
      "t1",
      "-o",
      "beginning",
      "-e",
      "-X",
      "check.crcs=true",
      "-f",
      "%k|%s|%h|%p|%o\n",
    ]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, "k1|v1|a=b,c=d|0|0\nk2|v2|a=b,c=d|0|1\n|empty-key|a=b,c=d|0|2\n");
    // The records are the broker's: the HTTP API reads the same offsets.
    const res = await fetch(`${broker.url}/v1/topics/t1/partitions/0/records?offset=0`);
    const body = await res.json();
    assert.deepEqual(body.records.map((r: { key: string | null }) => r.key), ["k1", "k2", ""]);
    assert.deepEqual(body.records[0].headers, { a: "b", c: "d" });
    // -o -1 reads the last one only; -o end waits for none and exits.
    const last = await run("kcat", [
      "-b",
      broker.kafka!,
      "-C",
      "-t",
      "t1",
      "-o",
      "-1",
      "-e",
      "-f",
      "%s\n",
    ]);
    assert.equal(last.stdout, "empty-key\n");
  },
});

Deno.test({
  name: "kcat -P to a topic that does not exist fails and creates nothing",
  ignore: !KCAT,
  async fn() {
    await using broker = await startBroker();
    const p = await run("kcat", [
      "-b",
      broker.kafka!,
      "-P",
      "-t",
      "nope",
      "-X",
      "message.timeout.ms=3000",
    ], {
      stdin: "x\n",
    });
    assert.notEqual(p.code, 0);
    // librdkafka keeps waiting for the topic to appear until the message times out.
    assert.match(p.stderr, /Delivery failed|Unknown topic/i);
    const res = await fetch(`${broker.url}/v1/topics/nope`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
  },
});

Deno.test({
  name:
    "two kcat -G consumers split a topic's partitions, and the survivor takes all when one leaves",
  ignore: !KCAT,
  async fn() {
    await using broker = await startBroker();
    await createTopic(broker.url, "t4", 4);
    const args = [
      "-b",
      broker.kafka!,
      "-G",
      "g1",
      "t4",
      "-u",
      "-f",
      "%p:%s\n",
      "-X",
      "auto.offset.reset=earliest",
      "-X",
      "session.timeout.ms=6000",
      "-X",
      "heartbeat.interval.ms=500",
    ];
    const assigned = (line: string) => /rebalanced .*assigned:/.test(line);
    const parts = (line: string) => [...line.matchAll(/t4 \[(\d)\]/g)].map((m) => Number(m[1]));
    await using a = spawn("kcat", args);
    await a.waitLine((l) => assigned(l) && parts(l).length === 4);
    await using b = spawn("kcat", args);
    // After the second joins, each holds two partitions.
    const lastAssigned = (p: typeof a) => parts(p.lines.filter(assigned).at(-1) ?? "");
    const bLine = await b.waitLine(assigned);
    await a.waitLine((l) =>
      assigned(l) && parts(l).length < 4 && a.lines.filter(assigned).length >= 2
    );
    const pa = lastAssigned(a), pb = parts(bLine);
    assert.equal(pa.length + pb.length, 4, `a=${pa} b=${pb}`);
    assert.deepEqual([...pa, ...pb].sort(), [0, 1, 2, 3]);
    // Records produced now are read by both, each exactly once.
    const produced = Array.from({ length: 40 }, (_, i) => `m${i}`);
    for (let p = 0; p < 4; p++) {
      const r = await run("kcat", ["-b", broker.kafka!, "-P", "-t", "t4", "-p", String(p)], {
        stdin: produced.filter((_, i) => i % 4 === p).join("\n") + "\n",
      });
      assert.equal(r.code, 0, r.stderr);
    }
    const seen = () =>
      [...a.lines, ...b.lines].filter((l) => /^\d:m\d+$/.test(l)).map((l) => l.slice(2));
    await a.waitLine(() => seen().length >= 40, 30_000).catch(() => {});
    assert.deepEqual(seen().sort(), [...produced].sort());
    // The group is visible through the HTTP API with both members and their assignment.
    const g = await (await fetch(`${broker.url}/v1/groups/g1`)).json();
    assert.equal(g.members.length, 2);
    assert.deepEqual(
      g.members.flatMap((m: { assignment: { partition: number }[] }) =>
        m.assignment.map((x) => x.partition)
      ).sort(),
      [0, 1, 2, 3],
    );
    // b leaves (SIGTERM: kcat closes the consumer, which sends LeaveGroup): a gets all 4.
    const before = a.lines.filter(assigned).length;
    b.kill("SIGTERM");
    await b.status;
    await a.waitLine((l) =>
      assigned(l) && parts(l).length === 4 && a.lines.filter(assigned).length > before
    );
  },
});

Deno.test({
  name:
    "librdkafka (kcat) reads the gzip, snappy, lz4 and zstd batches mod.ts wrote (CRC-checked), and mod.ts reads kcat's own compressed batches",
  ignore: !KCAT,
  async fn() {
    await using broker = await startBroker();
    const rill = new Rill({ brokers: [broker.url] });
    // compressible records (librdkafka skips compression that does not pay)
    const values = Array.from({ length: 50 }, (_, i) => `${i}:` + "a".repeat(500));
    for (const [codec, id] of [["gzip", 1], ["snappy", 2], ["lz4", 3], ["zstd", 4]] as const) {
      const topic = `z-${codec}`;
      await createTopic(broker.url, topic, 1);
      const p = await run("kcat", [
        "-b",
        broker.kafka!,
        "-P",
        "-t",
        topic,
        "-X",
        `compression.codec=${codec}`,
        "-X",
        "message.timeout.ms=5000",
      ], { stdin: values.join("\n") + "\n" });
      assert.equal(p.code, 0, `${codec}: ${p.stderr}`);
      const producer = rill.producer({ compression: codec });
      await producer.send({ topic, messages: values.map((value) => ({ value, partition: 0 })) });
      await producer.disconnect();
      const raw = await fetch(`${broker.url}/v1/topics/${topic}/partitions/0/records?offset=0`, {
        headers: { accept: "application/vnd.rill.batch" },
      });
      const codecs = splitBatches(new Uint8Array(await raw.arrayBuffer())).map((b) =>
        readBatchHeader(b).attributes & 7
      );
      // librdkafka < 2.11 compresses gzip, snappy and lz4 only for a broker whose Produce range
      // includes v0 (the listener advertises it for that reason), zstd from Produce v7.
      assert.equal(codecs[0], id, `librdkafka's own ${codec} batch: ${codecs}`);
      assert.equal(codecs[codecs.length - 1], id, `mod.ts's ${codec} batch: ${codecs}`);
      const c = await run("kcat", [
        "-b",
        broker.kafka!,
        "-C",
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-X",
        "check.crcs=true",
        "-f",
        "%s\n",
      ]);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(c.stdout, [...values, ...values].join("\n") + "\n", codec);
      const consumer = rill.consumer({ maxWaitMs: 500 });
      await consumer.assign([{ topic, partition: 0, offset: "earliest" }]);
      const got: string[] = [];
      for await (const m of consumer) {
        got.push(m.valueString()!);
        if (got.length === 100) break;
      }
      await consumer.disconnect();
      assert.deepEqual(got, [...values, ...values], codec);
    }
  },
});
