/**
 * The stateless operators and the stream-table join against real topics: filter,
 * filterNot, map, mapValues, flatMap, flatMapValues, peek, branch, merge, to, toTable,
 * join and leftJoin; plus the application's input checks.
 */
import assert from "node:assert/strict";
import { partitionForKey, Rill, RillError, Serdes, StreamsBuilder } from "../../mod.ts";
import { startBroker } from "../_helpers/broker_process.ts";
import { readTopic, waitFor } from "./_streams_helpers.ts";

interface Order {
  user: string;
  amount: number;
}

Deno.test("stateless operators route, transform and merge records (bounded job)", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  const topics = ["orders", "big", "small", "merged", "items", "lengths"];
  await rill.admin().createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 2 })) });
  const orders: Order[] = [
    { user: "ann", amount: 150 },
    { user: "bob", amount: 20 },
    { user: "cy", amount: 0 },
    { user: "ann", amount: 300 },
  ];
  await rill.producer().send({
    topic: "orders",
    messages: orders.map((o) => ({ key: o.user, value: JSON.stringify(o) })),
  });
  const b = new StreamsBuilder();
  const json = Serdes.json<Order>();
  const s = b.stream<string, Order>("orders", { valueSerde: json });
  let peeked = 0;
  const [big, small] = s.peek(() => peeked++).filterNot((_k, o) => o.amount === 0).branch(
    (_k, o) => o.amount >= 100,
    () => true,
  );
  big.mapValues((o) => o.amount, Serdes.number).to("big");
  small.map((k, o) => [k.toUpperCase(), `${o.amount}`], {
    keySerde: Serdes.string,
    valueSerde: Serdes.string,
  })
    .to("small");
  big.merge(small).mapValues((o) => o.user, Serdes.string).to("merged");
  s.flatMap((k, o) => [[k, `${o.amount}`], [k, "end"]] as [string, string][], {
    keySerde: Serdes.string,
    valueSerde: Serdes.string,
  }).to("items");
  s.filter((_k, o) => o.amount > 0)
    .flatMapValues((o, key) => [o.user.length + key.length], Serdes.number) // reads the key
    .to("lengths");
  const app = rill.streams({ applicationId: "ops", fromBeginning: true, stopAtEnd: true }).build(b);
  await app.start();
  await app.finished();
  const values = async (t: string) =>
    (await readTopic(broker.url, t)).map((r) => `${r.key}=${r.value}`).sort();
  assert.deepEqual(await values("big"), ["ann=150", "ann=300"]);
  assert.deepEqual(await values("small"), ["BOB=20"]);
  assert.deepEqual(await values("merged"), ["ann=ann", "ann=ann", "bob=bob"]);
  assert.deepEqual(await values("items"), [
    "ann=150",
    "ann=300",
    "ann=end",
    "ann=end",
    "bob=20",
    "bob=end",
    "cy=0",
    "cy=end",
  ]);
  assert.deepEqual(await values("lengths"), ["ann=6", "ann=6", "bob=6"]);
  assert.equal(peeked, 4);
  // Keyed outputs go to Kafka's partition of their key, as the producer would put them.
  for (const r of await readTopic(broker.url, "big")) {
    assert.equal(r.partition, partitionForKey(new TextEncoder().encode(r.key!), 2));
  }
});

Deno.test("stream-table join and leftJoin look up the table's latest value", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  const topics = ["users", "clicks", "joined", "left-joined"];
  await rill.admin().createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 2 })) });
  const b = new StreamsBuilder();
  const users = b.table("users", {}, { name: "users-store" });
  const clicks = b.stream("clicks");
  clicks.join(users, (page, name) => `${name} saw ${page}`, Serdes.string).to("joined");
  clicks.leftJoin(users, (page, name) => `${name ?? "nobody"} saw ${page}`, Serdes.string)
    .to("left-joined");
  const app = rill.streams({ applicationId: "joins", fromBeginning: true }).build(b);
  await app.start();
  try {
    const producer = rill.producer();
    await producer.send({
      topic: "users",
      messages: [{ key: "u1", value: "Ann" }, { key: "u2", value: "Bob" }, {
        key: "u1",
        value: "Annie",
      }],
    });
    // The table must hold the users before clicks arrive (topics are read independently).
    await waitFor(() => {
      const e = app.storeEntries("users-store");
      return e.length === 2 && e.some((x) => x.value === "Annie");
    }, "the users table");
    await producer.send({
      topic: "clicks",
      messages: [{ key: "u1", value: "home" }, { key: "u3", value: "cart" }, {
        key: "u2",
        value: "faq",
      }],
    });
    await waitFor(async () => (await readTopic(broker.url, "left-joined")).length === 3, "joins");
    const values = async (t: string) => (await readTopic(broker.url, t)).map((r) => r.value).sort();
    assert.deepEqual(await values("joined"), ["Annie saw home", "Bob saw faq"]);
    assert.deepEqual(await values("left-joined"), [
      "Annie saw home",
      "Bob saw faq",
      "nobody saw cart",
    ]);
  } finally {
    await app.close();
  }
});

Deno.test("streams app refuses bad configuration with clear errors", async () => {
  await using broker = await startBroker();
  const rill = new Rill({ brokers: [broker.url] });
  assert.throws(() => rill.streams({ applicationId: "bad id!" }), TypeError);
  assert.throws(
    () => rill.streams({ applicationId: "x", processingGuarantee: "maybe" as "exactly_once" }),
    TypeError,
  );
  await assert.rejects(rill.streams({ applicationId: "x" }).start(), TypeError);
  await rill.admin().createTopics({
    topics: [{ topic: "one", numPartitions: 1 }, { topic: "two", numPartitions: 2 }],
  });
  const b = new StreamsBuilder();
  b.stream("one").merge(b.stream("two")).to("one");
  await assert.rejects(
    rill.streams({ applicationId: "copart" }).build(b).start(),
    (e) =>
      e instanceof RillError && e.code === "INVALID_PARTITIONS" && /co-partitioned/.test(e.message),
  );
  const c = new StreamsBuilder();
  c.stream("missing-topic").to("one");
  await assert.rejects(
    rill.streams({ applicationId: "nope" }).build(c).start(),
    (e) => e instanceof RillError && e.code === "UNKNOWN_TOPIC_OR_PARTITION",
  );
});
