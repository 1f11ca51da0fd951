/**
 * The client's one way to a broker: `fetch` plus Rill's error contract. Every non-2xx
 * answer becomes a {@linkcode RillError} rebuilt from the body; a network failure becomes a
 * retriable BROKER_NOT_AVAILABLE and moves the transport to the next bootstrap broker.
 *
 * Uses only `fetch`, `URL` and `Headers`, so it runs in Deno, browsers and Node.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { errorOf, produceAnswer, readJson, unreachedError } from "./http_answers.ts";
import { resolveRetry, type RetryOptions, withRetry } from "./retry.ts";
import { LeaderRoutes } from "./leader_routes.ts";
import { authorizationOf } from "./authorization.ts";
import { HttpTimeouts } from "./request_deadlines.ts";
import { brokerOffset } from "./offsets.ts";
import {
  type HttpProduceContext,
  postProduce,
  type ProduceRoute,
  produceUrl,
} from "./http_produce.ts";
import {
  WsConnection,
  type WsFetchAnswer,
  type WsFetchRequest,
  type WsProduceTarget,
  WsRefused,
} from "./ws_connection.ts";
import {
  BATCH_MEDIA_TYPE,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type FetchFn,
  type RequestOptions,
  type TransportOptions,
} from "./transport_options.ts";

export { authorizationOf } from "./authorization.ts";
export {
  BATCH_MEDIA_TYPE,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type FetchFn,
  type RequestOptions,
  type TransportOptions,
} from "./transport_options.ts";

/**
 * Where {@linkcode Transport.produceDirect} sends a produce's outcome; the transport notes
 * which broker it went to, for {@linkcode Transport.produceAfter}.
 */
export interface DirectProduce extends WsProduceTarget {
  /** the broker the produce went to */
  base: string;
  /** the broker the partition's route named, if one did */
  routed: string | undefined;
}

/** How long a broker that refused a WebSocket connection is spoken to over HTTP. */
const WS_RETRY_AFTER_MS = 30_000;

/**
 * Sends requests to the brokers and turns error answers into RillErrors.
 *
 * @example
 * ```ts
 * const t = new Transport({ brokers: ["http://127.0.0.1:8092"] });
 * const { topics } = await t.json<{ topics: unknown[] }>("GET", "/v1/topics");
 * ```
 */
export class Transport {
  readonly #brokers: string[];
  #fetch: FetchFn;
  readonly #headers: Record<string, string>;
  /** the headers of a raw-batch produce */
  readonly #produceHeaders: Record<string, string>;
  #current = 0;
  readonly #routes: LeaderRoutes;
  readonly #streamMode: "auto" | "http" | "ws";
  readonly #token: string | undefined;
  readonly #clientId: string | undefined;
  readonly #streams = new Map<string, Promise<WsConnection>>();
  /** the connections of #streams that are open, by broker */
  readonly #open = new Map<string, WsConnection>();
  /** topics percent-encoded */
  readonly #encodedTopics = new Map<string, string>();
  /** per topic, per partition, the route key of its produce requests */
  readonly #produceRoutes = new Map<string, ProduceRoute[]>();
  /** brokers that refused a WebSocket (auto mode), and until when HTTP is used for them */
  readonly #httpUntil = new Map<string, number>();
  #streamUsers = 0;
  readonly #requestTimeoutMs: number;
  readonly #timeouts: HttpTimeouts;
  /** what a produce POSTed directly needs (http_produce.ts) */
  readonly #httpProduce: HttpProduceContext;
  /** The complete retry policy. */
  readonly retry: Required<RetryOptions>;

