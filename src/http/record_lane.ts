/**
 * The record lane: a client's raw-batch produce and raw-batch fetch answered without Hono's
 * middleware chain, as the replica fetch lane (replica_fetch_lane.ts) answers followers.
 *
 * ```
 * POST /v1/topics/{t}/records?partition=P[&acks=A]      Content-Type: application/vnd.rill.batch
 * GET  /v1/topics/{t}/partitions/{p}/records?offset=…[&maxBytes&maxWaitMs&minBytes]
 *      Accept: application/vnd.rill.batch…
 * ```
 *
 * These are the requests of the client library's producer and consumer (src/client), one
 * per batch. When each batch is one record, the broker's cost per request is what counts:
 * through the app a produce costs a Hono context, the router, six middlewares (limits, CORS,
 * authentication, quotas, body timeout, and the sub-app's) and a CORS header set after the
 * response is made, about as much CPU again as the append itself (see bench/clients_bench.ts
 * for the figures of the same run against a bare Deno.serve).
 *
 * The lane takes only a request the app would answer from routes/records.ts after
 * middlewares that would let it through and change nothing:
 *
 * - the exact path, with only those query parameters, each at most once and unencoded;
 *   for a produce, a raw-batch Content-Type; for a fetch, an Accept naming raw batches and
 *   not server-sent events, and no replica parameters (the replica lane takes those);
 * - within the URL and header limits (quotas.ts);
 * - auth off; or with auth on, the cluster secret presented and right, or an API key that
 *   authenticates and whose ACLs allow the operation (`Security.authenticate`, `allowed`);
 * - no request or byte rates configured, a body reservation or long-poll slot free
 *   (quotas.ts `reserveProduce`, `holdFetch`).
 *
 * Anything else goes through the app, which answers (and audits, or throttles) as it always
 * did. What the lane answers is what the app would: the same checks in the same order,
 * `Broker.produceBatches` / `Broker.fetch`, the same headers (CORS included), and errors as
 * errors.ts maps them.
 *
 * @module
 */
import { heldHeaderList, servedHeaderList } from "../protocol/deno_headers.ts";
import type { Broker } from "../broker/broker.ts";
import type { Acks, BatchAppendResult } from "../broker/produce.ts";
import { validateTopicName } from "../coordination/topics.ts";
import type { Operation } from "../coordination/acls.ts";
import { ANONYMOUS, BROKER_PRINCIPAL, CLUSTER_SECRET_HEADER, type Principal } from "./auth.ts";
import { errorAnswer } from "./errors.ts";
import {
  acksQuery,
  BodyDeadlines,
  isSmallBody,
  offsetQuery,
  partitionParam,
  readRequestBytes,
  readSmallBody,
} from "./params.ts";
import type { RecordLaneObserver } from "./observe.ts";
import { wantsCors } from "./cors.ts";
import {
  BATCH_MEDIA_TYPE,
  fetchSizes,
  lentBatchAnswer,
  minimalProduceResponse,
  prefersMinimal,
} from "./routes/records.ts";
import type { InstalledSecurity } from "./security.ts";

const ANONYMOUS_PRINCIPAL: Principal = { name: ANONYMOUS, superuser: true, keyId: null };
const BROKER: Principal = { name: BROKER_PRINCIPAL, superuser: true, keyId: null };
/** The content type, given at construction (the one header that is cheap there). */
const JSON_TYPE = { "content-type": "application/json" };

/** What the lane reads of a request's query: the values, or null when it leaves it to the app. */
interface LaneQuery {
  partition?: string;
  acks?: string;
  offset?: string;
  maxWaitMs?: string;
  maxBytes?: string;
  minBytes?: string;
}

/**
 * The query of a produce or fetch, when the lane may take it: only the parameters of its
 * route, each at most once, none percent- or plus-encoded (those go through the app, whose
 * decoding the lane does not repeat). One scan, no intermediate arrays or maps.
 */
function laneQuery(query: string, produce: boolean): LaneQuery | null {
  const q: LaneQuery = {};
  let at = 0;
  while (at <= query.length) {
    let end = query.indexOf("&", at);
    if (end < 0) end = query.length;
    const eq = query.indexOf("=", at);
    if (eq < 0 || eq > end) return null;
    const value = query.slice(eq + 1, end);
    for (let i = 0; i < value.length; i++) {
      const ch = value.charCodeAt(i);
      if (ch === 37 /* % */ || ch === 43 /* + */) return null;
    }
    const name = query.slice(at, eq);
    if (produce) {
      if (name === "partition") {
        if (q.partition !== undefined) return null;
        q.partition = value;
      } else if (name === "acks") {
        if (q.acks !== undefined) return null;
        q.acks = value;
      } else return null;
    } else if (name === "offset") {
      if (q.offset !== undefined) return null;
      q.offset = value;
    } else if (name === "maxWaitMs") {
      if (q.maxWaitMs !== undefined) return null;
      q.maxWaitMs = value;
    } else if (name === "maxBytes") {
      if (q.maxBytes !== undefined) return null;
      q.maxBytes = value;
    } else if (name === "minBytes") {
      if (q.minBytes !== undefined) return null;
      q.minBytes = value;
    } else return null;
    at = end + 1;
  }
  return q;
}

