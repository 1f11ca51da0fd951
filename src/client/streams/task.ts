/**
 * A stream task: the topology instantiated for one input partition number `p` (partition
 * `p` of every source topic, external and internal), with its own state stores.
 *
 * **Provenance.** Every record a task writes to a changelog, a repartition topic or (with
 * exactly-once) a sink carries the header `rill-src: <offset>.<k>.<topic>`: the input record it came from
 * (topic and offset) and `k`, the number of records written before it while processing
 * that input record. For one input topic, provenances grow strictly in processing order,
 * and since a task writes through its own idempotent producer (one request per partition
 * in flight, order kept, no gaps), each destination partition holds a *prefix* of what the
 * task meant to write there.
 *
 * **Restore.** A store is rebuilt from its changelog partition `p`, read to its end: a
 * changelog record is applied only if its input offset is below the committed offset of
 * its input partition (the state as of the commit); newer ones are not applied but
 * remembered as already written. Processing then resumes at the committed offsets and, being
 * deterministic, regenerates the same updates in the same order: they are applied to the
 * state again, and written to the changelog only past what it already holds. The state is
 * therefore exactly the state after the committed input, whatever crashed when.
 *
 * **Skipping outputs.** Likewise for repartition topics (always) and for sinks (with
 * exactly-once): before processing, the task asks each destination partition's leader for
 * the last batch of its producer (`GET /v1/producers/{id}`) and reads that batch's last
 * record's provenance; outputs at or before it are not written again.
 *
 * @module
 */
import { partitionForKey } from "../../protocol/murmur2.ts";
import type { ConsumedMessage } from "../message.ts";
import { keyBytes } from "../batch_builder.ts";
import type { Message } from "../producer.ts";
import { windowedSerde } from "./ktable.ts";
import { taskNode } from "./task_nodes.ts";
import type { Serde } from "./serdes.ts";
import {
  type SinkDef,
  SourceRecord,
  type StoreDef,
  type StreamRecord,
  type TaskContext,
  type TaskStore,
  type Topology,
} from "./topology.ts";

/** The header carrying a written record's provenance. */
export const SRC_HEADER = "rill-src";

/** Where a written record came from. */
export interface Provenance {
  /** the input topic */
  topic: string;
  /** the input offset */
  offset: number;
  /** records written before it for the same input record */
  k: number;
}

/**
 * Parses a `rill-src` header.
 *
 * @param s the header value
 * @returns the provenance, or null if malformed
 * @example
 * ```ts
 * parseProvenance("42.3.lines"); // { offset: 42, k: 3, topic: "lines" }
 * ```
 */
export function parseProvenance(s: string | null | undefined): Provenance | null {
  if (!s) return null;
  const a = s.indexOf(".");
  const b = s.indexOf(".", a + 1);
  if (a < 0 || b < 0) return null;
  const offset = Number(s.slice(0, a));
  const k = Number(s.slice(a + 1, b));
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(k)) return null;
  return { offset, k, topic: s.slice(b + 1) };
}

function after(a: Provenance, b: Provenance): boolean {
  return a.offset > b.offset || (a.offset === b.offset && a.k > b.k);
}

