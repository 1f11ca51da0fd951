/**
 * Kafka's RecordBatch v2 ("magic 2"), byte for byte: the unit Rill stores on disk, sends on
 * the replication wire and accepts from clients as `application/vnd.rill.batch`.
 *
 * Layout (big-endian):
 *
 * | pos | field                | type  |
 * | --- | -------------------- | ----- |
 * | 0   | baseOffset           | i64   |
 * | 8   | batchLength          | i32   | bytes after this field
 * | 12  | partitionLeaderEpoch | i32   |
 * | 16  | magic                | i8 = 2|
 * | 17  | crc                  | u32   | CRC-32C of bytes 21..end
 * | 21  | attributes           | i16   | bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control
 * | 23  | lastOffsetDelta      | i32   |
 * | 27  | baseTimestamp        | i64   |
 * | 35  | maxTimestamp         | i64   |
 * | 43  | producerId           | i64   |
 * | 51  | producerEpoch        | i16   |
 * | 53  | baseSequence         | i32   |
 * | 57  | recordCount          | i32   |
 * | 61  | records              |       |
 *
 * Each record: length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
 * key length varint (-1 = null) and bytes, value length varint and bytes, header count
 * varint, then per header key length varint + UTF-8 key, value length varint + bytes.
 *
 * baseOffset and partitionLeaderEpoch lie outside the CRC: a leader assigns offsets by
 * writing them in place, so a batch is checked once and never re-encoded.
 *
 * @module
 */
import { CLIENT_INFLATE_LIMIT, inflateBatch } from "./compression.ts";
import { crc32c } from "./crc32c.ts";
import { RillError } from "./errors.ts";
import { readVarint, varintSize, writeVarint } from "./varint.ts";

/** Size of baseOffset + batchLength, the part of a batch not counted in batchLength. */
export const LOG_OVERHEAD = 12;
/** Size of the fixed batch header, up to the first record. */
export const BATCH_HEADER_SIZE = 61;
/** The only magic value Rill stores. */
export const MAGIC_V2 = 2;

/** Field positions inside a batch. */
export const POS = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordCount: 57,
  records: 61,
} as const;

/** Attribute bits. */
export const ATTR = {
  compressionMask: 0x07,
  logAppendTime: 0x08,
  transactional: 0x10,
  control: 0x20,
} as const;

/** A record header: a UTF-8 name and a byte value (which may be null). */
export interface RecordHeader {
  /** the header name */
  key: string;
  /** the header value */
  value: Uint8Array | null;
}

/** A record to encode. */
export interface RecordInput {
  /** the key, or null/absent for none */
  key?: Uint8Array | null;
  /** the value, or null for a tombstone */
  value: Uint8Array | null;
  /** headers, in order */
  headers?: RecordHeader[];
  /** milliseconds since the epoch; defaults to the batch's base timestamp */
  timestamp?: number;
}

/** A record decoded from a batch; key, value and header values are views into the batch. */
export interface DecodedRecord {
  /** the record's absolute offset (baseOffset + offsetDelta) */
  offset: number;
  /** milliseconds since the epoch */
  timestamp: number;
  /** the key bytes, or null */
  key: Uint8Array | null;
  /** the value bytes, or null */
  value: Uint8Array | null;
  /** headers, in order */
  headers: RecordHeader[];
}

