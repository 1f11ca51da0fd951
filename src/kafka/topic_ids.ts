/**
 * Topic ids on the wire: each topic's id is the UUID the coordination store gave it when it
 * was created (`TopicMetadata.topicId`, kept with the topic's metadata in KV, so it survives
 * restarts and every broker answers the same one). Metadata v10+ and CreateTopics v7 send it;
 * Fetch v13+ and DeleteTopics v6 name topics by it. This module turns the 16 wire bytes into
 * a topic name and back: names by id from a map rebuilt from the broker's metadata when an
 * id is missing (each hit checked against the broker's cache), ids by name from that cache.
 *
 * @example
 * ```ts
 * const ids = topicIds(ctx.broker);
 * const name = await ids.name(req.topics[0].topicId); // null: UNKNOWN_TOPIC_ID
 * ```
 *
 * @module
 */
import type { TopicMetadata } from "../coordination/topics.ts";

/** The all-zero id (Kafka's `Uuid.ZERO_UUID`): "no id". */
export const ZERO_ID = "00000000000000000000000000000000";

/**
 * Parses a topic id ("xxxxxxxx-xxxx-…") into 16 bytes.
 *
 * @param id the uuid text
 * @returns the bytes (zeros when it does not parse)
 */
export function uuidBytes(id: string): Uint8Array {
  const hex = id.replaceAll("-", "");
  const out = new Uint8Array(16);
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return out;
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * 16 id bytes as 32 lowercase hex digits.
 *
 * @param bytes the id
 * @returns the hex text
 */
export function uuidHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < 16; i++) out += (bytes[i] ?? 0).toString(16).padStart(2, "0");
  return out;
}

/** What {@linkcode TopicIds} reads: the broker's metadata cache. */
export interface TopicSource {
  /** every topic (refreshing the cache first if the metadata changed) */
  listTopics(): Promise<TopicMetadata[]>;
  /** a topic's id from the cache (refreshed once on a miss), or null when it does not exist */
  topicId(name: string): Promise<string | null>;
}

/** Topic id ↔ name, from the broker's metadata. */
export class TopicIds {
  readonly #source: TopicSource;
  #byId = new Map<string, string>();
  #rebuilding: Promise<void> | null = null;

  /** @param source where the topics come from */
  constructor(source: TopicSource) {
    this.#source = source;
  }

  /**
   * The name of the topic with this id. A remembered name is checked against the broker's
   * cache, so a topic deleted (or deleted and re-created under a new id) stops answering
   * to its old id as soon as the broker knows.
   *
   * @param id the 16 id bytes
   * @returns the name, or null when no topic has the id (UNKNOWN_TOPIC_ID)
   */
  async name(id: Uint8Array): Promise<string | null> {
    const hex = uuidHex(id);
    if (hex === ZERO_ID) return null;
    const known = this.#byId.get(hex);
    if (known !== undefined && await this.#has(known, hex)) return known;
    await this.#rebuild();
    const found = this.#byId.get(hex);
    return found !== undefined && await this.#has(found, hex) ? found : null;
  }

  /**
   * The id of a topic.
   *
   * @param name the topic
   * @returns its 16 id bytes (zeros when the topic is unknown)
   */
  async id(name: string): Promise<Uint8Array> {
    const id = await this.#source.topicId(name);
    return id === null ? new Uint8Array(16) : uuidBytes(id);
  }

  /**
   * The id a topic had when this map last saw it, for answering about a topic deleted since
   * (a fetch session's partitions of a deleted topic get UNKNOWN_TOPIC_ID under that id).
   *
   * @param name the topic
   * @returns its former 16 id bytes, or null when never seen
   */
  formerId(name: string): Uint8Array | null {
    for (const [hex, n] of this.#byId) {
      if (n === name) return uuidBytes(hex);
    }
    return null;
  }

  async #has(name: string, hex: string): Promise<boolean> {
    const id = await this.#source.topicId(name);
    return id !== null && id.replaceAll("-", "").toLowerCase() === hex;
  }

  #rebuild(): Promise<void> {
    // Concurrent misses share one listing.
    this.#rebuilding ??= this.#source.listTopics().then((topics) => {
      const byId = new Map<string, string>();
      for (const t of topics) byId.set(uuidHex(uuidBytes(t.topicId)), t.name);
      this.#byId = byId;
    }).finally(() => this.#rebuilding = null);
    return this.#rebuilding;
  }
}

const PER_SOURCE = new WeakMap<TopicSource, TopicIds>();

/**
 * The id map of a broker (one per broker process, shared by its connections).
 *
 * @param source the broker
 * @returns its map
 */
export function topicIds(source: TopicSource): TopicIds {
  let ids = PER_SOURCE.get(source);
  if (!ids) PER_SOURCE.set(source, ids = new TopicIds(source));
  return ids;
}
