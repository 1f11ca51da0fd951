/**
 * Kafka wire primitives: a bounds-checked reader over one request frame and a writer that
 * builds an answer as a list of chunks (large record sets are attached by reference, not
 * copied). Both know the classic encodings (int16-length strings, int32-length bytes and
 * arrays) and the flexible ones (unsigned-varint length + 1, tagged fields).
 *
 * @module
 */

/** A frame that does not decode: the connection answers nothing and closes. */
export class KafkaDecodeError extends Error {
  /** @param message what is wrong */
  constructor(message: string) {
    super(message);
    this.name = "KafkaDecodeError";
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Reads primitives from one frame; every read checks the frame's end. */
export class Reader {
  /** the frame */
  readonly buf: Uint8Array;
  /** the next byte to read */
  pos: number;
  readonly #view: DataView;

  /**
   * @param buf the frame (without its size prefix)
   * @param pos where to start
   */
  constructor(buf: Uint8Array, pos = 0) {
    this.buf = buf;
    this.pos = pos;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Bytes left. */
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  #need(n: number): number {
    const p = this.pos;
    if (n < 0 || p + n > this.buf.length) {
      throw new KafkaDecodeError(
        `the request ends ${p + n - this.buf.length} byte(s) early (needed ${n} at ${p})`,
      );
    }
    this.pos = p + n;
    return p;
  }

  /** @returns an int8 */
  int8(): number {
    return this.#view.getInt8(this.#need(1));
  }
  /** @returns an int16 */
  int16(): number {
    return this.#view.getInt16(this.#need(2));
  }
  /** @returns an int32 */
  int32(): number {
    return this.#view.getInt32(this.#need(4));
  }
  /** @returns an int64 as a number (exact up to 2^53) */
  int64(): number {
    return Number(this.#view.getBigInt64(this.#need(8)));
  }
  /** @returns a float64 */
  float64(): number {
    return this.#view.getFloat64(this.#need(8));
  }
  /** @returns a boolean */
  bool(): boolean {
    return this.buf[this.#need(1)] !== 0;
  }
  /** @returns 16 raw bytes */
  uuid(): Uint8Array {
    const p = this.#need(16);
    return this.buf.subarray(p, p + 16);
  }

  /** @returns an unsigned varint (at most 5 bytes) */
  uvarint(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.buf[this.#need(1)];
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    throw new KafkaDecodeError("an unsigned varint is longer than 5 bytes");
  }

  /**
   * A length: int16/int32 (classic) or uvarint − 1 (compact); −1 is null.
   *
   * @param compact flexible encoding
   * @param wide int32 instead of int16 (bytes and arrays)
   * @returns the length, or -1 for null
   */
  length(compact: boolean, wide: boolean): number {
    const n = compact ? this.uvarint() - 1 : wide ? this.int32() : this.int16();
    if (n < -1) throw new KafkaDecodeError(`a negative length ${n}`);
    if (n > this.remaining) {
      throw new KafkaDecodeError(`a length of ${n} runs past the end of the request`);
    }
    return n;
  }

  /**
   * @param compact flexible encoding
   * @returns a string or null
   */
  string(compact: boolean): string | null {
    const n = this.length(compact, false);
    if (n < 0) return null;
    const p = this.#need(n);
    try {
      return decoder.decode(this.buf.subarray(p, p + n));
    } catch {
      throw new KafkaDecodeError("a string is not valid UTF-8");
    }
  }

  /**
   * @param compact flexible encoding
   * @returns a view of the bytes (not a copy) or null
   */
  bytes(compact: boolean): Uint8Array | null {
    const n = this.length(compact, true);
    if (n < 0) return null;
    const p = this.#need(n);
    return this.buf.subarray(p, p + n);
  }

  /** Skips a tagged-field section (flexible versions): none of its fields are needed. */
  skipTags(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint();
      const size = this.uvarint();
      this.#need(size);
    }
  }
}

const INITIAL = 256;

/** Builds an answer: small writes into a growing buffer, large byte runs by reference. */
export class Writer {
  #buf: Uint8Array = new Uint8Array(INITIAL);
  #view: DataView = new DataView(this.#buf.buffer);
  #pos = 0;
  /** finished chunks before the current buffer */
  readonly #chunks: Uint8Array[] = [];
  #chunkBytes = 0;

  #room(n: number): number {
    if (this.#pos + n > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
      next.set(this.#buf.subarray(0, this.#pos));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    const p = this.#pos;
    this.#pos += n;
    return p;
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#chunkBytes + this.#pos;
  }

  /** @param v an int8 */
  int8(v: number): this {
    const p = this.#room(1);
    this.#view.setInt8(p, v);
    return this;
  }
  /** @param v an int16 */
  int16(v: number): this {
    const p = this.#room(2);
    this.#view.setInt16(p, v);
    return this;
  }
  /** @param v an int32 */
  int32(v: number): this {
    const p = this.#room(4);
    this.#view.setInt32(p, v);
    return this;
  }
  /** @param v a uint32 */
  uint32(v: number): this {
    const p = this.#room(4);
    this.#view.setUint32(p, v);
    return this;
  }
  /** @param v an int64 given as a number */
  int64(v: number): this {
    const p = this.#room(8);
    this.#view.setBigInt64(p, BigInt(v));
    return this;
  }
  /** @param v a float64 */
  float64(v: number): this {
    const p = this.#room(8);
    this.#view.setFloat64(p, v);
    return this;
  }
  /** @param v a boolean */
  bool(v: boolean): this {
    const p = this.#room(1);
    this.#buf[p] = v ? 1 : 0;
    return this;
  }
  /** @param v 16 bytes (zeros when absent) */
  uuid(v: Uint8Array | null): this {
    const p = this.#room(16);
    this.#buf.fill(0, p, p + 16);
    if (v) this.#buf.set(v.subarray(0, 16), p);
    return this;
  }
  /** @param v an unsigned varint */
  uvarint(v: number): this {
    while (v >= 0x80) {
      const p = this.#room(1);
      this.#buf[p] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    const p = this.#room(1);
    this.#buf[p] = v;
    return this;
  }

  /**
   * @param n a length (-1 for null)
   * @param compact flexible encoding
   * @param wide int32 instead of int16
   */
  length(n: number, compact: boolean, wide: boolean): this {
    if (compact) return this.uvarint(n + 1);
    return wide ? this.int32(n) : this.int16(n);
  }

  /**
   * @param v a string or null
   * @param compact flexible encoding
   */
  string(v: string | null, compact: boolean): this {
    if (v === null) return this.length(-1, compact, false);
    const bytes = encoder.encode(v);
    this.length(bytes.length, compact, false);
    const p = this.#room(bytes.length);
    this.#buf.set(bytes, p);
    return this;
  }

  /**
   * Bytes; runs of 4 KiB or more are attached by reference (kept alive until written).
   *
   * @param v the bytes or null
   * @param compact flexible encoding
   */
  bytes(v: Uint8Array | null, compact: boolean): this {
    if (v === null) return this.length(-1, compact, true);
    this.length(v.length, compact, true);
    return this.raw(v);
  }

  /**
   * Bytes without a length.
   *
   * @param v the bytes
   */
  raw(v: Uint8Array): this {
    if (v.length < 4096) {
      const p = this.#room(v.length);
      this.#buf.set(v, p);
      return this;
    }
    if (this.#pos > 0) {
      this.#chunks.push(this.#buf.subarray(0, this.#pos));
      this.#chunkBytes += this.#pos;
      this.#buf = new Uint8Array(INITIAL);
      this.#view = new DataView(this.#buf.buffer);
      this.#pos = 0;
    }
    this.#chunks.push(v);
    this.#chunkBytes += v.length;
    return this;
  }

  /** An empty tagged-field section. */
  noTags(): this {
    return this.uvarint(0);
  }

  /**
   * The answer as chunks, prefixed with its int32 size.
   *
   * @returns chunks to write in order
   */
  frame(): Uint8Array[] {
    const size = this.size;
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setInt32(0, size);
    const out = [prefix, ...this.#chunks];
    if (this.#pos > 0) out.push(this.#buf.subarray(0, this.#pos));
    return out;
  }
}
