/**
 * Grouped streams and their aggregations into tables: `KGroupedStream` (count, reduce,
 * aggregate) and `TimeWindowedKStream` (the same per time window), each backed by a named
 * store with a changelog topic.
 *
 * @module
 */
import { type AnySerde, json, type Materialized } from "./dsl_types.ts";
import { KTable } from "./ktable.ts";
import { Serdes } from "./serdes.ts";
import type { NodeDef, Topology } from "./topology.ts";
import type { TimeWindows, Windowed } from "./windows.ts";

/**
 * Registers a store of the topology.
 *
 * @param t the topology
 * @param def the store
 * @throws {TypeError} if the name is taken or has characters a topic name cannot
 */
export function addStore(
  t: Topology,
  def: { name: string; keySerde: AnySerde; valueSerde: AnySerde; windows?: TimeWindows },
): void {
  if (t.stores.has(def.name)) throw new TypeError(`A store named "${def.name}" already exists`);
  if (!/^[a-zA-Z0-9._-]+$/.test(def.name)) {
    throw new TypeError(`Store name "${def.name}" must use only [a-zA-Z0-9._-]`);
  }
  t.stores.set(def.name, def);
}

/**
 * A stream grouped by key, ready to aggregate. Get one from `groupByKey()`/`groupBy()`.
 *
 * @example
 * ```ts
 * grouped.count();
 * grouped.reduce((a, b) => a + b);
 * grouped.windowedBy(TimeWindows.of(60_000)).count();
 * ```
 */
export class KGroupedStream<K, V> {
  readonly #t: Topology;
  readonly #node: NodeDef;
  readonly #keySerde: AnySerde;
  readonly #valueSerde: AnySerde;

  /**
   * @param t the topology
   * @param node the node
   * @param keySerde key serde
   * @param valueSerde value serde
   */
  constructor(t: Topology, node: NodeDef, keySerde: AnySerde, valueSerde: AnySerde) {
    this.#t = t;
    this.#node = node;
    this.#keySerde = keySerde;
    this.#valueSerde = valueSerde;
  }

  /**
   * Counts records per key.
   *
   * @param materialized the store name
   * @returns a table key → count
   * @example
   * ```ts
   * words.groupByKey().count({ name: "word-counts" });
   * ```
   */
  count(materialized: Materialized<number> = {}): KTable<K, number> {
    return this.aggregate<number>(() => 0, (_k, _v, n) => n + 1, {
      name: materialized.name ?? this.#t.uniqueName("count"),
      valueSerde: Serdes.number,
    });
  }

  /**
   * Combines the values per key.
   *
   * @param reducer combines the aggregate so far with a new value
   * @param materialized the store name
   * @returns a table key → reduced value
   * @example
   * ```ts
   * amounts.groupByKey().reduce((a, b) => a + b);
   * ```
   */
  reduce(reducer: (aggregate: V, value: V) => V, materialized: Materialized<V> = {}): KTable<K, V> {
    const first = Symbol("none");
    return this.#aggregate<V>(
      () => first as unknown as V,
      (_k, v, a) => (a === (first as unknown) ? v : reducer(a, v)),
      {
        name: materialized.name ?? this.#t.uniqueName("reduce"),
        valueSerde: materialized.valueSerde ?? this.#valueSerde,
      },
      undefined,
    ) as KTable<K, V>;
  }

  /**
   * Folds the values per key into an aggregate.
   *
   * @param initializer the aggregate of a new key
   * @param aggregator folds one value in
   * @param materialized store name and the aggregate's serde (default json)
   * @returns a table key → aggregate
   * @example
   * ```ts
   * orders.groupByKey().aggregate(() => [] as string[], (_k, o, list) => [...list, o.id]);
   * ```
   */
  aggregate<A>(
    initializer: () => A,
    aggregator: (key: K, value: V, aggregate: A) => A,
    materialized: Materialized<A> = {},
  ): KTable<K, A> {
    return this.#aggregate(initializer, aggregator, materialized, undefined) as KTable<K, A>;
  }

  /**
   * Aggregates per key and time window.
   *
   * @param windows tumbling or hopping windows with their grace period
   * @returns the windowed grouped stream
   * @example
   * ```ts
   * clicks.groupByKey().windowedBy(TimeWindows.of(60_000).grace(10_000)).count();
   * ```
   */
  windowedBy(windows: TimeWindows): TimeWindowedKStream<K, V> {
    return new TimeWindowedKStream<K, V>(
      (init, agg, m) => this.#aggregate(init, agg, m, windows),
      this.#t,
    );
  }

  #aggregate<A>(
    initializer: () => A,
    aggregator: (key: K, value: V, aggregate: A) => A,
    materialized: Materialized<A>,
    windows: TimeWindows | undefined,
  ): KTable<unknown, A> {
    const name = materialized.name ?? this.#t.uniqueName("aggregate");
    const valueSerde = (materialized.valueSerde ?? json) as AnySerde;
    addStore(this.#t, { name, keySerde: this.#keySerde, valueSerde, windows });
    const node = this.#t.add([this.#node], (task, next) => {
      const store = task.store(name);
      if (!windows) {
        return (r) => {
          if (r.key === null || r.key === undefined) return;
          const old = store.get(r.key);
          const agg = aggregator(
            r.key as K,
            r.value as V,
            old === undefined ? initializer() : old as A,
          );
          store.put(r.key, agg, r.timestamp);
          next({ key: r.key, value: agg, timestamp: r.timestamp });
        };
      }
      let sinceSweep = 0;
      return (r) => {
        if (r.key === null || r.key === undefined) return;
        const closeTime = task.streamTime - windows.graceMs;
        if (++sinceSweep >= 1000) {
          // Closed windows take no more records: forget them (the changelog keeps them).
          sinceSweep = 0;
          store.forget((k) => (k as Windowed<unknown>).end <= closeTime);
        }
        let late = false;
        for (const start of windows.windowsFor(r.timestamp)) {
          const end = start + windows.size;
          if (end <= closeTime) {
            late = true;
            continue;
          }
          const wk: Windowed<unknown> = { key: r.key, start, end };
          const old = store.get(wk);
          const agg = aggregator(
            r.key as K,
            r.value as V,
            old === undefined ? initializer() : old as A,
          );
          store.put(wk, agg, r.timestamp);
          next({ key: wk, value: agg, timestamp: r.timestamp });
        }
        if (late) task.dropLate(name);
      };
    });
    return new KTable<unknown, A>(this.#t, node, name, this.#keySerde, valueSerde, windows);
  }
}

