/**
 * UTF-8 encoding of short strings without a call into the runtime: `TextEncoder.encode`
 * costs about a microsecond per call in Deno whatever the length, which is most of a small
 * record's budget. Long strings still go to TextEncoder.
 *
 * @module
 */

const encoder = new TextEncoder();
const SHORT = 256;

/**
 * Encodes a string as UTF-8 (lone surrogates become U+FFFD, as TextEncoder does).
 *
 * @param s the string
 * @returns its UTF-8 bytes
 * @example
 * ```ts
 * utf8("héllo"); // Uint8Array [104, 195, 169, 108, 108, 111]
 * ```
 */
export function utf8(s: string): Uint8Array {
  const n = s.length;
  if (n > SHORT) return encoder.encode(s);
  const ascii = new Uint8Array(n);
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    ascii[i] = c;
  }
  if (i === n) return ascii;
  const out = new Uint8Array(i + (n - i) * 3);
  out.set(ascii.subarray(0, i));
  const p = writeUtf8(out, i, s, i);
  return p === out.length ? out : out.subarray(0, p);
}

/**
 * Writes `s` (from its `from`-th UTF-16 unit on) as UTF-8 into `buf` at `pos`, which must
 * have room for 3 bytes a unit (lone surrogates become U+FFFD, as TextEncoder does).
 *
 * @param buf the target
 * @param pos where to write
 * @param s the string
 * @param from the first UTF-16 unit of `s` to write
 * @returns the position after the bytes
 * @example
 * ```ts
 * writeUtf8(new Uint8Array(6), 0, "é"); // 2
 * ```
 */
export function writeUtf8(buf: Uint8Array, pos: number, s: string, from = 0): number {
  const n = s.length;
  for (let i = from; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) buf[pos++] = c;
    else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          i++;
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          buf[pos++] = 0xf0 | (c >> 18);
          buf[pos++] = 0x80 | ((c >> 12) & 0x3f);
          buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
          buf[pos++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}
