/**
 * The offset index of a segment: a sparse map from offset to file position.
 *
 * Format of `<baseOffset>.index` (as Kafka's OffsetIndex): a sequence of 8-byte entries,
 *
 * | bytes | field          | type          |
 * | ----- | -------------- | ------------- |
 * | 0..4  | relativeOffset | u32 big-endian | offset - segment baseOffset
 * | 4..8  | position       | u32 big-endian | byte position of the batch in the `.log`
 *
 * Each entry names the base offset of a batch and where that batch starts. Entries are
 * added one per ~`indexIntervalBytes` appended, in increasing order of both fields. A
 * lookup returns the greatest entry whose offset is ≤ the target; an empty index returns
 * (baseOffset, 0). The file is not checksummed: it is checked on load (size a multiple of
 * 8, both fields strictly increasing, positions inside the log) and rebuilt from the log
 * when damaged or after a crash.
 *
 * The entries are held in memory (8 bytes per entry: ~2 MiB for a full 1 GiB segment) and
 * written to the file on flush, roll and close; entries not yet written are rebuilt by
 * recovery, which scans everything past the recovery point.
 *
 * @module
 */
import { IndexFile } from "./index_file.ts";

/** Bytes per entry. */
export const OFFSET_INDEX_ENTRY_SIZE = 8;

/** One index entry: an absolute offset and the position of the batch starting there. */
export interface OffsetPosition {
  /** absolute offset of the batch's first record */
  offset: number;
  /** byte position of the batch in the segment's `.log` */
  position: number;
}

/**
 * A segment's offset index in memory, with the part written to its file tracked.
 *
 * @example
 * ```ts
 * const index = new OffsetIndex(100);
 * index.append(150, 4096);
 * index.lookup(170); // { offset: 150, position: 4096 }
 * ```
 */
export class OffsetIndex {
  /** The segment's base offset; entries store offsets relative to it. */
  readonly baseOffset: number;
  #rel: Uint32Array;
  #pos: Uint32Array;
  #length = 0;
  /** what the index file holds */
  #file = new IndexFile(OFFSET_INDEX_ENTRY_SIZE);

  /**
   * @param baseOffset the segment's base offset
   * @param capacity initial capacity in entries
   */
  constructor(baseOffset: number, capacity = 16) {
    this.baseOffset = baseOffset;
    this.#rel = new Uint32Array(capacity);
    this.#pos = new Uint32Array(capacity);
  }

  /**
   * Parses and checks the bytes of an index file.
   *
   * @param baseOffset the segment's base offset
   * @param bytes the file's contents
   * @param logSize the size of the segment's `.log`; every position must lie below it
   * @returns the index, or a sentence saying why the file is damaged
   */
  static parse(baseOffset: number, bytes: Uint8Array, logSize: number): OffsetIndex | string {
    if (bytes.length % OFFSET_INDEX_ENTRY_SIZE !== 0) {
      return `offset index size ${bytes.length} is not a multiple of ${OFFSET_INDEX_ENTRY_SIZE}`;
    }
    const n = bytes.length / OFFSET_INDEX_ENTRY_SIZE;
    const index = new OffsetIndex(baseOffset, Math.max(16, n));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) {
      const rel = view.getUint32(i * 8);
      const pos = view.getUint32(i * 8 + 4);
      if (i > 0 && (rel <= index.#rel[i - 1] || pos <= index.#pos[i - 1])) {
        return `offset index entry ${i} (${rel} -> ${pos}) is out of order`;
      }
      if (pos >= logSize) {
        return `offset index entry ${i} points to position ${pos}, past the log's ${logSize} bytes`;
      }
      index.#rel[i] = rel;
      index.#pos[i] = pos;
    }
    index.#length = n;
    index.#file.loaded(n);
    return index;
  }

  /** The number of entries. */
  get length(): number {
    return this.#length;
  }

