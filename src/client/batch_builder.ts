/**
 * Builds one RecordBatch v2 record by record, writing each record straight into the
 * batch's buffer as it is appended (Kafka's `MemoryRecordsBuilder`). Text keys and values
 * are UTF-8-encoded in place: no intermediate `Uint8Array` per record, which is what keeps
 * small records cheap in JavaScript (each typed array costs an allocation).
 *
 * The bytes are exactly those `encodeBatch` (src/protocol/record_batch.ts) writes for the
 * same records, except that the base timestamp is the first record's (as Kafka does), so
 * timestamp deltas may be negative. The batch header and CRC-32C are written by
 * {@linkcode BatchBuilder.build}.
 *
 * @module
 */
import { crc32c } from "../protocol/crc32c.ts";
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, POS } from "../protocol/record_batch.ts";
import type { RecordHeader } from "../protocol/record_batch.ts";
import { varintSize, writeVarint } from "../protocol/varint.ts";
import { writeUtf8 as writeUtf8Units } from "./utf8.ts";

const encoder = new TextEncoder();
/** Strings longer than this go through TextEncoder.encodeInto; shorter ones a JS loop. */
const SHORT_STRING = 128;

/**
 * Key or value as the builder takes it.
 *
 * @example
 * ```ts
 * const key: BytesLike = "user-1";
 * ```
 */
export type BytesLike = string | Uint8Array | null;

/**
 * The most bytes a key or value can take once encoded (UTF-8 takes up to 3 bytes per
 * UTF-16 unit).
 *
 * @param v the key or value
 * @returns an upper bound of its encoded size
 *
 * @example
 * ```ts
 * maxEncodedSize("héllo"); // 15
 * ```
 */
export function maxEncodedSize(v: BytesLike): number {
  if (v === null) return 0;
  return typeof v === "string" ? v.length * 3 : v.length;
}

/**
 * Writes `s` as UTF-8 into `buf` at `pos` (which must have room for 3 bytes a unit).
 *
 * @returns the position after the bytes
 */
function writeUtf8(buf: Uint8Array, pos: number, s: string): number {
  if (s.length > SHORT_STRING) return pos + encoder.encodeInto(s, buf.subarray(pos)).written;
  return writeUtf8Units(buf, pos, s);
}

/** Writes a length-prefixed key/value/header value; returns the position after it. */
function writeBytes(buf: Uint8Array, pos: number, v: BytesLike): number {
  if (v === null) {
    buf[pos] = 1; // zig-zag of -1
    return pos + 1;
  }
  if (typeof v !== "string") {
    pos = writeVarint(buf, pos, v.length);
    buf.set(v, pos);
    return pos + v.length;
  }
  // Unknown encoded length: write after a 5-byte gap, then close the gap.
  const start = pos + 5;
  const end = writeUtf8(buf, start, v);
  const len = end - start;
  const after = writeVarint(buf, pos, len);
  if (after !== start) buf.copyWithin(after, start, end);
  return after + len;
}

/**
 * Encodes a key (string or bytes) to bytes in a reusable scratch buffer, for hashing.
 *
 * @param key the key
 * @param scratch a buffer to reuse (grown if too small)
 * @returns a view of the encoded key
 *
 * @example
 * ```ts
 * const scratch = { buf: new Uint8Array(256) };
 * partitionForKey(keyBytes("user-1", scratch), 6);
 * ```
 */
export function keyBytes(key: string | Uint8Array, scratch: { buf: Uint8Array }): Uint8Array {
  if (typeof key !== "string") return key;
  if (scratch.buf.length < key.length * 3) scratch.buf = new Uint8Array(key.length * 3 + 64);
  return scratch.buf.subarray(0, writeUtf8(scratch.buf, 0, key));
}

/**
 * Appends records to one batch and builds it.
 *
 * @example
 * ```ts
 * const b = new BatchBuilder(4096);
 * b.append(Date.now(), "user-1", "hello", undefined);
 * const batch = b.build(); // a RecordBatch v2 with one record
 * ```
 */
export class BatchBuilder {
  #buf: Uint8Array;
  #pos: number = BATCH_HEADER_SIZE;
  #count = 0;
  #baseTimestamp = 0;
  #maxTimestamp = 0;

  /**
   * @param initialCapacity the first buffer size (it doubles as needed)
   * @param reuse a spare buffer to write into instead of allocating one, if big enough
   *   (its old contents are overwritten)
   */
  constructor(initialCapacity = 4096, reuse?: Uint8Array) {
    const cap = Math.max(initialCapacity, BATCH_HEADER_SIZE + 64);
    this.#buf = reuse !== undefined && reuse.length >= cap ? reuse : new Uint8Array(cap);
  }

  /** The buffer the batch is written in (to reuse it once the batch is done). */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  /** The records appended. */
  get count(): number {
    return this.#count;
  }

