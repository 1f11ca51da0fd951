/**
 * Reads of a partition log: whole batches from the one holding an offset (bounded by the
 * high watermark, never a half-written batch), and the offset for a timestamp.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { LogState } from "./log_state.ts";
import type { ReadBuffer } from "./segment.ts";

/** The outcome of a read. */
export interface ReadResult {
  /** whole batches, the first holding the offset asked for (it may start before it) */
  bytes: Uint8Array;
  /** the offset after the last record returned (the offset asked for if none) */
  nextOffset: number;
}

/** Options of {@linkcode PartitionLog.read}. */
export interface ReadOptions {
  /** exclusive bound on the offsets returned (the high watermark); default the log end */
  maxOffset?: number;
  /**
   * where the bytes are read (a reused buffer, see segment.ts's ReadBuffer); default a new
   * buffer for each read
   */
  alloc?: ReadBuffer;
}

const EMPTY = new Uint8Array(0);

/**
 * {@linkcode read}, synchronously (file reads are synchronous positioned reads).
 *
 * @param offset the first offset wanted
 * @param maxBytes the most bytes wanted
 * @param options `maxOffset`: exclusive bound on the offsets returned; `alloc`: where the
 *   bytes are read
 * @returns the bytes and the offset after the last record returned
 * @throws {RillError} OFFSET_OUT_OF_RANGE as {@linkcode read}
 */
export function readSync(
  state: LogState,
  offset: number,
  maxBytes: number,
  options: ReadOptions = {},
): ReadResult {
  if (state.closed) {
    throw new RillError("KAFKA_STORAGE_ERROR", `The log of "${state.name}" is closed`);
  }
  const start = state.logStartOffset;
  const end = state.logEndOffset;
  if (!Number.isSafeInteger(offset) || offset < start || offset > end) {
    throw new RillError(
      "OFFSET_OUT_OF_RANGE",
      offset < start
        ? `Cannot read offset ${offset} from "${state.name}": log start offset is ${start}`
        : `Cannot read offset ${offset} from "${state.name}": log end offset is ${end}`,
      { logStartOffset: start, logEndOffset: end },
    );
  }
  const limit = Math.min(options.maxOffset ?? end, end);
  if (offset >= limit) return { bytes: EMPTY, nextOffset: offset };
  for (let i = Math.max(0, state.segments.floorIndex(offset)); i < state.segments.length; i++) {
    const segment = state.segments.at(i)!;
    const r = segment.read(Math.max(offset, segment.baseOffset), maxBytes, limit, options.alloc);
    if (r) return r.bytes.length > 0 ? r : { bytes: EMPTY, nextOffset: offset };
  }
  return { bytes: EMPTY, nextOffset: offset };
}

/**
 * The first offset (≥ logStartOffset) whose record timestamp is ≥ `timestamp`.
 *
 * @param timestamp ms since the epoch
 * @returns the offset, or null if no record is that new
 */
export function offsetForTimestamp(state: LogState, timestamp: number): Promise<number | null> {
  try {
    for (const segment of state.segments.all()) {
      if (segment.nextOffset <= state.logStartOffset) continue;
      const found = segment.findOffsetByTimestamp(timestamp, state.logStartOffset);
      if (found !== null) return Promise.resolve(found);
    }
    return Promise.resolve(null);
  } catch (e) {
    return Promise.reject(e);
  }
}
