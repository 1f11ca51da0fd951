/**
 * The time index of a segment: a sparse map from timestamp to offset.
 *
 * Format of `<baseOffset>.timeindex` (as Kafka's TimeIndex): a sequence of 12-byte entries,
 *
 * | bytes  | field          | type           |
 * | ------ | -------------- | -------------- |
 * | 0..8   | timestamp      | i64 big-endian | ms since the epoch
 * | 8..12  | relativeOffset | u32 big-endian | offset - segment baseOffset
 *
 * An entry (T, O) promises: every record of the segment before offset O has a timestamp
 * ≤ T. Entries are added beside offset index entries, only when T grows, so both fields
 * increase strictly (T) and weakly (O). When a segment stops being active (roll, close) a
 * last entry (the segment's max timestamp, its next offset) is added, so the last entry
 * gives the segment's largest timestamp. To find the first record with timestamp ≥ t, a
 * reader takes the last entry with T < t and scans from its offset. The file is not
 * checksummed: it is checked on load and rebuilt from the log when damaged.
 *
 * @module
 */
import { IndexFile } from "./index_file.ts";

/** Bytes per entry. */
export const TIME_INDEX_ENTRY_SIZE = 12;

/** One time index entry. */
export interface TimestampOffset {
  /** every record before `offset` has a timestamp ≤ this */
  timestamp: number;
  /** an absolute offset */
  offset: number;
}

/**
 * A segment's time index in memory, with the part written to its file tracked.
 *
 * @example
 * ```ts
 * const index = new TimeIndex(0);
 * index.maybeAppend(1000, 10);
 * index.lookupBefore(1500); // { timestamp: 1000, offset: 10 }
 * ```
 */
export class TimeIndex {
  /** The segment's base offset. */
  readonly baseOffset: number;
  #ts: Float64Array;
  #rel: Uint32Array;
  #length = 0;
  /** what the index file holds */
  #file = new IndexFile(TIME_INDEX_ENTRY_SIZE);

  /**
   * @param baseOffset the segment's base offset
   * @param capacity initial capacity in entries
   */
  constructor(baseOffset: number, capacity = 16) {
    this.baseOffset = baseOffset;
    this.#ts = new Float64Array(capacity);
    this.#rel = new Uint32Array(capacity);
  }

  /**
   * Parses and checks the bytes of a time index file.
   *
   * @param baseOffset the segment's base offset
   * @param bytes the file's contents
   * @returns the index, or a sentence saying why the file is damaged
   */
  static parse(baseOffset: number, bytes: Uint8Array): TimeIndex | string {
    if (bytes.length % TIME_INDEX_ENTRY_SIZE !== 0) {
      return `time index size ${bytes.length} is not a multiple of ${TIME_INDEX_ENTRY_SIZE}`;
    }
    const n = bytes.length / TIME_INDEX_ENTRY_SIZE;
    const index = new TimeIndex(baseOffset, Math.max(16, n));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) {
      const ts = Number(view.getBigInt64(i * 12));
      const rel = view.getUint32(i * 12 + 8);
      if (i > 0 && (ts <= index.#ts[i - 1] || rel < index.#rel[i - 1])) {
        return `time index entry ${i} (${ts} -> ${rel}) is out of order`;
      }
      index.#ts[i] = ts;
      index.#rel[i] = rel;
    }
    index.#length = n;
    index.#file.loaded(n);
    return index;
  }

  /** The number of entries. */
  get length(): number {
    return this.#length;
  }

  /** The last entry, or null when the index is empty. */
  lastEntry(): TimestampOffset | null {
    const n = this.#length;
    return n === 0
      ? null
      : { timestamp: this.#ts[n - 1], offset: this.baseOffset + this.#rel[n - 1] };
  }

  /**
   * Adds (timestamp, offset) if `timestamp` is above the last entry's and `offset` is not
   * below it; otherwise does nothing.
   *
   * @param timestamp every record before `offset` has a timestamp ≤ this
   * @param offset an absolute offset
   */
  maybeAppend(timestamp: number, offset: number): void {
    const n = this.#length;
    const rel = offset - this.baseOffset;
    if (rel < 0 || rel > 0xffffffff) return;
    if (n > 0 && (timestamp <= this.#ts[n - 1] || rel < this.#rel[n - 1])) return;
    if (n === this.#ts.length) {
      const ts2 = new Float64Array(n * 2);
      ts2.set(this.#ts);
      this.#ts = ts2;
      const rel2 = new Uint32Array(n * 2);
      rel2.set(this.#rel);
      this.#rel = rel2;
    }
    this.#ts[n] = timestamp;
    this.#rel[n] = rel;
    this.#length = n + 1;
  }

  /**
   * Finds the last entry whose timestamp is < `timestamp` (binary search): every record
   * before its offset is older than `timestamp`.
   *
   * @param timestamp the target timestamp
   * @returns that entry, or null if there is none (scan from the segment's start)
   */
  lookupBefore(timestamp: number): TimestampOffset | null {
    let lo = 0;
    let hi = this.#length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#ts[mid] < timestamp) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0
      ? null
      : { timestamp: this.#ts[found], offset: this.baseOffset + this.#rel[found] };
  }

  /**
   * Keeps only the entries whose offset is ≤ `offset` (their promise stays true when the
   * log is cut at `offset`).
   *
   * @param offset the new end of the segment
   */
  truncateToOffset(offset: number): void {
    const rel = offset - this.baseOffset;
    let n = this.#length;
    while (n > 0 && this.#rel[n - 1] > rel) n--;
    if (n >= this.#length) return;
    this.#length = n;
    this.#file.truncated(n);
  }

  /** The whole index in its file format. */
  encode(): Uint8Array {
    return this.#encodeRange(0, this.#length);
  }

  #encodeRange(from: number, to: number): Uint8Array {
    const out = new Uint8Array((to - from) * TIME_INDEX_ENTRY_SIZE);
    const view = new DataView(out.buffer);
    for (let i = from; i < to; i++) {
      view.setBigInt64((i - from) * 12, BigInt(this.#ts[i]));
      view.setUint32((i - from) * 12 + 8, this.#rel[i]);
    }
    return out;
  }

  /**
   * Brings the file up to date with memory (synchronously; the writes are small).
   *
   * @param path the `.timeindex` file
   * @param rewrite write the whole file afresh
   */
  persist(path: string, rewrite = false): void {
    this.#file.persist(path, this.#length, (from, to) => this.#encodeRange(from, to), rewrite);
  }
}
