/**
 * How a segment read finds the bytes it returns: whole batches from a start position, up to
 * a byte budget (the first batch whole regardless, as Kafka) and below an offset bound,
 * either by hopping from batch header to batch header (large batches: exactly the bytes
 * returned are read) or by scanning a bulk read.
 *
 * @module
 */
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, POS } from "../protocol/record_batch.ts";
import { readI64 } from "./batch_walk.ts";

/** Batches at least this big are found by their headers before a fetch reads them. */
const HOP_MIN_BATCH = 64 * 1024;
/** The batch header {@linkcode LogSegment} reads hop through (reads are synchronous). */
const hopHeader = new Uint8Array(BATCH_HEADER_SIZE);

/**
 * Gives the buffer a read fills: at least `length` bytes (the read uses the first
 * `length`). A caller that reuses buffers must be done with a read's bytes before it gives
 * the same buffer to another read.
 */
export type ReadBuffer = (length: number) => Uint8Array;

/**
 * Reads `buf.length` bytes of `file` at `position` into `buf`, or fewer where the file ends.
 *
 * @param file an open file
 * @param position where to read
 * @param buf where the bytes go
 * @returns how many bytes were read
 * @example
 * ```ts
 * const header = new Uint8Array(BATCH_HEADER_SIZE);
 * if (readFullyAtSync(file, 0, header) < header.length) throw new Error("torn");
 * ```
 */
export function readFullyAtSync(file: Deno.FsFile, position: number, buf: Uint8Array): number {
  file.seekSync(position, Deno.SeekMode.Start);
  return readFullySync(file, buf);
}

/**
 * Reads `buf.length` bytes of `file` from its current position into `buf`, or fewer where
 * the file ends.
 *
 * @param file an open file
 * @param buf where the bytes go
 * @returns how many bytes were read
 * @example
 * ```ts
 * const n = readFullySync(file, new Uint8Array(61));
 * ```
 */
export function readFullySync(file: Deno.FsFile, buf: Uint8Array): number {
  let n = 0;
  while (n < buf.length) {
    const got = file.readSync(buf.subarray(n));
    if (got === null || got === 0) break;
    n += got;
  }
  return n;
}

/**
 * Where a segment read should stop, found by hopping from batch header to batch header
 * (one small read each) when batches are large, so that exactly the bytes returned are
 * read: a bulk read of `maxBytes` would read (and allocate) up to one batch more than it
 * returns. Gives up (null: read in bulk) at the first batch under {@linkcode HOP_MIN_BATCH},
 * where hops would cost more than the bytes they save, and at once when fewer bytes than that
 * are available. Same rules as the bulk path: the
 * first batch whole if it is in the file, the others while they fit in `maxBytes`, none
 * whose last offset is ≥ `maxOffset`, and a malformed or torn header ends the read.
 *
 * @param readInto reads the `.log` at a position into a buffer, returning the bytes read
 * @param start where the first batch starts
 * @param maxBytes the most bytes wanted (the first batch is returned whole regardless)
 * @param maxOffset exclusive bound on the offsets returned
 * @param available bytes of the `.log` from `start`
 * @returns the bytes to read from `start` and the offset after them, or null to read in bulk
 * @example
 * ```ts
 * const plan = planHops((p, b) => readFullyAtSync(file, p, b), 0, 1 << 20, Infinity, size);
 * ```
 */
export function planHops(
  readInto: (position: number, buf: Uint8Array) => number,
  start: number,
  maxBytes: number,
  maxOffset: number,
  available: number,
): { end: number; nextOffset: number } | null {
  // No batch in fewer bytes is big enough to hop to (the tail of a log a consumer follows):
  // the bulk read returns the same, without reading the first header apart.
  if (available < HOP_MIN_BATCH) return null;
  const limit = Math.min(Math.max(maxBytes, BATCH_HEADER_SIZE), available);
  const head = hopHeader;
  const view = new DataView(head.buffer);
  let end = 0;
  let nextOffset = -1;
  for (;;) {
    const bound = end === 0 ? available : limit;
    if (bound - end < BATCH_HEADER_SIZE) break;
    if (readInto(start + end, head) < BATCH_HEADER_SIZE) break;
    const size = view.getInt32(POS.batchLength) + LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE || end + size > bound) break;
    if (size < HOP_MIN_BATCH) return null;
    const last = readI64(view, POS.baseOffset) + view.getInt32(POS.lastOffsetDelta);
    if (last >= maxOffset) break;
    end += size;
    nextOffset = last + 1;
  }
  return { end, nextOffset };
}

/**
 * The whole batches at the start of `buf` (a bulk read from a batch boundary): the bytes
 * they take and the offset after them. A torn or malformed batch, or one whose last offset
 * is ≥ `maxOffset`, ends them.
 *
 * @param buf the bytes read
 * @param view a view of `buf`
 * @param fromOffset the offset wanted first (the answer's nextOffset if no batch fits)
 * @param maxOffset exclusive bound on the offsets returned
 * @returns the bytes of whole batches and the offset after them
 * @example
 * ```ts
 * const { end, nextOffset } = wholeBatches(buf, new DataView(buf.buffer), 0, Infinity);
 * ```
 */
export function wholeBatches(
  buf: Uint8Array,
  view: DataView,
  fromOffset: number,
  maxOffset: number,
): { end: number; nextOffset: number } {
  let end = 0;
  let nextOffset = fromOffset;
  while (buf.length - end >= BATCH_HEADER_SIZE) {
    const size = view.getInt32(end + POS.batchLength) + LOG_OVERHEAD;
    if (size < BATCH_HEADER_SIZE || end + size > buf.length) break;
    const last = readI64(view, end + POS.baseOffset) + view.getInt32(end + POS.lastOffsetDelta);
    if (last >= maxOffset) break;
    end += size;
    nextOffset = last + 1;
  }
  return { end, nextOffset };
}
