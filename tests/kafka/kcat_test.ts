/**
 * kcat (librdkafka 2.0.2, Debian's package) against a real broker process through the
 * Kafka listener: metadata, produce with keys and headers, consume with CRC checks, and a
 * consumer group of two kcat processes splitting the partitions.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startBroker } from "../_helpers/broker_process.ts";
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
    assert.match(status.stdout, new RegExp(`Broker: 1\\t.*\\tKafka: ${broker.kafka}\\n`));
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
    "a compressed batch from kcat -z zstd is either stored and served whole, or refused (UNSUPPORTED_COMPRESSION_TYPE) with a log line and nothing stored",
  ignore: !KCAT,
  async fn() {
    await using broker = await startBroker();
    await createTopic(broker.url, "z", 1);
    // compressible records (librdkafka skips compression that does not pay)
    const values = Array.from({ length: 50 }, (_, i) => `${i}:` + "a".repeat(500));
    const p = await run("kcat", [
      "-b",
      broker.kafka!,
      "-P",
      "-t",
      "z",
      "-z",
      "zstd",
      "-X",
      "message.timeout.ms=3000",
    ], { stdin: values.join("\n") + "\n" });
    const d = await (await fetch(`${broker.url}/v1/topics/z`)).json();
    if (p.code !== 0) {
      // Refused: said so in the broker's log, nothing half-stored.
      assert.match(p.stderr, /compression|Delivery failed/i);
      assert.match(broker.stderr(), /refused a compressed batch for z-0/);
      assert.equal(d.partitions[0].highWatermark, 0);
    } else {
      // Stored (compression support): served back whole, CRC-checked.
      const c = await run("kcat", [
        "-b",
        broker.kafka!,
        "-C",
        "-t",
        "z",
        "-o",
        "beginning",
        "-e",
        "-X",
        "check.crcs=true",
        "-f",
        "%s\n",
      ]);
      assert.equal(c.stdout, values.join("\n") + "\n");
    }
  },
});
