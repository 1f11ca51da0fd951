/**
 * Checks of record batches that arrive from producers before the leader appends them as
 * they are (never re-encoded), and the changes a topic may ask for:
 * `message.timestamp.type=LogAppendTime` (in place) and `compression.type` (recompressed).
 *
 * A compressed batch is checked like any other (CRC over the compressed bytes, header
 * fields), and its records are decompressed, within a limit, and walked as an uncompressed
 * batch's are: the record count and offset deltas must agree with the header, and a
 * compacted topic's keys are read from them.
 *
 * @module
 */
import {
  compressBatch,
  type CompressionType,
  inflateBatch,
  inflateLimitFor,
} from "../protocol/compression.ts";
import { crc32c } from "../protocol/crc32c.ts";
import { MALFORMED_VARINT, varintCursor, zigZagAt } from "../protocol/varint.ts";
import { RillError } from "../protocol/errors.ts";
import {
  ATTR,
  BATCH_HEADER_SIZE,
  type BatchHeader,
  LOG_OVERHEAD,
  MAGIC_V2,
  POS,
  readBatchHeader,
} from "../protocol/record_batch.ts";

/** A record timestamp that says "no time known" (Kafka's `RecordBatch.NO_TIMESTAMP`). */
export const NO_TIMESTAMP = -1;

/** What {@linkcode checkProducedBatches} learned about a body. */
export interface ProducedBatches {
  /** the whole batches, as views into the body */
  batches: Uint8Array[];
  /** the same batches uncompressed: the batch itself if it is not compressed, else a
   * decompressed copy (codec bits cleared, CRC field stale) */
  plain: Uint8Array[];
  /** the header of each batch, as the producer sent it */
  headers: BatchHeader[];
  /** records in all batches */
  recordCount: number;
  /** the largest record timestamp */
  maxTimestamp: number;
}

/**
 * Checks a body of one or more concatenated RecordBatch v2 as a producer sent it: whole
 * batches with nothing after them, each within `maxMessageBytes`, magic 2, CRC-32C right,
 * records that decode exactly (decompressed first, within `inflateLimit`, for a compressed
 * batch), not transactional or control, not empty, each with a timestamp of 0 or more or -1
 * (Kafka's NO_TIMESTAMP; the rule of JSON records too).
 *
 * @param body the request body
 * @param maxMessageBytes the topic's `max.message.bytes`
 * @param inflateLimit the most bytes a compressed batch's records may inflate to
 * @returns the batches and their record count
 * @throws {RillError} INVALID_RECORD, CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, INVALID_TIMESTAMP,
 *   RECORD_LIST_TOO_LARGE (a decompression bomb) or UNSUPPORTED_COMPRESSION_TYPE (codec
 *   bits 5-7) with a sentence saying which batch and why
 * @example
 * ```ts
 * const { recordCount } = checkProducedBatches(encodeBatch([{ value: null }]), 1048588);
 * ```
 */
