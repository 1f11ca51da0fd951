/**
 * Streams over compressed topics: the input batches are zstd and snappy (as the producer
 * wrote them), the output topic's `compression.type=lz4` makes the broker store what the
 * application writes as lz4; the application reads and writes them like any other.
 */
import assert from "node:assert/strict";
import { Rill, Serdes, StreamsBuilder } from "../../mod.ts";
import { readBatchHeader, splitBatches } from "../../src/protocol/record_batch.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { readTopic } from "./_streams_helpers.ts";

Deno.test("a streams application reads zstd and snappy batches and writes to an lz4 topic", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  const admin = rill.admin();
  await admin.createTopics({ topics: [{ topic: "events", numPartitions: 1 }] });
  await admin.createTopic({
    topic: "levels",
    numPartitions: 1,
    configEntries: [{ name: "compression.type", value: "lz4" }],
  });
  const events = Array.from({ length: 300 }, (_, i) => ({
    key: `host-${i % 4}`,
    value: JSON.stringify({ seq: i, level: ["INFO", "WARN", "ERROR"][i % 3] }),
    partition: 0,
  }));
  for (
    const [compression, part] of [["zstd", events.slice(0, 150)], [
      "snappy",
      events.slice(150),
    ]] as const
  ) {
    const producer = rill.producer({ compression });
    await producer.send({ topic: "events", messages: part });
    await producer.disconnect();
  }
  const codecsOf = async (topic: string) => {
    const res = await fetch(`${broker.url}/v1/topics/${topic}/partitions/0/records?offset=0`, {
      headers: { accept: "application/vnd.rill.batch" },
    });
    return splitBatches(new Uint8Array(await res.arrayBuffer())).map((b) =>
      readBatchHeader(b).attributes & 7
    );
  };
  assert.deepEqual([...new Set(await codecsOf("events"))].sort(), [2, 4]);

  const b = new StreamsBuilder();
  b.stream<string, { seq: number; level: string }>("events", {
    valueSerde: Serdes.json<{ seq: number; level: string }>(),
  })
    .mapValues((e) => `${e.seq}:${e.level}`, Serdes.string)
    .to("levels");
  const app = rill.streams({ applicationId: "levels", fromBeginning: true, stopAtEnd: true })
    .build(b);
  await app.start();
  await app.finished();
  const out = await readTopic(broker.url, "levels");
  assert.deepEqual(
    out.map((r) => `${r.key}=${r.value}`),
    events.map((e, i) => `${e.key}=${i}:${["INFO", "WARN", "ERROR"][i % 3]}`),
  );
  const stored = await codecsOf("levels");
  assert.ok(stored.length > 0 && stored.every((c) => c === 3), `stored as lz4: ${stored}`);
});
