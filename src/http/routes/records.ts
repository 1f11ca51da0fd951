/**
 * Produce, fetch and list-offsets routes, mounted at `/v1/topics`:
 *
 * ```
 * POST /{topic}/records?acks=all|1|0[&partition=P]
 *   application/json           {"records":[{…}]}           → 200 {"offsets":[{"partition","offset","timestamp"}]}
 *   application/x-ndjson       one record object a line    → 200 {"offsets":[…]}
 *   application/vnd.rill.batch one or more RecordBatch v2, ?partition= required
 *                              → 200 {"partition","baseOffset","lastOffset","recordCount","logAppendTime"}
 *                              with `Prefer: return=minimal`: 204, headers Rill-Base-Offset,
 *                              Rill-Last-Offset (and Rill-Log-Append-Time), Preference-Applied
 *   acks=0                     → 204 once the request is validated; the append follows
 * GET  /{topic}/partitions/{p}/records?offset=N&maxBytes=&maxWaitMs=&minBytes=&encoding=base64
 *   Accept: application/json (default) → {"records":[…],"nextOffset","highWatermark","logStartOffset"}
 *   Accept: application/vnd.rill.batch → the raw batches (the first may start before offset),
 *           headers Rill-Next-Offset, Rill-High-Watermark, Rill-Log-Start-Offset
 *   Accept: text/event-stream          → server-sent events from offset (see sse.ts)
 * GET  /{topic}/partitions/{p}/offsets?at=earliest|latest|<timestampMs> → {"offset"}
 * GET  /{topic}/partitions/{p}/records?…&replicaId=R&leaderEpoch=E
 *   a follower's fetch (replica_fetcher.ts): raw batches up to the log end offset (long
 *   poll for data); FENCED_LEADER_EPOCH on an epoch mismatch
 * GET  /{topic}/partitions/{p}/epoch-end-offset?epoch=E → {"epoch","endOffset","logEndOffset"}
 *   (Kafka's OffsetsForLeaderEpoch, answered by the leader)
 * ```
 *
 * Record objects are described in record_json.ts.
 *
 * @module
 */
import { Hono } from "hono";
import type { Broker } from "../../broker/broker.ts";
import type { FetchResult } from "../../broker/replica.ts";
import type { BrokerConfig } from "../../broker/config.ts";
import { validateTopicName } from "../../coordination/topics.ts";
import { RillError } from "../../protocol/errors.ts";
import { authorize, requireTrustedReplica } from "../auth.ts";
import { onError } from "../errors.ts";
import { acksQuery, intQuery, offsetQuery, partitionParam, readBodyBytes } from "../params.ts";
import {
  jsonRecordsWithin,
  offsetsToJson,
  parseJsonRecords,
  parseNdjsonRecords,
} from "../record_json.ts";
import { TimeSlice } from "../../broker/time_slice.ts";
import { sseResponse } from "../sse.ts";
import { manySseResponse, parsePositions } from "../sse_many.ts";
import type { ReadBufferPool } from "../../broker/read_buffers.ts";
import type { ReadBuffer } from "../../storage/segment.ts";
import type { BatchAppendResult } from "../../broker/produce.ts";

/** The media type of raw RecordBatch v2 bodies. */
export const BATCH_MEDIA_TYPE = "application/vnd.rill.batch";

const JSON_TYPE = { "content-type": "application/json" };

/**
 * Whether a request's `Prefer` header (RFC 7240) asks for `return=minimal`: the first
 * `return` preference decides, names and values compared without case, a quoted value
 * unquoted, parameters after `;` ignored.
 *
 * @param prefer the header's value (null or undefined when absent)
 * @returns true for `return=minimal`
 * @example
 * ```ts
 * prefersMinimal("respond-async, return=minimal"); // true
 * ```
 */
export function prefersMinimal(prefer: string | null | undefined): boolean {
  if (prefer === null || prefer === undefined) return false;
  if (prefer === "return=minimal") return true;
  for (const part of prefer.split(",")) {
    const semi = part.indexOf(";");
    const preference = semi < 0 ? part : part.slice(0, semi);
    const eq = preference.indexOf("=");
    if (eq < 0 || preference.slice(0, eq).trim().toLowerCase() !== "return") continue;
    let value = preference.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1);
    }
    return value.toLowerCase() === "minimal";
  }
  return false;
}

