/**
 * The consumer's decoder of fetched RecordBatch v2 bytes (layout in
 * src/protocol/record_batch.ts). Unlike `decodeBatch`, it makes one object per record: a
 * {@linkcode ConsumedMessage} that remembers where its key, value and headers lie in the
 * fetched buffer and makes `Uint8Array` views of them only when asked. Each typed array
 * costs an allocation, which is most of a small record's cost in JavaScript.
 *
 * The record framing is checked as it is walked (lengths within the record, no stray
 * bytes); a violation is a CORRUPT_MESSAGE. The CRC is checked by the caller.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import { inflateBatch } from "../protocol/compression.ts";
import { ATTR, type BatchHeader, POS, readBatchHeader } from "../protocol/record_batch.ts";
import { ConsumedMessage } from "./message.ts";

let at = 0;

/** Reads a zig-zag varint at `at` (advancing it), within `end`. */
function varint(buf: Uint8Array, end: number): number {
  let z = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (at >= end) throw corrupt("a varint runs past the end of its record");
    const b = buf[at++];
    z += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    mul *= 128;
  }
  throw corrupt("a varint is longer than 10 bytes");
}

function corrupt(what: string): RillError {
  return new RillError("CORRUPT_MESSAGE", `Fetched batch is malformed: ${what}`);
}

/**
 * Appends the records of one batch whose offset is at least `minOffset` to `out`.
 *
 * @param batch exactly one batch
 * @param h its header
 * @param topic the topic, for the messages
 * @param partition the partition, for the messages
 * @param minOffset records below it are skipped
 * @param out where the messages go
 * @throws {RillError} CORRUPT_MESSAGE on a malformed record or compressed data;
 *   UNSUPPORTED_COMPRESSION_TYPE for codec bits 5-7
 * @example
 * ```ts
 * const out: ConsumedMessage[] = [];
 * decodeMessages(batch, readBatchHeader(batch), "orders", 0, 0, out);
 * ```
 */
export function decodeMessages(
  batch: Uint8Array,
  h: BatchHeader,
  topic: string,
  partition: number,
  minOffset: number,
  out: ConsumedMessage[],
): void {
  if (h.lastOffsetDelta + h.baseOffset < minOffset) return;
  if ((h.attributes & ATTR.compressionMask) !== 0) {
    // The messages then view the decompressed copy (the CRC was checked on the original).
    batch = inflateBatch(batch.subarray(0, h.batchLength + 12));
    h = readBatchHeader(batch);
  }
  records(
    batch,
    0,
    Math.min(batch.length, h.batchLength + 12),
    h.baseOffset,
    (h.attributes & ATTR.logAppendTime) !== 0,
    h.maxTimestamp,
    h.baseTimestamp,
    h.recordCount,
    topic,
    partition,
    minOffset,
    out,
  );
}

/** Below this high word (and above its negation) a big-endian i64 is a safe number. */
const SAFE_HIGH = 0x200000;

/**
 * {@linkcode decodeMessages} for the batch of `size` bytes at `pos` of a fetched answer,
 * reading its header through `view` (a view of all of `bytes`): no subarray, DataView or
 * header object per batch, the messages pointing into `bytes` itself. A compressed batch, or
 * one whose offsets or timestamps lie beyond 2^53, takes {@linkcode decodeMessages}' path.
 *
 * @param bytes the fetched answer
 * @param view a DataView of exactly `bytes`
 * @param pos where the batch starts
 * @param size its length (at least the header's)
 * @param topic the topic, for the messages
 * @param partition the partition, for the messages
 * @param minOffset records below it are skipped
 * @param out where the messages go
 * @returns the offset after the batch's last record
 * @throws {RillError} as {@linkcode decodeMessages}
 * @example
 * ```ts
 * const out: ConsumedMessage[] = [];
 * const next = decodeMessagesAt(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, bytes.length, "orders", 0, 0, out);
 * ```
 */
