/**
 * Checks of record batches that arrive from producers before the leader appends them as
 * they are (never re-encoded), and the one in-place change a topic may ask for:
 * `message.timestamp.type=LogAppendTime`.
 *
 * @module
 */
import { crc32c } from "../protocol/crc32c.ts";
import { MALFORMED_VARINT, varintCursor, zigZagAt } from "../protocol/varint.ts";
import { RillError } from "../protocol/errors.ts";
import {
  ATTR,
  BATCH_HEADER_SIZE,
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
  /** records in all batches */
  recordCount: number;
  /** the largest record timestamp */
  maxTimestamp: number;
}

/**
 * Checks a body of one or more concatenated RecordBatch v2 as a producer sent it: whole
 * batches with nothing after them, each within `maxMessageBytes`, magic 2, CRC-32C right,
 * records that decode exactly, uncompressed, not transactional or control, not empty, each
 * with a timestamp of 0 or more or -1 (Kafka's NO_TIMESTAMP; the rule of JSON records too).
 *
 * @param body the request body
 * @param maxMessageBytes the topic's `max.message.bytes`
 * @returns the batches and their record count
 * @throws {RillError} INVALID_RECORD, CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, INVALID_TIMESTAMP or
 *   UNSUPPORTED_COMPRESSION_TYPE with a sentence saying which batch and why
 * @example
 * ```ts
 * const { recordCount } = checkProducedBatches(encodeBatch([{ value: null }]), 1048588);
 * ```
 */
export function checkProducedBatches(
  body: Uint8Array,
  maxMessageBytes: number,
): ProducedBatches {
  if (body.length === 0) {
    throw new RillError("INVALID_RECORD", "The request body holds no record batch");
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const batches: Uint8Array[] = [];
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
        `Batch ${batches.length} declares ${size} bytes but ${left} remain in the body`,
      );
    }
    if (size > maxMessageBytes) {
      throw new RillError(
        "MESSAGE_TOO_LARGE",
        `Batch ${batches.length} is ${size} bytes, larger than max.message.bytes (${maxMessageBytes})`,
        { maxMessageBytes },
      );
    }
    const batch = body.subarray(pos, pos + size);
    const attributes = view.getInt16(pos + POS.attributes);
    if ((attributes & ATTR.compressionMask) !== 0) {
      throw new RillError(
        "UNSUPPORTED_COMPRESSION_TYPE",
        `Batch ${batches.length} is compressed (codec ${
          attributes & ATTR.compressionMask
        }); send uncompressed batches`,
      );
    }
    if ((attributes & (ATTR.transactional | ATTR.control)) !== 0) {
      throw new RillError(
        "INVALID_RECORD",
        `Batch ${batches.length} is transactional or a control batch, which Rill does not accept`,
      );
    }
    const header = readBatchHeader(batch);
    const which = `Batch ${batches.length}`;
    if (header.magic !== MAGIC_V2) {
      throw corrupt(`${which} has magic ${header.magic}; only 2 is supported`);
    }
    const crc = crc32c(batch.subarray(POS.attributes));
    if (crc !== header.crc) {
      throw corrupt(
        `${which} CRC is 0x${header.crc.toString(16)} but its contents give 0x${crc.toString(16)}`,
      );
    }
    if (header.recordCount <= 0) {
      throw new RillError("INVALID_RECORD", `${which} holds no records`);
    }
    if (header.lastOffsetDelta !== header.recordCount - 1) {
      throw corrupt(
        `${which} has lastOffsetDelta ${header.lastOffsetDelta} but holds ${header.recordCount} records`,
      );
    }
    checkRecords(batch, header.recordCount, header.baseTimestamp, which);
    recordCount += header.recordCount;
    if (header.maxTimestamp > maxTimestamp) maxTimestamp = header.maxTimestamp;
    batches.push(batch);
    pos += size;
  }
  return { batches, recordCount, maxTimestamp };
}

function corrupt(message: string): RillError {
  return new RillError("CORRUPT_MESSAGE", message);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

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
  which: string,
): void {
  const end = batch.length;
  let pos: number = POS.records;
  let i = 0;
  const bad = (what: string) => corrupt(`${which} record ${i} ${what}`);
  try {
    for (; i < count; i++) {
      const len = zigZagAt(batch, pos, end);
      pos = varintCursor.next;
      const recEnd = pos + len;
      if (len < 1 || recEnd > end) throw bad("runs past the end of the batch");
      pos++; // attributes
      const timestamp = baseTimestamp + zigZagAt(batch, pos, recEnd);
      if (timestamp < NO_TIMESTAMP) {
        throw new RillError(
          "INVALID_TIMESTAMP",
          `${which} record ${i} has timestamp ${timestamp}; a timestamp is ms since the epoch (>= 0), or -1 for none`,
        );
      }
      const delta = zigZagAt(batch, varintCursor.next, recEnd);
      pos = varintCursor.next;
      if (delta !== i) throw bad(`has offset delta ${delta}, expected ${i}`);
      for (let f = 0; f < 2; f++) { // key, then value
        const n = zigZagAt(batch, pos, recEnd);
        pos = varintCursor.next;
        if (n < -1 || pos + Math.max(n, 0) > recEnd) {
          throw bad(`${f === 0 ? "key" : "value"} runs past the end of its record`);
        }
        if (n > 0) pos += n;
      }
      const headers = zigZagAt(batch, pos, recEnd);
      pos = varintCursor.next;
      if (headers < 0) throw bad("has a negative header count");
      for (let j = 0; j < headers; j++) {
        const kn = zigZagAt(batch, pos, recEnd);
        pos = varintCursor.next;
        if (kn < 0 || pos + kn > recEnd) throw bad(`header ${j} name is malformed`);
        try {
          strictUtf8.decode(batch.subarray(pos, pos + kn));
        } catch {
          throw bad(`header ${j} name is not UTF-8`);
        }
        pos += kn;
        const vn = zigZagAt(batch, pos, recEnd);
        pos = varintCursor.next;
        if (vn < -1 || pos + Math.max(vn, 0) > recEnd) {
          throw bad(`header ${j} value runs past the end of its record`);
        }
        if (vn > 0) pos += vn;
      }
      if (pos !== recEnd) throw bad(`has ${recEnd - pos} stray bytes`);
    }
  } catch (e) {
    if (e === MALFORMED_VARINT) throw bad("has a malformed or truncated field");
    throw e;
  }
  if (pos !== end) throw corrupt(`${which} has ${end - pos} bytes after its last record`);
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
