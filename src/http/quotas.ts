/**
 * Quotas and limits of the HTTP API, kept in memory per broker:
 *
 * - URL and header size: a URL longer than `maxUrlBytes` is 414, headers larger than
 *   `maxHeaderBytes` in total are 431 (both INVALID_REQUEST), before anything else runs;
 * - per-principal token buckets for requests/s, produced bytes/s and fetched bytes/s
 *   (0 = unlimited, Kafka's default). A principal in debt is answered 429
 *   THROTTLING_QUOTA_EXCEEDED with `Retry-After` (seconds) until its bucket refills; the
 *   request is refused whole, never half-applied. Produce bytes are charged up front from
 *   `Content-Length` (or as a chunked body streams in), fetch bytes as the response is sent;
 * - a cap on concurrent long polls (`maxWaitMs` > 0) and SSE streams: per principal when
 *   auth is on, and for the whole broker always (with auth off, every caller is one
 *   principal, so the global cap is what holds). Over the cap: 429 with `Retry-After`.
 *
 * - request bodies being read: each reserves its `Content-Length` (a chunked body: the
 *   request limit, 8 MiB) against `maxBodyBytesInFlight` (256 MiB) for the broker until its
 *   handler is done; over it, 429 before a byte is read.
 *
 * Request bodies are bounded by the routes (params.ts reads at most `maxRequestBytes`, JSON,
 * NDJSON and raw batches alike), so a client cannot make the broker buffer more than that
 * per request, nor, with the cap above, many clients more than 256 MiB at once.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { RillError } from "../protocol/errors.ts";
import { principalOf } from "./auth.ts";

/** Quota and limit settings. */
export interface QuotaConfig {
  /** requests per second per principal; 0 = unlimited */
  requestsPerSec: number;
  /** produced bytes per second per principal; 0 = unlimited */
  produceBytesPerSec: number;
  /** fetched bytes per second per principal; 0 = unlimited */
  fetchBytesPerSec: number;
  /** concurrent long polls + SSE streams per principal (auth on); default 100 */
  maxStreamsPerPrincipal: number;
  /** concurrent long polls + SSE streams on the broker; default 1000 */
  maxStreams: number;
  /** longest URL (path and query); default 8192 */
  maxUrlBytes: number;
  /** largest total of header names and values; default 16384 */
  maxHeaderBytes: number;
  /** request body bytes being read at once on the broker; default 256 MiB */
  maxBodyBytesInFlight: number;
  /** what a body without Content-Length reserves of that; default 8 MiB (the request limit) */
  unknownBodyBytes: number;
}

/** The defaults of {@linkcode QuotaConfig}. */
export const DEFAULT_QUOTAS: Readonly<QuotaConfig> = Object.freeze({
  requestsPerSec: 0,
  produceBytesPerSec: 0,
  fetchBytesPerSec: 0,
  maxStreamsPerPrincipal: 100,
  maxStreams: 1000,
  maxUrlBytes: 8192,
  maxHeaderBytes: 16384,
  maxBodyBytesInFlight: 256 * 1024 * 1024,
  unknownBodyBytes: 8 * 1024 * 1024,
});

/**
 * A token bucket that may go into debt: `rate` tokens a second, at most one second's worth
 * banked. A charge always succeeds; {@linkcode TokenBucket.waitMs} says how long until the
 * balance is positive again.
 *
 * @example
 * ```ts
 * const b = new TokenBucket(1000);
 * b.charge(1500);
 * b.waitMs(); // ≈ 500
 * ```
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  /**
   * @param rate tokens per second
   * @param now the clock
   */
  constructor(readonly rate: number, private readonly now: () => number = () => performance.now()) {
    this.#tokens = rate;
    this.#last = now();
  }

  #refill(): void {
    const t = this.now();
    this.#tokens = Math.min(this.rate, this.#tokens + (t - this.#last) * this.rate / 1000);
    this.#last = t;
  }

  /**
   * Takes tokens (the balance may go negative).
   *
   * @param n how many
   */
  charge(n: number): void {
    this.#refill();
    this.#tokens -= n;
  }

  /**
   * How long until the balance is positive.
   *
   * @returns milliseconds (0 when it is)
   */
  waitMs(): number {
    this.#refill();
    return this.#tokens > 0 ? 0 : Math.ceil((-this.#tokens + 1) * 1000 / this.rate);
  }
}

interface PrincipalState {
  requests?: TokenBucket;
  produce?: TokenBucket;
  fetch?: TokenBucket;
  streams: number;
}

