/**
 * One fetch of many partitions from one broker: `POST /v1/fetch` with
 * `Accept: application/vnd.rill.fetch` (the framing is described in the README and atop
 * the broker's routes/fetch.ts): a JSON header with each partition's positions or error,
 * then each partition's raw RecordBatch v2 bytes.
 *
 * The request and the decoding are two steps, so a consumer can send its next fetch as soon
 * as an answer's header is read (the next offsets are in it) and decode the batches while
 * that fetch is on the wire (pipelining).
 *
 * @module
 */
import type { RecordsFramePartition } from "../protocol/ws_records_frames.ts";
import { errorFromBody, RillError } from "../protocol/errors.ts";
import { decodeBatches } from "./fetcher.ts";
import type { ConsumedMessage } from "./message.ts";
import { brokerOffset } from "./offsets.ts";
import type { Transport } from "./transport.ts";
import { readBytes } from "./http_answers.ts";

/** The media type of the framed multi-partition fetch answer. */
export const FETCH_MEDIA_TYPE = "application/vnd.rill.fetch";

/** One partition of a multi-partition fetch. */
export interface PartitionFetch {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the first offset wanted */
  offset: number;
  /** the most bytes of this partition */
  maxBytes: number;
}

/** A multi-partition fetch request. */
export interface MultiFetchRequest {
  /** the partitions (in an incremental session: only the added or changed ones) */
  partitions: PartitionFetch[];
  /** how long the broker may wait for `minBytes` over all partitions */
  maxWaitMs: number;
  /** the bytes to wait for */
  minBytes: number;
  /** the most bytes of the whole answer */
  maxBytes?: number;
  /** the session: `{id: 0, epoch: 0}` opens one */
  session?: { id: number; epoch: number };
  /** partitions to drop from the session */
  forgotten?: { topic: string; partition: number }[];
}

/**
 * One partition of a framed answer, not yet decoded: the fields a binary records push carries
 * (its topic, partition, positions and raw batches), and its error.
 */
export interface RawPartitionAnswer extends RecordsFramePartition {
  /** the partition's error, or null */
  error: RillError | null;
}

/** A framed answer, not yet decoded. */
export interface RawFetchAnswer {
  /** the session and the epoch to send next, or null */
  session: { id: number; epoch: number } | null;
  /** the partitions in the answer */
  partitions: RawPartitionAnswer[];
}

const decoder = new TextDecoder();

function malformed(what: string): RillError {
  return new RillError("UNKNOWN_SERVER_ERROR", `The broker's fetch answer is malformed: ${what}`);
}

/**
 * Splits a framed answer into its header and per-partition bytes (views of `frame`).
 *
 * @param frame the answer body
 * @returns the session and partitions
 * @throws {RillError} UNKNOWN_SERVER_ERROR when the framing is broken
 * @example
 * ```ts
 * const { partitions } = parseFetchFrame(await readBytes(res));
 * ```
 */
export function parseFetchFrame(frame: Uint8Array): RawFetchAnswer {
  if (frame.length < 4) throw malformed("shorter than its length prefix");
  const n = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0);
  if (4 + n > frame.length) throw malformed("the header runs past the body");
  let header: {
    session?: { id: number; epoch: number } | null;
    partitions?: Record<string, unknown>[];
  };
  try {
    header = JSON.parse(decoder.decode(frame.subarray(4, 4 + n)));
  } catch {
    throw malformed("the header is not JSON");
  }
  if (!header || !Array.isArray(header.partitions)) throw malformed("no partitions");
  let at = 4 + n;
  const partitions = header.partitions.map((p): RawPartitionAnswer => {
    const topic = String(p.topic);
    const partition = brokerOffset(p.partition, "partition");
    if (p.error !== undefined) {
      return {
        topic,
        partition,
        nextOffset: -1,
        highWatermark: -1,
        logStartOffset: -1,
        bytes: new Uint8Array(0),
        error: errorFromBody(500, { error: p.error }),
      };
    }
    const length = brokerOffset(p.bytes, "bytes");
    if (at + length > frame.length) throw malformed(`${topic}-${partition} runs past the body`);
    const bytes = frame.subarray(at, at + length);
    at += length;
    return {
      topic,
      partition,
      nextOffset: brokerOffset(p.nextOffset, "nextOffset"),
      highWatermark: brokerOffset(p.highWatermark, "highWatermark"),
      logStartOffset: brokerOffset(p.logStartOffset, "logStartOffset"),
      bytes,
      error: null,
    };
  });
  if (at !== frame.length) throw malformed("bytes left after the last partition");
  return { session: header.session ?? null, partitions };
}

/**
 * Sends a multi-partition fetch to one broker and reads its framed answer.
 *
 * @param transport the client's transport
 * @param base the broker's base URL
 * @param req the request
 * @param signal aborts the request
 * @returns the answer, not yet decoded
 * @throws {RillError} a whole-request error (INVALID_REQUEST, FETCH_SESSION_ID_NOT_FOUND,
 *   INVALID_FETCH_SESSION_EPOCH, BROKER_NOT_AVAILABLE, …); partition errors are in the answer
 * @example
 * ```ts
 * const answer = await requestFetch(t, t.broker, {
 *   partitions: [{ topic: "orders", partition: 0, offset: 0, maxBytes: 1 << 20 }],
 *   maxWaitMs: 500, minBytes: 1,
 * });
 * ```
 */
export async function requestFetch(
  transport: Transport,
  base: string,
  req: MultiFetchRequest,
  signal?: AbortSignal,
): Promise<RawFetchAnswer> {
  const res = await transport.requestAt(base, "POST", "/v1/fetch", {
    json: req,
    headers: { Accept: FETCH_MEDIA_TYPE },
    signal,
  });
  const type = res.headers.get("Content-Type") ?? "";
  if (!type.startsWith(FETCH_MEDIA_TYPE)) {
    await res.body?.cancel();
    throw new RillError(
      "UNKNOWN_SERVER_ERROR",
      `The broker at ${base} answered a fetch with "${type.slice(0, 60)}" (an older broker?)`,
    );
  }
  return parseFetchFrame(await readBytes(res));
}

/**
 * Decodes one partition of an answer into messages at or after `offset`.
 *
 * @param p the partition's raw answer
 * @param offset the offset that was fetched from
 * @param checkCrcs check each batch's CRC-32C
 * @returns the messages
 * @throws {RillError} CORRUPT_MESSAGE on a bad CRC
 */
export function decodePartition(
  p: RawPartitionAnswer,
  offset: number,
  checkCrcs: boolean,
): ConsumedMessage[] {
  if (p.bytes.length === 0) return [];
  return decodeBatches(p.bytes, p.topic, p.partition, offset, checkCrcs).messages;
}
