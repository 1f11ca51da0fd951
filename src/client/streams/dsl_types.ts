/**
 * The options the streams DSL takes: serdes of a stream (`Consumed`) and of a store-backed
 * operation (`Materialized`).
 *
 * @module
 */
import { type Serde, Serdes } from "./serdes.ts";

/**
 * Serdes of a stream's keys and values.
 *
 * @example
 * ```ts
 * const opts: Consumed<string, number> = { keySerde: Serdes.string, valueSerde: Serdes.number };
 * ```
 */
export interface Consumed<K, V> {
  /** key serde (default string) */
  keySerde?: Serde<K>;
  /** value serde (default string) */
  valueSerde?: Serde<V>;
}

/**
 * Options of a store-backed operation (`count`, `reduce`, `aggregate`, `toTable`).
 *
 * @example
 * ```ts
 * grouped.count({ name: "word-counts" });
 * ```
 */
export interface Materialized<V> {
  /** the store name (default generated); its changelog is `<applicationId>-<name>-changelog` */
  name?: string;
  /** the serde of the stored values (default: the stream's, json for aggregates) */
  valueSerde?: Serde<V>;
}

// deno-lint-ignore no-explicit-any
export type AnySerde = Serde<any>;
/** The default serde of aggregates. */
export const json = Serdes.json<unknown>();