/** A serialized key as a Map key (a string serde's output is its own key). */
function keyString(b: Uint8Array | string): string {
  if (typeof b === "string") return b;
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** What a task needs from its application. */
export interface TaskEnv {
  /** the topology */
  topology: Topology;
  /** the partition number */
  partition: number;
  /** resolves a (possibly internal) topic name */
  topicName(def: { topic: string; internal: boolean }): string;
  /** partition counts of every destination topic */
  partitionCount(topic: string): number;
  /** whether outputs to external sinks are deduplicated (exactly-once) */
  exactlyOnce: boolean;
}

class Store implements TaskStore {
  readonly map = new Map<string, { key: unknown; value: unknown }>();
  readonly keySerde: Serde<unknown>;
  readonly topic: string;

  constructor(readonly def: StoreDef, readonly task: StreamTask, topic: string) {
    this.keySerde = def.windows ? windowedSerde(def.keySerde) as Serde<unknown> : def.keySerde;
    this.topic = topic;
  }

  get(key: unknown): unknown {
    return this.map.get(keyString(this.keySerde.serialize(key)))?.value;
  }

  put(key: unknown, value: unknown, timestamp: number): void {
    const kb = this.keySerde.serialize(key);
    const ks = keyString(kb);
    if (value === null || value === undefined) this.map.delete(ks);
    else this.map.set(ks, { key, value });
    const vb = value === null || value === undefined ? null : this.def.valueSerde.serialize(value);
    this.task.write(this.topic, this.task.partition, kb, vb, timestamp, true);
  }

  forget(match: (key: unknown) => boolean): void {
    for (const [ks, e] of this.map) if (match(e.key)) this.map.delete(ks);
  }

  /** Applies a changelog record during restore. */
  restore(kb: Uint8Array, vb: Uint8Array | null): void {
    const key = this.keySerde.deserialize(kb);
    const ks = keyString(this.keySerde.serialize(key));
    if (vb === null) this.map.delete(ks);
    else this.map.set(ks, { key, value: this.def.valueSerde.deserialize(vb) });
  }
}

/**
 * One task: processes the records of its input partitions and collects what to write.
 *
 * @example
 * ```ts
 * const task = new StreamTask(env);
 * for (const m of batch.messages) task.process(m);
 * const out = task.drainOutput(); // Map topic → messages with explicit partitions
 * ```
 */
export class StreamTask implements TaskContext {
  /** the partition number */
  readonly partition: number;
  /** the largest timestamp processed */
  streamTime = -Infinity;
  /** records dropped as too late, per store */
  readonly droppedLate = new Map<string, number>();
  /** input records processed */
  processed = 0;
  readonly #env: TaskEnv;
  readonly #stores = new Map<string, Store>();
  readonly #sources = new Map<
    string,
    { keySerde: Serde<unknown>; valueSerde: Serde<unknown>; fn: (r: StreamRecord) => void }
  >();
  /** destination "topic\0partition" → the last provenance already written there */
  readonly #written = new Map<string, Provenance>();
  #out = new Map<string, Message[]>();
  // The input record being processed, and how many records it has written so far.
  #srcTopic = "";
  #srcOffset = -1;
  #srcK = 0;
  readonly #scratch = { buf: new Uint8Array(256) };
  /** resolved topic name and partition count per sink */
  readonly #sinks = new Map<SinkDef, { topic: string; count: number }>();

  /**
   * @param env topology, partition and topic helpers
   */
  constructor(env: TaskEnv) {
    this.#env = env;
    this.partition = env.partition;
    for (const def of env.topology.stores.values()) {
      const topic = env.topicName({ topic: `${def.name}-changelog`, internal: true });
      this.#stores.set(def.name, new Store(def, this, topic));
    }
    for (const s of env.topology.sources) {
      this.#sources.set(env.topicName(s), {
        keySerde: s.keySerde,
        valueSerde: s.valueSerde,
        fn: taskNode(this, s.node),
      });
    }
  }

  /** The stores' changelog topics, by store name. */
  get changelogs(): Map<string, string> {
    return new Map([...this.#stores].map(([name, s]) => [name, s.topic]));
  }

  /**
   * @param name a store name
   * @returns the store
   * @throws {TypeError} for an unknown store
   */
  store(name: string): TaskStore {
    const s = this.#stores.get(name);
    if (!s) throw new TypeError(`Unknown store "${name}"`);
    return s;
  }

  /**
   * A store's contents (for tests and interactive queries).
   *
   * @param name the store
   * @returns key → value
   */
  entries(name: string): { key: unknown; value: unknown }[] {
    return [...(this.#stores.get(name)?.map.values() ?? [])];
  }

  /**
   * Applies one changelog record during restore (see the module's rules).
   *
   * @param store the store name
   * @param m the changelog record
   * @param committed the committed offset of each input topic's partition
   */
  restore(store: string, m: ConsumedMessage, committed: Map<string, number>): void {
    const s = this.#stores.get(store)!;
    const src = parseProvenance(m.headerString(SRC_HEADER));
    const key = m.key;
    if (key === null) return;
    if (src !== null && src.offset >= (committed.get(src.topic) ?? 0)) {
      this.noteWritten(s.topic, this.partition, src);
      return;
    }
    s.restore(key, m.value);
    if (m.timestamp > this.streamTime) this.streamTime = m.timestamp;
  }

  /**
   * Remembers that a destination already holds outputs up to `src`.
   *
   * @param topic the destination topic
   * @param partition the destination partition
   * @param src the provenance of its last record from this task
   */
  noteWritten(topic: string, partition: number, src: Provenance): void {
    const k = topic + "\u0000" + partition;
    const prev = this.#written.get(k);
    if (!prev || prev.topic !== src.topic || after(src, prev)) this.#written.set(k, src);
  }

  /**
   * Processes one input record through the topology.
   *
   * @param m the record
   */
  process(m: ConsumedMessage): void {
    const source = this.#sources.get(m.topic);
    if (source) this.#process(source, m);
  }

  /**
   * Processes the records of one input partition through the topology, in order.
   *
   * @param messages records of one topic
   */
  processBatch(messages: readonly ConsumedMessage[]): void {
    if (messages.length === 0) return;
    const source = this.#sources.get(messages[0].topic);
    if (!source) return;
    for (let i = 0; i < messages.length; i++) this.#process(source, messages[i]);
  }

  #process(
    source: { keySerde: Serde<unknown>; valueSerde: Serde<unknown>; fn: (r: StreamRecord) => void },
    m: ConsumedMessage,
  ): void {
    this.#srcTopic = m.topic;
    this.#srcOffset = m.offset;
    this.#srcK = 0;
    if (m.timestamp > this.streamTime) this.streamTime = m.timestamp;
    const kb = m.key;
    const vb = m.value;
    source.fn(
      new SourceRecord(
        kb,
        source.keySerde,
        vb === null ? null : source.valueSerde.deserialize(vb),
        m.timestamp,
      ),
    );
    this.processed++;
  }

  /** @see TaskContext.emit */
  emit(sink: SinkDef, r: StreamRecord): void {
    let dest = this.#sinks.get(sink);
    if (dest === undefined) {
      const name = this.#env.topicName(sink);
      dest = { topic: name, count: this.#env.partitionCount(name) };
      this.#sinks.set(sink, dest);
    }
    const { topic, count } = dest;
    const kb = r.rawKey !== undefined && r.rawKeySerde === sink.keySerde
      ? r.rawKey
      : r.key === null || r.key === undefined
      ? null
      : sink.keySerde.serialize(r.key);
    const vb = r.value === null || r.value === undefined
      ? null
      : sink.valueSerde.serialize(r.value);
    const partition = kb === null
      ? this.partition % count
      : partitionForKey(typeof kb === "string" ? keyBytes(kb, this.#scratch) : kb, count);
    this.write(topic, partition, kb, vb, r.timestamp, sink.internal || this.#env.exactlyOnce);
  }

  /**
   * Queues one output record, unless `dedup` and the destination already holds it.
   *
   * @param topic the topic
   * @param partition the partition
   * @param key key bytes
   * @param value value bytes
   * @param timestamp the timestamp
   * @param dedup whether to skip what the destination already holds
   */
  write(
    topic: string,
    partition: number,
    key: Uint8Array | string | null,
    value: Uint8Array | string | null,
    timestamp: number,
    dedup: boolean,
  ): void {
    const k = this.#srcK++;
    const offset = this.#srcOffset;
    if (dedup && this.#written.size > 0) {
      const last = this.#written.get(topic + "\u0000" + partition);
      if (
        last && last.topic === this.#srcTopic &&
        (offset < last.offset || (offset === last.offset && k <= last.k))
      ) return;
    }
    let list = this.#out.get(topic);
    if (!list) this.#out.set(topic, list = []);
    // Provenance only where it is used: destinations that are deduplicated.
    list.push(
      dedup
        ? {
          key,
          value,
          partition,
          timestamp,
          headers: { [SRC_HEADER]: `${offset}.${k}.${this.#srcTopic}` },
        }
        : { key, value, partition, timestamp },
    );
  }

  /** @see TaskContext.dropLate */
  dropLate(store: string): void {
    this.droppedLate.set(store, (this.droppedLate.get(store) ?? 0) + 1);
  }

  /**
   * Takes the records written since the last call.
   *
   * @returns topic → records (with explicit partitions), in write order
   */
  drainOutput(): Map<string, Message[]> {
    const out = this.#out;
    this.#out = new Map();
    return out;
  }
}
