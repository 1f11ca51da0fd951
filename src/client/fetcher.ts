/**
 * One fetch of one partition: `GET /v1/topics/{t}/partitions/{p}/records`.
 *
 * The fast path asks for `Accept: application/vnd.rill.batch`: the broker answers the
 * stored RecordBatch v2 bytes as they are, concatenated, with the positions in headers
 * (`Rill-Next-Offset`, `Rill-High-Watermark`, `Rill-Log-Start-Offset`). The client checks
 * each batch's CRC-32C, decodes it, and skips the records of the first batch that lie
 * below the requested offset (a fetch starts at the batch holding that offset). A JSON
 * answer (the curl/browser format) is understood too.
 *
 * @module
 */
import { crc32c } from "../protocol/crc32c.ts";
import { RillError } from "../protocol/errors.ts";
import {
  BATCH_HEADER_SIZE,
  LOG_OVERHEAD,
  POS,
  type RecordHeader,
} from "../protocol/record_batch.ts";
import { ConsumedMessage } from "./message.ts";
import { decodeMessagesAt } from "./record_decoder.ts";
import { brokerOffset } from "./offsets.ts";
import { BATCH_MEDIA_TYPE, topicPath, type Transport } from "./transport.ts";
import { readBytes, readJson } from "./http_answers.ts";

/**
 * Options of one fetch.
 *
 * @example
 * ```ts
 * const options: FetchOptions = { maxBytes: 1 << 20, maxWaitMs: 500, minBytes: 1 };
 * ```
 */
export interface FetchOptions {
  /** the most bytes to return (the broker returns at least one batch) */
  maxBytes: number;
  /** how long the broker may wait for `minBytes` (long poll) */
  maxWaitMs: number;
  /** how many bytes to wait for */
  minBytes: number;
  /** check each batch's CRC-32C (default true) */
  checkCrcs?: boolean;
  /** aborts the request */
  signal?: AbortSignal;
}

/**
 * The result of one fetch.
 *
 * @example
 * ```ts
 * const { messages, nextOffset, highWatermark }: FetchResult = await fetchPartition(t, "orders", 0, 0, options);
 * ```
 */
export interface FetchResult {
  /** the records at or after the requested offset */
  messages: ConsumedMessage[];
  /** where the next fetch starts */
  nextOffset: number;
  /** the partition's high watermark */
  highWatermark: number;
  /** the partition's log start offset */
  logStartOffset: number;
}

/**
 * Fetches records of one partition from `offset`.
 *
 * @param transport the client's transport
 * @param topic the topic
 * @param partition the partition
 * @param offset the first offset wanted
 * @param options sizes, long-poll wait, CRC check, abort signal
 * @returns the records and the partition's positions
 * @throws {RillError} OFFSET_OUT_OF_RANGE (with `logStartOffset`/`highWatermark` in
 *   details), UNKNOWN_TOPIC_OR_PARTITION, CORRUPT_MESSAGE on a bad CRC, …
 * @example
 * ```ts
 * const { messages, nextOffset } = await fetchPartition(t, "orders", 0, 0,
 *   { maxBytes: 1 << 20, maxWaitMs: 500, minBytes: 1 });
 * ```
 */
export async function fetchPartition(
  transport: Transport,
  topic: string,
  partition: number,
  offset: number,
  options: FetchOptions,
): Promise<FetchResult> {
  // Over the WebSocket connection when the consumer has one (transport.ts).
  const streamed = transport.fetchPartition(topic, partition, offset, options);
  const signal = options.signal;
  // Abandoned on abort: its answer (or the connection's failure) is then nobody's business.
  streamed.catch(() => {});
  const fetched = await (signal === undefined ? streamed : Promise.race([
    streamed,
    new Promise<never>((_, reject) => {
      const abort = () => reject(signal.reason ?? new DOMException("Aborted", "AbortError"));
      if (signal.aborted) abort();
      else signal.addEventListener("abort", abort, { once: true });
    }),
  ]));
  if (fetched !== null) {
    return decodeFetched(
      topic,
      partition,
      offset,
      fetched.bytes,
      options.checkCrcs,
      fetched.highWatermark,
      fetched.logStartOffset,
      fetched.nextOffset,
    );
  }
  const res = await transport.request(
    "GET",
    `${topicPath(topic)}/partitions/${partition}/records`,
    {
      query: {
        offset,
        maxBytes: options.maxBytes,
        maxWaitMs: options.maxWaitMs,
        minBytes: options.minBytes,
      },
      headers: { Accept: `${BATCH_MEDIA_TYPE}, application/json;q=0.5` },
      signal: options.signal,
    },
  );
  const type = res.headers.get("Content-Type") ?? "";
  if (type.startsWith("application/json")) {
    return fromJson(topic, partition, offset, await readJson(res));
  }
  const bytes = await readBytes(res);
  const hw = brokerOffset(res.headers.get("Rill-High-Watermark"), "Rill-High-Watermark");
  const start = brokerOffset(res.headers.get("Rill-Log-Start-Offset"), "Rill-Log-Start-Offset");
  const nextHeader = res.headers.get("Rill-Next-Offset");
  const next = nextHeader !== null && nextHeader !== ""
    ? brokerOffset(nextHeader, "Rill-Next-Offset")
    : offset;
  return decodeFetched(topic, partition, offset, bytes, options.checkCrcs, hw, start, next);
}

