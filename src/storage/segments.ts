/**
 * The ordered list of a log's segments (Kafka's `LogSegments`): find the segment holding an
 * offset by binary search over base offsets, so that a read costs O(log segments).
 *
 * @module
 */
import type { LogSegment } from "./segment.ts";

/**
 * Segments sorted by base offset; the last one is the active segment.
 *
 * @example
 * ```ts
 * const segments = new LogSegments();
 * segments.add(segment);
 * segments.floor(42); // the segment with the greatest baseOffset ≤ 42
 * ```
 */
export class LogSegments {
  #list: LogSegment[] = [];

  /** The number of segments. */
  get length(): number {
    return this.#list.length;
  }

  /** All segments, oldest first (a copy). */
  all(): LogSegment[] {
    return this.#list.slice();
  }

  /** The oldest segment, if any. */
  first(): LogSegment | undefined {
    return this.#list[0];
  }

  /** The newest (active) segment, if any. */
  last(): LogSegment | undefined {
    return this.#list[this.#list.length - 1];
  }

  /**
   * Adds a segment whose base offset is above every other's.
   *
   * @param segment the new segment
   * @throws {RangeError} if its base offset is not the highest
   */
  add(segment: LogSegment): void {
    const last = this.last();
    if (last && last.baseOffset >= segment.baseOffset) {
      throw new RangeError(
        `Segment ${segment.baseOffset} does not come after segment ${last.baseOffset}`,
      );
    }
    this.#list.push(segment);
  }

  /**
   * The index in the list of the segment with the greatest base offset ≤ `offset`.
   *
   * @param offset an offset
   * @returns the index, or -1 if every segment starts after `offset`
   */
  floorIndex(offset: number): number {
    let lo = 0;
    let hi = this.#list.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#list[mid].baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /**
   * The segment with the greatest base offset ≤ `offset`.
   *
   * @param offset an offset
   * @returns the segment, or undefined if there is none
   */
  floor(offset: number): LogSegment | undefined {
    const i = this.floorIndex(offset);
    return i < 0 ? undefined : this.#list[i];
  }

  /**
   * The segment at position `i` of the list.
   *
   * @param i 0 ≤ i < length
   * @returns the segment
   */
  at(i: number): LogSegment | undefined {
    return this.#list[i];
  }

  /**
   * Removes the `count` oldest segments from the list (their files are not touched).
   *
   * @param count how many
   * @returns the removed segments
   */
  removeFirst(count: number): LogSegment[] {
    return this.#list.splice(0, count);
  }

  /**
   * Removes every segment whose base offset is ≥ `offset` from the list.
   *
   * @param offset the first base offset to remove
   * @returns the removed segments
   */
  removeFrom(offset: number): LogSegment[] {
    const i = this.floorIndex(offset - 1) + 1;
    return this.#list.splice(i);
  }

  /**
   * Replaces `count` consecutive segments, from list position `start`, with one segment
   * covering the same offsets (the log cleaner's compacted copy of them).
   *
   * @param start list position of the first segment replaced
   * @param count how many segments it replaces (≥ 1)
   * @param segment the replacement; its base offset must be the first replaced one's
   * @returns the segments replaced
   * @throws {RangeError} if the range is outside the list or the base offsets differ
   */
  replace(start: number, count: number, segment: LogSegment): LogSegment[] {
    const first = this.#list[start];
    if (count < 1 || !first || start + count > this.#list.length) {
      throw new RangeError(`Cannot replace segments ${start}..${start + count - 1}`);
    }
    if (first.baseOffset !== segment.baseOffset) {
      throw new RangeError(
        `Segment ${segment.baseOffset} cannot replace segments starting at ${first.baseOffset}`,
      );
    }
    return this.#list.splice(start, count, segment);
  }

  /** The total size of all segments in bytes. */
  totalSize(): number {
    let n = 0;
    for (const s of this.#list) n += s.size;
    return n;
  }
}
