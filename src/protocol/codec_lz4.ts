// deno-lint-ignore-file no-import-prefix
/**
 * Kafka's lz4 codec: the LZ4 frame format (magic 0x184D2204), as Kafka's Java client
 * (KafkaLZ4BlockOutputStream), librdkafka and kafkajs-lz4 write it since KIP-57.
 *
 * The block compressor and decompressor are `lz4js`'s (pure JavaScript). Its own frame
 * reader trusts its input (no bounds, sizes read from the data allocate at will), so the
 * frame is walked here: header fields checked, every block's size checked against the
 * data and the declared block maximum, and the output kept within the caller's limit.
 * Blocks decode into one growing buffer, so linked blocks (which may refer to earlier
 * output) decode too. Checksums inside the frame are not verified: the batch CRC-32C
 * already covers these bytes.
 *
 * Written frames: block-independent, 64 KiB blocks (Kafka's default), no checksums.
 *
 * @module
 */
// @ts-ignore: the package ships no type declarations (typed by the cast below)
import lz4js from "npm:lz4js@0.2.0";
// @ts-ignore: the package ships no type declarations (typed by the cast below)
import xxh32 from "npm:lz4js@0.2.0/xxh32.js";
import { CodecError, type CompressionCodec } from "./codec_errors.ts";

const lz4 = lz4js as unknown as {
  decompressBlock(
    src: Uint8Array,
    dst: Uint8Array,
    sIndex: number,
    sLength: number,
    dIndex: number,
  ): number;
  compressBlock(
    src: Uint8Array,
    dst: Uint8Array,
    sIndex: number,
    sLength: number,
    hashTable: Uint32Array,
  ): number;
};
const xxhash = xxh32 as unknown as {
  hash(seed: number, src: Uint8Array, index: number, length: number): number;
};

const MAGIC = 0x184d2204;
const BLOCK_SIZES: Record<number, number> = { 4: 0x10000, 5: 0x40000, 6: 0x100000, 7: 0x400000 };
const WRITE_BLOCK = 0x10000;
const UNCOMPRESSED = 0x80000000;

const hashTable = new Uint32Array(1 << 16);
const blockOut = new Uint8Array(WRITE_BLOCK + (WRITE_BLOCK >> 8) + 64);

function corrupt(what: string): CodecError {
  return new CodecError("corrupt", `lz4 data is corrupt: ${what}`);
}

function u32(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

function writeU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v & 0xff;
  b[p + 1] = (v >>> 8) & 0xff;
  b[p + 2] = (v >>> 16) & 0xff;
  b[p + 3] = (v >>> 24) & 0xff;
}

/** Kafka's lz4 codec (LZ4 frame format). */
export const lz4Codec: CompressionCodec = {
  compress(data: Uint8Array): Uint8Array {
    const blocks = Math.max(1, Math.ceil(data.length / WRITE_BLOCK));
    const out = new Uint8Array(7 + blocks * (4 + WRITE_BLOCK) + 4);
    writeU32(out, 0, MAGIC);
    out[4] = 0x60; // version 01, independent blocks
    out[5] = 0x40; // 64 KiB blocks
    out[6] = (xxhash.hash(0, out, 4, 2) >>> 8) & 0xff;
    let pos = 7;
    for (let s = 0; s < data.length; s += WRITE_BLOCK) {
      const block = data.subarray(s, Math.min(s + WRITE_BLOCK, data.length));
      // A cleared table and a view per block: matches stay within the block.
      hashTable.fill(0);
      const n = lz4.compressBlock(block, blockOut, 0, block.length, hashTable);
      if (n === 0 || n >= block.length) {
        writeU32(out, pos, (UNCOMPRESSED | block.length) >>> 0);
        out.set(block, pos + 4);
        pos += 4 + block.length;
      } else {
        writeU32(out, pos, n);
        out.set(blockOut.subarray(0, n), pos + 4);
        pos += 4 + n;
      }
    }
    writeU32(out, pos, 0); // end mark
    return out.subarray(0, pos + 4);
  },

  decompress(data: Uint8Array, limit: number): Uint8Array {
    let out = new Uint8Array(Math.min(limit, Math.max(1024, data.length * 4)));
    let size = 0;
    let pos = 0;
    const need = (n: number, what: string) => {
      if (data.length - pos < n) throw corrupt(`${what} is truncated`);
    };
    while (pos < data.length) {
      need(4, "the frame magic");
      const magic = u32(data, pos);
      if ((magic & 0xfffffff0) === 0x184d2a50) { // skippable frame
        need(8, "a skippable frame");
        const skip = u32(data, pos + 4);
        pos += 8;
        need(skip, "a skippable frame");
        pos += skip;
        continue;
      }
      if (magic !== MAGIC) throw corrupt(`magic number 0x${magic.toString(16)} is not LZ4's`);
      pos += 4;
      need(3, "the frame header");
      const flg = data[pos];
      const bd = data[pos + 1];
      if ((flg >> 6) !== 1) throw corrupt(`frame version ${flg >> 6} is not 1`);
      if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) throw corrupt("reserved header bits are set");
      if ((flg & 0x01) !== 0) throw corrupt("the frame needs a dictionary");
      const blockMax = BLOCK_SIZES[(bd >> 4) & 7];
      if (blockMax === undefined) throw corrupt(`block size code ${(bd >> 4) & 7} is invalid`);
      const blockChecksums = (flg & 0x10) !== 0;
      const descriptor = 2 + ((flg & 0x08) !== 0 ? 8 : 0);
      need(descriptor + 1, "the frame header");
      const hc = (xxhash.hash(0, data, pos, descriptor) >>> 8) & 0xff;
      if (hc !== data[pos + descriptor]) throw corrupt("the frame header checksum is wrong");
      pos += descriptor + 1;
      for (;;) {
        need(4, "a block size");
        const word = u32(data, pos);
        pos += 4;
        if (word === 0) break;
        const raw = (word & UNCOMPRESSED) !== 0;
        const n = word & 0x7fffffff;
        if (n > blockMax) throw corrupt(`a block of ${n} bytes exceeds the frame's ${blockMax}`);
        need(n + (blockChecksums ? 4 : 0), "a block");
        if (size + (raw ? n : blockMax) > out.length) {
          if (size + (raw ? n : 1) > limit) throw new CodecError("too-large", "");
          const grown = new Uint8Array(
            Math.min(Math.max(out.length * 2, size + blockMax), limit + blockMax),
          );
          grown.set(out.subarray(0, size));
          out = grown;
        }
        if (raw) {
          out.set(data.subarray(pos, pos + n), size);
          size += n;
        } else {
          const end = lz4.decompressBlock(data.subarray(0, pos + n), out, pos, n, size);
          if (end - size > blockMax) throw corrupt("a block inflates past the block size");
          size = end;
        }
        if (size > limit) throw new CodecError("too-large", "");
        pos += n + (blockChecksums ? 4 : 0);
      }
      if ((flg & 0x04) !== 0) {
        need(4, "the content checksum");
        pos += 4;
      }
    }
    return out.subarray(0, size);
  },
};
