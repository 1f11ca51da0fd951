/**
 * Windowed click counts with the streams API: counts the clicks per page in tumbling
 * 10-second windows of the records' timestamps (event time), accepting records up to 5
 * seconds late, and writes `page@window-start` → count to "click-counts".
 *
 * Feed it clicks as `page:user` lines (the page is the key):
 *
 * ```sh
 * deno task start                                          # a broker, in another terminal
 * deno run -A examples/click_counts.ts                     # this app (creates its topics)
 * printf 'home:ann\ncart:bob\nhome:cy\n' | deno run -A cli.ts produce clicks --key-separator :
 * deno run -A cli.ts consume click-counts --from-beginning --format json
 * ```
 *
 * Set RILL_BROKER to talk to another broker.
 *
 * @module
 */
import { Rill, Serdes, StreamsBuilder, TimeWindows } from "../mod.ts";

const broker = Deno.env.get("RILL_BROKER") ?? "http://127.0.0.1:8092";
const rill = new Rill({ brokers: [broker], clientId: "example-click-counts" });
await rill.admin().createTopics({
  topics: [{ topic: "clicks", numPartitions: 2 }, { topic: "click-counts", numPartitions: 2 }],
});

const builder = new StreamsBuilder();
builder.stream<string, string>("clicks")
  .filter((page) => page !== null) // clicks without a page cannot be counted
  .groupByKey()
  .windowedBy(TimeWindows.of(10_000).grace(5_000))
  .count({ name: "clicks-per-10s" })
  .toStream()
  .map((w, count) => [`${w.key}@${new Date(w.start).toISOString()}`, count], {
    keySerde: Serdes.string,
    valueSerde: Serdes.number,
  })
  .peek((window, count) => console.log(`${window}: ${count}`))
  .to("click-counts");

const app = rill.streams({ applicationId: "example-click-counts" }).build(builder);
Deno.addSignalListener("SIGINT", () => app.close());
await app.start();
console.log('Counting clicks of "clicks" per page and 10 s window; Ctrl-C to stop');
await app.finished();
console.log(`late clicks dropped: ${JSON.stringify(app.metrics().droppedLate)}`);
