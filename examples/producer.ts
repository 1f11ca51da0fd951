/**
 * A first producer: creates the topic "greetings" (3 partitions) if it is missing and sends
 * a few keyed messages, printing where each landed.
 *
 * ```sh
 * deno task start                          # in one terminal: a broker on 127.0.0.1:8092
 * deno run -A examples/producer.ts         # in another
 * deno run -A examples/consumer.ts         # and read them back
 * ```
 *
 * Set RILL_BROKER to talk to another broker.
 *
 * @module
 */
import { Rill } from "../mod.ts";

const broker = Deno.env.get("RILL_BROKER") ?? "http://127.0.0.1:8092";
const rill = new Rill({ brokers: [broker], clientId: "example-producer" });

// createTopics resolves to false when the topic already exists.
const created = await rill.admin().createTopics({
  topics: [{ topic: "greetings", numPartitions: 3 }],
});
console.log(created ? 'Created topic "greetings"' : 'Topic "greetings" already exists');

const producer = rill.producer({ lingerMs: 5 });
await producer.connect();

// Messages with the same key always land on the same partition (Kafka's murmur2 partitioner).
const results = await producer.send({
  topic: "greetings",
  messages: [
    { key: "alice", value: "Hello from Alice", headers: { lang: "en" } },
    { key: "bob", value: "Bonjour de Bob", headers: { lang: "fr" } },
    { key: "alice", value: JSON.stringify({ text: "Alice again", at: new Date().toISOString() }) },
    { value: "A message without a key" },
  ],
});
for (const r of results) {
  console.log(`stored in ${r.topicName}-${r.partition} at offset ${r.offset}`);
}
await producer.disconnect();
