/**
 * How an in-memory index (offset or time index) keeps its file up to date: which leading
 * entries the file already holds as they are in memory, and whether it holds more that a
 * truncation cut from memory. Appending writes only the new entries; a truncation cuts the
 * file first. Writes are synchronous (they are small), so they never interleave with an
 * append.
 *
 * @module
 */

/**
 * The file side of an index of fixed-size entries.
 *
 * @example
 * ```ts
 * const file = new IndexFile(8);
 * file.persist(path, index.length, (from, to) => index.encodeRange(from, to));
 * ```
 */
export class IndexFile {
  /** bytes per entry */
  readonly entrySize: number;
  /** how many leading entries the file holds as they are in memory */
  #persisted = 0;
  /** whether the file holds entries beyond #persisted that must be cut */
  #fileTooLong = false;

  /** @param entrySize bytes per entry */
  constructor(entrySize: number) {
    this.entrySize = entrySize;
  }

  /**
   * Records that the file was just read and holds `n` entries, all in memory.
   *
   * @param n entries in the file
   */
  loaded(n: number): void {
    this.#persisted = n;
    this.#fileTooLong = false;
  }

  /**
   * Records that memory now holds only `n` entries.
   *
   * @param n entries left in memory
   */
  truncated(n: number): void {
    if (n < this.#persisted) {
      this.#persisted = n;
      this.#fileTooLong = true;
    }
  }

  /**
   * Brings the file up to date with memory: cuts what was truncated, appends new entries.
   *
   * @param path the index file
   * @param length entries in memory
   * @param encodeRange the file bytes of entries [from, to)
   * @param rewrite write the whole file afresh (for a file that may be damaged)
   */
  persist(
    path: string,
    length: number,
    encodeRange: (from: number, to: number) => Uint8Array,
    rewrite = false,
  ): void {
    if (rewrite) {
      Deno.writeFileSync(path, encodeRange(0, length));
    } else {
      if (this.#persisted === length && !this.#fileTooLong) return;
      const file = Deno.openSync(path, { write: true, create: true });
      try {
        if (this.#fileTooLong) file.truncateSync(this.#persisted * this.entrySize);
        file.seekSync(this.#persisted * this.entrySize, Deno.SeekMode.Start);
        const bytes = encodeRange(this.#persisted, length);
        let n = 0;
        while (n < bytes.length) n += file.writeSync(bytes.subarray(n));
      } finally {
        file.close();
      }
    }
    this.loaded(length);
  }
}
