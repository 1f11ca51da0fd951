/**
 * The multi-partition fetch route, mounted at `/v1/fetch`: one request reads many
 * partitions (of any topics led by this broker) with one long poll, through the broker's
 * fetch-session core (broker/fetch_session.ts).
 *
 * ```
 * POST /v1/fetch[?encoding=base64]
 *   {"partitions":[{"topic","partition","offset","maxBytes"?}], "maxWaitMs"?:0, "minBytes"?:1,
 *    "maxBytes"?, "session"?:{"id","epoch"}, "forgotten"?:[{"topic","partition"}],
 *    "replicaId"?, (followers, with "leaderEpoch" on each partition)
 *    "observerId"?} (edge followers: read as consumers, their position recorded)
 *   Accept: application/json (default) →
 *     {"session":{"id","epoch"}|null,
 *      "partitions":[{"topic","partition","records":[…],"nextOffset","highWatermark","logStartOffset"}
 *                  | {"topic","partition","error":{"code","message","retriable",…}}]}
 *   Accept: application/vnd.rill.fetch → the same header, then raw batches (see below)
 * ```
 *
 * The answer comes as soon as the partitions together have `minBytes`, one has an error, or
 * `maxWaitMs` passed. Each partition returns at most its `maxBytes` (default the broker's
 * `fetchDefaultMaxBytes`), the answer at most `maxBytes` in total (default and cap the
 * broker's `fetchMaxBytesLimit`); the first batch of the answer is whole regardless. An
 * error of one partition (unknown, not led here, offset out of range, not authorized) is
 * that partition's answer; the others are answered as usual.
 *
 * **Sessions** (Kafka's KIP-227): `"session":{"id":0,"epoch":0}` opens one; the answer's
 * `session` gives its id and the epoch the next request must send. Later requests name only
 * the partitions whose offset or size changed (and `forgotten` ones); their answers list only
 * partitions with something new (records, an error, a moved high watermark or log start).
 * `{"id":N,"epoch":-1}` closes the session. 409 FETCH_SESSION_ID_NOT_FOUND (evicted or
 * expired) or INVALID_FETCH_SESSION_EPOCH: open a new session with a full request.
 *
 * **Raw framing** (`application/vnd.rill.fetch`), for clients that decode batches themselves:
 *
 * ```
 * u32 (big-endian)  n: the length of the header
 * n bytes           the header: the JSON answer above, where a partition without an error has
 *                   "bytes": <length> instead of "records"
 * then              each partition's RecordBatch v2 bytes, "bytes" long, in header order
 *                   (the first batch may start before the offset asked)
 * ```
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { Broker } from "../../broker/broker.ts";
import type {
  FetchManyRequest,
  FetchManyResult,
  FetchPartitionRequest,
  PartitionFetchResult,
  TopicPartition,
} from "../../broker/fetch_session.ts";
import { RillError } from "../../protocol/errors.ts";
import { authorize, requireTrustedReplica } from "../auth.ts";
import { onError } from "../errors.ts";
import { intField, readJsonObject } from "../params.ts";
import { batchesToJson } from "../record_json.ts";
import { serveCompleted, STREAMED_ANSWER_BYTES } from "./records.ts";

/** The media type of the raw multi-partition fetch answer. */
export const FETCH_MEDIA_TYPE = "application/vnd.rill.fetch";
const FETCH_TYPE = { "content-type": FETCH_MEDIA_TYPE };

const encoder = new TextEncoder();
const BODY_FIELDS = new Set([
  "partitions",
  "maxWaitMs",
  "minBytes",
  "maxBytes",
  "session",
  "forgotten",
  "replicaId",
  "observerId",
]);