export function checkProducedBatches(
  body: Uint8Array,
  maxMessageBytes: number,
  inflateLimit: number = inflateLimitFor(maxMessageBytes),
): ProducedBatches {
  if (body.length === 0) {
    throw new RillError("INVALID_RECORD", "The request body holds no record batch");
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  // Made with their first element: an empty array's first push reserves 16 slots, and most
  // bodies (every single-record produce) hold one batch.
  let batches: Uint8Array[] | null = null;
  let plain: Uint8Array[] = [];
  let headers: BatchHeader[] = [];
  let index = 0; // of the batch at `pos`
  let recordCount = 0;
  let maxTimestamp = -1;
  let pos = 0;
  while (pos < body.length) {
    const left = body.length - pos;
    if (left < BATCH_HEADER_SIZE) {
      throw new RillError(
        "CORRUPT_MESSAGE",
        `The body ends with ${left} bytes, too few for a batch header`,
      );
    }
    const size = view.getInt32(pos + POS.batchLength) + LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE || size > left) {
      throw new RillError(
        "CORRUPT_MESSAGE",
        `Batch ${index} declares ${size} bytes but ${left} remain in the body`,
      );
    }
    if (size > maxMessageBytes) {
      throw new RillError(
        "MESSAGE_TOO_LARGE",
        `Batch ${index} is ${size} bytes, larger than max.message.bytes (${maxMessageBytes})`,
        { maxMessageBytes },
      );
    }
    const batch = body.subarray(pos, pos + size);
    const attributes = view.getInt16(pos + POS.attributes);
    if ((attributes & ATTR.compressionMask) > 4) {
      throw new RillError(
        "UNSUPPORTED_COMPRESSION_TYPE",
        `Batch ${index} names compression codec ${
          attributes & ATTR.compressionMask
        }, which does not exist (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)`,
      );
    }
    if ((attributes & (ATTR.transactional | ATTR.control)) !== 0) {
      throw new RillError(
        "INVALID_RECORD",
        `Batch ${index} is transactional or a control batch, which Rill does not accept`,
      );
    }
    const header = readBatchHeader(batch);
    if (header.magic !== MAGIC_V2) {
      throw corrupt(`Batch ${index} has magic ${header.magic}; only 2 is supported`);
    }
    const crc = crc32c(batch.subarray(POS.attributes));
    if (crc !== header.crc) {
      throw corrupt(
        `Batch ${index} CRC is 0x${header.crc.toString(16)} but its contents give 0x${
          crc.toString(16)
        }`,
      );
    }
    if (header.recordCount <= 0) {
      throw new RillError("INVALID_RECORD", `Batch ${index} holds no records`);
    }
    if (header.lastOffsetDelta !== header.recordCount - 1) {
      throw corrupt(
        `Batch ${index} has lastOffsetDelta ${header.lastOffsetDelta} but holds ${header.recordCount} records`,
      );
    }
    const records = (attributes & ATTR.compressionMask) === 0
      ? batch
      : inflateBatch(batch, inflateLimit);
    checkRecords(records, header.recordCount, header.baseTimestamp, index);
    recordCount += header.recordCount;
    if (header.maxTimestamp > maxTimestamp) maxTimestamp = header.maxTimestamp;
    if (batches === null) {
      batches = [batch];
      plain = [records];
      headers = [header];
    } else {
      batches.push(batch);
      plain.push(records);
      headers.push(header);
    }
    index++;
    pos += size;
  }
  return { batches: batches ?? [], plain, headers, recordCount, maxTimestamp };
}

/** A topic's `compression.type`: keep the producer's codec, or store batches with this one. */
export type StoredCompression = CompressionType | "producer";

/**
 * Parses a topic's `compression.type` (validated when it was set).
 *
 * @param value the config value (undefined: `producer`)
 * @returns "producer", or the codec batches are stored with ("none" for `uncompressed`)
 * @example
 * ```ts
 * storedCompressionOf("uncompressed"); // "none"
 * ```
 */
export function storedCompressionOf(value: string | undefined): StoredCompression {
  if (value === undefined || value === "producer") return "producer";
  if (value === "uncompressed") return "none";
  return value as CompressionType;
}

/**
 * Applies a topic's `compression.type` to checked batches, as a Kafka broker does: a batch
 * whose codec differs from the topic's is decompressed and compressed again with the
 * topic's codec (header fields kept, CRC rewritten). Call before stamping LogAppendTime.
 *
 * @param checked what {@linkcode checkProducedBatches} returned (its `batches` are replaced)
 * @param target the topic's `compression.type`
 * @returns the body to append: the original if nothing changed, else the new batches
 * @example
 * ```ts
 * body = applyTopicCompression(checked, body, state.compression);
 * ```
 */
export function applyTopicCompression(
  checked: ProducedBatches,
  body: Uint8Array,
  target: StoredCompression,
): Uint8Array {
  if (target === "producer") return body;
  const targetId = ["none", "gzip", "snappy", "lz4", "zstd"].indexOf(target);
  let changed = false;
  const out = checked.batches.map((batch, i) => {
    const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    if ((view.getInt16(POS.attributes) & ATTR.compressionMask) === targetId) return batch;
    changed = true;
    const plain = checked.plain[i] === batch ? batch : checked.plain[i];
    if (target !== "none") return compressBatch(plain, target);
    const pv = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
    pv.setUint32(POS.crc, crc32c(plain.subarray(POS.attributes)));
    return plain;
  });
  if (!changed) return body;
  let total = 0;
  for (const b of out) total += b.length;
  const next = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < out.length; i++) {
    next.set(out[i], at);
    out[i] = next.subarray(at, at + out[i].length);
    at += out[i].length;
  }
  checked.batches = out;
  return next;
}

