/**
 * The streams API: a typed DSL in the spirit of Kafka Streams (`StreamsBuilder`,
 * `KStream`, `KTable`, windows, serdes) and the application that runs it
 * (`rill.streams({ applicationId })`). Processing guarantees are documented in app.ts.
 *
 * @example
 * ```ts
 * import { Rill, Serdes, StreamsBuilder } from "./mod.ts";
 *
 * const rill = new Rill({ brokers: ["http://127.0.0.1:8092"] });
 * const builder = new StreamsBuilder();
 * builder.stream<string | null, string>("lines")
 *   .flatMapValues((line) => line.toLowerCase().split(/\W+/).filter(Boolean))
 *   .groupBy((_key, word) => word)
 *   .count({ name: "counts" })
 *   .toStream()
 *   .to("word-counts", { valueSerde: Serdes.number });
 * const app = rill.streams({ applicationId: "word-count", fromBeginning: true }).build(builder);
 * await app.start();
 * ```
 *
 * @module
 */
export {
  type Consumed,
  KGroupedStream,
  KStream,
  KTable,
  type Materialized,
  StreamsBuilder,
  TimeWindowedKStream,
  windowedSerde,
} from "./builder.ts";
export { type Serde, Serdes } from "./serdes.ts";
export { TimeWindows, type Windowed } from "./windows.ts";
export { StreamsApp, type StreamsConfig, type StreamsMetrics } from "./app.ts";