function objectAt(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new RillError("INVALID_REQUEST", `${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

function topicAt(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 249) {
    throw new RillError("INVALID_REQUEST", `"topic" of ${what} must be a topic name`);
  }
  return value;
}

/**
 * Parses a multi-partition fetch body into the core's request (sizes capped by the broker).
 *
 * @param body the JSON body
 * @param cfg the broker's fetch limits
 * @returns the request (without signal)
 * @throws {RillError} INVALID_REQUEST naming the bad field
 */
export function parseFetchBody(
  body: Record<string, unknown>,
  cfg: Broker["config"],
): FetchManyRequest {
  for (const k of Object.keys(body)) {
    if (!BODY_FIELDS.has(k)) {
      throw new RillError("INVALID_REQUEST", `Unknown field "${k.slice(0, 50)}" in a fetch`);
    }
  }
  if (!Array.isArray(body.partitions)) {
    throw new RillError("INVALID_REQUEST", `"partitions" must be an array`);
  }
  const replica = body.replicaId !== undefined;
  const partitions: FetchPartitionRequest[] = body.partitions.map((raw, i) => {
    const p = objectAt(raw, `partitions[${i}]`);
    const what = `partitions[${i}]`;
    const out: FetchPartitionRequest = {
      topic: topicAt(p.topic, what),
      partition: intField(p.partition, `${what}.partition`, { max: 2 ** 31 - 1 }),
      offset: intField(p.offset, `${what}.offset`),
      maxBytes: Math.min(
        p.maxBytes === undefined
          ? cfg.fetchDefaultMaxBytes
          : intField(p.maxBytes, `${what}.maxBytes`, { min: 1 }),
        cfg.fetchMaxBytesLimit,
      ),
    };
    if (p.leaderEpoch !== undefined) {
      if (!replica) {
        throw new RillError("INVALID_REQUEST", `"leaderEpoch" is for replica fetches only`);
      }
      out.leaderEpoch = intField(p.leaderEpoch, `${what}.leaderEpoch`, { min: -1 });
    }
    return out;
  });
  const req: FetchManyRequest = {
    partitions,
    maxWaitMs: body.maxWaitMs === undefined
      ? 0
      : intField(body.maxWaitMs, "maxWaitMs", { max: cfg.fetchMaxWaitLimitMs }),
    minBytes: body.minBytes === undefined ? 1 : intField(body.minBytes, "minBytes"),
    maxBytes: Math.min(
      body.maxBytes === undefined
        ? cfg.fetchMaxBytesLimit
        : intField(body.maxBytes, "maxBytes", { min: 1 }),
      cfg.fetchMaxBytesLimit,
    ),
  };
  if (body.session !== undefined) {
    const s = objectAt(body.session, `"session"`);
    req.session = {
      id: intField(s.id, "session.id", { max: 2 ** 31 - 1 }),
      epoch: intField(s.epoch, "session.epoch", { min: -1, max: 2 ** 31 - 1 }),
    };
  }
  if (body.forgotten !== undefined) {
    if (!Array.isArray(body.forgotten)) {
      throw new RillError("INVALID_REQUEST", `"forgotten" must be an array`);
    }
    req.forgotten = body.forgotten.map((raw, i): TopicPartition => {
      const f = objectAt(raw, `forgotten[${i}]`);
      return {
        topic: topicAt(f.topic, `forgotten[${i}]`),
        partition: intField(f.partition, `forgotten[${i}].partition`),
      };
    });
  }
  if (replica) req.replicaId = intField(body.replicaId, "replicaId");
  if (body.observerId !== undefined) {
    if (replica) {
      throw new RillError("INVALID_REQUEST", `A fetch has "replicaId" or "observerId", not both`);
    }
    req.observerId = intField(body.observerId, "observerId");
  }
  return req;
}

/** A partition's header entry (raw framing) or JSON entry without its records. */
function headerEntry(p: PartitionFetchResult): Record<string, unknown> {
  if (p.error !== null) {
    return { topic: p.topic, partition: p.partition, error: p.error.toJSON().error };
  }
  return {
    topic: p.topic,
    partition: p.partition,
    nextOffset: p.nextOffset,
    highWatermark: p.highWatermark,
    logStartOffset: p.logStartOffset,
    bytes: p.bytes.length,
  };
}

/**
 * The raw framed answer: header, then the partitions' bytes. Large partitions are sent from
 * the read buffers themselves (lent until the answer is delivered), small ones are copied.
 *
 * @param result the core's answer (released here, now or once delivered)
 * @param denied partitions refused before the core (authorization)
 * @param completed settles when Deno.serve delivered the response
 * @param extraHeaders more headers (the session fetch lane's CORS headers)
 * @returns the response
 * @example
 * ```ts
 * return framedAnswer(await broker.fetchMany(req), [], serveCompleted(c.env));
 * ```
 */
export function framedAnswer(
  result: FetchManyResult,
  denied: PartitionFetchResult[],
  completed: Promise<void> | undefined,
  extraHeaders: Record<string, string> = {},
): Response {
  const parts = [...result.partitions, ...denied];
  const header = encoder.encode(JSON.stringify({
    session: result.session,
    partitions: parts.map(headerEntry),
  }));
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = () => {
    if (pending.length === 0) return;
    const out = new Uint8Array(pendingBytes);
    let at = 0;
    for (const p of pending) {
      out.set(p, at);
      at += p.length;
    }
    chunks.push(out);
    pending = [];
    pendingBytes = 0;
  };
  const lead = new Uint8Array(4 + header.length);
  new DataView(lead.buffer).setUint32(0, header.length);
  lead.set(header, 4);
  pending.push(lead);
  pendingBytes += lead.length;
  const stream = completed !== undefined;
  let lent = false;
  for (const p of parts) {
    if (p.bytes.length === 0) continue;
    if (stream && p.bytes.length >= STREAMED_ANSWER_BYTES) {
      flush();
      chunks.push(p.bytes as Uint8Array<ArrayBuffer>);
      lent = true;
    } else {
      pending.push(p.bytes);
      pendingBytes += p.bytes.length;
    }
  }
  flush();
  const length = chunks.reduce((n, c) => n + c.length, 0);
  // Headers set on the made response: given to the constructor they cost several times as
  // much (Deno 2.9.6; see routes/records.ts `batchResponse`).
  const answer = (body: BodyInit) => {
    const res = new Response(body, { headers: FETCH_TYPE });
    const headers = res.headers;
    headers.set("content-length", String(length));
    for (const name in extraHeaders) headers.set(name, extraHeaders[name]);
    return res;
  };
  if (!lent) {
    result.release();
    return answer(chunks.length === 1 ? chunks[0] : concat(chunks, length));
  }
  completed!.then(result.release, result.release);
  const body = new ReadableStream<Uint8Array<ArrayBuffer>>({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      controller.close();
    },
  });
  return answer(body);
}

function concat(chunks: Uint8Array[], length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function jsonAnswer(
  c: Context,
  result: FetchManyResult,
  denied: PartitionFetchResult[],
  forceBase64: boolean,
): Response {
  try {
    const partitions = [...result.partitions, ...denied].map((p) => {
      if (p.error !== null) return headerEntry(p);
      return {
        topic: p.topic,
        partition: p.partition,
        records: batchesToJson(p.bytes, p.fetchOffset, forceBase64),
        nextOffset: p.nextOffset,
        highWatermark: p.highWatermark,
        logStartOffset: p.logStartOffset,
      };
    });
    return c.json({ session: result.session, partitions });
  } finally {
    result.release();
  }
}

/**
 * The multi-partition fetch route.
 *
 * @param broker the broker
 * @returns a Hono app to mount at `/v1/fetch`
 * @example
 * ```ts
 * app.route("/v1/fetch", fetchRoutes(broker));
 * ```
 */
export function fetchRoutes(broker: Broker): Hono {
  const app = new Hono();
  app.onError(onError);
  app.post("/", async (c) => {
    const encoding = c.req.query("encoding");
    if (encoding !== undefined && encoding !== "base64" && encoding !== "auto") {
      throw new RillError(
        "INVALID_REQUEST",
        `Query parameter "encoding" must be "base64" or "auto"`,
      );
    }
    const req = parseFetchBody(
      await readJsonObject(c, broker.config.maxRequestBytes),
      broker.config,
    );
    if (req.replicaId !== undefined || req.observerId !== undefined) requireTrustedReplica(c);
    // Authorization per topic: a refused topic is its partitions' error, not the request's.
    const refused = new Map<string, RillError>();
    for (const topic of new Set(req.partitions.map((p) => p.topic))) {
      try {
        authorize(c, { type: "topic", name: topic }, "read");
      } catch (e) {
        if (!(e instanceof RillError)) throw e;
        refused.set(topic, e);
      }
    }
    const denied: PartitionFetchResult[] = [];
    if (refused.size > 0) {
      req.partitions = req.partitions.filter((p) => {
        const e = refused.get(p.topic);
        if (e === undefined) return true;
        denied.push({
          topic: p.topic,
          partition: p.partition,
          fetchOffset: p.offset,
          bytes: new Uint8Array(0),
          nextOffset: p.offset,
          highWatermark: -1,
          logStartOffset: -1,
          lastStableOffset: -1,
          error: e,
        });
        return false;
      });
    }
    if (denied.length > 0) req.maxWaitMs = 0;
    const accept = c.req.header("accept") ?? "";
    // Not c.req.raw.signal: Deno.serve aborts it when a response completes (legacy
    // behaviour); a long poll ends at maxWaitMs, or when the broker drains.
    const result = await broker.fetchMany(req);
    if (accept.includes(FETCH_MEDIA_TYPE)) {
      return framedAnswer(result, denied, serveCompleted(c.env));
    }
    return jsonAnswer(c, result, denied, encoding === "base64");
  });
  return app;
}
