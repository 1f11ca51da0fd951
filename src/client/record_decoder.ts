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
  const logAppend = (h.attributes & ATTR.logAppendTime) !== 0;
  const end = Math.min(batch.length, h.batchLength + 12);
  at = POS.records;
  for (let i = 0; i < h.recordCount; i++) {
    const len = varint(batch, end);
    const recEnd = at + len;
    if (len < 0 || recEnd > end) throw corrupt(`record ${i} runs past the batch end`);
    at++; // attributes
    const tsDelta = varint(batch, recEnd);
    const offset = h.baseOffset + varint(batch, recEnd);
    const kl = varint(batch, recEnd);
    const k = at;
    if (kl > 0) at += kl;
    const vl = varint(batch, recEnd);
    const v = at;
    if (vl > 0) at += vl;
    if (at > recEnd) throw corrupt(`record ${i} key or value runs past the record`);
    const hc = varint(batch, recEnd);
    const hs = at;
    if (hc < 0) throw corrupt(`record ${i} has a negative header count`);
    for (let j = 0; j < hc; j++) {
      const hkl = varint(batch, recEnd);
      if (hkl < 0) throw corrupt(`record ${i} header ${j} has a null name`);
      at += hkl;
      const hvl = varint(batch, recEnd);
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
          logAppend ? h.maxTimestamp : h.baseTimestamp + tsDelta,
          batch,
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
