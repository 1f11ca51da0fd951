/**
 * What a `Transport` (transport.ts) is built with and what one request carries:
 * the client's connection options (brokers, credentials, `transport`, `requestTimeoutMs`, …),
 * a request's options, and the media type of raw batches.
 *
 * @module
 */
import type { RetryOptions } from "./retry.ts";

/**
 * A `fetch`-compatible function (the global one, or a wrapper for tests and metrics).
 *
 * @example
 * ```ts
 * const counting: FetchFn = (input, init) => { requests++; return fetch(input, init); };
 * new Rill({ brokers: ["http://127.0.0.1:8092"], fetch: counting });
 * ```
 */
export type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * Options of `Transport` (transport.ts).
 *
 * @example
 * ```ts
 * new Transport({ brokers: ["http://127.0.0.1:8092"], retry: { retries: 3 } });
 * ```
 */
export interface TransportOptions {
  /** bootstrap broker URLs, e.g. `["http://127.0.0.1:8092"]` */
  brokers: string[];
  /** sent as `Rill-Client-Id` when set */
  clientId?: string;
  /** the fetch to use (default: globalThis.fetch) */
  fetch?: FetchFn;
  /** retry policy of admin calls and produce requests */
  retry?: RetryOptions;
  /**
   * credentials for a broker run with `--auth`: an API key token `<keyId>.<secret>` (sent
   * as `Authorization: Bearer`), or `{ keyId, secret }` (sent as HTTP Basic)
   */
  auth?: string | { keyId: string; secret: string };
  /**
   * passed as fetch's `client` option when set: in Deno, a `Deno.createHttpClient({ caCerts })`
   * that trusts a private CA for `https://` brokers
   */
  httpClient?: unknown;
  /**
   * a broker (e.g. an observer at the consumer's site) to read partitions from; produce
   * still goes to each partition's leader (KIP-392's fetch from follower)
   */
  readFrom?: string;
  /**
   * how produce requests travel: `"ws"` over one WebSocket connection per broker (pipelined,
   * see README.md), `"http"` one HTTP request per batch. Default: WebSocket where the
   * runtime has it and neither `fetch` nor `httpClient` is given, falling back to HTTP for
   * a broker that refuses the connection (a proxy, an older broker)
   */
  transport?: "http" | "ws";
  /**
   * how long a request waits for the broker's answer (Kafka's `request.timeout.ms`), plus
   * the `maxWaitMs` of a long poll, before it fails with the retriable REQUEST_TIMED_OUT: over
   * HTTP until the answer's head arrives (the other requests then in flight to that broker
   * fail with it); over WebSocket for the opening, the hello and each request (one request
   * past it closes the connection, failing the others on it as well). Default
   * {@linkcode DEFAULT_REQUEST_TIMEOUT_MS}
   */
  requestTimeoutMs?: number;
}

/**
 * The default request timeout: 40 s, longer than the 30 s a broker waits for an acks=all
 * produce's replicas, so that its own answer (REQUEST_TIMED_OUT, or the offsets) comes first.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 40_000;

/**
 * One request.
 *
 * @example
 * ```ts
 * await transport.request("GET", "/v1/topics", { query: { limit: 10 } });
 * ```
 */
export interface RequestOptions {
  /** query parameters (undefined values are left out) */
  query?: Record<string, string | number | undefined>;
  /** a JSON body */
  json?: unknown;
  /** a raw body */
  body?: BodyInit;
  /** extra headers */
  headers?: Record<string, string>;
  /** aborts the request */
  signal?: AbortSignal;
}

/**
 * The media type of raw RecordBatch v2 bodies.
 *
 * @example
 * ```ts
 * fetch(url, { method: "POST", body: batch, headers: { "Content-Type": BATCH_MEDIA_TYPE } });
 * ```
 */
export const BATCH_MEDIA_TYPE = "application/vnd.rill.batch";
