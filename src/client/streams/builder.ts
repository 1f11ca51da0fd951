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
import { type Serde, Serdes } from "./serdes.ts";
import type { NodeDef, StreamRecord, TaskContext } from "./topology.ts";
import { Topology, ValueRecord } from "./topology.ts";
import type { TimeWindows, Windowed } from "./windows.ts";

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
type AnySerde = Serde<any>;
const json = Serdes.json<unknown>();

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

/**
 * A stream of records. Get one from {@linkcode StreamsBuilder.stream}.
 *
 * @example
 * ```ts
 * stream.filter((k, v) => v !== "").mapValues((v) => v.length).to("lengths", { valueSerde: Serdes.number });
 * ```
 */
export class KStream<K, V> {
  readonly #t: Topology;
  /** the node whose output this stream is */
  readonly node: NodeDef;
  /** the key serde known for this stream */
  readonly keySerde: AnySerde;
  /** the value serde known for this stream */
  readonly valueSerde: AnySerde;
  /** whether a step may have changed keys (a grouping then repartitions) */
  readonly keyChanged: boolean;

  /**
   * @param t the topology
   * @param node the node
   * @param keySerde key serde
   * @param valueSerde value serde
   * @param keyChanged whether keys may differ from the partitioning
   */
  constructor(
    t: Topology,
    node: NodeDef,
    keySerde: AnySerde,
    valueSerde: AnySerde,
    keyChanged: boolean,
  ) {
    this.#t = t;
    this.node = node;
    this.keySerde = keySerde;
    this.valueSerde = valueSerde;
    this.keyChanged = keyChanged;
  }

