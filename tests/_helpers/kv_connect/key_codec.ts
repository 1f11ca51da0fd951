/**
 * Deno KV's key encoding, as KV Connect carries it: each part of a `Deno.KvKey` is a type
 * byte followed by its body, in the order-preserving tuple layout of FoundationDB
 * (`design/tuple.md`), restricted to the five types Deno KV allows:
 *
 * | type byte   | part                | body                                                  |
 * | ----------- | ------------------- | ----------------------------------------------------- |
 * | 0x01        | `Uint8Array`        | bytes, each 0x00 written 0x00 0xff, then 0x00          |
 * | 0x02        | `string`            | UTF-8, escaped and ended the same way                  |
 * | 0x0c..0x1c  | `bigint` (≤ 8 B)    | 0x14 ± byte count, big-endian magnitude (ones' complement when negative) |
 * | 0x0b / 0x1d | `bigint` (> 8 B)    | a length byte (complemented when negative), then the magnitude |
 * | 0x21        | `number`            | IEEE 754 big-endian; sign bit flipped when ≥ 0, every bit flipped when < 0 |
 * | 0x26 / 0x27 | `false` / `true`    | none                                                  |
 *
 * Byte order of encoded keys is the order Deno KV lists keys in, which is what lets the test
 * endpoint compare the raw range bounds of a `ReadRange` with keys it reads locally.
 *
 * Hand-written: no maintained npm package exports this codec (`@deno/kv` keeps it internal).
 *
 * @module
 */

const STRING_BYTES = 0x01;
const STRING_UTF8 = 0x02;
const INT_ZERO = 0x14;
const INT_NEG_ARBITRARY = 0x0b;
const INT_POS_ARBITRARY = 0x1d;
const DOUBLE = 0x21;
const FALSE = 0x26;
const TRUE = 0x27;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function pushEscaped(out: number[], bytes: Uint8Array): void {
  for (const b of bytes) {
    out.push(b);
    if (b === 0) out.push(0xff);
  }
  out.push(0);
}

function magnitudeBytes(n: bigint): number[] {
  const bytes: number[] = [];
  while (n > 0n) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  return bytes;
}

/**
 * Encodes a Deno KV key into the bytes KV Connect sends.
 *
 * @param key the key
 * @returns its encoding
 * @throws {TypeError} for a part Deno KV does not allow
 */
export function packKey(key: Deno.KvKey): Uint8Array {
  const out: number[] = [];
  for (const part of key) {
    if (part instanceof Uint8Array) {
      out.push(STRING_BYTES);
      pushEscaped(out, part);
    } else if (typeof part === "string") {
      out.push(STRING_UTF8);
      pushEscaped(out, encoder.encode(part));
    } else if (typeof part === "boolean") {
      out.push(part ? TRUE : FALSE);
    } else if (typeof part === "bigint") {
      const negative = part < 0n;
      const mag = magnitudeBytes(negative ? -part : part);
      const body = negative ? mag.map((b) => 0xff - b) : mag;
      if (mag.length <= 8) {
        out.push(negative ? INT_ZERO - mag.length : INT_ZERO + mag.length, ...body);
      } else {
        out.push(
          negative ? INT_NEG_ARBITRARY : INT_POS_ARBITRARY,
          negative ? 0xff - mag.length : mag.length,
          ...body,
        );
      }
    } else if (typeof part === "number") {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setFloat64(0, part, false);
      if (bytes[0] & 0x80) bytes.forEach((b, i) => (bytes[i] = 0xff - b));
      else bytes[0] ^= 0x80;
      out.push(DOUBLE, ...bytes);
    } else {
      throw new TypeError(`Cannot encode a key part of type ${typeof part}`);
    }
  }
  return new Uint8Array(out);
}

/** The parts decoded from the front of some bytes, and where decoding stopped. */
export interface KeyPrefix {
  /** the parts decoded */
  parts: Deno.KvKeyPart[];
  /** how many bytes they took; equals the input's length when all of it is a key */
  length: number;
}

function readEscaped(bytes: Uint8Array, pos: number): { body: Uint8Array; next: number } | null {
  const out: number[] = [];
  while (pos < bytes.length) {
    const b = bytes[pos++];
    if (b !== 0) {
      out.push(b);
      continue;
    }
    if (bytes[pos] === 0xff) {
      out.push(0);
      pos++;
      continue;
    }
    return { body: new Uint8Array(out), next: pos };
  }
  return null;
}

/**
 * Decodes as many whole key parts as the bytes start with. Range bounds sent by clients
 * are often a key followed by 0x00 or 0xff (the smallest key after it, the end of its
 * children), so a trailing remainder is expected, not an error.
 *
 * @param bytes encoded key bytes, possibly with a remainder
 * @returns the decoded parts and how many bytes they used
 */
export function unpackKeyPrefix(bytes: Uint8Array): KeyPrefix {
  const parts: Deno.KvKeyPart[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const type = bytes[pos];
    let next = -1;
    if (type === STRING_BYTES || type === STRING_UTF8) {
      const r = readEscaped(bytes, pos + 1);
      if (r === null) break;
      if (type === STRING_BYTES) parts.push(r.body);
      else {
        try {
          parts.push(decoder.decode(r.body));
        } catch {
          break;
        }
      }
      next = r.next;
    } else if (type === FALSE || type === TRUE) {
      parts.push(type === TRUE);
      next = pos + 1;
    } else if (type === DOUBLE) {
      if (pos + 9 > bytes.length) break;
      const body = bytes.slice(pos + 1, pos + 9);
      if (body[0] & 0x80) body[0] ^= 0x80;
      else body.forEach((b, i) => (body[i] = 0xff - b));
      parts.push(new DataView(body.buffer).getFloat64(0, false));
      next = pos + 9;
    } else if (type >= INT_NEG_ARBITRARY && type <= INT_POS_ARBITRARY) {
      const negative = type < INT_ZERO;
      let start = pos + 1;
      let count: number;
      if (type === INT_NEG_ARBITRARY || type === INT_POS_ARBITRARY) {
        if (start >= bytes.length) break;
        count = negative ? 0xff - bytes[start] : bytes[start];
        start++;
      } else count = Math.abs(type - INT_ZERO);
      if (start + count > bytes.length) break;
      let mag = 0n;
      for (let i = 0; i < count; i++) {
        const b = bytes[start + i];
        mag = (mag << 8n) | BigInt(negative ? 0xff - b : b);
      }
      parts.push(negative ? -mag : mag);
      next = start + count;
    } else {
      break;
    }
    pos = next;
  }
  return { parts, length: pos };
}

/**
 * Decodes bytes that must be exactly one key.
 *
 * @param bytes the encoding
 * @returns the key
 * @throws {RangeError} when the bytes are not a whole key
 */
export function unpackKey(bytes: Uint8Array): Deno.KvKey {
  const { parts, length } = unpackKeyPrefix(bytes);
  if (length !== bytes.length) {
    throw new RangeError(`Invalid key: byte ${length} of ${bytes.length} is not a key part`);
  }
  return parts;
}

/**
 * Compares two byte strings in the order Deno KV sorts keys.
 *
 * @returns negative, zero or positive
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