function corrupt(message: string): RillError {
  return new RillError("CORRUPT_MESSAGE", message);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A record of batch `batchIndex` found malformed (built only when thrown). */
function badRecord(batchIndex: number, i: number, what: string): RillError {
  return corrupt(`Batch ${batchIndex} record ${i} ${what}`);
}

/**
 * Walks the records of an uncompressed batch without decoding them into objects: each
 * record's length must hold exactly its fields, offset deltas must run 0..count-1, header
 * names must be UTF-8, and the last record must end the batch. This is what
 * `validateBatch` checks, without an allocation per record (the produce fast path).
 */
function checkRecords(
  batch: Uint8Array,
  count: number,
  baseTimestamp: number,
  batchIndex: number,
): void {
  const end = batch.length;
  let pos: number = POS.records;
  let i = 0;
  try {
    for (; i < count; i++) {
      const len = zigZagAt(batch, pos, end);
      pos = varintCursor.next;
      const recEnd = pos + len;
      if (len < 1 || recEnd > end) throw badRecord(batchIndex, i, "runs past the end of the batch");
      pos++; // attributes
      const timestamp = baseTimestamp + zigZagAt(batch, pos, recEnd);
      if (timestamp < NO_TIMESTAMP) {
        throw new RillError(
          "INVALID_TIMESTAMP",
          `Batch ${batchIndex} record ${i} has timestamp ${timestamp}; a timestamp is ms since the epoch (>= 0), or -1 for none`,
        );
      }
      const delta = zigZagAt(batch, varintCursor.next, recEnd);
      pos = varintCursor.next;
      if (delta !== i) throw badRecord(batchIndex, i, `has offset delta ${delta}, expected ${i}`);
      for (let f = 0; f < 2; f++) { // key, then value
        const n = zigZagAt(batch, pos, recEnd);
        pos = varintCursor.next;
        if (n < -1 || pos + Math.max(n, 0) > recEnd) {
          throw badRecord(
            batchIndex,
            i,
            `${f === 0 ? "key" : "value"} runs past the end of its record`,
          );
        }
        if (n > 0) pos += n;
      }
      const headers = zigZagAt(batch, pos, recEnd);
      pos = varintCursor.next;
      if (headers < 0) throw badRecord(batchIndex, i, "has a negative header count");
      for (let j = 0; j < headers; j++) {
        const kn = zigZagAt(batch, pos, recEnd);
        pos = varintCursor.next;
        if (kn < 0 || pos + kn > recEnd) {
          throw badRecord(batchIndex, i, `header ${j} name is malformed`);
        }
        try {
          strictUtf8.decode(batch.subarray(pos, pos + kn));
        } catch {
          throw badRecord(batchIndex, i, `header ${j} name is not UTF-8`);
        }
        pos += kn;
        const vn = zigZagAt(batch, pos, recEnd);
        pos = varintCursor.next;
        if (vn < -1 || pos + Math.max(vn, 0) > recEnd) {
          throw badRecord(batchIndex, i, `header ${j} value runs past the end of its record`);
        }
        if (vn > 0) pos += vn;
      }
      if (pos !== recEnd) throw badRecord(batchIndex, i, `has ${recEnd - pos} stray bytes`);
    }
  } catch (e) {
    if (e === MALFORMED_VARINT) {
      throw badRecord(batchIndex, i, "has a malformed or truncated field");
    }
    throw e;
  }
  if (pos !== end) {
    throw corrupt(`Batch ${batchIndex} has ${end - pos} bytes after its last record`);
  }
}

/**
 * Marks a batch as LogAppendTime, as a Kafka leader does for topics with
 * `message.timestamp.type=LogAppendTime`: sets the timestamp-type attribute, writes the
 * append time as maxTimestamp (which every record then reports) and recomputes the CRC.
 *
 * @param batch one whole batch (changed in place)
 * @param now the append time, ms since the epoch
 * @example
 * ```ts
 * stampLogAppendTime(batch, Date.now());
 * ```
 */
export function stampLogAppendTime(batch: Uint8Array, now: number): void {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  view.setInt16(POS.attributes, view.getInt16(POS.attributes) | ATTR.logAppendTime);
  view.setBigInt64(POS.maxTimestamp, BigInt(now));
  view.setUint32(POS.crc, crc32c(batch.subarray(POS.attributes)));
}