/**
 * The headers the lanes read, from one pass over them (each `get` would scan them again, and
 * the URL and header limits need them all: quotas.ts `limitRefusal` walks them sorted).
 */
export interface LaneHeaders {
  /** the sum of name and value lengths plus 4 each (quotas.ts `limitRefusal`) */
  bytes: number;
  type: string | null;
  length: string | null;
  accept: string | null;
  authorization: string | null;
  secret: string | null;
  prefer: string | null;
  /** the Origin header (browsers send one with every cross-origin request and every POST) */
  origin: string | null;
}

const SECRET_HEADER = CLUSTER_SECRET_HEADER.toLowerCase();

/**
 * Reads a request's headers in one pass.
 *
 * Through the header list Deno's `Headers` keep (see {@linkcode headerListOf}) when it can:
 * `forEach` first builds a sorted, combined copy of every header (Deno 2.9.6: ~1.5–2 KB of
 * garbage a request, a tenth of a single-record produce's). The list's sum counts a
 * repeated header once per line, a few bytes more than `forEach`'s combined value: a
 * request that close to the limit goes through the app, which answers it as always.
 *
 * @param headers the request's headers
 * @returns the values the lanes read, and the size quotas.ts `limitRefusalOf` checks (at
 *   least what it would count)
 * @example
 * ```ts
 * const h = laneHeaders(req.headers);
 * if (quotas.limitRefusalOf(req.url, h.bytes) !== null) return null;
 * ```
 */
export function laneHeaders(headers: Headers): LaneHeaders {
  const list = headerListOf(headers);
  return (list !== null && headersFromList(list)) || headersByForEach(headers);
}

/** An empty {@linkcode LaneHeaders}. */
function noHeaders(): LaneHeaders {
  return {
    bytes: 0,
    type: null,
    length: null,
    accept: null,
    authorization: null,
    secret: null,
    prefer: null,
    origin: null,
  };
}

/** {@linkcode laneHeaders} through the public API. */
function headersByForEach(headers: Headers): LaneHeaders {
  const h = noHeaders();
  // Names come lower-cased, and repeated ones combined, as `get` gives them.
  headers.forEach((value, name) => {
    h.bytes += name.length + value.length + 4;
    switch (name) {
      case "content-type":
        h.type = value;
        break;
      case "content-length":
        h.length = value;
        break;
      case "accept":
        h.accept = value;
        break;
      case "authorization":
        h.authorization = value;
        break;
      case SECRET_HEADER:
        h.secret = value;
        break;
      case "prefer":
        h.prefer = value;
        break;
      case "origin":
        h.origin = value;
    }
  });
  return h;
}

/**
 * The header list of a Deno `Headers` (deno_headers.ts): `[name, value]` pairs as received
 * or set, names as given. Null when the runtime keeps no such array (the caller then uses
 * `forEach`).
 *
 * A Deno.serve request's list is made on first use by anything but `get` (which asks the
 * server for one header), and with it an array of every name lower-cased (`has`, `set` and
 * the other methods search that one): ~1.7 KB of garbage a request, the largest of a
 * single-record produce (a sampling heap profile of the broker, Deno 2.9.6). So the pairs
 * are taken from the server's request itself (the same pairs, asked of the server once),
 * leaving the `Headers` as they were; only where there is no such request (a Request made in
 * code) is the list made.
 */
function headerListOf(headers: Headers): unknown[] | null {
  const list = heldHeaderList(headers) ?? servedHeaderList(headers);
  if (list !== null) return list;
  // `has` makes the list, and nothing more.
  headers.has("content-type");
  return heldHeaderList(headers);
}

/**
 * {@linkcode laneHeaders} from a header list; null (read them with `forEach`) when an entry
 * is not a pair of strings, a name has capitals (a Request made in code), or a header the
 * lanes read comes more than once (`get` would combine its values).
 */
