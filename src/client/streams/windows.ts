/**
 * Time windows on record timestamps (event time), as Kafka Streams' `TimeWindows`:
 * tumbling (`advance` = `size`) or hopping (`advance` < `size`), with a grace period after
 * a window's end during which late records are still counted. A record later than that
 * (its window ended more than `grace` ms before the task's stream time, the largest
 * timestamp the task has seen) is dropped and counted in the application's metrics.
 *
 * @module
 */

/**
 * A key within a window.
 *
 * @example
 * ```ts
 * const w: Windowed<string> = { key: "page-1", start: 60_000, end: 120_000 };
 * ```
 */
export interface Windowed<K> {
  /** the record key */
  key: K;
  /** the window's start (inclusive), ms */
  start: number;
  /** the window's end (exclusive), ms */
  end: number;
}

/**
 * Tumbling or hopping windows.
 *
 * @example
 * ```ts
 * TimeWindows.of(60_000);                                   // tumbling minutes
 * TimeWindows.of(60_000).advanceBy(10_000).grace(5_000);    // hopping, 5 s grace
 * ```
 */
export class TimeWindows {
  /** the window length, ms */
  readonly size: number;
  /** how far each window starts after the previous, ms */
  readonly advance: number;
  /** how long after a window's end late records are still taken, ms */
  readonly graceMs: number;

  private constructor(size: number, advance: number, graceMs: number) {
    for (const [name, v] of [["size", size], ["advance", advance], ["grace", graceMs]] as const) {
      if (!Number.isSafeInteger(v) || v < (name === "grace" ? 0 : 1)) {
        throw new RangeError(
          `Window ${name} must be a ${
            name === "grace" ? "non-negative" : "positive"
          } integer of ms, got ${v}`,
        );
      }
    }
    if (advance > size) throw new RangeError(`advance (${advance}) must not exceed size (${size})`);
    this.size = size;
    this.advance = advance;
    this.graceMs = graceMs;
  }

  /**
   * Tumbling windows of `sizeMs` (grace 0 until {@linkcode TimeWindows.grace}).
   *
   * @param sizeMs the window length
   * @returns the windows
   * @throws {RangeError} unless a positive integer
   */
  static of(sizeMs: number): TimeWindows {
    return new TimeWindows(sizeMs, sizeMs, 0);
  }

  /**
   * Hopping windows: a new window every `advanceMs`.
   *
   * @param advanceMs the hop, at most the size
   * @returns new windows
   */
  advanceBy(advanceMs: number): TimeWindows {
    return new TimeWindows(this.size, advanceMs, this.graceMs);
  }

  /**
   * The grace period for late records.
   *
   * @param graceMs ms after a window's end
   * @returns new windows
   */
  grace(graceMs: number): TimeWindows {
    return new TimeWindows(this.size, this.advance, graceMs);
  }

  /**
   * The starts of the windows a timestamp falls in, oldest first.
   *
   * @param timestamp the record's timestamp
   * @returns window starts
   */
  windowsFor(timestamp: number): number[] {
    const out: number[] = [];
    const last = timestamp - (((timestamp % this.advance) + this.advance) % this.advance);
    for (let start = last; start > timestamp - this.size; start -= this.advance) {
      if (start >= 0) out.unshift(start);
    }
    return out;
  }
}
