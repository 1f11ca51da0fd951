/**
 * What a leader replica keeps of its log's tail for the consumers that follow it
 * (`Replica.read`): the batches it appended last, in memory, while fetches wait on the
 * partition; and the last small read, shared by the reads after it at the same position.
 *
 * Many consumers long-polling one partition are woken by each append and each read the tail:
 * 900 consumers on 8 partitions read every append ~112 times, at offsets a little apart (each
 * comes back when it comes back). Read from the segment file, those reads were ~20% of the
 * broker's busy time in a `--cpu-prof` profile of the 5,000-client crowd of
 * `deno task bench clients` (a seek and a read system call each, and the index walk). From
 * here a read is a copy of a few batches, or no copy at all when the read before it asked the
 * same.
 *
 * The batches kept are whole, as appended (offsets assigned) and written to the log, at most
 * {@linkcode TAIL_BYTES} of them (fewer once the tails of all partitions hold
 * {@linkcode TAILS_TOTAL_BYTES}). A read is answered from them with the rules of a segment
 * read: whole batches from the one holding the offset, the first whole regardless of
 * `maxBytes`, the others while they fit, none whose last offset is at or past the bound (the
 * high watermark). Committed bytes do not change; a truncation forgets everything.
 *
 * The batches are copied one after the other into chunks of {@linkcode TAIL_CHUNK_BYTES} that
 * are never written again once written, so a read of batches that lie in one chunk is that
 * chunk's bytes, not a copy of them (a consumer behind by a second in the crowd read ~90 KiB
 * per answer: a copy into a read buffer each, and a new zero-filled buffer for the larger
 * ones). Only a read across two chunks is copied.
 *
 * @module
 */
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, POS } from "../protocol/record_batch.ts";
import type { ReadBuffer } from "../storage/segment.ts";

/**
 * The most bytes of appended batches one replica keeps. 1 MiB rather than 256 KiB: in the
 * 5,000-client crowd of `deno task bench clients` (~230 single-record batches of ~175 B a second
 * per partition), push subscriptions held back ~2-3 s by a loaded machine fell behind the
 * oldest batch of a 256 KiB tail (~1.3% of reads), and each such read was a 64 KiB read of the
 * segment file: 12% of the broker's busy time in a `--cpu-prof` profile of the steady window.
 */
export const TAIL_BYTES = 1024 * 1024;
/** Past this many bytes kept by all replicas of the process, each keeps at most a quarter of {@linkcode TAIL_BYTES}. */
export const TAILS_TOTAL_BYTES = 64 * 1024 * 1024;
/** The size of the chunks batches are kept in (a larger batch is not kept). */
export const TAIL_CHUNK_BYTES = 64 * 1024;
/**
 * A partition is followed while a read came within this many appends (TailReads.followed).
 * At 16, a loaded broker's event loop held up for ~100 ms took in more appends to a partition
 * than that between two reads of it (the 5,000-client crowd: ~270 appends/s per partition,
 * reads sliced into 1 ms turns), emptied the tail under its ~112 consumers, and they read the
 * segment files (~8,000 reads a run); at 256, ~400. A partition no one reads keeps at most
 * {@linkcode TAIL_BYTES} for 256 appends.
 */
export const FOLLOWED_APPENDS = 256;
/** The most bytes of a read kept for the reads after it at the same position. */
export const SHARED_READ_BYTES = 16 * 1024;

const EMPTY = new Uint8Array(0);
/** Bytes kept by the tails of all replicas of the process. */
let keptTotal = 0;

/** One batch kept. */
interface Kept {
  baseOffset: number;
  lastOffset: number;
  /** the batch, in its chunk */
  bytes: Uint8Array;
  /** the chunk it is in, and where */
  chunk: Uint8Array;
  at: number;
}

/** A read of {@linkcode TailReads}: whole batches and the offset after them. */
export interface TailRead {
  /** whole batches (the first holds the offset asked for); never written by anyone */
  bytes: Uint8Array;
  /** the offset after the last batch returned (the offset asked for if none) */
  nextOffset: number;
}

/** The tail of one replica's log (see the module comment). */
export class TailReads {
  #kept: Kept[] = [];
  /** index of the oldest batch kept in #kept */
  #head = 0;
  #bytes = 0;
  /** the offset after the last batch kept */
  #next = -1;
  /** the chunk batches are copied into, and how much of it is written */
  #chunk: Uint8Array | null = null;
  #used = 0;
  #last: { offset: number; maxBytes: number; bound: number; read: TailRead } | null = null;
  /** appends since the last read */
  #appendsSinceRead = FOLLOWED_APPENDS;

  /** Bytes of batches kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Whether a read came within the last {@linkcode FOLLOWED_APPENDS} appends: consumers follow
   * the partition even when none waits at the moment of an append (each woken consumer comes
   * back after its answer went out; a loaded broker appends meanwhile), so what is appended
   * is kept for them.
   */
  get followed(): boolean {
    return this.#appendsSinceRead < FOLLOWED_APPENDS;
  }

