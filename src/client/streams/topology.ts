/**
 * The processor graph behind the streams DSL: what the builder (builder.ts) records and
 * what a task (task.ts) instantiates once per input partition.
 *
 * A node is a function factory: `make(task, next)` returns the function that processes one
 * record in that task and passes results to `next` (its children, fanned out in order).
 * Records are plain `{ key, value, timestamp }`; keys and values are deserialized at the
 * sources and serialized at the sinks (`to`, repartition topics, changelogs).
 *
 * Topic names of internal topics (repartition topics) are suffixes; the application turns
 * them into `<applicationId>-<suffix>`.
 *
 * @module
 */
import type { Serde } from "./serdes.ts";
import type { TimeWindows } from "./windows.ts";

/** A record inside the topology. */
export interface StreamRecord {
  /** the key (null for none) */
  readonly key: unknown;
  /** the value (null for a tombstone) */
  value: unknown;
  /** the record's timestamp, ms */
  timestamp: number;
  /** the key's bytes as read, while the key is unchanged since its source (a sink with the
   * same serde writes them as they are instead of serializing the key again) */
  rawKey?: Uint8Array | null;
  /** the serde `rawKey` was read with */
  rawKeySerde?: Serde<unknown>;
}

/** A state store of a task, as processors see it. */
export interface TaskStore {
  /** the value of a key, or undefined */
  get(key: unknown): unknown;
  /** sets (or with null deletes) a key's value and logs it to the changelog */
  put(key: unknown, value: unknown, timestamp: number): void;
  /** drops from memory (not from the changelog) the entries whose key matches */
  forget(match: (key: unknown) => boolean): void;
}

/** What a node can ask of the task it runs in. */
export interface TaskContext {
  /** the task's input partition number */
  readonly partition: number;
  /** the largest record timestamp the task has processed (event time) */
  readonly streamTime: number;
  /** a store of this task */
  store(name: string): TaskStore;
  /** writes a record to a topic (a sink or a repartition topic) */
  emit(sink: SinkDef, record: StreamRecord): void;
  /** counts a record dropped for being later than the grace period */
  dropLate(store: string): void;
}

/** A processing step. */
export interface NodeDef {
  /** unique in the topology */
  readonly id: number;
  /** where results go, in order */
  readonly children: NodeDef[];
  /** builds the step's function for a task */
  make(task: TaskContext, next: (r: StreamRecord) => void): (r: StreamRecord) => void;
}

/** A topic the topology reads. */
export interface SourceDef {
  /** the topic name, or the suffix of an internal topic */
  topic: string;
  /** whether the topic is internal (`<applicationId>-<topic>`) */
  internal: boolean;
  /** key serde */
  keySerde: Serde<unknown>;
  /** value serde */
  valueSerde: Serde<unknown>;
  /** the first node */
  node: NodeDef;
}

/** A topic the topology writes. */
export interface SinkDef {
  /** the topic name, or the suffix of an internal topic */
  topic: string;
  /** whether the topic is internal */
  internal: boolean;
  /** key serde */
  keySerde: Serde<unknown>;
  /** value serde */
  valueSerde: Serde<unknown>;
}

/** A state store. */
export interface StoreDef {
  /** the store name (its changelog is `<applicationId>-<name>-changelog`) */
  name: string;
  /** key serde (of the record key; windowed stores add the window start) */
  keySerde: Serde<unknown>;
  /** value serde */
  valueSerde: Serde<unknown>;
  /** the windows of a windowed store */
  windows?: TimeWindows;
}

/** The whole graph. */
export class Topology {
  /** sources by topic (suffix for internal ones) */
  readonly sources: SourceDef[] = [];
  /** sinks, for creating and describing topics */
  readonly sinks: SinkDef[] = [];
  /** stores by name */
  readonly stores: Map<string, StoreDef> = new Map();
  #nextId = 0;

  /** @returns a fresh node id */
  nextId(): number {
    return this.#nextId++;
  }

  /**
   * Adds a node under `parents`.
   *
   * @param parents the nodes feeding it
   * @param make its factory
   * @returns the node
   */
  add(parents: NodeDef[], make: NodeDef["make"]): NodeDef {
    const node: NodeDef = { id: this.nextId(), children: [], make };
    for (const p of parents) p.children.push(node);
    return node;
  }

  /**
   * A name no other store or internal topic has: `<prefix>-<n>`.
   *
   * @param prefix e.g. "count"
   * @returns the name
   */
  uniqueName(prefix: string): string {
    return `${prefix}-${String(this.nextId()).padStart(4, "0")}`;
  }
}

const UNREAD = Symbol("unread");

/**
 * A record as a source reads it: the key is deserialized only if a step looks at it (a
 * pipeline that keeps keys writes their bytes as they were read).
 */
export class SourceRecord implements StreamRecord {
  #key: unknown = UNREAD;

  /**
   * @param rawKey the key bytes
   * @param rawKeySerde the source's key serde
   * @param value the deserialized value
   * @param timestamp the timestamp
   */
  constructor(
    readonly rawKey: Uint8Array | null,
    readonly rawKeySerde: Serde<unknown>,
    readonly value: unknown,
    readonly timestamp: number,
  ) {}

  /** The key, deserialized on first use. */
  get key(): unknown {
    if (this.#key === UNREAD) {
      this.#key = this.rawKey === null ? null : this.rawKeySerde.deserialize(this.rawKey);
    }
    return this.#key;
  }
}

/** A record with a new value and the key (read lazily) of the record it came from. */
export class ValueRecord implements StreamRecord {
  /** the key bytes of the source record, if the key is unchanged since */
  readonly rawKey: Uint8Array | null | undefined;
  /** their serde */
  readonly rawKeySerde: Serde<unknown> | undefined;
  readonly #from: StreamRecord;

  /**
   * @param from the record whose key this one keeps
   * @param value the new value
   */
  constructor(from: StreamRecord, readonly value: unknown) {
    this.#from = from;
    this.rawKey = from.rawKey;
    this.rawKeySerde = from.rawKeySerde;
  }

  /** The key of the record it came from. */
  get key(): unknown {
    return this.#from.key;
  }

  /** The timestamp of the record it came from. */
  get timestamp(): number {
    return this.#from.timestamp;
  }
}
