/**
 * Walking the RecordBatch v2 batches written back to back in a segment's `.log`: each
 * batch's length, magic, offset continuity and (from a given offset) CRC-32C are checked,
 * and the walk stops at the first batch that fails, which is where recovery cuts the file.
 * Index rebuilds, recovery, offset lookups and timestamp searches all walk this way.
 *
 * @module
 */
import { crc32c } from "../protocol/crc32c.ts";
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, POS } from "../protocol/record_batch.ts";

/** The header fields of one batch found in a segment. */
export interface BatchPosition {
  /** where the batch starts in the `.log` */
  position: number;
  /** its size in bytes, header included */
  size: number;
  /** offset of its first record */
  baseOffset: number;
  /** offset of its last record */
  lastOffset: number;
  /** its maxTimestamp field */
  maxTimestamp: number;
  /** its attributes field */
  attributes: number;
}

/** A batch's header fields that the log's state (leader epochs, producers) is rebuilt from. */
export interface BatchHeaderFields {
  /** offset of its first record */
  baseOffset: number;
  /** offset of its last record */
  lastOffset: number;
  /** its maxTimestamp field */
  maxTimestamp: number;
  /** the leader epoch it was appended in (-1 if none) */
  partitionLeaderEpoch: number;
  /** its producer id (-1 if none) */
  producerId: number;
  /** its producer epoch (-1 if none) */
  producerEpoch: number;
  /** the sequence number of its first record (-1 if none) */
  baseSequence: number;
}

/** What a walk over a segment's batches found. */
export interface WalkResult {
  /** the position after the last batch accepted */
  end: number;
  /** why the walk stopped early on a bad batch; absent if it reached the end cleanly */
  error?: string;
  /** bytes whose CRC was checked */
  verifiedBytes: number;
}

const EMPTY = new Uint8Array(0);
/** Bytes read at a time when only batch headers are walked. */
const HEADER_WALK_CHUNK = 8192;
/** Bytes read at a time when CRCs are checked (whole batches are read). */
const VERIFY_WALK_CHUNK = 1 << 20;

/**
 * Reads a big-endian int64 as a number (offsets and timestamps fit in 53 bits).
 *
 * @param view the bytes
 * @param pos where the int64 starts
 * @returns its value
 */
export function readI64(view: DataView, pos: number): number {
  return view.getInt32(pos) * 4294967296 + view.getUint32(pos + 4);
}

/**
 * Walks the batches in [from, to) of a segment's `.log`, checking length, magic, offset
 * continuity and, for batches whose base offset is ≥ verifyFromOffset, the CRC-32C.
 *
 * @param readAt reads bytes of the `.log` (fewer only where the file ends)
 * @param from where the walk starts (a batch boundary)
 * @param to where it ends (the segment's size)
 * @param verifyFromOffset batches whose base offset is at or past it get their CRC checked
 * @param expectedBaseOffset the first batch may not start below it (undefined: no check)
 * @param visit called with each batch, the view holding it and its position in the view;
 *   returns false to stop before the batch
 * @returns where the walk stopped, and why if early
 * @example
 * ```ts
 * const result = walkBatches((p, n) => segment.readAt(p, n), 0, segment.size, 0, 0, () => true);
 * if (result.error) console.log(`cut at ${result.end}: ${result.error}`);
 * ```
 */
export function walkBatches(
  readAt: (position: number, length: number) => Uint8Array,
  from: number,
  to: number,
  verifyFromOffset: number,
  expectedBaseOffset: number | undefined,
  visit: (batch: BatchPosition, view: DataView, at: number) => boolean,
): WalkResult {
  let chunk: Uint8Array = EMPTY;
  let chunkStart = from;
  let view = new DataView(chunk.buffer);
  let pos = from;
  let expected = expectedBaseOffset;
  let verifiedBytes = 0;
  const chunkSize = verifyFromOffset === Infinity ? HEADER_WALK_CHUNK : VERIFY_WALK_CHUNK;
  const ensure = (at: number, len: number) => {
    if (at >= chunkStart && at + len <= chunkStart + chunk.length) return;
    chunk = readAt(at, Math.min(Math.max(len, chunkSize), to - at));
    chunkStart = at;
    view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  };
  while (pos < to) {
    const remain = to - pos;
    if (remain < BATCH_HEADER_SIZE) {
      return { end: pos, verifiedBytes, error: `a torn batch header at position ${pos}` };
    }
    ensure(pos, BATCH_HEADER_SIZE);
    let off = pos - chunkStart;
    const size = view.getInt32(off + POS.batchLength) + LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE) {
      return { end: pos, verifiedBytes, error: `batch at position ${pos} has length ${size}` };
    }
    if (size > remain) {
      return {
        end: pos,
        verifiedBytes,
        error: `a torn batch at position ${pos}: it needs ${size} bytes, ${remain} remain`,
      };
    }
    if (chunk[off + POS.magic] !== MAGIC_V2) {
      return {
        end: pos,
        verifiedBytes,
        error: `batch at position ${pos} has magic ${chunk[off + POS.magic]}`,
      };
    }
    const baseOffset = readI64(view, off + POS.baseOffset);
    const lastOffsetDelta = view.getInt32(off + POS.lastOffsetDelta);
    // A compacted segment has gaps between batches (see log_cleaner.ts): offsets must only
    // increase.
    if (lastOffsetDelta < 0 || (expected !== undefined && baseOffset < expected)) {
      return {
        end: pos,
        verifiedBytes,
        error: `batch at position ${pos} has offsets ${baseOffset}..${
          baseOffset + lastOffsetDelta
        }, expected to start at or after ${expected}`,
      };
    }
    if (baseOffset >= verifyFromOffset) {
      ensure(pos, size);
      off = pos - chunkStart;
      const stored = view.getUint32(off + POS.crc);
      const actual = crc32c(chunk.subarray(off + POS.attributes, off + size));
      if (stored !== actual) {
        return {
          end: pos,
          verifiedBytes,
          error: `batch at position ${pos} (offset ${baseOffset}) fails its CRC`,
        };
      }
      verifiedBytes += size;
    }
    const batch: BatchPosition = {
      position: pos,
      size,
      baseOffset,
      lastOffset: baseOffset + lastOffsetDelta,
      maxTimestamp: readI64(view, off + POS.maxTimestamp),
      attributes: view.getInt16(off + POS.attributes),
    };
    if (!visit(batch, view, off)) return { end: pos, verifiedBytes };
    expected = batch.lastOffset + 1;
    pos += size;
  }
  return { end: pos, verifiedBytes };
}
