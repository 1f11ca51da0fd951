/**
 * Past and future the same way: a bounded job (stopAtEnd) over a topic gives the same
 * result as the same application running live while the records arrive.
 */
import assert from "node:assert/strict";
import { Rill, Serdes, StreamsBuilder } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { latestPerKey, readTopic, waitFor } from "./_streams_helpers.ts";

function topology(output: string, totals: string): StreamsBuilder {
  const b = new StreamsBuilder();
  const sales = b.stream<string, number>("sales", { valueSerde: Serdes.number });
  sales.groupByKey().reduce((a, x) => a + x, { name: "totals" }).toStream().to(totals);
  sales.filter((_k, v) => v % 2 === 0).mapValues((v) => v * 10, Serdes.number).to(output);
  return b;
}

Deno.test("a bounded job over a topic gives the same result as the same app run live", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  const topics = ["sales", "live-even", "live-totals", "batch-even", "batch-totals"];
  await rill.admin().createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 3 })) });
  const producer = rill.producer();
  const messages = Array.from(
    { length: 3000 },
    (_, i) => ({ key: `shop${i % 17}`, value: String(i % 50) }),
  );

  // Live: the application runs first, the records arrive while it runs.
  const live = rill.streams({ applicationId: "sales-live" }).build(
    topology("live-even", "live-totals"),
  );
  await live.start();
  for (let i = 0; i < messages.length; i += 500) {
    await producer.send({ topic: "sales", messages: messages.slice(i, i + 500) });
  }
  await waitFor(() => live.metrics().processed === messages.length, "the live app to catch up");
  await live.close();

  // Batch: the same topology over the topic's past, stopping at its end.
  const batch = rill.streams({ applicationId: "sales-batch", fromBeginning: true, stopAtEnd: true })
    .build(topology("batch-even", "batch-totals"));
  await batch.start();
  await batch.finished();
  assert.equal(batch.metrics().processed, messages.length);

  const liveTotals = await latestPerKey(broker.url, "live-totals");
  assert.equal(liveTotals.size, 17);
  assert.deepEqual(await latestPerKey(broker.url, "batch-totals"), liveTotals);
  const evens = async (t: string) =>
    (await readTopic(broker.url, t)).map((r) => `${r.partition}/${r.key}=${r.value}`);
  const liveEvens = await evens("live-even");
  assert.equal(liveEvens.length, 1500);
  assert.deepEqual(await evens("batch-even"), liveEvens);
});