  /** Notes a read of the partition that did not read the tail (at the log end: nothing yet). */
  noteRead(): void {
    this.#appendsSinceRead = 0;
  }

  /**
   * Keeps appended batches (copied), after those kept if they follow on; else instead of them.
   *
   * @param batches whole batches, offsets assigned, as written to the log
   * @param baseOffset the offset of their first record
   */
  append(batches: Uint8Array, baseOffset: number): void {
    if (batches.length > TAIL_CHUNK_BYTES) return this.clear();
    if (baseOffset !== this.#next) this.clear();
    if (this.#chunk === null || this.#used + batches.length > this.#chunk.length) {
      this.#chunk = new Uint8Array(TAIL_CHUNK_BYTES);
      this.#used = 0;
    }
    const chunk = this.#chunk;
    const start = this.#used;
    chunk.set(batches, start);
    const view = new DataView(chunk.buffer, start, batches.length);
    let at = 0;
    let base = baseOffset;
    while (batches.length - at >= BATCH_HEADER_SIZE) {
      const size = view.getInt32(at + POS.batchLength) + LOG_OVERHEAD;
      if (size < BATCH_HEADER_SIZE || at + size > batches.length) return this.clear();
      const last = base + view.getInt32(at + POS.lastOffsetDelta);
      this.#kept.push({
        baseOffset: base,
        lastOffset: last,
        bytes: chunk.subarray(start + at, start + at + size),
        chunk,
        at: start + at,
      });
      this.#bytes += size;
      keptTotal += size;
      at += size;
      base = last + 1;
    }
    this.#used = start + at;
    this.#next = base;
    this.#appendsSinceRead++;
    const limit = keptTotal > TAILS_TOTAL_BYTES ? TAIL_BYTES >> 2 : TAIL_BYTES;
    while (this.#bytes > limit) {
      const n = this.#kept[this.#head++].bytes.length;
      this.#bytes -= n;
      keptTotal -= n;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#kept.length) {
      this.#kept = this.#kept.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Forgets everything (the log was truncated, or no one follows it). */
  clear(): void {
    keptTotal -= this.#bytes;
    this.#kept = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#next = -1;
    this.#last = null;
    this.#chunk = null;
    this.#used = 0;
  }

  /**
   * Reads whole batches from the one holding `offset`, if it is kept.
   *
   * @param offset the first offset wanted
   * @param maxBytes the most bytes (the first batch whole regardless)
   * @param bound exclusive bound on the offsets returned (the high watermark)
   * @param alloc where to copy the bytes; default a new buffer
   * @returns the batches (possibly shared with other reads: never write them), or null when
   *   the offset is not kept (read the log)
   */
  read(
    offset: number,
    maxBytes: number,
    bound: number,
    alloc: ReadBuffer = (n) => new Uint8Array(n),
  ): TailRead | null {
    this.#appendsSinceRead = 0;
    const last = this.#last;
    if (
      last !== null && last.offset === offset && last.bound === bound &&
      (last.maxBytes === maxBytes ||
        (last.read.nextOffset === bound && maxBytes >= last.read.bytes.length))
    ) {
      return last.read;
    }
    const kept = this.#kept;
    if (this.#head >= kept.length || offset < kept[this.#head].baseOffset) return null;
    // The first batch whose last offset is at or after `offset`.
    let lo = this.#head;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (kept[mid].lastOffset < offset) lo = mid + 1;
      else hi = mid;
    }
    if (lo === kept.length) return null;
    let end = lo;
    let total = 0;
    while (
      end < kept.length && kept[end].lastOffset < bound &&
      (end === lo || total + kept[end].bytes.length <= maxBytes)
    ) {
      total += kept[end].bytes.length;
      end++;
    }
    if (end === lo) return { bytes: EMPTY, nextOffset: offset };
    const first = kept[lo];
    const nextOffset = kept[end - 1].lastOffset + 1;
    if (kept[end - 1].chunk === first.chunk) {
      // In one chunk, one after the other: its bytes, shared (never written again).
      return { bytes: first.chunk.subarray(first.at, first.at + total), nextOffset };
    }
    const out = alloc(total).subarray(0, total);
    for (let k = lo, at = 0; k < end; at += kept[k].bytes.length, k++) out.set(kept[k].bytes, at);
    const read = { bytes: out, nextOffset };
    this.keep(offset, maxBytes, bound, read);
    return read;
  }

  /**
   * Keeps a read (a copy of its bytes, if small) for the reads after it at the same
   * position and bound.
   *
   * @param offset the offset asked for
   * @param maxBytes the most bytes asked for
   * @param bound the bound it was read with (the high watermark)
   * @param read what was read
   */
  keep(offset: number, maxBytes: number, bound: number, read: TailRead): void {
    const n = read.bytes.length;
    if (n === 0 || n > SHARED_READ_BYTES) return;
    this.#last = {
      offset,
      maxBytes,
      bound,
      read: { bytes: read.bytes.slice(), nextOffset: read.nextOffset },
    };
  }
}
