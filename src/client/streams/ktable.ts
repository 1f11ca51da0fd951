/**
 * `KTable`: the latest value per key, held in a store; and the serde of windowed keys.
 *
 * @module
 */
import type { AnySerde } from "./dsl_types.ts";
import { KStream } from "./kstream.ts";
import type { Serde } from "./serdes.ts";
import type { NodeDef, Topology } from "./topology.ts";
import type { TimeWindows, Windowed } from "./windows.ts";

/**
 * A table: the latest value per key, kept in a task's store and backed by its changelog.
 *
 * @example
 * ```ts
 * counts.toStream().to("counts", { valueSerde: Serdes.number });
 * ```
 */
export class KTable<K, V> {
  readonly #t: Topology;
  readonly #node: NodeDef;
  /** the store holding the table */
  readonly storeName: string;
  readonly #keySerde: AnySerde;
  readonly #valueSerde: AnySerde;
  /** the windows, for a windowed table */
  readonly windows: TimeWindows | undefined;

  /**
   * @param t the topology
   * @param node the node emitting the table's updates
   * @param storeName the store
   * @param keySerde the record key serde
   * @param valueSerde the value serde
   * @param windows the windows, if windowed
   */
  constructor(
    t: Topology,
    node: NodeDef,
    storeName: string,
    keySerde: AnySerde,
    valueSerde: AnySerde,
    windows?: TimeWindows,
  ) {
    this.#t = t;
    this.#node = node;
    this.storeName = storeName;
    this.#keySerde = keySerde;
    this.#valueSerde = valueSerde;
    this.windows = windows;
  }

  /**
   * The table's updates as a stream (each update: key and new value). For a windowed table
   * the key is a `Windowed<K>`; write it with {@linkcode windowedSerde} or map it first.
   *
   * @returns the stream of updates
   * @example
   * ```ts
   * counts.toStream().to("counts", { valueSerde: Serdes.number });
   * ```
   */
  toStream(): KStream<K, V> {
    const keySerde = this.windows ? windowedSerde(this.#keySerde) : this.#keySerde;
    const node = this.#t.add([this.#node], (_t, next) => next);
    return new KStream<K, V>(this.#t, node, keySerde, this.#valueSerde, false);
  }
}

/**
 * A serde of windowed keys: the inner key's bytes, then the window start and end as 8-byte
 * big-endian integers (as Kafka Streams' time-windowed serde, plus the end).
 *
 * @param inner the serde of the record keys
 * @returns the windowed serde
 * @example
 * ```ts
 * counts.toStream().to("counts-per-minute", { keySerde: windowedSerde(Serdes.string) });
 * ```
 */
export function windowedSerde<K>(inner: Serde<K>): Serde<Windowed<K>> {
  return {
    serialize(w) {
      const raw = inner.serialize(w.key);
      const k = typeof raw === "string" ? new TextEncoder().encode(raw) : raw;
      const out = new Uint8Array(k.length + 16);
      out.set(k);
      const view = new DataView(out.buffer);
      view.setBigInt64(k.length, BigInt(w.start));
      view.setBigInt64(k.length + 8, BigInt(w.end));
      return out;
    },
    deserialize(b) {
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return {
        key: inner.deserialize(b.subarray(0, b.length - 16)),
        start: Number(view.getBigInt64(b.length - 16)),
        end: Number(view.getBigInt64(b.length - 8)),
      };
    },
  };
}