export function decodeMessagesAt(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  size: number,
  topic: string,
  partition: number,
  minOffset: number,
  out: ConsumedMessage[],
): number {
  const baseHigh = view.getInt32(pos + POS.baseOffset);
  const tsHigh = view.getInt32(pos + POS.baseTimestamp);
  const maxHigh = view.getInt32(pos + POS.maxTimestamp);
  const attributes = view.getInt16(pos + POS.attributes);
  if (
    (attributes & ATTR.compressionMask) !== 0 ||
    baseHigh <= -SAFE_HIGH || baseHigh >= SAFE_HIGH ||
    tsHigh <= -SAFE_HIGH || tsHigh >= SAFE_HIGH ||
    maxHigh <= -SAFE_HIGH || maxHigh >= SAFE_HIGH
  ) {
    const batch = bytes.subarray(pos, pos + size);
    const h = readBatchHeader(batch);
    decodeMessages(batch, h, topic, partition, minOffset, out);
    return h.baseOffset + h.lastOffsetDelta + 1;
  }
  const baseOffset = baseHigh * 4294967296 + view.getUint32(pos + POS.baseOffset + 4);
  const next = baseOffset + view.getInt32(pos + POS.lastOffsetDelta) + 1;
  if (next - 1 < minOffset) return next;
  records(
    bytes,
    pos,
    Math.min(pos + size, pos + view.getInt32(pos + POS.batchLength) + 12),
    baseOffset,
    (attributes & ATTR.logAppendTime) !== 0,
    maxHigh * 4294967296 + view.getUint32(pos + POS.maxTimestamp + 4),
    tsHigh * 4294967296 + view.getUint32(pos + POS.baseTimestamp + 4),
    view.getInt32(pos + POS.recordCount),
    topic,
    partition,
    minOffset,
    out,
  );
  return next;
}

/**
 * Walks the records of the batch starting at `start` of `buf` (its bytes end at `end`).
 * With `logAppend`, every record's timestamp is the batch's `maxTimestamp`.
 */
function records(
  buf: Uint8Array,
  start: number,
  end: number,
  baseOffset: number,
  logAppend: boolean,
  maxTimestamp: number,
  baseTimestamp: number,
  recordCount: number,
  topic: string,
  partition: number,
  minOffset: number,
  out: ConsumedMessage[],
): void {
  at = start + POS.records;
  for (let i = 0; i < recordCount; i++) {
    const len = varint(buf, end);
    const recEnd = at + len;
    if (len < 0 || recEnd > end) throw corrupt(`record ${i} runs past the batch end`);
    at++; // attributes
    const tsDelta = varint(buf, recEnd);
    const offset = baseOffset + varint(buf, recEnd);
    const kl = varint(buf, recEnd);
    const k = at;
    if (kl > 0) at += kl;
    const vl = varint(buf, recEnd);
    const v = at;
    if (vl > 0) at += vl;
    if (at > recEnd) throw corrupt(`record ${i} key or value runs past the record`);
    const hc = varint(buf, recEnd);
    const hs = at;
    if (hc < 0) throw corrupt(`record ${i} has a negative header count`);
    for (let j = 0; j < hc; j++) {
      const hkl = varint(buf, recEnd);
      if (hkl < 0) throw corrupt(`record ${i} header ${j} has a null name`);
      at += hkl;
      const hvl = varint(buf, recEnd);
      if (hvl > 0) at += hvl;
      if (at > recEnd) throw corrupt(`record ${i} header ${j} runs past the record`);
    }
    if (at !== recEnd) throw corrupt(`record ${i} has ${recEnd - at} stray bytes`);
    if (offset >= minOffset) {
      out.push(
        new ConsumedMessage(
          topic,
          partition,
          offset,
          logAppend ? maxTimestamp : baseTimestamp + tsDelta,
          buf,
          k,
          kl,
          v,
          vl,
          hs,
          hc,
        ),
      );
    }
  }
  if (at !== end) throw corrupt(`${end - at} bytes follow the last record`);
}