/**
 * The answer of a raw-batch produce that asked for `Prefer: return=minimal`: 204, its
 * offsets in headers (no body for the client to stream and parse: for a single-record
 * request, about a quarter of a Deno fetch client's CPU). `Rill-Log-Append-Time` only when
 * the topic stamps LogAppendTime. Headers set on the made response (see batchResponse).
 *
 * @param result the append's result
 * @returns the response (CORS headers still to be added)
 * @example
 * ```ts
 * if (prefersMinimal(c.req.header("prefer"))) return minimalProduceResponse(result);
 * ```
 */
export function minimalProduceResponse(result: BatchAppendResult): Response {
  const res = new Response(null, { status: 204 });
  const headers = res.headers;
  // Names lower-cased, as the wire has them: Deno's Headers lower-cases a name with capitals
  // into a new string on every set.
  headers.set("preference-applied", "return=minimal");
  headers.set("rill-base-offset", String(result.baseOffset));
  headers.set("rill-last-offset", String(result.lastOffset));
  if (result.logAppendTime >= 0) {
    headers.set("rill-log-append-time", String(result.logAppendTime));
  }
  return res;
}

/**
 * A fetch's size and wait parameters (`maxBytes`, `maxWaitMs`, `minBytes`), checked and
 * capped by the broker's limits; shared with the replica fetch lane so both answer alike.
 *
 * @param query reads a query parameter
 * @param cfg the broker's fetch limits
 * @returns the parameters
 * @throws {RillError} INVALID_REQUEST on a bad value
 * @example
 * ```ts
 * const { maxBytes } = fetchSizes((name) => c.req.query(name), broker.config);
 * ```
 */
export function fetchSizes(
  query: (name: string) => string | undefined,
  cfg: Pick<BrokerConfig, "fetchDefaultMaxBytes" | "fetchMaxBytesLimit" | "fetchMaxWaitLimitMs">,
): { maxBytes: number; maxWaitMs: number; minBytes: number } {
  const maxBytes = Math.min(
    intQuery(query("maxBytes"), "maxBytes", cfg.fetchDefaultMaxBytes, { min: 1 }),
    cfg.fetchMaxBytesLimit,
  );
  const maxWaitMs = intQuery(query("maxWaitMs"), "maxWaitMs", 0, {
    max: cfg.fetchMaxWaitLimitMs,
  });
  const minBytes = intQuery(query("minBytes"), "minBytes", 1);
  return { maxBytes, maxWaitMs, minBytes };
}

/**
 * A follower's fetch position: its `replicaId` and `leaderEpoch` query parameters, with the
 * fetch offset.
 *
 * @param query reads a query parameter
 * @param offset the fetch offset
 * @returns what `Broker.replicaFetch` takes
 * @throws {RillError} INVALID_REQUEST on a bad value
 */
export function replicaPosition(
  query: (name: string) => string | undefined,
  offset: number,
): { replicaId: number; offset: number; leaderEpoch: number } {
  return {
    replicaId: intQuery(query("replicaId"), "replicaId", 0),
    offset,
    leaderEpoch: intQuery(query("leaderEpoch"), "leaderEpoch", -1, { min: -1 }),
  };
}

/** The `Rill-*` offset headers of a raw-batch answer, with `extraHeaders`. */
const BATCH_TYPE = { "content-type": BATCH_MEDIA_TYPE };

/**
 * A raw-batch answer with its position headers and `extraHeaders`. They are set on the
 * made response: headers given to the Response constructor cost several times as much
 * (Deno 2.9.6: ~11 µs against ~4 µs for a 1 KiB answer with the CORS headers).
 */
function batchResponse(
  body: BodyInit,
  result: FetchResult,
  offset: number,
  extraHeaders: Record<string, string>,
  length?: number,
): Response {
  const res = new Response(body, { headers: BATCH_TYPE });
  const headers = res.headers;
  headers.set("rill-next-offset", String(Math.max(offset, result.nextOffset)));
  headers.set("rill-high-watermark", String(result.highWatermark));
  headers.set("rill-log-start-offset", String(result.logStartOffset));
  if (length !== undefined) headers.set("content-length", String(length));
  for (const name in extraHeaders) headers.set(name, extraHeaders[name]);
  return res;
}

/** Answers at least this large are sent from the read buffer itself. */
export const STREAMED_ANSWER_BYTES = 64 * 1024;