const PRODUCE_PATH = /^\/v1\/topics\/[^/]+\/records$/;
const FETCH_PATH = /^\/v1\/topics\/[^/]+\/partitions\/[^/]+\/records$/;
const MULTI_FETCH_PATH = "/v1/fetch";
const LONG_POLL = /(?:^|&)maxWaitMs=0*[1-9]/;

function throttled(c: Context, waitMs: number, message: string): Response {
  const err = new RillError("THROTTLING_QUOTA_EXCEEDED", message, { retryAfterMs: waitMs });
  return c.json(err.toJSON(), 429, {
    "Retry-After": String(Math.max(1, Math.ceil(waitMs / 1000))),
  });
}

function withEnd(
  body: ReadableStream<Uint8Array>,
  onChunk: ((n: number) => void) | null,
  end: () => void,
) {
  const reader = body.getReader();
  let ended = false;
  const finish = () => {
    if (!ended) {
      ended = true;
      end();
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await reader.read();
        if (r.done) {
          finish();
          controller.close();
          return;
        }
        onChunk?.(r.value.length);
        controller.enqueue(r.value);
      } catch (e) {
        finish();
        controller.error(e);
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * The quota state of one broker.
 *
 * @example
 * ```ts
 * const quotas = new Quotas({ maxStreams: 500 });
 * app.use("*", quotas.limits());      // first: URL and header sizes
 * app.use("*", security.middleware());
 * app.use("*", quotas.middleware(true));
 * ```
 */
export class Quotas {
  /** the effective settings */
  readonly config: QuotaConfig;
  readonly #principals = new Map<string, PrincipalState>();
  #streams = 0;
  #bodyBytes = 0;

  /**
   * @param config overrides of {@linkcode DEFAULT_QUOTAS}
   */
  constructor(config: Partial<QuotaConfig> = {}) {
    this.config = { ...DEFAULT_QUOTAS, ...config };
  }

  /** Concurrent long polls and SSE streams now open. */
  get openStreams(): number {
    return this.#streams;
  }

  /**
   * The URL and header size limits (mount first).
   *
   * @returns a Hono middleware
   */
  limits(): MiddlewareHandler {
    return async (c, next) => {
      const refused = this.limitRefusal(c.req.raw);
      if (refused !== null) return c.json(refused.error.toJSON(), refused.status);
      return await next();
    };
  }

  /**
   * Whether a request breaks the URL or header size limits (what {@linkcode limits} checks).
   *
   * @param req the request
   * @returns the status and error to answer, or null when it is within the limits
   */
  limitRefusal(req: Request): { status: 414 | 431; error: RillError } | null {
    let size = 0;
    for (const [k, v] of req.headers) size += k.length + v.length + 4;
    return this.limitRefusalOf(req.url, size);
  }

  /**
   * {@linkcode limitRefusal} for a caller that has already summed the headers (the record
   * lane, which reads them all in one pass).
   *
   * @param url the request's URL
   * @param headerBytes the sum over its headers of name and value lengths, plus 4 each
   * @returns the status and error to answer, or null when it is within the limits
   */
  limitRefusalOf(url: string, headerBytes: number): { status: 414 | 431; error: RillError } | null {
    const { maxUrlBytes, maxHeaderBytes } = this.config;
    // The origin is ours, not the client's: count from the path.
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    if (url.length - pathStart > maxUrlBytes) {
      const error = new RillError("INVALID_REQUEST", `The URL is longer than ${maxUrlBytes} bytes`);
      return { status: 414, error };
    }
    const size = headerBytes;
    if (size > maxHeaderBytes) {
      const error = new RillError(
        "INVALID_REQUEST",
        `The request headers are larger than ${maxHeaderBytes} bytes`,
      );
      return { status: 431, error };
    }
    return null;
  }

  /**
   * What {@linkcode middleware} does for a fetch (a GET of a partition's records with
   * `query`), for the lanes that answer without it (replica_fetch_lane.ts, record_lane.ts):
   * takes the stream slot of a long poll. Null when the middleware would do more than that (request or fetch byte
   * rates are configured) or would refuse it (a stream limit is reached): the request must
   * then go through the middleware, which answers as usual.
   *
   * @param principal the authenticated principal
   * @param perPrincipalStreams whether the per-principal stream cap applies (auth on)
   * @param query the request's query string
   * @returns a function that frees the slot (call it once the response is made), or null
   */
  holdFetch(
    principal: string,
    perPrincipalStreams: boolean,
    query: string,
  ): (() => void) | null {
    const c = this.config;
    if (c.requestsPerSec > 0 || c.fetchBytesPerSec > 0) return null;
    const s = this.#state(principal);
    if (!LONG_POLL.test(query)) return () => {};
    if (this.#streams >= c.maxStreams) return null;
    if (perPrincipalStreams && s.streams >= c.maxStreamsPerPrincipal) return null;
    return this.#hold(s);
  }

  /**
   * What {@linkcode middleware} does for a produce whose body declares `declared` bytes,
   * for the record lane (record_lane.ts): reserves the body against
   * `maxBodyBytesInFlight`. -1 when the middleware would do more (request or produce byte
   * rates are configured) or would refuse it (the reservation does not fit): the request
   * must then go through the middleware, which answers as usual. A count, not a function to
   * call back: one allocation fewer per single-record produce.
   *
   * @param declared the body's Content-Length (NaN when there is none)
   * @returns the bytes reserved (give them back with {@linkcode releaseBody} once the handler
   *   is done), or -1
   */
  reserveProduce(declared: number): number {
    const c = this.config;
    if (c.requestsPerSec > 0 || c.produceBytesPerSec > 0) return -1;
    const reserved = declared >= 0 ? Math.min(declared, c.unknownBodyBytes) : c.unknownBodyBytes;
    if (reserved > 0 && this.#bodyBytes + reserved > c.maxBodyBytesInFlight) return -1;
    this.#bodyBytes += reserved;
    return reserved;
  }

  /**
   * Gives back a reservation of {@linkcode reserveProduce}, once.
   *
   * @param bytes what it returned
   */
  releaseBody(bytes: number): void {
    this.#bodyBytes -= bytes;
  }

  /**
   * Reserves `bytes` of request bodies held at once against `maxBodyBytesInFlight`, as the
   * middleware does for each body it lets in (the WebSocket skin does it for each produce
   * frame it holds).
   *
   * @param bytes the body's size
   * @returns a function that gives the reservation back, or null when it does not fit
   */
  reserveBody(bytes: number): (() => void) | null {
    const reserved = bytes;
    if (reserved > 0 && this.#bodyBytes + reserved > this.config.maxBodyBytesInFlight) {
      return null;
    }
    this.#bodyBytes += reserved;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#bodyBytes -= reserved;
    };
  }

  /**
   * Charges one request of `principal`, with `produceBytes` produced or `fetchBytes` about to
   * be fetched, against its request and byte rates, as the middleware does for an HTTP
   * request (for the WebSocket skin, src/ws, which charges each frame).
   *
   * @param principal the authenticated principal
   * @param produceBytes bytes produced by the request
   * @param fetch whether it fetches (checked against the fetch byte rate)
   * @returns 0 when admitted (and charged); else the milliseconds until it would be, and a
   *   message for THROTTLING_QUOTA_EXCEEDED (nothing charged)
   */
  admit(
    principal: string,
    produceBytes: number,
    fetch: boolean,
  ): { waitMs: 0 } | { waitMs: number; message: string } {
    const c = this.config;
    if (c.requestsPerSec === 0 && c.produceBytesPerSec === 0 && c.fetchBytesPerSec === 0) {
      return { waitMs: 0 };
    }
    const s = this.#state(principal);
    const requestWait = s.requests?.waitMs() ?? 0;
    if (requestWait > 0) {
      return { waitMs: requestWait, message: `Principal "${principal}" is over its request rate` };
    }
    if (produceBytes > 0 && s.produce) {
      const wait = s.produce.waitMs();
      if (wait > 0) {
        return { waitMs: wait, message: `Principal "${principal}" is over its produce byte rate` };
      }
    }
    if (fetch && s.fetch) {
      const wait = s.fetch.waitMs();
      if (wait > 0) {
        return { waitMs: wait, message: `Principal "${principal}" is over its fetch byte rate` };
      }
    }
    s.requests?.charge(1);
    if (produceBytes > 0) s.produce?.charge(produceBytes);
    return { waitMs: 0 };
  }

  /**
   * Charges fetched bytes of `principal` against its fetch byte rate (as the middleware does
   * when an answer is sent).
   *
   * @param principal the principal
   * @param bytes the bytes sent
   */
  chargeFetched(principal: string, bytes: number): void {
    if (this.config.fetchBytesPerSec === 0) return;
    this.#state(principal).fetch?.charge(bytes);
  }

  /** Counts a long poll or stream of `s` as open; returns the function that ends it. */
  #hold(s: PrincipalState): () => void {
    this.#streams++;
    s.streams++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#streams--;
      s.streams--;
    };
  }

  #state(principal: string): PrincipalState {
    let s = this.#principals.get(principal);
    if (!s) {
      const { requestsPerSec, produceBytesPerSec, fetchBytesPerSec } = this.config;
      s = {
        requests: requestsPerSec > 0 ? new TokenBucket(requestsPerSec) : undefined,
        produce: produceBytesPerSec > 0 ? new TokenBucket(produceBytesPerSec) : undefined,
        fetch: fetchBytesPerSec > 0 ? new TokenBucket(fetchBytesPerSec) : undefined,
        streams: 0,
      };
      if (this.#principals.size >= 100_000) this.#principals.clear();
      this.#principals.set(principal, s);
    }
    return s;
  }

  /**
   * The quota middleware (mount after authentication).
   *
   * @param perPrincipalStreams whether the per-principal stream cap applies (auth on)
   * @returns a Hono middleware
   */
  middleware(perPrincipalStreams: boolean): MiddlewareHandler {
    return async (c, next) => {
      const path = c.req.path;
      if (path === "/healthz") return await next();
      const principal = principalOf(c).name;
      const s = this.#state(principal);
      if (s.requests) {
        const wait = s.requests.waitMs();
        if (wait > 0) {
          return throttled(c, wait, `Principal "${principal}" is over its request rate`);
        }
        s.requests.charge(1);
      }
      // Bodies being read hold memory until their handler is done: reserve their size (the
      // route refuses more than its limit without reading it) against a broker-wide cap.
      const method = c.req.method;
      let reserved = 0;
      if (method !== "GET" && method !== "HEAD" && method !== "OPTIONS" && c.req.raw.body) {
        const declared = Number(c.req.header("content-length") ?? NaN);
        reserved = declared >= 0
          ? Math.min(declared, this.config.unknownBodyBytes)
          : this.config.unknownBodyBytes;
        if (reserved > 0 && this.#bodyBytes + reserved > this.config.maxBodyBytesInFlight) {
          return throttled(c, 1000, "The broker is reading too many request bodies at once");
        }
        this.#bodyBytes += reserved;
      }
      try {
        return await this.#limited(c, next, s, principal, perPrincipalStreams);
      } finally {
        this.#bodyBytes -= reserved;
      }
    };
  }

  async #limited(
    c: Context,
    next: () => Promise<void>,
    s: PrincipalState,
    principal: string,
    perPrincipalStreams: boolean,
  ): Promise<Response | void> {
    const path = c.req.path;
    const method = c.req.method;
    if (method === "POST" && s.produce && PRODUCE_PATH.test(path)) {
      const wait = s.produce.waitMs();
      if (wait > 0) {
        return throttled(c, wait, `Principal "${principal}" is over its produce byte rate`);
      }
      const declared = Number(c.req.header("content-length") ?? NaN);
      if (declared >= 0) s.produce.charge(declared);
      else if (c.req.raw.body) {
        const bucket = s.produce;
        const raw = c.req.raw;
        c.req.raw = new Request(raw.url, {
          method: raw.method,
          headers: raw.headers,
          body: withEnd(raw.body!, (n) => bucket.charge(n), () => {}),
          duplex: "half",
        } as RequestInit);
      }
      return await next();
    }
    // A multi-partition fetch (routes/fetch.ts) counts as a long poll (it usually is one), a
    // topic's event stream (sse_many.ts) as a stream.
    const multi = (method === "POST" && path === MULTI_FETCH_PATH) ||
      (method === "GET" && PRODUCE_PATH.test(path));
    if (!multi && (method !== "GET" || !FETCH_PATH.test(path))) return await next();
    if (s.fetch) {
      const wait = s.fetch.waitMs();
      if (wait > 0) {
        return throttled(c, wait, `Principal "${principal}" is over its fetch byte rate`);
      }
    }
    const query = c.req.raw.url.slice(c.req.raw.url.indexOf("?") + 1);
    const sse = (c.req.header("accept") ?? "").includes("text/event-stream");
    const holds = multi || sse || (c.req.raw.url.includes("?") && LONG_POLL.test(query));
    if (holds) {
      if (this.#streams >= this.config.maxStreams) {
        return throttled(c, 1000, "The broker has too many open long polls and streams");
      }
      if (perPrincipalStreams && s.streams >= this.config.maxStreamsPerPrincipal) {
        return throttled(
          c,
          1000,
          `Principal "${principal}" has ${s.streams} open long polls and streams, its limit`,
        );
      }
    }
    const release = holds ? this.#hold(s) : () => {};
    try {
      await next();
    } catch (e) {
      release();
      throw e;
    }
    const bucket = s.fetch;
    // Only read c.res.body when it will be wrapped: Response.body turns a byte body into a
    // stream, which Deno.serve then sends chunked through its stream path.
    const body = sse || bucket ? c.res.body : null;
    if (body) {
      // Count bytes as they leave, and free the stream slot when the stream ends.
      const res = c.res;
      c.res = new Response(
        withEnd(body, bucket ? (n) => bucket.charge(n) : null, release),
        res,
      );
      if (!sse) release();
    } else {
      release();
    }
    return undefined;
  }
}
