/**
 * The changelog topics a streams application creates are compacted
 * (`cleanup.policy=compact`, `min.compaction.lag.ms` a day), so that they keep each key's
 * latest value and stay bounded; repartition topics are not.
 */
import assert from "node:assert/strict";
import { Rill, Serdes, StreamsBuilder, TimeWindows } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";

Deno.test("a streams application creates its changelog topics compacted", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  await rill.admin().createTopics({
    topics: [{ topic: "lines", numPartitions: 2 }, { topic: "counts", numPartitions: 2 }],
  });
  await rill.producer().send({
    topic: "lines",
    messages: ["a b", "b c", "a a"].map((value) => ({ value })),
  });
  const builder = new StreamsBuilder();
  builder.stream<string, string>("lines")
    .flatMapValues((line) => line.split(" "))
    .groupBy((_key, word) => word)
    .count({ name: "word-counts" })
    .toStream()
    .to("counts");
  const app = rill.streams({ applicationId: "wc", fromBeginning: true, stopAtEnd: true })
    .build(builder);
  await app.start();
  await app.finished();
  const topics = await (await fetch(`${broker.url}/v1/topics`)).json();
  const names: string[] = (topics.topics ?? topics).map((t: { name: string }) => t.name);
  const changelog = names.find((n) => n.endsWith("-changelog"));
  const repartition = names.find((n) => n.startsWith("wc-") && !n.endsWith("-changelog"));
  assert.equal(changelog, "wc-word-counts-changelog");
  const describe = async (name: string) =>
    (await (await fetch(`${broker.url}/v1/topics/${name}`)).json()).configs;
  // The last day stays uncompacted, so that a restore finds each key's committed value.
  assert.deepEqual(await describe(changelog!), {
    "cleanup.policy": "compact",
    "min.compaction.lag.ms": "86400000",
  });
  if (repartition) assert.equal((await describe(repartition))["cleanup.policy"], undefined);
});

Deno.test("a windowed store's changelog also deletes what is past its window, grace and a day", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  await rill.admin().createTopics({
    topics: [{ topic: "clicks", numPartitions: 1 }, { topic: "per-window", numPartitions: 1 }],
  });
  await rill.producer().send({ topic: "clicks", messages: [{ key: "a", value: "click" }] });
  const builder = new StreamsBuilder();
  builder.stream("clicks")
    .groupByKey()
    .windowedBy(TimeWindows.of(10_000).grace(5_000))
    .count({ name: "clicks-per-10s" })
    .toStream()
    .map((w, n) => [`${w.key}@${w.start}`, n])
    .to("per-window", { keySerde: Serdes.string, valueSerde: Serdes.number });
  const app = rill.streams({ applicationId: "win", fromBeginning: true, stopAtEnd: true })
    .build(builder);
  await app.start();
  await app.finished();
  const res = await fetch(`${broker.url}/v1/topics/win-clicks-per-10s-changelog`);
  assert.deepEqual((await res.json()).configs, {
    "cleanup.policy": "compact,delete",
    "min.compaction.lag.ms": "86400000",
    "retention.ms": String(10_000 + 5_000 + 86_400_000),
  });
});
