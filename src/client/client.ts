/**
 * `Rill`: the entry point of the client, in kafkajs's shape — one object per cluster that
 * makes admins, producers and consumers sharing one transport and one metadata cache.
 *
 * @module
 */
import { installNativeCrc32cWhenBusy } from "../protocol/native_crc32c.ts";
import { ClusterOperations } from "./cluster_ops.ts";
import { Admin } from "./admin.ts";
import { Consumer, type ConsumerOptions } from "./consumer.ts";
import { Metadata } from "./metadata.ts";
import { Producer, type ProducerOptions } from "./producer.ts";
import type { RetryOptions } from "./retry.ts";
import { StreamsApp, type StreamsConfig } from "./streams/app.ts";
import { type FetchFn, Transport } from "./transport.ts";

/**
 * Options of {@linkcode Rill}.
 *
 * @example
 * ```ts
 * const config: RillConfig = { brokers: ["http://127.0.0.1:8092"], clientId: "shop", retry: { retries: 8 } };
 * const rill = new Rill(config);
 * ```
 */
export interface RillConfig {
  /** bootstrap broker URLs, e.g. `["http://127.0.0.1:8092"]` */
  brokers: string[];
  /** a name for this client, sent as the `Rill-Client-Id` header */
  clientId?: string;
  /** retry policy for retriable errors (default 5 retries from 100 ms, doubling, ±20 %) */
  retry?: RetryOptions;
  /** the fetch to use (default: the global one); handy for metrics, proxies and tests */
  fetch?: FetchFn;
  /**
   * credentials for a broker run with `--auth`: an API key `<keyId>.<secret>` (Bearer) or
   * `{ keyId, secret }` (HTTP Basic)
   */
  auth?: string | { keyId: string; secret: string };
  /**
   * passed as fetch's `client` when set: in Deno,
   * `Deno.createHttpClient({ caCerts: [pem] })` to trust a private CA for `https://` brokers
   */
  httpClient?: unknown;
  /** a broker to read partitions from, e.g. an observer (`rill follower`) near this client */
  readFrom?: string;
  /**
   * how producers talk to brokers: `"ws"` over one WebSocket connection per broker
   * (pipelined requests, README.md "WebSocket protocol"), `"http"` one request per batch.
   * Default: WebSocket where the runtime has it and no `fetch`/`httpClient` is given,
   * falling back to HTTP for a broker that refuses it (a proxy, an older broker)
   */
  transport?: "http" | "ws";
  /**
   * how long a request waits for the broker's answer before it fails with the retriable
   * REQUEST_TIMED_OUT (Kafka's `request.timeout.ms`), plus the `maxWaitMs` of a long poll:
   * over HTTP until the answer's head arrives (the other requests then in flight to that
   * broker fail with it); over WebSocket for the opening, the hello and each request (one
   * request past it closes the connection, failing the others on it as well, which are
   * retried on a new one). Default 40,000 (longer than the broker's own 30 s
   * wait for an acks=all produce's replicas)
   */
  requestTimeoutMs?: number;
  /**
   * use the hardware CRC-32C of `npm:@node-rs/crc32` for batch checksums when this runs in
   * Deno with FFI, read and env access granted (default true; never requested), loaded once the
   * process has checksummed 16 MiB (a small client never pays for loading it). Elsewhere, or
   * when false, checksums use the portable WebAssembly implementation (about 3× slower).
   */
  nativeChecksums?: boolean;
}

/**
 * A client of one Rill cluster. Works wherever `fetch` exists: Deno, browsers, Node.
 *
 * @example
 * ```ts
 * import { Rill } from "./mod.ts";
 *
 * const rill = new Rill({ brokers: ["http://127.0.0.1:8092"], clientId: "shop" });
 * await rill.admin().createTopics({ topics: [{ topic: "orders", numPartitions: 3 }] });
 * const producer = rill.producer();
 * await producer.send({ topic: "orders", messages: [{ key: "u1", value: "hello" }] });
 * const consumer = rill.consumer();
 * await consumer.assign([{ topic: "orders", partition: 0, offset: "earliest" }]);
 * ```
 */
export class Rill {
  readonly #transport: Transport;
  readonly #metadata: Metadata;

  /**
   * @param config the brokers, client id, retry policy and fetch
   * @throws {TypeError} without a valid broker URL
   */
  constructor(config: RillConfig) {
    this.#transport = new Transport(config);
    this.#metadata = new Metadata(this.#transport);
    // Loaded once the process has checksummed enough to be worth it; until then (and while
    // it loads) checksums use the portable one: both agree.
    if (config.nativeChecksums !== false) installNativeCrc32cWhenBusy();
  }

  /**
   * An admin client: topics, offsets, cluster.
   *
   * @returns a new Admin
   * @example
   * ```ts
   * const topics = await rill.admin().listTopics();
   * ```
   */
  admin(): Admin {
    return new Admin(this.#transport);
  }

  /**
   * Balancing operations: preferred leader election, rebalance, decommission, status.
   *
   * @returns the operations
   * @example
   * ```ts
   * await rill.cluster().electLeaders();
   * ```
   */
  cluster(): ClusterOperations {
    return new ClusterOperations(this.#transport);
  }

  /**
   * A producer.
   *
   * @param options batching (`lingerMs`, `batchBytes`), `maxInFlightRequests`, default `acks`
   * @returns a new Producer
   * @example
   * ```ts
   * const producer = rill.producer({ lingerMs: 5 });
   * ```
   */
  producer(options: ProducerOptions = {}): Producer {
    return new Producer(this.#transport, this.#metadata, options);
  }

  /**
   * A consumer: of assigned partitions, or (with `groupId`) a member of a consumer group.
   *
   * @param options long-poll wait and fetch sizes; `groupId`, session timeout, assignor and
   *   rebalance listeners for groups
   * @returns a new Consumer
   * @throws {TypeError} on a bad groupId; {RangeError} on a bad number
   * @example
   * ```ts
   * const consumer = rill.consumer({ maxWaitMs: 1000 });
   * const member = rill.consumer({ groupId: "billing", onAssigned: (ps) => console.log(ps) });
   * ```
   */
  consumer(options: ConsumerOptions = {}): Consumer {
    return new Consumer(this.#transport, new Admin(this.#transport), options);
  }

  /**
   * A streams application: runs a topology built with `StreamsBuilder` (see
   * src/client/streams/app.ts for the processing guarantees).
   *
   * @param config `applicationId`, `processingGuarantee`, `fromBeginning`, `stopAtEnd`, …
   * @returns a new application; call `build(builder)` then `start()`
   * @throws {TypeError} on a bad applicationId
   * @example
   * ```ts
   * const builder = new StreamsBuilder();
   * builder.stream("lines").mapValues((v) => v.toUpperCase()).to("shouts");
   * const app = rill.streams({ applicationId: "shouter", fromBeginning: true }).build(builder);
   * await app.start();
   * ```
   */
  streams(config: StreamsConfig): StreamsApp {
    return new StreamsApp(this.#transport, this.#metadata, new Admin(this.#transport), config);
  }
}