/**
 * The `completed` promise of Deno.serve's handler info (`Deno.ServeHandlerInfo`), which a
 * Hono app receives as its env: it settles once the response has been delivered, or
 * rejects when it could not be (the client went away).
 *
 * @param env what the app's fetch was given besides the request
 * @returns the promise, or undefined outside Deno.serve (`app.request()` in tests)
 * @example
 * ```ts
 * const completed = serveCompleted(c.env);
 * ```
 */
export function serveCompleted(env: unknown): Promise<void> | undefined {
  const completed = (env as { completed?: unknown } | null | undefined)?.completed;
  return completed instanceof Promise ? completed : undefined;
}

/**
 * Reads a raw-batch fetch into a buffer lent by the broker's pool and answers it.
 *
 * `new Response(bytes)` copies a byte body in JavaScript: a zero-filled allocation, then a
 * copy of every byte (`memset` and `memmove` were ~20 % of a broker's CPU serving consumers
 * at ~1 GB/s, `perf`). A large answer is instead a one-chunk stream of the lent buffer, which
 * Deno.serve takes over natively as it sends it: measured on a bare Deno.serve answering
 * 1 MiB bodies, 15–25 % less server CPU per MB. When Deno is done with the chunk is its own
 * business, so the buffer stays lent until the response has been delivered or the client
 * has gone (`completed`). A small answer (the stream path costs more per response), or one
 * made outside Deno.serve, is copied and the buffer is given back at once.
 *
 * @param pool the broker's read buffers
 * @param env Deno.serve's handler info (the Hono env): its `completed` settles when the
 *   response is delivered ({@linkcode serveCompleted}); undefined outside Deno.serve
 * @param offset the fetch offset asked for
 * @param read the fetch, reading into the buffer it is given
 * @param extraHeaders more headers (the replica lane's CORS headers)
 * @returns the response
 * @example
 * ```ts
 * return lentBatchAnswer(broker.readBuffers, c.env, offset,
 *   (alloc) => broker.fetch(topic, partition, offset, { ...sizes, alloc }));
 * ```
 */
