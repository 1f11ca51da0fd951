/**
 * The streams DSL (Kafka Streams' `StreamsBuilder`, `KStream`, `KGroupedStream`, `KTable`):
 * typed end to end, recorded into a {@linkcode Topology} that an application runs.
 *
 * Keys decide partitions. `map`/`flatMap`/`groupBy` may change keys, so a later grouping
 * goes through a repartition topic (`<applicationId>-<name>-repartition`) so that each key
 * is aggregated by one task; `groupByKey()` after only key-preserving steps does not.
 *
 * Generated names (of stores, and so of changelog and repartition topics) follow the order
 * of the DSL calls: changing the topology of a running application renames them, and the
 * new version starts with empty state. Name your stores (`{ name }`) to keep them stable.
 * Windowed stores forget windows once they are closed (end + grace passed); the changelog
 * keeps them until retention deletes them.
 *
 * @module
 */
import { Serdes } from "./serdes.ts";
import { Topology } from "./topology.ts";
import type { AnySerde, Consumed, Materialized } from "./dsl_types.ts";
import { KStream } from "./kstream.ts";
import type { KTable } from "./ktable.ts";

/**
 * Builds a topology. Pass it to `rill.streams({ applicationId }).build(builder)`.
 *
 * @example
 * ```ts
 * const builder = new StreamsBuilder();
 * builder.stream<string | null, string>("lines")
 *   .flatMapValues((line) => line.toLowerCase().split(/\W+/).filter(Boolean))
 *   .groupBy((_k, word) => word)
 *   .count({ name: "counts" })
 *   .toStream()
 *   .to("word-counts", { valueSerde: Serdes.number });
 * ```
 */
export class StreamsBuilder {
  /** the recorded graph */
  readonly topology: Topology = new Topology();

  /**
   * A stream of a topic's records.
   *
   * @param topic the topic (it must exist; all source topics need the same partition count)
   * @param consumed key and value serdes (default string)
   * @returns the stream
   * @throws {TypeError} if the topic is already a source
   * @example
   * ```ts
   * const clicks = builder.stream<string, string>("clicks");
   * ```
   */
  stream<K = string, V = string>(topic: string, consumed: Consumed<K, V> = {}): KStream<K, V> {
    const t = this.topology;
    if (t.sources.some((s) => s.topic === topic && !s.internal)) {
      throw new TypeError(`Topic "${topic}" is already a source of this topology`);
    }
    const keySerde = (consumed.keySerde ?? Serdes.string) as AnySerde;
    const valueSerde = (consumed.valueSerde ?? Serdes.string) as AnySerde;
    const node = t.add([], (_task, next) => next);
    t.sources.push({ topic, internal: false, keySerde, valueSerde, node });
    return new KStream<K, V>(t, node, keySerde, valueSerde, false);
  }

  /**
   * A table of a topic: the latest value per key (null deletes), in a store with a changelog.
   *
   * @param topic the topic
   * @param consumed serdes
   * @param materialized the store name
   * @returns the table
   * @example
   * ```ts
   * const users = builder.table("users", {}, { name: "users-store" });
   * ```
   * @example
   * ```ts
   * const latest = profiles.toTable({ name: "profiles-store" });
   * ```
   */
  table<K = string, V = string>(
    topic: string,
    consumed: Consumed<K, V> = {},
    materialized: Materialized<V> = {},
  ): KTable<K, V> {
    return this.stream<K, V>(topic, consumed).toTable(materialized);
  }
}

export type { Consumed, Materialized } from "./dsl_types.ts";
export { KStream } from "./kstream.ts";
export { KGroupedStream, TimeWindowedKStream } from "./grouped_stream.ts";
export { KTable, windowedSerde } from "./ktable.ts";