/** The fixed header of a batch. */
export interface BatchHeader {
  baseOffset: number;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** Options of {@linkcode encodeBatch}. */
export interface EncodeOptions {
  /** the base offset to write (a leader overwrites it); default 0 */
  baseOffset?: number;
  /** default -1 (no idempotent producer) */
  producerId?: number;
  /** default -1 */
  producerEpoch?: number;
  /** default -1 */
  baseSequence?: number;
  /** default -1 */
  partitionLeaderEpoch?: number;
  /** timestamp for records that carry none; default Date.now() */
  now?: number;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

function corrupt(message: string): RillError {
  return new RillError("CORRUPT_MESSAGE", message);
}

function readI64(view: DataView, pos: number): number {
  // Without a BigInt where the value is safe (every field of a real batch): high words of
  // -2^21 + 1 .. 2^21 - 1 give -(2^53 - 2^32) .. 2^53 - 1.
  const high = view.getInt32(pos);
  if (high > -0x200000 && high < 0x200000) return high * 4294967296 + view.getUint32(pos + 4);
  const v = view.getBigInt64(pos);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw corrupt(`Batch field at byte ${pos} is ${v}, beyond 2^53`);
  }
  return Number(v);
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Encodes records into one RecordBatch v2 with offset deltas 0..n-1.
 *
 * @param records the records, in order (may be empty)
 * @param options base offset, producer fields and the default timestamp
 * @returns the encoded batch
 * @example
 * ```ts
 * const batch = encodeBatch([{ key: null, value: new TextEncoder().encode("hi") }]);
 * decodeBatch(batch).records[0].offset; // 0
 * ```
 */
export function encodeBatch(records: RecordInput[], options: EncodeOptions = {}): Uint8Array {
  const now = options.now ?? Date.now();
  let baseTimestamp = Infinity;
  let maxTimestamp = -Infinity;
  for (const r of records) {
    const ts = r.timestamp ?? now;
    if (ts < baseTimestamp) baseTimestamp = ts;
    if (ts > maxTimestamp) maxTimestamp = ts;
  }
  if (records.length === 0) baseTimestamp = maxTimestamp = now;
  // First pass: sizes, and the UTF-8 bytes of header names.
  const bodySizes = new Array<number>(records.length);
  const headerKeys: Uint8Array[][] = new Array(records.length);
  let total = BATCH_HEADER_SIZE;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const ts = r.timestamp ?? now;
    let size = 1 + varintSize(ts - baseTimestamp) + varintSize(i);
    const k = r.key ?? null;
    size += k === null ? 1 : varintSize(k.length) + k.length;
    const v = r.value;
    size += v === null ? 1 : varintSize(v.length) + v.length;
    const hs = r.headers ?? [];
    size += varintSize(hs.length);
    const keys: Uint8Array[] = [];
    for (const h of hs) {
      const hk = textEncoder.encode(h.key);
      keys.push(hk);
      size += varintSize(hk.length) + hk.length;
      size += h.value === null ? 1 : varintSize(h.value.length) + h.value.length;
    }
    headerKeys[i] = keys;
    bodySizes[i] = size;
    total += varintSize(size) + size;
  }
  const buf = new Uint8Array(total);
  const view = viewOf(buf);
  view.setBigInt64(POS.baseOffset, BigInt(options.baseOffset ?? 0));
  view.setInt32(POS.batchLength, total - LOG_OVERHEAD);
  view.setInt32(POS.partitionLeaderEpoch, options.partitionLeaderEpoch ?? -1);
  buf[POS.magic] = MAGIC_V2;
  view.setInt16(POS.attributes, 0);
  view.setInt32(POS.lastOffsetDelta, Math.max(records.length - 1, 0));
  view.setBigInt64(POS.baseTimestamp, BigInt(baseTimestamp));
  view.setBigInt64(POS.maxTimestamp, BigInt(maxTimestamp));
  view.setBigInt64(POS.producerId, BigInt(options.producerId ?? -1));
  view.setInt16(POS.producerEpoch, options.producerEpoch ?? -1);
  view.setInt32(POS.baseSequence, options.baseSequence ?? -1);
  view.setInt32(POS.recordCount, records.length);
  let pos: number = POS.records;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    pos = writeVarint(buf, pos, bodySizes[i]);
    buf[pos++] = 0;
    pos = writeVarint(buf, pos, (r.timestamp ?? now) - baseTimestamp);
    pos = writeVarint(buf, pos, i);
    const k = r.key ?? null;
    if (k === null) pos = writeVarint(buf, pos, -1);
    else {
      pos = writeVarint(buf, pos, k.length);
      buf.set(k, pos);
      pos += k.length;
    }
    const v = r.value;
    if (v === null) pos = writeVarint(buf, pos, -1);
    else {
      pos = writeVarint(buf, pos, v.length);
      buf.set(v, pos);
      pos += v.length;
    }
    const hs = r.headers ?? [];
    pos = writeVarint(buf, pos, hs.length);
    for (let j = 0; j < hs.length; j++) {
      const hk = headerKeys[i][j];
      pos = writeVarint(buf, pos, hk.length);
      buf.set(hk, pos);
      pos += hk.length;
      const hv = hs[j].value;
      if (hv === null) pos = writeVarint(buf, pos, -1);
      else {
        pos = writeVarint(buf, pos, hv.length);
        buf.set(hv, pos);
        pos += hv.length;
      }
    }
  }
  view.setUint32(POS.crc, crc32c(buf.subarray(POS.attributes)));
  return buf;
}

/**
 * Reads the fixed header of the batch starting at `pos` of `bytes`, without checking it.
 *
 * @param bytes a buffer holding at least BATCH_HEADER_SIZE bytes from `pos`
 * @param pos where the batch starts
 * @returns the header fields
 */