export function lentBatchAnswer(
  pool: ReadBufferPool,
  env: unknown,
  offset: number,
  read: (alloc: ReadBuffer) => Promise<FetchResult>,
  extraHeaders: Record<string, string> = NO_HEADERS,
): Promise<Response> {
  // Not an async function, and `completed` asked for only when the answer is streamed: the
  // getter makes a promise for every request it is read on (Deno 2.9.6), and a long-polling
  // consumer's answers are small.
  const lent = pool.lend();
  let reading: Promise<FetchResult>;
  try {
    reading = read(lent.alloc);
  } catch (e) {
    lent.release();
    return Promise.reject(e);
  }
  return reading.then((result) => {
    const bytes = result.bytes as Uint8Array<ArrayBuffer>;
    const completed = bytes.byteLength < STREAMED_ANSWER_BYTES ? undefined : serveCompleted(env);
    if (completed === undefined) {
      // a copy: the buffer may go back now
      try {
        return batchResponse(bytes, result, offset, extraHeaders);
      } finally {
        lent.release();
      }
    }
    const body = new ReadableStream<Uint8Array<ArrayBuffer>>({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    completed.then(lent.release, lent.release);
    return batchResponse(body, result, offset, extraHeaders, bytes.byteLength);
  }, (e) => {
    lent.release();
    throw e;
  });
}

const NO_HEADERS: Record<string, string> = {};

/**
 * The produce, fetch and list-offsets routes.
 *
 * @param broker the broker
 * @returns a Hono app to mount at `/v1/topics`
 * @example
 * ```ts
 * app.route("/v1/topics", recordRoutes(broker));
 * ```
 */
export function recordRoutes(broker: Broker): Hono {
  const app = new Hono();
  app.onError(onError);
  const cfg = broker.config;

  app.post("/:topic/records", async (c) => {
    authorize(c, { type: "topic", name: c.req.param("topic") }, "write");
    const topic = validateTopicName(c.req.param("topic"));
    const acks = acksQuery(c.req.query("acks"));
    const type = (c.req.header("content-type") ?? "application/json").toLowerCase();
    if (type.startsWith(BATCH_MEDIA_TYPE)) {
      const raw = c.req.query("partition");
      if (raw === undefined) {
        throw new RillError(
          "INVALID_REQUEST",
          `Query parameter "partition" is required with ${BATCH_MEDIA_TYPE}`,
        );
      }
      const partition = partitionParam(raw);
      const body = await readBodyBytes(c, cfg.maxRequestBytes);
      const result = await broker.produceBatches(topic, partition, body, acks);
      if (result === null) return c.body(null, 204);
      if (prefersMinimal(c.req.header("prefer"))) return minimalProduceResponse(result);
      return c.json(result);
    }
    if (c.req.query("partition") !== undefined) {
      throw new RillError(
        "INVALID_REQUEST",
        `Query parameter "partition" applies only to ${BATCH_MEDIA_TYPE} bodies; set "partition" on each record`,
      );
    }
    // Parsed record by record in turns of a few ms, so a body of many small records cannot
    // hold the event loop (heartbeats, /healthz) for long: see time_slice.ts.
    const slice = new TimeSlice();
    let records;
    if (type.startsWith("application/x-ndjson") || type.startsWith("application/ndjson")) {
      const body = await readBodyBytes(c, cfg.maxRequestBytes);
      records = await parseNdjsonRecords(body, cfg.maxRequestRecords, slice);
    } else if (type.startsWith("application/json")) {
      const body = await readBodyBytes(c, cfg.maxRequestBytes);
      records = await parseJsonRecords(body, cfg.maxRequestRecords, slice);
    } else {
      throw new RillError(
        "UNSUPPORTED_MEDIA_TYPE",
        `Content-Type must be application/json, application/x-ndjson or ${BATCH_MEDIA_TYPE}, got "${
          type.slice(0, 100)
        }"`,
      );
    }
    const offsets = await broker.produceRecords(topic, records, acks);
    if (offsets === null) return c.body(null, 204);
    return c.body(`{"offsets":${await offsetsToJson(offsets, slice)}}`, 200, JSON_TYPE);
  });

  app.get("/:topic/partitions/:partition/records", async (c) => {
    authorize(c, { type: "topic", name: c.req.param("topic") }, "read");
    if (c.req.query("replicaId") !== undefined) requireTrustedReplica(c);
    const topic = validateTopicName(c.req.param("topic"));
    const partition = partitionParam(c.req.param("partition"));
    const accept = c.req.header("accept") ?? "";
    const lastEventId = c.req.header("last-event-id");
    const sse = accept.includes("text/event-stream");
    // A reconnecting EventSource sends Last-Event-ID to the URL it first opened, ?offset
    // included: the id wins, so nothing is delivered twice.
    const offset = sse && lastEventId !== undefined
      ? offsetQuery(lastEventId, "Last-Event-ID") + 1
      : offsetQuery(c.req.query("offset"));
    const { maxBytes, maxWaitMs, minBytes } = fetchSizes((name) => c.req.query(name), cfg);
    const encoding = c.req.query("encoding");
    if (encoding !== undefined && encoding !== "base64" && encoding !== "auto") {
      throw new RillError(
        "INVALID_REQUEST",
        `Query parameter "encoding" must be "base64" or "auto"`,
      );
    }
    const forceBase64 = encoding === "base64";

    const replicaId = c.req.query("replicaId");
    if (replicaId !== undefined && !sse) {
      const position = replicaPosition((name) => c.req.query(name), offset);
      return lentBatchAnswer(
        broker.readBuffers,
        c.env,
        offset,
        (alloc) =>
          broker.replicaFetch(topic, partition, position, { maxBytes, maxWaitMs, minBytes, alloc }),
      );
    }

    if (sse) {
      const replica = await broker.readableReplica(topic, partition);
      replica.checkOffset(offset);
      return sseResponse(replica, {
        offset,
        maxBytes,
        forceBase64,
        keepAliveMs: cfg.sseKeepAliveMs,
        signal: broker.shutdownSignal,
        onRead: (bytes, records) => broker.metrics.fetched(topic, bytes, records),
      });
    }
    // Not c.req.raw.signal: Deno.serve aborts it when a response completes (legacy behaviour),
    // so a disconnect is noticed only by SSE streams (cancel); a long poll ends at maxWaitMs.
    if (accept.includes(BATCH_MEDIA_TYPE)) {
      return lentBatchAnswer(
        broker.readBuffers,
        c.env,
        offset,
        (alloc) => broker.fetch(topic, partition, offset, { maxBytes, maxWaitMs, minBytes, alloc }),
      );
    }
    const result = await broker.fetch(topic, partition, offset, { maxBytes, maxWaitMs, minBytes });
    // The JSON answer stays within maxBytes (but for its first record): records left out of
    // it are fetched next, from nextOffset.
    const records = jsonRecordsWithin(result.bytes, offset, maxBytes, forceBase64);
    const nextOffset = records.count > 0 && records.nextOffset < result.nextOffset
      ? records.nextOffset
      : Math.max(offset, result.nextOffset);
    return c.body(
      `{"records":${records.text},"nextOffset":${nextOffset},"highWatermark":${result.highWatermark},"logStartOffset":${result.logStartOffset}}`,
      200,
      JSON_TYPE,
    );
  });

  app.get("/:topic/records", async (c) => {
    authorize(c, { type: "topic", name: c.req.param("topic") }, "read");
    const topic = validateTopicName(c.req.param("topic"));
    if (!(c.req.header("accept") ?? "").includes("text/event-stream")) {
      throw new RillError(
        "INVALID_REQUEST",
        "GET /v1/topics/{topic}/records streams server-sent events (Accept: text/event-stream); fetch many partitions with POST /v1/fetch",
      );
    }
    const count = await broker.partitionCount(topic);
    if (count === null) {
      throw new RillError("UNKNOWN_TOPIC_OR_PARTITION", `Topic "${topic}" does not exist`);
    }
    const selected = partitionList(c.req.query("partitions"), count);
    const lastEventId = c.req.header("last-event-id");
    const offsets = c.req.query("offsets");
    let positions: Map<number, number>;
    if (lastEventId !== undefined && lastEventId !== "") {
      positions = parsePositions(lastEventId, "Last-Event-ID");
    } else if (offsets !== undefined) {
      positions = parsePositions(offsets, `Query parameter "offsets"`);
    } else {
      const at = c.req.query("offset") ?? "latest";
      positions = new Map();
      for (const p of selected) {
        positions.set(
          p,
          at === "earliest" || at === "latest"
            ? await broker.listOffset(topic, p, at)
            : offsetQuery(at),
        );
      }
    }
    for (const p of positions.keys()) {
      if (!selected.includes(p)) positions.delete(p);
    }
    for (const p of selected) {
      if (!positions.has(p)) positions.set(p, await broker.listOffset(topic, p, "latest"));
    }
    const { maxBytes } = fetchSizes((name) => c.req.query(name), cfg);
    const encoding = c.req.query("encoding");
    return manySseResponse(broker, {
      topic,
      positions,
      maxBytes,
      forceBase64: encoding === "base64",
      keepAliveMs: cfg.sseKeepAliveMs,
      signal: broker.shutdownSignal,
    });
  });

  app.get("/:topic/partitions/:partition/epoch-end-offset", async (c) => {
    authorize(c, { type: "topic", name: c.req.param("topic") }, "describe");
    const topic = validateTopicName(c.req.param("topic"));
    const partition = partitionParam(c.req.param("partition"));
    const epoch = intQuery(c.req.query("epoch"), "epoch", -1, { min: -1 });
    return c.json(await broker.epochEndOffset(topic, partition, epoch));
  });

  app.get("/:topic/partitions/:partition/offsets", async (c) => {
    authorize(c, { type: "topic", name: c.req.param("topic") }, "read");
    const topic = validateTopicName(c.req.param("topic"));
    const partition = partitionParam(c.req.param("partition"));
    const at = c.req.query("at") ?? "latest";
    let offset: number;
    if (at === "earliest" || at === "latest") {
      offset = await broker.listOffset(topic, partition, at);
    } else if (/^\d+$/.test(at) && Number.isSafeInteger(Number(at))) {
      offset = await broker.listOffset(topic, partition, { timestamp: Number(at) });
    } else {
      throw new RillError(
        "INVALID_REQUEST",
        `Query parameter "at" must be earliest, latest or a timestamp in ms, got "${
          at.slice(0, 50)
        }"`,
      );
    }
    return c.json({ offset });
  });

  return app;
}

/** The `partitions` query parameter (e.g. "0,2,5"), or every partition of the topic. */
function partitionList(raw: string | undefined, count: number): number[] {
  if (raw === undefined || raw === "") return Array.from({ length: count }, (_, p) => p);
  const out: number[] = [];
  for (const part of raw.split(",")) {
    const p = partitionParam(part.trim());
    if (p >= count) {
      throw new RillError(
        "UNKNOWN_TOPIC_OR_PARTITION",
        `Partition ${p} does not exist; the topic has ${count} partitions`,
      );
    }
    if (!out.includes(p)) out.push(p);
  }
  return out;
}
