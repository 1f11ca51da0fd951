/**
 * Windowed aggregation on event time: tumbling windows with a grace period, records out of
 * order inside the grace period (counted) and beyond it (dropped and counted as late), and
 * hopping windows' assignment.
 */
import assert from "node:assert/strict";
import { Rill, Serdes, StreamsBuilder, TimeWindows } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { readTopic } from "./_streams_helpers.ts";

Deno.test("TimeWindows.windowsFor() gives tumbling and hopping windows", () => {
  assert.deepEqual(TimeWindows.of(10_000).windowsFor(12_000), [10_000]);
  assert.deepEqual(TimeWindows.of(10_000).advanceBy(5_000).windowsFor(12_000), [5_000, 10_000]);
  assert.deepEqual(TimeWindows.of(10_000).advanceBy(5_000).windowsFor(3_000), [0]);
  assert.throws(() => TimeWindows.of(0), RangeError);
  assert.throws(() => TimeWindows.of(10).advanceBy(20), RangeError);
});

Deno.test("windowed count takes late records within the grace period and drops later ones", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  await rill.admin().createTopics({
    topics: [{ topic: "clicks", numPartitions: 1 }, { topic: "per-window", numPartitions: 1 }],
  });
  const clicks: [string, number][] = [
    ["a", 1_000], // [0,10s) → 1
    ["a", 12_000], // [10s,20s) → 1; stream time 12s
    ["a", 3_000], // late, but [0,10s) closes at 10s + 5s grace > 12s → 2
    ["a", 16_000], // [10s,20s) → 2; stream time 16s
    ["a", 4_000], // [0,10s) is closed (its end 10s ≤ stream time 16s - grace 5s): dropped
    ["b", 9_000], // dropped too
    ["a", 25_000], // [20s,30s) → 1
  ];
  await rill.producer().send({
    topic: "clicks",
    messages: clicks.map(([key, timestamp]) => ({ key, value: "click", timestamp })),
  });
  const builder = new StreamsBuilder();
  builder.stream("clicks")
    .groupByKey()
    .windowedBy(TimeWindows.of(10_000).grace(5_000))
    .count({ name: "clicks-per-10s" })
    .toStream()
    .map((w, n) => [`${w.key}@${w.start}`, n])
    .to("per-window", { keySerde: Serdes.string, valueSerde: Serdes.number });
  const app = rill.streams({ applicationId: "windows", fromBeginning: true, stopAtEnd: true })
    .build(builder);
  await app.start();
  await app.finished();
  const out = (await readTopic(broker.url, "per-window")).map((r) => [r.key, r.value]);
  assert.deepEqual(out, [
    ["a@0", "1"],
    ["a@10000", "1"],
    ["a@0", "2"],
    ["a@10000", "2"],
    ["a@20000", "1"],
  ]);
  assert.deepEqual(app.metrics().droppedLate, { "clicks-per-10s": 2 });
});
