/**
 * The client's cache of topic metadata: how many partitions each topic has, read from
 * `GET /v1/topics/{topic}` once and again after an error that says it is stale
 * (UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER).
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { topicPath, type Transport } from "./transport.ts";

/**
 * Caches partition counts per topic; concurrent lookups of one topic share one request.
 *
 * @example
 * ```ts
 * const meta = new Metadata(transport);
 * const count = meta.cached("orders") ?? await meta.partitionCount("orders");
 * ```
 */
export class Metadata {
  readonly #t: Transport;
  readonly #counts = new Map<string, number>();
  readonly #loading = new Map<string, Promise<number>>();

  /**
   * @param transport the client's transport
   */
  constructor(transport: Transport) {
    this.#t = transport;
  }

  /**
   * The cached partition count of a topic, without a request.
   *
   * @param topic the topic
   * @returns the count, or undefined if not cached
   */
  cached(topic: string): number | undefined {
    return this.#counts.get(topic);
  }

  /**
   * The partition count of a topic, from the cache or the broker.
   *
   * @param topic the topic
   * @returns the count
   * @throws {RillError} UNKNOWN_TOPIC_OR_PARTITION if the topic does not exist
   */
  partitionCount(topic: string): Promise<number> {
    const c = this.#counts.get(topic);
    if (c !== undefined) return Promise.resolve(c);
    let p = this.#loading.get(topic);
    if (p === undefined) {
      p = this.#t.json<{ partitions: unknown[] }>("GET", topicPath(topic)).then((d) => {
        if (!d || !Array.isArray(d.partitions) || d.partitions.length === 0) {
          throw new RillError(
            "UNKNOWN_SERVER_ERROR",
            `The broker described topic "${topic}" without partitions`,
          );
        }
        this.#counts.set(topic, d.partitions.length);
        return d.partitions.length;
      }).finally(() => this.#loading.delete(topic));
      this.#loading.set(topic, p);
    }
    return p;
  }

  /**
   * Forgets a topic's metadata so the next lookup asks the broker.
   *
   * @param topic the topic
   */
  invalidate(topic: string): void {
    this.#counts.delete(topic);
  }
}
