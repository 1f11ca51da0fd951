/**
 * Word count with the streams API: reads lines from "lines", counts every word, and writes
 * the running count of each word to "word-counts" (key = word, value = count). The counts
 * live in a state store backed by a changelog topic, so stopping (Ctrl-C) or killing this
 * program loses nothing: run it again and it carries on where it left off. Run it twice at
 * once and the two instances share the partitions.
 *
 * ```sh
 * deno task start                                          # a broker, in another terminal
 * deno run -A examples/word_count.ts                       # this app (creates its topics)
 * printf 'the cat\nthe dog\n' | deno run -A cli.ts produce lines
 * deno run -A cli.ts consume word-counts --from-beginning --format json
 * ```
 *
 * Set RILL_BROKER to talk to another broker.
 *
 * @module
 */
import { Rill, Serdes, StreamsBuilder } from "../mod.ts";

const broker = Deno.env.get("RILL_BROKER") ?? "http://127.0.0.1:8092";
const rill = new Rill({ brokers: [broker], clientId: "example-word-count" });
await rill.admin().createTopics({
  topics: [{ topic: "lines", numPartitions: 2 }, { topic: "word-counts", numPartitions: 2 }],
});

const builder = new StreamsBuilder();
builder.stream<string | null, string>("lines")
  // one record per word, keyed by nothing yet
  .flatMapValues((line) => line.toLowerCase().split(/[^\p{L}\p{N}']+/u).filter((w) => w !== ""))
  // key by the word (through a repartition topic, so each word is counted by one task)
  .groupBy((_key, word) => word)
  .count({ name: "word-counts-store" })
  .toStream()
  .peek((word, count) => console.log(`${word}: ${count}`))
  .to("word-counts", { valueSerde: Serdes.number });

const app = rill.streams({ applicationId: "example-word-count", fromBeginning: true })
  .build(builder);
Deno.addSignalListener("SIGINT", () => app.close());
await app.start();
console.log('Counting words of "lines" into "word-counts"; Ctrl-C to stop');
await app.finished();
