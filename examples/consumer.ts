/**
 * A first consumer: reads every partition of "greetings" from the beginning and prints each
 * message as it arrives (new ones appear within milliseconds). Stop it with Ctrl-C.
 *
 * ```sh
 * deno run -A examples/consumer.ts
 * ```
 *
 * Set RILL_BROKER to talk to another broker.
 *
 * @module
 */
import { Rill } from "../mod.ts";

const broker = Deno.env.get("RILL_BROKER") ?? "http://127.0.0.1:8092";
const rill = new Rill({ brokers: [broker], clientId: "example-consumer" });

const topic = "greetings";
const { partitions } = await rill.admin().describeTopic(topic);
const consumer = rill.consumer({ maxWaitMs: 5000 });
await consumer.assign(
  partitions.map((p) => ({ topic, partition: p.partition, offset: "earliest" })),
);
Deno.addSignalListener("SIGINT", () => consumer.stop());

console.log(`Reading ${partitions.length} partition(s) of "${topic}"; Ctrl-C to stop`);
// The loop ends when consumer.stop() is called.
for await (const message of consumer) {
  const lang = message.headerString("lang");
  console.log(
    `${message.partition}:${message.offset}`,
    `key=${message.keyString()}`,
    `value=${message.valueString()}`,
    lang ? `lang=${lang}` : "",
  );
}
console.log("Stopped");