  #derive<K2, V2>(
    make: NodeDef["make"],
    keySerde: AnySerde = this.keySerde,
    valueSerde: AnySerde = this.valueSerde,
    keyChanged = this.keyChanged,
  ): KStream<K2, V2> {
    return new KStream<K2, V2>(
      this.#t,
      this.#t.add([this.node], make),
      keySerde,
      valueSerde,
      keyChanged,
    );
  }

  /**
   * Keeps the records for which `predicate` holds.
   *
   * @param predicate the test
   * @returns the filtered stream
   * @example
   * ```ts
   * stream.filter((_key, value) => value !== "");
   * ```
   */
  filter(predicate: (key: K, value: V) => boolean): KStream<K, V> {
    return this.#derive((_t, next) => (r) => {
      if (predicate(r.key as K, r.value as V)) next(r);
    });
  }

  /**
   * Drops the records for which `predicate` holds.
   *
   * @param predicate the test
   * @returns the filtered stream
   * @example
   * ```ts
   * stream.filterNot((_key, value) => value === "");
   * ```
   */
  filterNot(predicate: (key: K, value: V) => boolean): KStream<K, V> {
    return this.filter((k, v) => !predicate(k, v));
  }

  /**
   * Maps each record to a new key and value (a later grouping repartitions).
   *
   * @param fn returns `[key, value]`
   * @param serdes the serdes of the new keys and values (default json)
   * @returns the mapped stream
   * @example
   * ```ts
   * stream.map((key, value) => [value, key], { keySerde: Serdes.string, valueSerde: Serdes.string });
   * ```
   */
  map<K2, V2>(fn: (key: K, value: V) => [K2, V2], serdes: Consumed<K2, V2> = {}): KStream<K2, V2> {
    return this.#derive(
      (_t, next) => (r) => {
        const [key, value] = fn(r.key as K, r.value as V);
        next({ key, value, timestamp: r.timestamp });
      },
      serdes.keySerde ?? json,
      serdes.valueSerde ?? json,
      true,
    );
  }

  /**
   * Maps each value, keeping the key (no repartition needed).
   *
   * @param fn the value mapper
   * @param valueSerde the serde of the new values (default json)
   * @returns the mapped stream
   * @example
   * ```ts
   * stream.mapValues((value) => value.length, Serdes.number);
   * ```
   */
  mapValues<V2>(fn: (value: V, key: K) => V2, valueSerde?: Serde<V2>): KStream<K, V2> {
    return this.#derive(
      (_t, next) => {
        // A mapper that does not take the key never makes the key be deserialized.
        const withKey = fn.length >= 2;
        return (r) => {
          next(
            new ValueRecord(
              r,
              withKey ? fn(r.value as V, r.key as K) : fn(r.value as V, undefined as K),
            ),
          );
        };
      },
      this.keySerde,
      valueSerde ?? json,
    );
  }

  /**
   * Maps each record to zero or more records.
   *
   * @param fn returns `[key, value]` pairs
   * @param serdes the serdes of the new keys and values (default json)
   * @returns the stream of results
   * @example
   * ```ts
   * stream.flatMap((key, line) => line.split(" ").map((w) => [w, key] as [string, string]));
   * ```
   */
  flatMap<K2, V2>(
    fn: (key: K, value: V) => Iterable<[K2, V2]>,
    serdes: Consumed<K2, V2> = {},
  ): KStream<K2, V2> {
    return this.#derive(
      (_t, next) => (r) => {
        for (const [key, value] of fn(r.key as K, r.value as V)) {
          next({ key, value, timestamp: r.timestamp });
        }
      },
      serdes.keySerde ?? json,
      serdes.valueSerde ?? json,
      true,
    );
  }

  /**
   * Maps each value to zero or more values, keeping the key.
   *
   * @param fn returns values
   * @param valueSerde the serde of the new values (default: the stream's)
   * @returns the stream of results
   * @example
   * ```ts
   * stream.flatMapValues((line) => line.split(" "));
   * ```
   */
  flatMapValues<V2>(
    fn: (value: V, key: K) => Iterable<V2>,
    valueSerde?: Serde<V2>,
  ): KStream<K, V2> {
    return this.#derive(
      (_t, next) => {
        const withKey = fn.length >= 2;
        return (r) => {
          const values = withKey ? fn(r.value as V, r.key as K) : fn(r.value as V, undefined as K);
          for (const value of values) next(new ValueRecord(r, value));
        };
      },
      this.keySerde,
      valueSerde ?? this.valueSerde,
    );
  }

  /**
   * Calls `fn` for each record and passes the record on unchanged.
   *
   * @param fn the side effect
   * @returns the same records
   * @example
   * ```ts
   * stream.peek((key, value) => console.log(key, value));
   * ```
   */
  peek(fn: (key: K, value: V) => void): KStream<K, V> {
    return this.#derive((_t, next) => (r) => {
      fn(r.key as K, r.value as V);
      next(r);
    });
  }

  /**
   * Splits the stream: each record goes to the first branch whose predicate holds (or
   * nowhere).
   *
   * @param predicates one per branch
   * @returns one stream per predicate
   * @example
   * ```ts
   * const [big, rest] = orders.branch((_k, o) => o.amount >= 100, () => true);
   * ```
   */
  branch(...predicates: ((key: K, value: V) => boolean)[]): KStream<K, V>[] {
    const children = predicates.map(() => this.#t.add([], (_t, next) => next));
    const split = this.#t.add([this.node], (task, _next) => {
      // The children are made by the task in order; route by index.
      const targets = children.map((c) => taskNode(task, c));
      return (r) => {
        for (let i = 0; i < predicates.length; i++) {
          if (predicates[i](r.key as K, r.value as V)) {
            targets[i](r);
            return;
          }
        }
      };
    });
    void split;
    return children.map((c) =>
      new KStream<K, V>(this.#t, c, this.keySerde, this.valueSerde, this.keyChanged)
    );
  }

  /**
   * Merges another stream of the same types into this one.
   *
   * @param other the other stream
   * @returns a stream of both
   * @example
   * ```ts
   * const all = webClicks.merge(appClicks);
   * ```
   */
  merge(other: KStream<K, V>): KStream<K, V> {
    const node = this.#t.add([this.node, other.node], (_t, next) => next);
    return new KStream<K, V>(
      this.#t,
      node,
      this.keySerde,
      this.valueSerde,
      this.keyChanged || other.keyChanged,
    );
  }

  /**
   * Writes the stream to a topic (which must exist). Keyed records go to Kafka's murmur2
   * partition of their key bytes; keyless ones to the task's partition (modulo the count).
   *
   * @param topic the topic
   * @param produced the serdes (default: the stream's)
   * @example
   * ```ts
   * stream.to("output", { valueSerde: Serdes.json() });
   * ```
   */
  to(topic: string, produced: Consumed<K, V> = {}): void {
    const sink = {
      topic,
      internal: false,
      keySerde: (produced.keySerde ?? this.keySerde) as AnySerde,
      valueSerde: (produced.valueSerde ?? this.valueSerde) as AnySerde,
    };
    this.#t.sinks.push(sink);
    this.#t.add([this.node], (task, _next) => (r) => task.emit(sink, r));
  }

  /**
   * Groups by the current key (repartitioning first if a step may have changed keys).
   *
   * @param serdes serdes of the key and value for the repartition topic and stores
   * @returns the grouped stream
   * @example
   * ```ts
   * stream.groupByKey().count();
   * ```
   */
  groupByKey(serdes: Consumed<K, V> = {}): KGroupedStream<K, V> {
    const keySerde = (serdes.keySerde ?? this.keySerde) as AnySerde;
    const valueSerde = (serdes.valueSerde ?? this.valueSerde) as AnySerde;
    if (!this.keyChanged) return new KGroupedStream<K, V>(this.#t, this.node, keySerde, valueSerde);
    const suffix = `${this.#t.uniqueName("groupby")}-repartition`;
    const sink = { topic: suffix, internal: true, keySerde, valueSerde };
    this.#t.sinks.push(sink);
    this.#t.add([this.node], (task, _next) => (r) => {
      if (r.key !== null && r.key !== undefined) task.emit(sink, r);
    });
    const source = this.#t.add([], (_t, next) => next);
    this.#t.sources.push({ topic: suffix, internal: true, keySerde, valueSerde, node: source });
    return new KGroupedStream<K, V>(this.#t, source, keySerde, valueSerde);
  }

  /**
   * Groups by a new key (through a repartition topic).
   *
   * @param selector the new key
   * @param serdes serdes of the new key and the value (default: string key, the stream's value)
   * @returns the grouped stream
   * @example
   * ```ts
   * lines.flatMapValues((l) => l.split(" ")).groupBy((_k, word) => word).count();
   * ```
   */
  groupBy<K2>(
    selector: (key: K, value: V) => K2,
    serdes: Consumed<K2, V> = {},
  ): KGroupedStream<K2, V> {
    return this.map<K2, V>((k, v) => [selector(k, v), v], {
      keySerde: serdes.keySerde ?? (Serdes.string as unknown as Serde<K2>),
      valueSerde: serdes.valueSerde ?? this.valueSerde,
    }).groupByKey();
  }

  /**
   * The latest value per key as a table (null deletes).
   *
   * @param materialized the store name
   * @returns the table
   */
  toTable(materialized: Materialized<V> = {}): KTable<K, V> {
    const name = materialized.name ?? this.#t.uniqueName("table");
    const valueSerde = (materialized.valueSerde ?? this.valueSerde) as AnySerde;
    addStore(this.#t, { name, keySerde: this.keySerde, valueSerde });
    const node = this.#t.add([this.node], (task, next) => {
      const store = task.store(name);
      return (r) => {
        if (r.key === null || r.key === undefined) return;
        store.put(r.key, r.value, r.timestamp);
        next(r);
      };
    });
    return new KTable<K, V>(this.#t, node, name, this.keySerde, valueSerde);
  }

  /**
   * Joins each record with the table's current value for its key (inner join: records
   * without one are dropped). The table's topic must have as many partitions as this
   * stream's (co-partitioned), as in Kafka Streams.
   *
   * @param table the table
   * @param joiner combines the values
   * @param valueSerde the serde of the results (default json)
   * @returns the joined stream
   * @example
   * ```ts
   * clicks.join(users, (page, name) => `${name} saw ${page}`, Serdes.string);
   * ```
   */
  join<VT, VR>(
    table: KTable<K, VT>,
    joiner: (value: V, tableValue: VT) => VR,
    valueSerde?: Serde<VR>,
  ): KStream<K, VR> {
    return this.#join(table, joiner as (v: V, t: VT | null) => VR, false, valueSerde);
  }

  /**
   * As {@linkcode KStream.join}, but records without a table value are joined with null.
   *
   * @param table the table
   * @param joiner combines the values (the table value may be null)
   * @param valueSerde the serde of the results (default json)
   * @returns the joined stream
   * @example
   * ```ts
   * clicks.leftJoin(users, (page, name) => `${name ?? "someone"} saw ${page}`);
   * ```
   */
  leftJoin<VT, VR>(
    table: KTable<K, VT>,
    joiner: (value: V, tableValue: VT | null) => VR,
    valueSerde?: Serde<VR>,
  ): KStream<K, VR> {
    return this.#join(table, joiner, true, valueSerde);
  }

  #join<VT, VR>(
    table: KTable<K, VT>,
    joiner: (value: V, tableValue: VT | null) => VR,
    left: boolean,
    valueSerde?: Serde<VR>,
  ): KStream<K, VR> {
    const name = table.storeName;
    return this.#derive(
      (task, next) => {
        const store = task.store(name);
        return (r) => {
          const tv = r.key === null || r.key === undefined ? undefined : store.get(r.key);
          if (tv === undefined && !left) return;
          next({
            key: r.key,
            value: joiner(r.value as V, (tv ?? null) as VT | null),
            timestamp: r.timestamp,
            rawKey: r.rawKey,
            rawKeySerde: r.rawKeySerde,
          });
        };
      },
      this.keySerde,
      valueSerde ?? json,
    );
  }
}

/** The node functions of a task, by node id (set by the task while it builds). */
const taskNodes = new WeakMap<TaskContext, Map<number, (r: StreamRecord) => void>>();

/**
 * The function of `node` in `task` (building it if needed).
 *
 * @param task the task
 * @param node the node
 * @returns its function
 */
export function taskNode(task: TaskContext, node: NodeDef): (r: StreamRecord) => void {
  let m = taskNodes.get(task);
  if (!m) taskNodes.set(task, m = new Map());
  let fn = m.get(node.id);
  if (fn) return fn;
  // Placeholder for cycles through merge: filled below.
  let real: ((r: StreamRecord) => void) | null = null;
  m.set(node.id, (r) => real!(r));
  const kids = node.children.map((c) => taskNode(task, c));
  const next = kids.length === 0 ? () => {} : kids.length === 1 ? kids[0] : (r: StreamRecord) => {
    for (const k of kids) k(r);
  };
  real = node.make(task, next);
  fn = real;
  m.set(node.id, fn);
  return fn;
}

function addStore(
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