function headersFromList(list: unknown[]): LaneHeaders | null {
  const h = noHeaders();
  for (let i = 0; i < list.length; i++) {
    const entry = list[i];
    if (!Array.isArray(entry) || entry.length !== 2) return null;
    const name = entry[0];
    const value = entry[1];
    if (typeof name !== "string" || typeof value !== "string") return null;
    for (let j = 0; j < name.length; j++) {
      const ch = name.charCodeAt(j);
      if (ch >= 65 && ch <= 90) return null; // A-Z
    }
    h.bytes += name.length + value.length + 4;
    switch (name) {
      case "content-type":
        if (h.type !== null) return null;
        h.type = value;
        break;
      case "content-length":
        if (h.length !== null) return null;
        h.length = value;
        break;
      case "accept":
        if (h.accept !== null) return null;
        h.accept = value;
        break;
      case "authorization":
        if (h.authorization !== null) return null;
        h.authorization = value;
        break;
      case SECRET_HEADER:
        if (h.secret !== null) return null;
        h.secret = value;
        break;
      case "prefer":
        if (h.prefer !== null) return null;
        h.prefer = value;
        break;
      case "origin":
        if (h.origin !== null) return null;
        h.origin = value;
    }
  }
  return h;
}

/**
 * The topic of a produce path, `/v1/topics/{t}/records` between `pathStart` and `end`; null
 * when it is another path, or the topic is empty or holds "/" or "%" (an encoded name goes
 * through the app, whose decoding the lane does not repeat). No RegExp, no match array.
 *
 * @param url the request URL
 * @param pathStart where its path starts
 * @param end where its path ends (the "?")
 * @returns the topic as written in the path, or null
 * @example
 * ```ts
 * produceTopic("http://h/v1/topics/t/records?partition=0", 8, 28); // "t"
 * ```
 */
export function produceTopic(url: string, pathStart: number, end: number): string | null {
  const from = pathStart + TOPICS_PREFIX.length;
  const to = end - RECORDS_SUFFIX.length;
  if (to <= from || !url.startsWith(TOPICS_PREFIX, pathStart)) return null;
  if (!url.startsWith(RECORDS_SUFFIX, to)) return null;
  for (let i = from; i < to; i++) {
    const ch = url.charCodeAt(i);
    if (ch === 47 /* / */ || ch === 37 /* % */) return null;
  }
  return url.slice(from, to);
}

/**
 * Where `/partitions/` starts in a fetch path, `/v1/topics/{t}/partitions/{p}/records` between
 * `pathStart` and `end`; -1 when it is another path, or the topic or partition is empty or
 * holds "/" or "%" (as {@linkcode produceTopic}).
 *
 * @param url the request URL
 * @param pathStart where its path starts
 * @param end where its path ends (the "?")
 * @returns the index of `/partitions/`, or -1
 * @example
 * ```ts
 * fetchPartitionsAt("http://h/v1/topics/t/partitions/0/records?offset=0", 8, 41); // 20
 * ```
 */
export function fetchPartitionsAt(url: string, pathStart: number, end: number): number {
  const from = pathStart + TOPICS_PREFIX.length;
  const to = end - RECORDS_SUFFIX.length;
  if (to <= from || !url.startsWith(TOPICS_PREFIX, pathStart)) return -1;
  if (!url.startsWith(RECORDS_SUFFIX, to)) return -1;
  const slash = url.indexOf("/", from);
  // topic, "/partitions/", a partition
  if (slash <= from || slash >= to || !url.startsWith(PARTITIONS, slash)) return -1;
  const partitionFrom = slash + PARTITIONS.length;
  if (partitionFrom >= to) return -1;
  for (let i = from; i < to; i++) {
    const ch = url.charCodeAt(i);
    if (ch === 37 /* % */ || (ch === 47 /* / */ && (i < slash || i >= partitionFrom))) return -1;
  }
  return slash;
}

const TOPICS_PREFIX = "/v1/topics/";
const RECORDS_SUFFIX = "/records";
const PARTITIONS = "/partitions/";

/**
 * Makes the record lane of an app.
 *
 * @param broker the broker
 * @param installed the app's security and quota state
 * @param cors the CORS headers the app puts on every response
 * @param app the app's own handler, for a request the lane finds it cannot take after all
 *   (credentials that do not authenticate, an ACL that denies: the app answers and audits)
 * @param observer counts the lane's own answers in the metrics (observe.ts), as the app's
 *   middleware counts the app's
 * @returns the lane: given the request, Deno.serve's handler info and `performance.now()`
 *   when the request arrived
 * @example
 * ```ts
 * const lane = recordLane(broker, installed, cors, dispatch, recordLaneObserver(broker.metrics));
 * const handler = (req: Request, info: Deno.ServeHandlerInfo) =>
 *   lane(req, info, performance.now()) ?? dispatch(req, info);
 * ```
 */