export function readBatchHeader(bytes: Uint8Array, pos = 0): BatchHeader {
  if (bytes.length - pos < BATCH_HEADER_SIZE) {
    throw corrupt(`Batch header needs ${BATCH_HEADER_SIZE} bytes, ${bytes.length - pos} given`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + pos, BATCH_HEADER_SIZE);
  return {
    baseOffset: readI64(view, POS.baseOffset),
    batchLength: view.getInt32(POS.batchLength),
    partitionLeaderEpoch: view.getInt32(POS.partitionLeaderEpoch),
    magic: view.getInt8(POS.magic),
    crc: view.getUint32(POS.crc),
    attributes: view.getInt16(POS.attributes),
    lastOffsetDelta: view.getInt32(POS.lastOffsetDelta),
    baseTimestamp: readI64(view, POS.baseTimestamp),
    maxTimestamp: readI64(view, POS.maxTimestamp),
    producerId: readI64(view, POS.producerId),
    producerEpoch: view.getInt16(POS.producerEpoch),
    baseSequence: view.getInt32(POS.baseSequence),
    recordCount: view.getInt32(POS.recordCount),
  };
}

/**
 * Checks one whole batch: length, magic, CRC-32C, and that the records (decompressed first
 * if the batch is compressed) decode exactly to the end with offset deltas 0..count-1.
 *
 * @param batch exactly one batch
 * @param inflateLimit the most bytes a compressed batch's records may inflate to
 * @returns the header
 * @throws {RillError} CORRUPT_MESSAGE naming what is wrong; RECORD_LIST_TOO_LARGE if the
 *   records inflate past the limit; UNSUPPORTED_COMPRESSION_TYPE for codec bits 5-7
 */
export function validateBatch(batch: Uint8Array, inflateLimit = CLIENT_INFLATE_LIMIT): BatchHeader {
  return checkedBatch(batch, inflateLimit).header;
}

function checkedBatch(batch: Uint8Array, inflateLimit: number): DecodedBatch {
  if (batch.length < BATCH_HEADER_SIZE) {
    throw corrupt(
      `Batch is ${batch.length} bytes, shorter than the ${BATCH_HEADER_SIZE}-byte header`,
    );
  }
  const h = readBatchHeader(batch);
  if (h.batchLength + LOG_OVERHEAD !== batch.length) {
    throw corrupt(
      `Batch length field says ${
        h.batchLength + LOG_OVERHEAD
      } bytes but ${batch.length} were given`,
    );
  }
  if (h.magic !== MAGIC_V2) throw corrupt(`Batch magic is ${h.magic}, only 2 is supported`);
  const crc = crc32c(batch.subarray(POS.attributes));
  if (crc !== h.crc) {
    throw corrupt(
      `Batch CRC is 0x${h.crc.toString(16)} but its contents give 0x${crc.toString(16)}`,
    );
  }
  if (h.recordCount < 0) throw corrupt(`Batch record count is negative (${h.recordCount})`);
  if (h.lastOffsetDelta < 0) throw corrupt(`Batch lastOffsetDelta is negative`);
  const records = decodeAny(batch, h, inflateLimit);
  if (records.length > 0 && h.lastOffsetDelta !== records.length - 1) {
    throw corrupt(
      `Batch lastOffsetDelta is ${h.lastOffsetDelta} but it holds ${records.length} records`,
    );
  }
  for (let i = 0; i < records.length; i++) {
    if (records[i].offset !== h.baseOffset + i) {
      throw corrupt(
        `Record ${i} of the batch has offset delta ${records[i].offset - h.baseOffset}`,
      );
    }
  }
  return { header: h, records };
}

/** A decoded batch: its header and its records. */
export interface DecodedBatch {
  header: BatchHeader;
  records: DecodedRecord[];
}

/**
 * Decodes one batch into its records, decompressing them first if the batch is compressed
 * (then the records are views into the decompressed copy; otherwise into `batch`). Checks
 * the batch as {@linkcode validateBatch} does only when `verify` is set.
 *
 * @param batch exactly one batch
 * @param verify check length, magic, CRC and record framing first
 * @param inflateLimit the most bytes a compressed batch's records may inflate to
 * @returns header and records
 * @throws {RillError} CORRUPT_MESSAGE if the batch is malformed; RECORD_LIST_TOO_LARGE if
 *   its records inflate past the limit; UNSUPPORTED_COMPRESSION_TYPE for codec bits 5-7
 */
export function decodeBatch(
  batch: Uint8Array,
  verify = false,
  inflateLimit = CLIENT_INFLATE_LIMIT,
): DecodedBatch {
  if (verify) return checkedBatch(batch, inflateLimit);
  const header = readBatchHeader(batch);
  return { header, records: decodeAny(batch, header, inflateLimit) };
}

function decodeAny(batch: Uint8Array, h: BatchHeader, inflateLimit: number): DecodedRecord[] {
  if ((h.attributes & ATTR.compressionMask) === 0) return decodeRecords(batch, h);
  const plain = inflateBatch(batch.subarray(0, h.batchLength + LOG_OVERHEAD), inflateLimit);
  return decodeRecords(plain, readBatchHeader(plain));
}

function decodeRecords(batch: Uint8Array, h: BatchHeader): DecodedRecord[] {
  const end = Math.min(batch.length, h.batchLength + LOG_OVERHEAD);
  const records: DecodedRecord[] = new Array(h.recordCount);
  let pos: number = POS.records;
  try {
    for (let i = 0; i < h.recordCount; i++) {
      const len = readVarint(batch, pos, end);
      const recEnd = len.next + len.value;
      if (len.value < 0 || recEnd > end) throw corrupt(`Record ${i} runs past the batch end`);
      pos = len.next + 1; // attributes
      const tsd = readVarint(batch, pos, recEnd);
      const od = readVarint(batch, tsd.next, recEnd);
      pos = od.next;
      let key: Uint8Array | null = null;
      const kl = readVarint(batch, pos, recEnd);
      pos = kl.next;
      if (kl.value >= 0) {
        if (pos + kl.value > recEnd) throw corrupt(`Record ${i} key runs past the record`);
        key = batch.subarray(pos, pos + kl.value);
        pos += kl.value;
      }
      let value: Uint8Array | null = null;
      const vl = readVarint(batch, pos, recEnd);
      pos = vl.next;
      if (vl.value >= 0) {
        if (pos + vl.value > recEnd) throw corrupt(`Record ${i} value runs past the record`);
        value = batch.subarray(pos, pos + vl.value);
        pos += vl.value;
      }
      const hc = readVarint(batch, pos, recEnd);
      pos = hc.next;
      if (hc.value < 0) throw corrupt(`Record ${i} has a negative header count`);
      const headers: RecordHeader[] = [];
      for (let j = 0; j < hc.value; j++) {
        const hkl = readVarint(batch, pos, recEnd);
        pos = hkl.next;
        if (hkl.value < 0 || pos + hkl.value > recEnd) {
          throw corrupt(`Record ${i} header ${j} name is malformed`);
        }
        const hk = textDecoder.decode(batch.subarray(pos, pos + hkl.value));
        pos += hkl.value;
        const hvl = readVarint(batch, pos, recEnd);
        pos = hvl.next;
        let hv: Uint8Array | null = null;
        if (hvl.value >= 0) {
          if (pos + hvl.value > recEnd) {
            throw corrupt(`Record ${i} header ${j} value runs past the record`);
          }
          hv = batch.subarray(pos, pos + hvl.value);
          pos += hvl.value;
        }
        headers.push({ key: hk, value: hv });
      }
      if (pos !== recEnd) throw corrupt(`Record ${i} has ${recEnd - pos} stray bytes`);
      records[i] = {
        offset: h.baseOffset + od.value,
        timestamp: (h.attributes & ATTR.logAppendTime) !== 0
          ? h.maxTimestamp
          : h.baseTimestamp + tsd.value,
        key,
        value,
        headers,
      };
    }
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) {
      throw corrupt(`Batch at offset ${h.baseOffset} has a malformed record: ${e.message}`);
    }
    throw e;
  }
  if (pos !== end) throw corrupt(`Batch has ${end - pos} bytes after its last record`);
  return records;
}