/**
 * A grouped stream with windows. Get one from `windowedBy()`.
 *
 * @example
 * ```ts
 * clicks.groupByKey().windowedBy(TimeWindows.of(60_000).grace(10_000)).count();
 * ```
 */
export class TimeWindowedKStream<K, V> {
  readonly #agg: <A>(
    init: () => A,
    agg: (key: K, value: V, a: A) => A,
    m: Materialized<A>,
  ) => KTable<unknown, A>;
  readonly #t: Topology;

  /**
   * @param agg builds the windowed aggregation
   * @param t the topology
   */
  constructor(
    agg: <A>(
      init: () => A,
      agg: (key: K, value: V, a: A) => A,
      m: Materialized<A>,
    ) => KTable<unknown, A>,
    t: Topology,
  ) {
    this.#agg = agg;
    this.#t = t;
  }

  /**
   * Counts records per key and window.
   *
   * @param materialized the store name
   * @returns a table (key, window) → count
   * @example
   * ```ts
   * clicks.groupByKey().windowedBy(TimeWindows.of(60_000)).count();
   * ```
   */
  count(materialized: Materialized<number> = {}): KTable<Windowed<K>, number> {
    return this.#agg<number>(() => 0, (_k, _v, n) => n + 1, {
      name: materialized.name ?? this.#t.uniqueName("wcount"),
      valueSerde: Serdes.number,
    }) as KTable<Windowed<K>, number>;
  }

  /**
   * Combines values per key and window.
   *
   * @param reducer combines
   * @param materialized store name and serde
   * @returns a table (key, window) → value
   * @example
   * ```ts
   * amounts.groupByKey().windowedBy(TimeWindows.of(60_000)).reduce((a, b) => a + b);
   * ```
   */
  reduce(
    reducer: (aggregate: V, value: V) => V,
    materialized: Materialized<V> = {},
  ): KTable<Windowed<K>, V> {
    const none = Symbol("none");
    return this.#agg<V>(
      () => none as unknown as V,
      (_k, v, a) => (a === (none as unknown) ? v : reducer(a, v)),
      {
        name: materialized.name ?? this.#t.uniqueName("wreduce"),
        valueSerde: materialized.valueSerde,
      },
    ) as KTable<Windowed<K>, V>;
  }

  /**
   * Folds values per key and window.
   *
   * @param initializer the aggregate of a new window
   * @param aggregator folds one value in
   * @param materialized store name and serde (default json)
   * @returns a table (key, window) → aggregate
   * @example
   * ```ts
   * clicks.groupByKey().windowedBy(TimeWindows.of(60_000)).aggregate(() => 0, (_k, _v, n) => n + 1);
   * ```
   */
  aggregate<A>(
    initializer: () => A,
    aggregator: (key: K, value: V, aggregate: A) => A,
    materialized: Materialized<A> = {},
  ): KTable<Windowed<K>, A> {
    return this.#agg(initializer, aggregator, {
      name: materialized.name ?? this.#t.uniqueName("waggregate"),
      valueSerde: materialized.valueSerde,
    }) as KTable<Windowed<K>, A>;
  }
}
