/**
 * Produce, fetch and list-offsets routes, mounted at `/v1/topics`:
 *
 * ```
 * POST /{topic}/records?acks=all|1|0[&partition=P]
 *   application/json           {"records":[{…}]}           → 200 {"offsets":[{"partition","offset","timestamp"}]}
 *   application/x-ndjson       one record object a line    → 200 {"offsets":[…]}
 *   application/vnd.rill.batch one or more RecordBatch v2, ?partition= required
 *                              → 200 {"partition","baseOffset","lastOffset","recordCount","logAppendTime"}
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
import type { Context } from "hono";
import type { Broker } from "../../broker/broker.ts";
import type { BrokerConfig } from "../../broker/config.ts";
import { validateTopicName } from "../../coordination/topics.ts";
import { RillError } from "../../protocol/errors.ts";
import { authorize, requireTrustedReplica } from "../auth.ts";
import { onError } from "../errors.ts";
import {
  acksQuery,
  intQuery,
  offsetQuery,
  partitionParam,
  readBodyBytes,
  readJsonObject,
} from "../params.ts";
import { batchesToJson, parseJsonRecords, parseNdjsonRecords } from "../record_json.ts";
import { sseResponse } from "../sse.ts";

/** The media type of raw RecordBatch v2 bodies. */
export const BATCH_MEDIA_TYPE = "application/vnd.rill.batch";

const strictDecoder = new TextDecoder("utf-8", { fatal: true });

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

/**
 * A fetch answered as raw batches: the bytes (copied by `Response`, so a pooled read buffer
 * is free once this returns) and the `Rill-*` offset headers.
 *
 * @param result what the fetch read
 * @param offset the fetch offset asked for
 * @param extraHeaders more headers (the replica lane's CORS headers)
 * @returns the response
 * @example
 * ```ts
 * return batchAnswer(await broker.fetch(topic, partition, offset, opts), offset);
 * ```
 */
export function batchAnswer(
  result: { bytes: Uint8Array; nextOffset: number; highWatermark: number; logStartOffset: number },
  offset: number,
  extraHeaders: Record<string, string> = {},
): Response {
  return new Response(result.bytes as Uint8Array<ArrayBuffer>, {
    headers: {
      "content-type": BATCH_MEDIA_TYPE,
      "rill-next-offset": String(Math.max(offset, result.nextOffset)),
      "rill-high-watermark": String(result.highWatermark),
      "rill-log-start-offset": String(result.logStartOffset),
      ...extraHeaders,
    },
  });
}

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
      return c.json(result);
    }
    if (c.req.query("partition") !== undefined) {
      throw new RillError(
        "INVALID_REQUEST",
        `Query parameter "partition" applies only to ${BATCH_MEDIA_TYPE} bodies; set "partition" on each record`,
      );
    }
    let records;
    if (type.startsWith("application/x-ndjson") || type.startsWith("application/ndjson")) {
      records = parseNdjsonRecords(await readText(c, cfg.maxRequestBytes));
    } else if (type.startsWith("application/json")) {
      records = parseJsonRecords(await readJsonObject(c, cfg.maxRequestBytes));
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
    return c.json({ offsets });
  });

  app.get("/:topic/partitions/:partition/records", async (c) => {
    authorize(c, { type: "topic", name: c.req.param("topic") }, "read");
    if (c.req.query("replicaId") !== undefined) requireTrustedReplica(c);
    const topic = validateTopicName(c.req.param("topic"));
    const partition = partitionParam(c.req.param("partition"));
    const accept = c.req.header("accept") ?? "";
    const lastEventId = c.req.header("last-event-id");
    const sse = accept.includes("text/event-stream");
    const offset = sse && lastEventId !== undefined && c.req.query("offset") === undefined
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
      const result = await broker.replicaFetch(
        topic,
        partition,
        replicaPosition((name) => c.req.query(name), offset),
        { maxBytes, maxWaitMs, minBytes },
      );
      return batchAnswer(result, offset);
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
      });
    }
    // Not c.req.raw.signal: Deno.serve aborts it when a response completes (legacy behaviour),
    // so a disconnect is noticed only by SSE streams (cancel); a long poll ends at maxWaitMs.
    if (accept.includes(BATCH_MEDIA_TYPE)) {
      // Read into a pooled buffer, free again once the Response has copied it.
      const lent = broker.readBuffers.lend();
      try {
        const result = await broker.fetch(topic, partition, offset, {
          maxBytes,
          maxWaitMs,
          minBytes,
          alloc: lent.alloc,
        });
        return batchAnswer(result, offset);
      } finally {
        lent.release();
      }
    }
    const result = await broker.fetch(topic, partition, offset, { maxBytes, maxWaitMs, minBytes });
    const nextOffset = Math.max(offset, result.nextOffset);
    return c.json({
      records: batchesToJson(result.bytes, offset, forceBase64),
      nextOffset,
      highWatermark: result.highWatermark,
      logStartOffset: result.logStartOffset,
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

async function readText(c: Context, maxBytes: number): Promise<string> {
  const bytes = await readBodyBytes(c, maxBytes);
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new RillError("INVALID_REQUEST", "The request body is not valid UTF-8");
  }
}