  /**
   * @param options the brokers, fetch, client id and retry policy
   * @throws {TypeError} if no broker URL is given or one is not http(s)
   */
  constructor(options: TransportOptions) {
    if (!Array.isArray(options.brokers) || options.brokers.length === 0) {
      throw new TypeError("brokers must list at least one broker URL");
    }
    this.#brokers = options.brokers.map((b) => {
      let u: URL;
      try {
        u = new URL(b);
      } catch {
        throw new TypeError(`Broker URL "${b}" is not a valid URL`);
      }
      if (u.protocol !== "http:" && u.protocol !== "https:") {
        throw new TypeError(`Broker URL "${b}" must use http or https`);
      }
      return String(b).replace(/\/+$/, "");
    });
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#headers = options.clientId ? { "Rill-Client-Id": options.clientId } : {};
    if (options.auth !== undefined) this.#headers["Authorization"] = authorizationOf(options.auth);
    // `Prefer: return=minimal`: the broker answers 204 with the offsets in headers, no body
    // to stream and parse (a broker that ignores it answers JSON, read as before).
    // Names lower-cased (as HTTP/2 and hyper write them): Deno's Headers lower-cases a name
    // with capitals into a new string on every request.
    this.#produceHeaders = {
      "content-type": BATCH_MEDIA_TYPE,
      "prefer": "return=minimal",
    };
    for (const [name, value] of Object.entries(this.#headers)) {
      this.#produceHeaders[name.toLowerCase()] = value;
    }
    if (options.httpClient !== undefined) {
      const fetchFn = this.#fetch;
      const client = options.httpClient;
      this.#fetch = (input, init) => fetchFn(input, { ...init, client } as RequestInit);
    }
    this.retry = resolveRetry(options.retry);
    this.#routes = new LeaderRoutes(options.readFrom);
    const transport = options.transport;
    if (transport !== undefined && transport !== "http" && transport !== "ws") {
      throw new TypeError(`transport must be "http" or "ws", got ${JSON.stringify(transport)}`);
    }
    if (transport === "ws" && typeof globalThis.WebSocket !== "function") {
      throw new TypeError('transport "ws" needs a runtime with WebSocket');
    }
    this.#streamMode = transport ??
      (typeof globalThis.WebSocket === "function" && options.fetch === undefined &&
          options.httpClient === undefined
        ? "auto"
        : "http");
    this.#token = options.auth === undefined
      ? undefined
      : typeof options.auth === "string"
      ? options.auth.trim()
      : `${options.auth.keyId}.${options.auth.secret}`;
    this.#clientId = options.clientId;
    const timeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeout) || timeout < 1) {
      throw new TypeError(
        `requestTimeoutMs must be a positive integer of milliseconds, got ${timeout}`,
      );
    }
    this.#requestTimeoutMs = timeout;
    this.#timeouts = new HttpTimeouts(timeout);
    this.#httpProduce = {
      fetch: this.#fetch,
      timeouts: this.#timeouts,
      headers: this.#produceHeaders,
      requestTimeoutMs: timeout,
      unreached: (base) => this.#next(base),
    };
  }

  /**
   * Takes a share of the transport's WebSocket connections (a producer does, until it
   * disconnects); once every share is given back, the connections close.
   *
   * @returns gives the share back (once)
   */
  useStreams(): () => void {
    this.#streamUsers++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.#streamUsers > 0) return;
      const streams = [...this.#streams.values()];
      this.#streams.clear();
      this.#open.clear();
      for (const s of streams) s.then((c) => c.close(), () => {});
    };
  }

  /**
   * Produces raw RecordBatch v2 bytes to a partition's leader: over its WebSocket connection
   * when there is one (see {@linkcode TransportOptions.transport}), else as
   * `POST /v1/topics/{topic}/records?partition=P&acks=A`. No retry (the producer retries).
   *
   * @param topic the topic
   * @param partition the partition
   * @param acks "all", "1" or "0"
   * @param body the batch bytes
   * @returns the broker's answer (`{partition, baseOffset, lastOffset, …}`), or null for
   *   acks=0
   * @throws {RillError} the broker's error; BROKER_NOT_AVAILABLE (retriable) when it cannot
   *   be reached
   */
  produce(
    topic: string,
    partition: number,
    acks: string,
    body: Uint8Array,
  ): Promise<unknown | null> {
    if (this.#streamMode !== "http") {
      // The common case, without the async machinery of the general path: the partition's
      // broker has an open connection.
      const route = this.#produceRoute(topic, partition);
      const routed = this.#routes.base(route);
      const base = routed ?? this.broker;
      const conn = this.#open.get(base);
      if (conn !== undefined && conn.open) {
        return conn.produce(
          topic,
          partition,
          acksNumber(acks),
          body,
          (error) => this.#produce(topic, partition, acks, body, { error, base, routed }),
        );
      }
    }
    return this.#produce(topic, partition, acks, body);
  }

  /**
   * {@linkcode produce} for the producer's common case, without a promise: when the
   * partition's broker has an open WebSocket connection that takes binary produce frames
   * and room in its window, the batch goes at once and its outcome to `target`
   * (WsConnection.produceDirect). A failure given to `target.reject` is the first attempt's:
   * go on with {@linkcode produceAfter}, as {@linkcode produce} does.
   *
   * @param topic the topic
   * @param partition the partition
   * @param acks "all", "1" or "0"
   * @param body the batch bytes
   * @param target where the offsets or the error go
   * @returns false, with nothing sent, when it cannot go this way (use {@linkcode produce})
   */
  produceDirect(
    topic: string,
    partition: number,
    acks: string,
    body: Uint8Array,
    target: DirectProduce,
  ): boolean {
    const route = this.#produceRoute(topic, partition);
    const routed = this.#routes.base(route);
    const base = routed ?? this.broker;
    if (this.#streamMode === "http") {
      target.base = base;
      target.routed = routed;
      postProduce(
        this.#httpProduce,
        base,
        produceUrl(route, base, partition, acks),
        routed !== undefined,
        partition,
        acks,
        body,
        target,
      );
      return true;
    }
    const conn = this.#open.get(base);
    if (conn === undefined) return false;
    target.base = base;
    target.routed = routed;
    return conn.produceDirect(topic, partition, acksNumber(acks), body, target);
  }

  /**
   * Goes on with a produce whose first attempt ({@linkcode produceDirect}) failed with
   * `error`, as {@linkcode produce} does after its first attempt: another route for a
   * refusal naming one, the connection opened again, HTTP where WebSocket is refused.
   *
   * @param topic the topic
   * @param partition the partition
   * @param acks "all", "1" or "0"
   * @param body the batch bytes
   * @param failed the first attempt: its error and the broker it went to
   * @returns the broker's answer, or null for acks=0
   * @throws {RillError} as {@linkcode produce}
   */
  produceAfter(
    topic: string,
    partition: number,
    acks: string,
    body: Uint8Array,
    failed: { error: unknown; base: string; routed: string | undefined },
  ): Promise<unknown | null> {
    return this.#produce(topic, partition, acks, body, failed);
  }

  /**
   * The route key of a partition's produce (remembered per topic and partition: one send of
   * one record built a string and an object for it), with the path and query of its HTTP
   * request by acks.
   */
  #produceRoute(topic: string, partition: number): ProduceRoute {
    let routes = this.#produceRoutes.get(topic);
    if (routes === undefined) {
      if (this.#produceRoutes.size >= 1024) this.#produceRoutes.clear();
      routes = [];
      this.#produceRoutes.set(topic, routes);
    }
    return routes[partition] ??= {
      key: `${this.#encoded(topic)}/${partition}`,
      read: false,
      paths: new Map(),
    };
  }

  /** The topic percent-encoded for a path (remembered: producers name few topics). */
  #encoded(topic: string): string {
    let e = this.#encodedTopics.get(topic);
    if (e === undefined) {
      if (this.#encodedTopics.size >= 1024) this.#encodedTopics.clear();
      e = encodeURIComponent(topic);
      this.#encodedTopics.set(topic, e);
    }
    return e;
  }

  /** {@linkcode produce}'s general path; `failed`: a first attempt's error to go on from. */
  async #produce(
    topic: string,
    partition: number,
    acks: string,
    body: Uint8Array,
    failed?: { error: unknown; base: string; routed: string | undefined },
  ): Promise<unknown | null> {
    // The path and route key as request() would make them, without its generic parsing.
    const encoded = this.#encoded(topic);
    const pathAndQuery = `/v1/topics/${encoded}/records?partition=${partition}&acks=${
      encodeURIComponent(acks)
    }`;
    const route = { key: `${encoded}/${partition}`, read: false };
    for (let hop = 0;; hop++) {
      let routed = this.#routes.base(route);
      let base = routed ?? this.broker;
      try {
        if (failed !== undefined) {
          ({ routed, base } = failed);
          const { error } = failed;
          failed = undefined;
          throw error;
        }
        const conn = this.#streamMode === "http"
          ? null
          : await this.#stream(base, routed !== undefined);
        if (conn !== null) {
          return await conn.produce(topic, partition, acksNumber(acks), body);
        }
        const res = await this.#send(base, base + pathAndQuery, {
          method: "POST",
          headers: this.#produceHeaders,
          body: body as Uint8Array<ArrayBuffer>,
        }, routed !== undefined);
        // A minimal answer (see the Prefer header above): the offsets in headers.
        return await produceAnswer(res, partition, acks);
      } catch (e) {
        if (!(e instanceof RillError) || hop >= 2) throw e;
        if (e.code === "BROKER_NOT_AVAILABLE" && routed !== undefined) {
          this.#routes.forget(route);
          continue;
        }
        if (!this.#routes.learn(route, e, base)) throw e;
      }
    }
  }

  /**
   * Fetches many partitions from one broker in one long poll over its WebSocket connection
   * (the broker's fetch-session core), for a consumer's fetch loop. The caller holds a share
   * of the connections ({@linkcode useStreams}).
   *
   * @param base the broker's base URL (a partition's leader, or `readFrom`)
   * @param req the partitions and the wait
   * @returns the answer, or null when that broker is not spoken to over WebSocket (use HTTP)
   * @throws {RillError} an error of the whole request; BROKER_NOT_AVAILABLE (retriable) when
   *   the connection fails
   */
  async fetchMany(base: string, req: WsFetchRequest): Promise<WsFetchAnswer | null> {
    const clean = base.endsWith("/") ? base.replace(/\/+$/, "") : base;
    // An open connection is used at once; otherwise it is opened (or HTTP is to be used).
    const open = this.#open.get(clean);
    const conn = open !== undefined && open.open ? open : await this.#stream(clean, true);
    return conn === null ? null : await conn.fetch(req);
  }

  /**
   * The WebSocket connection to a broker, opening it, when that broker takes push
   * subscriptions (its hello answer lists `subscribe`), for a consumer's fetch loop; the
   * caller holds a share of the connections ({@linkcode useStreams}).
   *
   * @param base the broker's base URL (a partition's leader, or `readFrom`)
   * @returns the connection, or null when that broker is not spoken to over WebSocket or does
   *   not push (long-poll instead)
   * @throws {RillError} BROKER_NOT_AVAILABLE (retriable) when the connection fails
   */
  async pushConnection(base: string): Promise<WsConnection | null> {
    if (this.#streamMode === "http" || this.#streamUsers === 0) return null;
    const clean = base.endsWith("/") ? base.replace(/\/+$/, "") : base;
    const open = this.#open.get(clean);
    const conn = open !== undefined && open.open ? open : await this.#stream(clean, true);
    return conn !== null && conn.subscriptions ? conn : null;
  }

  /**
   * Closes a fetch session over the broker's open WebSocket connection, if there is one: the
   * request is sent before this returns, its answer is not awaited (errors are ignored: an
   * unclosed session expires).
   *
   * @param base the broker's base URL
   * @param sessionId the session to close
   * @returns whether it was sent (else close it over HTTP)
   */
  closeFetchSession(base: string, sessionId: number): boolean {
    const conn = this.#open.get(base.endsWith("/") ? base.replace(/\/+$/, "") : base);
    if (conn === undefined || !conn.open) return false;
    conn.fetch({ partitions: [], maxWaitMs: 0, session: { id: sessionId, epoch: -1 } })
      .catch(() => {});
    return true;
  }

  /**
   * Fetches one partition over the WebSocket connection to its leader (or `readFrom`), as
   * {@linkcode request} would route its HTTP fetch; for the consumer's fetch loop, which holds
   * a share of the connections ({@linkcode useStreams}).
   *
   * @param topic the topic
   * @param partition the partition
   * @param offset the first offset wanted
   * @param opts sizes and long-poll wait
   * @returns the batches and positions, or null when HTTP is to be used
   * @throws {RillError} the partition's error; BROKER_NOT_AVAILABLE when the connection fails
   */
  async fetchPartition(
    topic: string,
    partition: number,
    offset: number,
    opts: { maxBytes: number; maxWaitMs: number; minBytes: number },
  ): Promise<
    { bytes: Uint8Array; nextOffset: number; highWatermark: number; logStartOffset: number } | null
  > {
    if (this.#streamMode === "http" || this.#streamUsers === 0) return null;
    const route = this.#routes.keyOf("GET", `${topicPath(topic)}/partitions/${partition}/records`)!;
    return await this.#overStream(route, async (conn) => {
      const answer = await conn.fetch({
        partitions: [{ topic, partition, offset, maxBytes: opts.maxBytes }],
        maxWaitMs: opts.maxWaitMs,
        minBytes: opts.minBytes,
      });
      const p = answer.partitions.find((x) => x.topic === topic && x.partition === partition);
      if (p === undefined) {
        throw new RillError(
          "UNKNOWN_SERVER_ERROR",
          `The broker's fetch answer has no ${topic}-${partition}`,
        );
      }
      if (p.error !== undefined) throw p.error;
      return p;
    });
  }

  /**
   * Runs `use` over the WebSocket connection to a route's broker, following the route on
   * NOT_LEADER_OR_FOLLOWER and dropping a routed broker that is gone (two hops at most).
   *
   * @param route the route key
   * @param use what to do over the connection; null when HTTP is to be used instead
   * @returns what `use` returned, or null when HTTP is to be used (no connection)
   * @throws {RillError} the broker's error
   */
  async #overStream<T>(
    route: { key: string; read: boolean },
    use: (conn: WsConnection) => Promise<T | null>,
  ): Promise<T | null> {
    for (let hop = 0;; hop++) {
      const routed = this.#routes.base(route);
      const base = routed ?? this.broker;
      try {
        const conn = await this.#stream(base, routed !== undefined);
        if (conn === null) return null;
        return await use(conn);
      } catch (e) {
        if (!(e instanceof RillError) || hop >= 2) throw e;
        if (e.code === "BROKER_NOT_AVAILABLE" && routed !== undefined) {
          this.#routes.forget(route);
          continue;
        }
        if (!this.#routes.learn(route, e, base)) throw e;
      }
    }
  }

  /**
   * Looks up an offset of a partition over the WebSocket connection to its leader (or
   * `readFrom`), as `GET .../offsets?at=` would; for a consumer, which holds a share of the
   * connections ({@linkcode useStreams}) and fetches over the same connection next, so that
   * no HTTP connection is left open for the look-up.
   *
   * @param topic the topic
   * @param partition the partition
   * @param at "earliest", "latest" or a timestamp in ms
   * @returns the offset, or null when HTTP is to be used (no share held, or a broker that
   *   does not take the request)
   * @throws {RillError} the broker's error; BROKER_NOT_AVAILABLE when the connection fails
   */
  async listOffset(
    topic: string,
    partition: number,
    at: "earliest" | "latest" | number,
  ): Promise<number | null> {
    if (this.#streamMode === "http" || this.#streamUsers === 0) return null;
    const route = this.#routes.keyOf("GET", `${topicPath(topic)}/partitions/${partition}/offsets`)!;
    return await this.#overStream(route, async (conn) => {
      if (!conn.offsets) return null;
      const { header } = await conn.request({ op: "offsets", topic, partition, at });
      return brokerOffset(header.offset, "offset");
    });
  }

  /** The open WebSocket connection to `base`, opening it; null when HTTP is to be used. */
  async #stream(base: string, routed: boolean): Promise<WsConnection | null> {
    if (this.#streamMode === "http") return null;
    const until = this.#httpUntil.get(base);
    if (until !== undefined) {
      if (Date.now() < until) return null;
      this.#httpUntil.delete(base);
    }
    let opening = this.#streams.get(base);
    if (opening === undefined) {
      opening = WsConnection.open(base, {
        auth: this.#token,
        clientId: this.#clientId,
        requestTimeoutMs: this.#requestTimeoutMs,
      });
      const mine = opening;
      this.#streams.set(base, mine);
      mine.then((conn) => {
        conn.onClose = () => {
          if (this.#streams.get(base) === mine) this.#streams.delete(base);
          if (this.#open.get(base) === conn) this.#open.delete(base);
        };
        // Given back while it opened: close it.
        if (this.#streamUsers === 0) conn.close();
        else if (conn.open && this.#streams.get(base) === mine) this.#open.set(base, conn);
      }, () => {
        if (this.#streams.get(base) === mine) this.#streams.delete(base);
      });
    }
    try {
      const conn = await opening;
      if (conn.open) return conn;
      throw new RillError("BROKER_NOT_AVAILABLE", `The connection to ${base} closed`);
    } catch (e) {
      if (!(e instanceof WsRefused)) {
        // A broker that does not answer: try the next bootstrap broker next time.
        if (!routed && e instanceof RillError && e.code === "REQUEST_TIMED_OUT") this.#next(base);
        throw e;
      }
      if (this.#streamMode === "auto") {
        // A proxy or an older broker: HTTP for a while (it reports bad credentials too).
        this.#httpUntil.set(base, Date.now() + WS_RETRY_AFTER_MS);
        return null;
      }
      if (!routed) this.#current = (this.#brokers.indexOf(base) + 1) % this.#brokers.length;
      throw new RillError("BROKER_NOT_AVAILABLE", e.message);
    }
  }

  /** The broker URL requests currently go to. */
  get broker(): string {
    return this.#brokers[this.#current];
  }

  /**
   * Sends one request (no retry) and returns the response if its status is 2xx.
   *
   * @param method the HTTP method
   * @param path the path, starting with `/`
   * @param options query, body, headers, signal
   * @returns the response, body unread
   * @throws {RillError} the broker's error for a non-2xx answer; BROKER_NOT_AVAILABLE
   *   (retriable) when the broker cannot be reached
   * @throws {DOMException} AbortError when `options.signal` aborts
   */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    // A partition's produce and fetch go to its leader (or the readFrom broker), learned
    // from NOT_LEADER_OR_FOLLOWER answers; a new leader named is tried at once (twice at most).
    const route = this.#routes.keyOf(method, path, options.query);
    for (let hop = 0;; hop++) {
      const routed = route ? this.#routes.base(route) : undefined;
      const base = routed ?? this.broker;
      try {
        return await this.#request(base, method, path, options, routed !== undefined);
      } catch (e) {
        if (!route || !(e instanceof RillError) || hop >= 2) throw e;
        if (e.code === "BROKER_NOT_AVAILABLE" && routed !== undefined) {
          this.#routes.forget(route);
          continue;
        }
        if (!this.#routes.learn(route, e, base)) throw e;
      }
    }
  }

  /**
   * The broker a partition's reads go to: its known leader or the `readFrom` broker, else the
   * current bootstrap broker (which names the leader in its answer).
   *
   * @param topic the topic
   * @param partition the partition
   * @returns the broker's base URL
   */
  readBase(topic: string, partition: number): string {
    return this.#routes.base(readRoute(topic, partition)) ?? this.broker;
  }

  /**
   * Learns from a partition's error in a multi-partition fetch answer (the same rules as a
   * single-partition request's NOT_LEADER_OR_FOLLOWER).
   *
   * @param topic the topic
   * @param partition the partition
   * @param e the partition's error
   * @param base the broker that answered
   * @returns true when the partition's reads now go to another broker
   */
  learnRead(topic: string, partition: number, e: RillError, base: string): boolean {
    return this.#routes.learn(readRoute(topic, partition), e, base);
  }

  /**
   * Forgets where a partition's reads go (its broker could not be reached).
   *
   * @param topic the topic
   * @param partition the partition
   */
  forgetRead(topic: string, partition: number): void {
    this.#routes.forget(readRoute(topic, partition));
  }

  /**
   * Sends one request to a given broker (no leader routing, no retry).
   *
   * @param base the broker's base URL
   * @param method the HTTP method
   * @param path the path
   * @param options query, body, headers, signal
   * @returns the response, body unread
   * @throws {RillError} the broker's error for a non-2xx answer; BROKER_NOT_AVAILABLE
   */
  requestAt(
    base: string,
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<Response> {
    return this.#request(base, method, path, options, base !== this.broker);
  }

  async #request(
    base: string,
    method: string,
    path: string,
    options: RequestOptions,
    routed: boolean,
  ): Promise<Response> {
    let url = base + path;
    if (options.query) {
      let sep = "?";
      for (const [k, v] of Object.entries(options.query)) {
        if (v === undefined) continue;
        url += `${sep}${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`;
        sep = "&";
      }
    }
    const headers: Record<string, string> = { ...this.#headers, ...options.headers };
    let body = options.body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    const init = { method, headers, body, signal: options.signal };
    return await this.#send(base, url, init, routed, longPollWait(options));
  }

  /**
   * Sends one request to a URL of a broker; the error contract of {@linkcode request}, and
   * REQUEST_TIMED_OUT when no answer's head came within the request timeout (plus `waitMs`,
   * the time a long poll may be held).
   */
  async #send(
    base: string,
    url: string,
    init: RequestInit,
    routed: boolean,
    waitMs = 0,
  ): Promise<Response> {
    const timeouts = this.#timeouts;
    const id = timeouts.begin(base, waitMs);
    const timeout = timeouts.signal(id);
    const caller = init.signal;
    init.signal = caller ? AbortSignal.any([caller, timeout]) : timeout;
    let res: Response;
    try {
      res = await this.#fetch(url, init);
    } catch (e) {
      if (caller?.aborted) throw e;
      // A network failure, or no answer: try the next bootstrap broker next time.
      if (!routed) this.#next(base);
      throw unreachedError(
        e,
        base,
        init.method,
        url,
        timeout.aborted,
        this.#requestTimeoutMs + waitMs,
      );
    } finally {
      timeouts.end(id);
    }
    if (res.ok) return res;
    throw await errorOf(res);
  }

  /** Requests go to the bootstrap broker after `base` from now on. */
  #next(base: string): void {
    this.#current = (this.#brokers.indexOf(base) + 1) % this.#brokers.length;
  }

  /**
   * Sends a request, retrying retriable failures with backoff, and parses the JSON answer.
   * A 204 answer gives `undefined`.
   *
   * @param method the HTTP method
   * @param path the path
   * @param options query, body, headers, signal
   * @returns the parsed body
   * @throws {RillError} the broker's error once it is not retriable or retries are used up
   */
  json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return withRetry(async () => {
      const res = await this.request(method, path, options);
      if (res.status === 204) {
        await res.body?.cancel();
        return undefined as T;
      }
      return await readJson(res) as T;
    }, this.retry);
  }
}

/** The `maxWaitMs` of a long poll's query or JSON body (0 for other requests). */
function longPollWait(options: RequestOptions): number {
  const wait = options.query?.maxWaitMs ??
    (options.json as { maxWaitMs?: unknown } | undefined)?.maxWaitMs;
  const n = Number(wait);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function readRoute(topic: string, partition: number): { key: string; read: boolean } {
  return { key: `${encodeURIComponent(topic)}/${partition}`, read: true };
}

/**
 * Percent-encodes a topic name for a path segment.
 *
 * @param topic the topic name
 * @returns the encoded segment
 * @example
 * ```ts
 * topicPath("orders"); // "/v1/topics/orders"
 * ```
 */
export function topicPath(topic: string): string {
  return `/v1/topics/${encodeURIComponent(topic)}`;
}

/** The acks of a produce frame: "all" is -1. */
function acksNumber(acks: string): -1 | 0 | 1 {
  return acks === "all" || acks === "-1" ? -1 : acks === "0" ? 0 : 1;
}