export function recordLane(
  broker: Broker,
  installed: InstalledSecurity,
  cors: Record<string, string>,
  app: (req: Request, env?: unknown) => Response | Promise<Response>,
  observer: RecordLaneObserver,
): (req: Request, env: unknown, start: number) => Promise<Response> | null {
  const { security, quotas } = installed;
  const cfg = broker.config;
  const deadlines = new BodyDeadlines(cfg.requestBodyTimeoutMs);
  let lastValidTopic: string | null = null;
  // Lower-cased names: Deno's Headers lower-cases each name it is given on every set (a new
  // string when it has capitals); HTTP/1.1 names are case-insensitive and hyper writes them
  // lower-cased anyway.
  const corsNames = Object.keys(cors).map((name) => name.toLowerCase());
  const corsValues = Object.values(cors);
  /**
   * A response with the CORS headers. Headers set on a made response cost a fraction of
   * those given to the constructor (Deno 2.9.6: ~0.6 µs against ~5 µs for a small JSON
   * answer with the two CORS headers). An indexed loop: no iterator or entry per request.
   */
  const withCors = (res: Response): Response => {
    const headers = res.headers;
    for (let i = 0; i < corsNames.length; i++) headers.set(corsNames[i], corsValues[i]);
    return res;
  };

  /** An error's answer, as errors.ts maps it, its code counted; CORS headers unless not `cors`. */
  const errorResponse = (e: unknown, method: string, path: string, cors = true): Response => {
    const { status, body } = errorAnswer(e, method, path);
    observer.failed(status, String(body.error.code));
    const res = new Response(JSON.stringify(body), { status, headers: JSON_TYPE });
    return cors ? withCors(res) : res;
  };

  return (req, env, start) => {
    const method = req.method;
    if (method !== "POST" && method !== "GET") return null;
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const queryStart = url.indexOf("?", pathStart);
    if (pathStart < 0 || queryStart < 0 || url.includes("#", queryStart)) return null;
    const produce = method === "POST";
    let topicRaw: string;
    let partitionRaw = "";
    if (produce) {
      const topic = produceTopic(url, pathStart, queryStart);
      if (topic === null) return null;
      topicRaw = topic;
    } else {
      const at = fetchPartitionsAt(url, pathStart, queryStart);
      if (at < 0) return null;
      topicRaw = url.slice(pathStart + TOPICS_PREFIX.length, at);
      partitionRaw = url.slice(at + PARTITIONS.length, queryStart - RECORDS_SUFFIX.length);
    }
    const query = url.slice(queryStart + 1);
    const params = laneQuery(query, produce);
    if (params === null) return null;
    const headers = laneHeaders(req.headers);
    if (produce) {
      if (params.partition === undefined) return null;
      const type = headers.type;
      if (
        type === null ||
        // (lower-cased only when it must be: a new string each time)
        !(type.startsWith(BATCH_MEDIA_TYPE) || type.toLowerCase().startsWith(BATCH_MEDIA_TYPE))
      ) return null;
    } else {
      const accept = headers.accept;
      if (accept === null || !accept.includes(BATCH_MEDIA_TYPE)) return null;
      if (accept.includes("text/event-stream")) return null;
    }
    if (quotas.limitRefusalOf(url, headers.bytes) !== null) return null;
    const operation: Operation = produce ? "write" : "read";
    if (!security.auth) return hold(ANONYMOUS_PRINCIPAL);
    const secret = headers.secret;
    if (secret !== null) return security.clusterSecretMatches(secret) ? hold(BROKER) : null;
    return security.authenticate(headers.authorization ?? undefined).then((who) =>
      "error" in who || !security.allowed(who, { type: "topic", name: topicRaw }, operation)
        ? app(req, env) // the app answers 401 or 403, and audits it
        : hold(who) ?? app(req, env)
    );

    // What the quota middleware does (a body reservation, a long-poll slot), then the answer;
    // null when the middleware would do more or refuse it.
    function hold(who: Principal): Promise<Response> | null {
      if (produce) {
        return produceAnswer(req, url, pathStart, queryStart, topicRaw, params!, headers, start);
      }
      const release = quotas.holdFetch(who.name, security.auth, query);
      if (release === null) return null;
      return fetchAnswer(topicRaw, partitionRaw, params!, env).then((res) => {
        release();
        observer.fetched(res.status, start);
        return res;
      }, (e) => {
        release();
        const res = errorResponse(e, method, url.slice(pathStart, queryStart));
        observer.fetched(res.status, start);
        return res;
      });
    }
  };

  /**
   * A produce: its checks, body, append and answer, in the order of routes/records.ts. Its
   * promise is settled from the continuation of the body read (and of the append, when that
   * was not written synchronously): a single-record produce costs one continuation here, not
   * a chain of promises each resolved with the next (each of those costs a job more). Null when the quota
   * middleware would do more or refuse it.
   */
  function produceAnswer(
    req: Request,
    url: string,
    pathStart: number,
    queryStart: number,
    topicRaw: string,
    params: LaneQuery,
    headers: LaneHeaders,
    start: number,
  ): Promise<Response> | null {
    const declared = Number(headers.length ?? NaN);
    const reserved = quotas.reserveProduce(declared);
    if (reserved < 0) return null;
    const prefer = headers.prefer;
    // CORS headers as cors.ts `wantsCors` says: a POST without an Origin gets none.
    const cors = wantsCors("POST", headers.origin);
    const done = (res: Response): Response => {
      quotas.releaseBody(reserved);
      observer.produced(params.acks, res.status, start);
      return res;
    };
    const failed = (e: unknown): Response =>
      done(errorResponse(e, "POST", url.slice(pathStart, queryStart), cors));
    const answered = (result: BatchAppendResult | null): Response => {
      let res: Response;
      try {
        res = produced(result, prefer, cors);
      } catch (e) {
        return failed(e);
      }
      return done(res); // outside the try: the reservation goes back once
    };
    let topic: string;
    let acks: Acks;
    let partition: number;
    try {
      // The checks of routes/records.ts, in its order.
      topic = validTopic(topicRaw);
      acks = acksQuery(params.acks);
      partition = partitionParam(params.partition!);
    } catch (e) {
      return Promise.resolve(failed(e));
    }
    if (!isSmallBody(declared, cfg.maxRequestBytes)) {
      return readRequestBytes(req, cfg.maxRequestBytes, deadlines, declared)
        .then((body) => broker.produceBatches(topic, partition, body, acks))
        .then(answered, failed);
    }
    return new Promise<Response>((resolve) =>
      readSmallBody(req, declared, deadlines, (body) => {
        // Answered in this continuation when the append was written synchronously
        // (Broker.produceBatchesNow): no promise of the result and no job more to settle it.
        let now: BatchAppendResult | null | Promise<BatchAppendResult | null>;
        try {
          now = broker.produceBatchesNow(topic, partition, body, acks);
        } catch (e) {
          resolve(failed(e));
          return;
        }
        if (now instanceof Promise) {
          now.then((result) => resolve(answered(result)), (e) => resolve(failed(e)));
        } else resolve(answered(now));
      }, (e) => resolve(failed(e)))
    );
  }

  /** The last topic name found valid, and {@linkcode validateTopicName} for another. */
  function validTopic(raw: string): string {
    if (raw !== lastValidTopic) lastValidTopic = validateTopicName(raw);
    return raw;
  }

  /** The answer to a produce that `result` says landed. */
  function produced(
    result: BatchAppendResult | null,
    prefer: string | null,
    cors: boolean,
  ): Response {
    const res = result === null
      ? new Response(null, { status: 204 })
      : prefersMinimal(prefer)
      ? minimalProduceResponse(result)
      : new Response(
        `{"partition":${result.partition},"baseOffset":${result.baseOffset},"lastOffset":${result.lastOffset},"recordCount":${result.recordCount},"logAppendTime":${result.logAppendTime}}`,
        { status: 200, headers: JSON_TYPE },
      );
    return cors ? withCors(res) : res;
  }

  /** A fetch: its checks in the order of routes/records.ts, then the read and its answer. */
  function fetchAnswer(
    topicRaw: string,
    partitionRaw: string,
    params: LaneQuery,
    env: unknown,
  ): Promise<Response> {
    let topic: string;
    let partition: number;
    let offset: number;
    let sizes: { maxBytes: number; maxWaitMs: number; minBytes: number };
    try {
      topic = validTopic(topicRaw);
      partition = partitionParam(partitionRaw);
      offset = offsetQuery(params.offset);
      sizes = fetchSizes((name) => params[name as keyof LaneQuery], cfg);
    } catch (e) {
      return Promise.reject(e);
    }
    return lentBatchAnswer(
      broker.readBuffers,
      env,
      offset,
      (alloc) =>
        broker.fetch(topic, partition, offset, {
          maxBytes: sizes.maxBytes,
          maxWaitMs: sizes.maxWaitMs,
          minBytes: sizes.minBytes,
          alloc,
        }),
      cors,
    );
  }
}
