/**
 * `KStream`: a stream of records and its record-at-a-time operations (filter, map, flatMap,
 * peek, branch, merge, to), and the way to grouping and tables.
 *
 * @module
 */
import { type AnySerde, type Consumed, json, type Materialized } from "./dsl_types.ts";
import { addStore, KGroupedStream } from "./grouped_stream.ts";
import { KTable } from "./ktable.ts";
import { type Serde, Serdes } from "./serdes.ts";
import { taskNode } from "./task_nodes.ts";
import { type NodeDef, type Topology, ValueRecord } from "./topology.ts";

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
