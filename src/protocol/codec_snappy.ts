// deno-lint-ignore-file no-import-prefix
/**
 * Kafka's snappy codec: raw snappy blocks (the `snappyjs` package, pure JavaScript) in the
 * xerial `snappy-java` framing that Kafka's Java client writes and every Kafka reader
 * accepts: a 16-byte header (`\x82SNAPPY\0`, version 1, compatible version 1), then chunks
 * of a big-endian i32 compressed length and one raw snappy block each. Reading also accepts
 * a bare raw snappy block (as kafkajs-snappy and some librdkafka versions write it, and as
 * Java and librdkafka read it).
 *
 * @module
 */
// @ts-ignore: the package ships no type declarations (typed by the cast below)
import snappyjs from "npm:snappyjs@0.7.0";
import { CodecError, type CompressionCodec } from "./codec_errors.ts";

const { compress: snappyCompress, uncompress: snappyUncompress } = snappyjs as unknown as {
  compress(data: Uint8Array): Uint8Array;
  uncompress(data: Uint8Array, maxLength?: number): Uint8Array;
};

/** The xerial header: magic `\x82SNAPPY\0`, version 1, compatible version 1. */
const XERIAL_HEADER = new Uint8Array([
  0x82,
  0x53,
  0x4e,
  0x41,
  0x50,
  0x50,
  0x59,
  0x00,
  0,
  0,
  0,
  1,
  0,
  0,
  0,
  1,
]);
/** snappy-java's default block size, which Kafka's producer uses. */
const XERIAL_BLOCK = 32 * 1024;

function isXerial(data: Uint8Array): boolean {
  if (data.length < 16) return false;
  for (let i = 0; i < 8; i++) if (data[i] !== XERIAL_HEADER[i]) return false;
  return true;
}

/** The length a raw snappy block says it inflates to (its leading varint). */
function rawLength(block: Uint8Array): number {
  let n = 0;
  let shift = 0;
  for (let i = 0; i < 5 && i < block.length; i++) {
    n += (block[i] & 0x7f) * 2 ** shift;
    if ((block[i] & 0x80) === 0) return n;
    shift += 7;
  }
  throw new CodecError("corrupt", "a snappy block has a malformed length");
}

function uncompressBlock(block: Uint8Array, room: number): Uint8Array {
  const size = rawLength(block);
  if (size > room) throw new CodecError("too-large", "");
  try {
    return snappyUncompress(block, room);
  } catch (e) {
    throw new CodecError("corrupt", `snappy data is corrupt (${(e as Error).message})`);
  }
}

/** Kafka's snappy codec (xerial framing out; xerial or raw in). */
export const snappyCodec: CompressionCodec = {
  compress(data: Uint8Array): Uint8Array {
    const blocks: Uint8Array[] = [];
    let total = XERIAL_HEADER.length;
    for (let p = 0; p < data.length; p += XERIAL_BLOCK) {
      const block = snappyCompress(data.subarray(p, Math.min(p + XERIAL_BLOCK, data.length)));
      blocks.push(block);
      total += 4 + block.length;
    }
    const out = new Uint8Array(total);
    out.set(XERIAL_HEADER, 0);
    const view = new DataView(out.buffer);
    let pos = XERIAL_HEADER.length;
    for (const b of blocks) {
      view.setInt32(pos, b.length);
      out.set(b, pos + 4);
      pos += 4 + b.length;
    }
    return out;
  },

  decompress(data: Uint8Array, limit: number): Uint8Array {
    if (!isXerial(data)) return uncompressBlock(data, limit);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const parts: Uint8Array[] = [];
    let total = 0;
    let pos = XERIAL_HEADER.length;
    while (pos < data.length) {
      if (data.length - pos < 4) throw new CodecError("corrupt", "a snappy chunk is truncated");
      const size = view.getInt32(pos);
      pos += 4;
      if (size < 0 || size > data.length - pos) {
        throw new CodecError("corrupt", "a snappy chunk runs past the end of the data");
      }
      const part = uncompressBlock(data.subarray(pos, pos + size), limit - total);
      parts.push(part);
      total += part.length;
      pos += size;
    }
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  },
};