/**
 * Writes the base offset of a batch in place (outside the CRC).
 *
 * @param batch the batch
 * @param baseOffset the offset of its first record
 */
export function setBaseOffset(batch: Uint8Array, baseOffset: number): void {
  viewOf(batch).setBigInt64(POS.baseOffset, BigInt(baseOffset));
}

/**
 * Writes the partition leader epoch of a batch in place (outside the CRC).
 *
 * @param batch the batch
 * @param epoch the leader epoch that appended it
 */
export function setPartitionLeaderEpoch(batch: Uint8Array, epoch: number): void {
  viewOf(batch).setInt32(POS.partitionLeaderEpoch, epoch);
}

/**
 * Splits a buffer of concatenated batches into whole batches (views), stopping before an
 * incomplete tail. Does not check CRCs.
 *
 * @param bytes concatenated batches, as a fetch or a log segment holds them
 * @returns the complete batches in order
 */
export function splitBatches(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  const view = viewOf(bytes);
  while (bytes.length - pos >= LOG_OVERHEAD) {
    const size = view.getInt32(pos + POS.batchLength) + LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE || pos + size > bytes.length) break;
    out.push(bytes.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

/** The offset after the last record of a batch, from its header. */
export function nextOffsetOf(h: BatchHeader): number {
  return h.baseOffset + h.lastOffsetDelta + 1;
}