  /** The bytes written so far, header included. */
  get size(): number {
    return this.#pos;
  }

  #ensure(extra: number): void {
    const need = this.#pos + extra;
    if (need <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
  }

  /**
   * Appends one record.
   *
   * @param timestamp milliseconds since the epoch
   * @param key the key, or null
   * @param value the value, or null
   * @param headers the headers, or undefined
   */
  append(
    timestamp: number,
    key: BytesLike,
    value: BytesLike,
    headers: RecordHeader[] | undefined,
  ): void {
    let bound = 40 + maxEncodedSize(key) + maxEncodedSize(value);
    if (headers) {
      for (const h of headers) bound += 10 + h.key.length * 3 + maxEncodedSize(h.value);
    }
    this.#ensure(bound);
    if (this.#count === 0) this.#baseTimestamp = this.#maxTimestamp = timestamp;
    else if (timestamp > this.#maxTimestamp) this.#maxTimestamp = timestamp;
    const buf = this.#buf;
    if (typeof key !== "string" && typeof value !== "string" && headers === undefined) {
      // Byte key and value (the common case for large records): the body's length is
      // known, so its varint goes first and the body is written once, in place.
      const tsDelta = timestamp - this.#baseTimestamp;
      const bodyLen = 1 + varintSize(tsDelta) + varintSize(this.#count) +
        (key === null ? 1 : varintSize(key.length) + key.length) +
        (value === null ? 1 : varintSize(value.length) + value.length) + 1;
      let p = writeVarint(buf, this.#pos, bodyLen);
      buf[p++] = 0; // attributes
      p = writeVarint(buf, p, tsDelta);
      p = writeVarint(buf, p, this.#count);
      p = writeBytes(buf, p, key);
      p = writeBytes(buf, p, value);
      buf[p++] = 0; // no headers
      this.#pos = p;
      this.#count++;
      return;
    }
    // Body first, after a 5-byte gap for its length varint.
    const lenAt = this.#pos;
    const bodyAt = lenAt + 5;
    let p = bodyAt;
    buf[p++] = 0; // attributes
    p = writeVarint(buf, p, timestamp - this.#baseTimestamp);
    p = writeVarint(buf, p, this.#count);
    p = writeBytes(buf, p, key);
    p = writeBytes(buf, p, value);
    if (headers === undefined || headers.length === 0) buf[p++] = 0;
    else {
      p = writeVarint(buf, p, headers.length);
      for (const h of headers) {
        p = writeBytes(buf, p, h.key);
        p = writeBytes(buf, p, h.value);
      }
    }
    const bodyLen = p - bodyAt;
    const after = writeVarint(buf, lenAt, bodyLen);
    if (after !== bodyAt) buf.copyWithin(after, bodyAt, p);
    this.#pos = after + bodyLen;
    this.#count++;
  }

  /**
   * Writes the header and CRC and returns the batch (a view of the builder's buffer; the
   * builder must not be used afterwards).
   *
   * @param producer for an idempotent producer: its id, epoch and the sequence number of
   *   the batch's first record (written in the RecordBatch v2 fields meant for them);
   *   without it the fields say "no producer" (-1)
   * @returns the encoded batch, base offset 0
   */
  build(
    producer?: { producerId: number; producerEpoch: number; baseSequence: number },
  ): Uint8Array {
    const batch = this.#buf.subarray(0, this.#pos);
    const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    const now = this.#count === 0 ? Date.now() : 0;
    setInt64(view, POS.baseOffset, 0);
    view.setInt32(POS.batchLength, batch.length - LOG_OVERHEAD);
    view.setInt32(POS.partitionLeaderEpoch, -1);
    batch[POS.magic] = MAGIC_V2;
    view.setInt16(POS.attributes, 0);
    view.setInt32(POS.lastOffsetDelta, Math.max(this.#count - 1, 0));
    setInt64(view, POS.baseTimestamp, this.#count === 0 ? now : this.#baseTimestamp);
    setInt64(view, POS.maxTimestamp, this.#count === 0 ? now : this.#maxTimestamp);
    setInt64(view, POS.producerId, producer?.producerId ?? -1);
    view.setInt16(POS.producerEpoch, producer?.producerEpoch ?? -1);
    view.setInt32(POS.baseSequence, producer?.baseSequence ?? -1);
    view.setInt32(POS.recordCount, this.#count);
    view.setUint32(POS.crc, crc32c(batch.subarray(POS.attributes)));
    return batch;
  }
}

/** Writes a safe integer as a big-endian int64 (no BigInt allocated). */
function setInt64(view: DataView, at: number, v: number): void {
  const hi = Math.floor(v / 0x100000000);
  view.setInt32(at, hi);
  view.setUint32(at + 4, v - hi * 0x100000000);
}
