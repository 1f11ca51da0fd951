/**
 * Where the client sends a partition's requests: produce to the partition's leader, fetch
 * to the leader or to a preferred read replica (`readFrom`, as KIP-392 fetch-from-follower).
 * The transport learns leaders from the brokers' NOT_LEADER_OR_FOLLOWER answers, which
 * carry the current leader's URL, and forgets a route when its broker cannot be reached or
 * the partition has no leader, falling back to the bootstrap brokers (which answer with
 * the new leader). No metadata request sits on the hot path.
 *
 * @module
 */
import type { RillError } from "../protocol/errors.ts";

const PARTITION_PATH = /^\/v1\/topics\/([^/]+)\/partitions\/(\d+)\/(records|offsets)$/;
const PRODUCE_PATH = /^\/v1\/topics\/([^/]+)\/records$/;

/**
 * The routing table of one transport.
 *
 * @example
 * ```ts
 * const routes = new LeaderRoutes();
 * const key = routes.keyOf("POST", "/v1/topics/orders/records", { partition: 0 });
 * routes.base(key); // undefined until a broker names the leader
 * ```
 */
export class LeaderRoutes {
  readonly #leaders = new Map<string, string>();
  readonly #readFrom: string | undefined;
  /** partitions the readFrom broker does not serve */
  readonly #refused = new Set<string>();

  /** @param readFrom a URL consumers should read from (an observer near them) */
  constructor(readFrom?: string) {
    this.#readFrom = readFrom?.replace(/\/+$/, "");
  }

  /**
   * The partition a request is about, if it is a produce or a read of one partition.
   *
   * @param method the HTTP method
   * @param path the request path
   * @param query the query parameters
   * @returns a route key with whether it is a read, or null
   */
  keyOf(
    method: string,
    path: string,
    query?: Record<string, string | number | undefined>,
  ): { key: string; read: boolean } | null {
    const m = PARTITION_PATH.exec(path);
    if (m && method === "GET") return { key: `${m[1]}/${m[2]}`, read: true };
    const p = PRODUCE_PATH.exec(path);
    if (p && method === "POST" && query?.partition !== undefined) {
      return { key: `${p[1]}/${query.partition}`, read: false };
    }
    return null;
  }

  /**
   * The base URL to send a partition's request to.
   *
   * @param route the route key
   * @returns the URL, or undefined for the bootstrap broker
   */
  base(route: { key: string; read: boolean }): string | undefined {
    if (route.read && this.#readFrom && !this.#refused.has(route.key)) return this.#readFrom;
    return this.#leaders.get(route.key);
  }

  /**
   * Learns from an error answer.
   *
   * @param route the route key
   * @param e the error
   * @param base the URL that answered
   * @returns true when the error names another leader to resend to at once
   */
  learn(route: { key: string; read: boolean }, e: RillError, base: string): boolean {
    if (e.code !== "NOT_LEADER_OR_FOLLOWER" && e.code !== "LEADER_NOT_AVAILABLE") return false;
    if (route.read && base === this.#readFrom) this.#refused.add(route.key);
    const url = (e.details as { leaderUrl?: unknown } | undefined)?.leaderUrl;
    if (typeof url !== "string" || url === "") {
      this.#leaders.delete(route.key);
      return false;
    }
    const clean = url.replace(/\/+$/, "");
    if (clean === base) {
      // A broker refusing while naming itself has stale metadata (its replica already
      // follows): ask the bootstrap brokers next rather than it again.
      this.#leaders.delete(route.key);
      return false;
    }
    this.#leaders.set(route.key, clean);
    return true;
  }

  /**
   * Forgets the leader of a partition (its broker could not be reached).
   *
   * @param route the route key
   */
  forget(route: { key: string; read: boolean }): void {
    this.#leaders.delete(route.key);
  }
}