  /** Bytes the entries take in memory. */
  get memoryBytes(): number {
    return this.#rel.byteLength * 2;
  }

  /**
   * The entry at `i`.
   *
   * @param i 0 ≤ i < length
   * @returns the entry
   */
  entry(i: number): OffsetPosition {
    return { offset: this.baseOffset + this.#rel[i], position: this.#pos[i] };
  }

  /** The last entry, or null when the index is empty. */
  lastEntry(): OffsetPosition | null {
    return this.#length === 0 ? null : this.entry(this.#length - 1);
  }

  /**
   * Adds an entry after the last one.
   *
   * @param offset absolute offset of a batch's first record
   * @param position where the batch starts
   * @throws {RangeError} if the entry is not after the last one or does not fit in u32
   */
  append(offset: number, position: number): void {
    const rel = offset - this.baseOffset;
    const n = this.#length;
    if (rel < 0 || rel > 0xffffffff || position > 0xffffffff) {
      throw new RangeError(`Offset index entry ${offset} -> ${position} does not fit`);
    }
    if (n > 0 && (rel <= this.#rel[n - 1] || position <= this.#pos[n - 1])) {
      throw new RangeError(
        `Offset index entry ${offset} -> ${position} is not after ${
          this.baseOffset + this.#rel[n - 1]
        } -> ${this.#pos[n - 1]}`,
      );
    }
    if (n === this.#rel.length) {
      const rel2 = new Uint32Array(n * 2);
      rel2.set(this.#rel);
      this.#rel = rel2;
      const pos2 = new Uint32Array(n * 2);
      pos2.set(this.#pos);
      this.#pos = pos2;
    }
    this.#rel[n] = rel;
    this.#pos[n] = position;
    this.#length = n + 1;
  }

  /**
   * Finds the greatest entry whose offset is ≤ `offset` (binary search).
   *
   * @param offset the target offset
   * @returns that entry, or (baseOffset, 0) if there is none
   */
  lookup(offset: number): OffsetPosition {
    const i = this.#floor(offset - this.baseOffset);
    return i < 0 ? { offset: this.baseOffset, position: 0 } : this.entry(i);
  }

  #floor(rel: number): number {
    let lo = 0;
    let hi = this.#length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#rel[mid] <= rel) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /**
   * Removes every entry whose offset is ≥ `offset`.
   *
   * @param offset the first offset to forget
   */
  truncateToOffset(offset: number): void {
    this.#truncateToEntries(this.#floor(offset - this.baseOffset - 1) + 1);
  }

  /**
   * Removes every entry whose position is ≥ `position`.
   *
   * @param position the first position to forget
   */
  truncateToPosition(position: number): void {
    let n = this.#length;
    while (n > 0 && this.#pos[n - 1] >= position) n--;
    this.#truncateToEntries(n);
  }

  #truncateToEntries(n: number): void {
    if (n >= this.#length) return;
    this.#length = n;
    this.#file.truncated(n);
  }

  /** The whole index in its file format. */
  encode(): Uint8Array {
    return this.#encodeRange(0, this.#length);
  }

  #encodeRange(from: number, to: number): Uint8Array {
    const out = new Uint8Array((to - from) * OFFSET_INDEX_ENTRY_SIZE);
    const view = new DataView(out.buffer);
    for (let i = from; i < to; i++) {
      view.setUint32((i - from) * 8, this.#rel[i]);
      view.setUint32((i - from) * 8 + 4, this.#pos[i]);
    }
    return out;
  }

  /**
   * Brings the file up to date with memory: cuts what was truncated, appends new entries.
   * Synchronous (the writes are small), so it never interleaves with an append.
   *
   * @param path the `.index` file
   * @param rewrite write the whole file afresh (for a file that may be damaged)
   */
  persist(path: string, rewrite = false): void {
    this.#file.persist(path, this.#length, (from, to) => this.#encodeRange(from, to), rewrite);
  }
}