/**
 * Decodes raw RecordBatch v2 bytes of one partition into messages, checking each batch's
 * CRC-32C, and leaving out the records of the first batch below `offset` (the
 * multi-partition fetch's answers, multi_fetch.ts).
 *
 * @param bytes whole batches
 * @param topic the topic
 * @param partition the partition
 * @param offset the offset fetched from
 * @param checkCrcs check each batch's CRC-32C
 * @returns the messages and the offset after the last batch (at least `offset`)
 * @throws {RillError} CORRUPT_MESSAGE on a bad CRC
 * @example
 * ```ts
 * const { messages, nextOffset } = decodeBatches(bytes, "orders", 0, 42, true);
 * ```
 */
export function decodeBatches(
  bytes: Uint8Array,
  topic: string,
  partition: number,
  offset: number,
  checkCrcs: boolean,
): { messages: ConsumedMessage[]; nextOffset: number } {
  const r = decodeFetched(topic, partition, offset, bytes, checkCrcs, -1, -1, offset);
  return { messages: r.messages, nextOffset: r.nextOffset };
}

/** Checks and decodes the batches of a fetch answer. */
function decodeFetched(
  topic: string,
  partition: number,
  offset: number,
  bytes: Uint8Array,
  checkCrcs: boolean | undefined,
  hw: number,
  start: number,
  brokerNext: number,
): FetchResult {
  const messages: ConsumedMessage[] = [];
  let next = offset;
  // One view over the answer for every batch's length and stored CRC (splitBatches' rule: a
  // batch cut short at the end of the answer is not read).
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let pos = 0; bytes.length - pos >= LOG_OVERHEAD;) {
    const size = view.getInt32(pos + POS.batchLength) + LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE || pos + size > bytes.length) break;
    if (
      checkCrcs !== false &&
      crc32c(bytes.subarray(pos + POS.attributes, pos + size)) !== view.getUint32(pos + POS.crc)
    ) {
      throw new RillError(
        "CORRUPT_MESSAGE",
        `A batch of "${topic}-${partition}" fetched from offset ${offset} fails its CRC check`,
      );
    }
    next = Math.max(
      next,
      decodeMessagesAt(bytes, view, pos, size, topic, partition, offset, messages),
    );
    pos += size;
  }
  next = Math.max(next, brokerNext);
  return { messages, nextOffset: next, highWatermark: hw, logStartOffset: start };
}

interface JsonRecord {
  offset: unknown;
  timestamp: unknown;
  key?: string | null;
  value?: string | null;
  keyEncoding?: string;
  valueEncoding?: string;
  headers?: Record<string, string | null>;
}

const encoder = new TextEncoder();

function jsonBytes(v: string | null | undefined, encoding: string | undefined): Uint8Array | null {
  if (v === null || v === undefined) return null;
  if (encoding === "base64") return Uint8Array.from(atob(v), (c) => c.charCodeAt(0));
  return encoder.encode(v);
}

function fromJson(topic: string, partition: number, offset: number, body: unknown): FetchResult {
  const b = body as {
    records?: JsonRecord[];
    nextOffset?: unknown;
    highWatermark?: unknown;
    logStartOffset?: unknown;
  };
  if (!b || !Array.isArray(b.records)) {
    throw new RillError("UNKNOWN_SERVER_ERROR", "The broker's fetch answer has no records array");
  }
  const messages: ConsumedMessage[] = [];
  for (const r of b.records) {
    const o = brokerOffset(r.offset, "offset");
    if (o < offset) continue;
    const headers: RecordHeader[] = [];
    for (const [k, v] of Object.entries(r.headers ?? {})) {
      headers.push({ key: k, value: v === null ? null : encoder.encode(v) });
    }
    messages.push(
      ConsumedMessage.of(
        topic,
        partition,
        o,
        Number(r.timestamp),
        jsonBytes(r.key, r.keyEncoding),
        jsonBytes(r.value, r.valueEncoding),
        headers,
      ),
    );
  }
  return {
    messages,
    nextOffset: brokerOffset(b.nextOffset, "nextOffset"),
    highWatermark: brokerOffset(b.highWatermark, "highWatermark"),
    logStartOffset: brokerOffset(b.logStartOffset, "logStartOffset"),
  };
}
