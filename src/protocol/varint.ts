/**
 * Zig-zag variable-length integers as used by Kafka's RecordBatch v2 records (the
 * protobuf encoding): 7 bits a byte, low group first, high bit set on all but the last byte.
 * Values are JavaScript numbers; the zig-zag form doubles the magnitude, so varlongs are
 * exact for |value| < 2^52 (timestamp deltas of ~140,000 years), and larger ones are refused.
 *
 * @module
 */

/** Magnitude limit for exact zig-zag varlongs in a JavaScript number. */
export const MAX_VARLONG = 2 ** 52;

/**
 * Returns how many bytes the zig-zag varint of `value` takes.
 *
 * @param value a safe integer
 * @returns 1 to 10
 */
export function varintSize(value: number): number {
  let z = value >= 0 ? value * 2 : -value * 2 - 1;
  let n = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    n++;
  }
  return n;
}

/**
 * Writes the zig-zag varint of `value` at `pos`.
 *
 * @param buf the target
 * @param pos where to write
 * @param value a safe integer
 * @returns the position after the varint
 * @throws {RangeError} if |value| >= 2^52
 */
export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  if (!(Math.abs(value) < MAX_VARLONG)) {
    throw new RangeError(`Varint value ${value} is outside ±2^52`);
  }
  let z = value >= 0 ? value * 2 : -value * 2 - 1;
  if (z < 0x80000000) {
    while (z >= 128) {
      buf[pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    buf[pos++] = z;
    return pos;
  }
  while (z >= 128) {
    buf[pos++] = (z % 128) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[pos++] = z;
  return pos;
}

/** A decoded varint and the position after it. */
export interface VarintResult {
  /** the decoded value */
  value: number;
  /** the position of the byte after the varint */
  next: number;
}

/**
 * Reads a zig-zag varint at `pos`.
 *
 * @param buf the source
 * @param pos where the varint starts
 * @param end the first position that must not be read
 * @returns the value and the position after it
 * @throws {RangeError} if the varint runs past `end` or is longer than 10 bytes
 */
export function readVarint(buf: Uint8Array, pos: number, end: number): VarintResult {
  let z = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new RangeError("Varint runs past the end of the record");
    const b = buf[pos++];
    z += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      const value = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      return { value, next: pos };
    }
    mul *= 128;
  }
  throw new RangeError("Varint is longer than 10 bytes");
}

/**
 * Where the last {@linkcode zigZagAt} read ended: the position after its varint. One shared
 * cursor, so that walking the records of a batch allocates nothing per field.
 */
export const varintCursor = { next: 0 };

/** Thrown by {@linkcode zigZagAt} (one preallocated error); callers give it a message. */
export const MALFORMED_VARINT = new RangeError("malformed varint");

/**
 * Reads the zig-zag varint at `pos`, not past `end`, and leaves the position after it in
 * {@linkcode varintCursor}`.next`: the record walkers' reader (no object per read).
 *
 * @param buf the bytes
 * @param pos where the varint starts
 * @param end the first position it may not reach
 * @returns the value
 * @throws {RangeError} MALFORMED_VARINT when it runs past `end` or past 10 bytes
 * @example
 * ```ts
 * const len = zigZagAt(batch, 61, batch.length);
 * const bodyAt = varintCursor.next;
 * ```
 */
export function zigZagAt(buf: Uint8Array, pos: number, end: number): number {
  let z = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw MALFORMED_VARINT;
    const b = buf[pos++];
    z += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      varintCursor.next = pos;
      return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    }
    mul *= 128;
  }
  throw MALFORMED_VARINT;
}
