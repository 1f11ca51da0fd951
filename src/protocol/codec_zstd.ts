/**
 * Kafka's zstd codec: Zstandard frames (RFC 8878), as Java (zstd-jni), librdkafka and
 * kafkajs' zstd codecs write them.
 *
 * Reading uses `fzstd` (pure JavaScript, synchronous, ~100 MB/s here). It allocates what a
 * frame header declares, so the frames are walked first (headers and block headers only):
 * each frame's declared content size, or else its window and the sum of its blocks' largest
 * outputs, must fit the caller's limit before anything is decoded.
 *
 * Writing uses libzstd compiled to WebAssembly (`@hpcc-js/wasm-zstd`, level 3, Kafka's
 * default), whose module must be loaded once, asynchronously ({@linkcode loadZstd}) before
 * the first `compress`; the producer does so when it is created with zstd.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix
import { decompress as fzstdDecompress } from "npm:fzstd@0.1.1";
import { CodecError, type CompressionCodec } from "./codec_errors.ts";

const ZSTD_MAGIC = 0xfd2fb528;
const MAX_BLOCK = 128 * 1024;

interface ZstdEncoder {
  compress(data: Uint8Array, level?: number): Uint8Array;
}
let encoder: ZstdEncoder | undefined;
let loading: Promise<void> | undefined;

/**
 * Loads the WebAssembly zstd compressor once (decompression needs nothing loaded).
 *
 * @returns once `zstdCodec.compress` can be called
 * @example
 * ```ts
 * await loadZstd();
 * zstdCodec.compress(new Uint8Array(10));
 * ```
 */
export function loadZstd(): Promise<void> {
  loading ??= (async () => {
    // deno-lint-ignore no-import-prefix
    const { Zstd } = await import("npm:@hpcc-js/wasm-zstd@1.12.5");
    encoder = await Zstd.load();
  })();
  return loading;
}

function corrupt(what: string): CodecError {
  return new CodecError("corrupt", `zstd data is corrupt: ${what}`);
}

function u32(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

function uintLE(b: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + b[p + i];
  return v;
}

/**
 * Walks the frames of `data` (headers and block headers only) and returns the most bytes
 * they can inflate to, refusing frames that are truncated, malformed or would go past
 * `limit`. The broker's native zstd runs it first too: libzstd's one-shot decompression
 * returns what it has for a truncated frame instead of failing.
 *
 * @param data zstd frames
 * @param limit the most bytes the output may have
 * @returns an upper bound of the output size
 * @throws {CodecError} "corrupt" or "too-large"
 */
export function zstdOutputBound(data: Uint8Array, limit: number): number {
  let pos = 0;
  let total = 0;
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
    if (magic !== ZSTD_MAGIC) throw corrupt(`magic number 0x${magic.toString(16)} is not zstd's`);
    pos += 4;
    need(1, "the frame header");
    const fhd = data[pos++];
    const fcsFlag = fhd >> 6;
    const single = (fhd >> 5) & 1;
    if ((fhd & 0x08) !== 0) throw corrupt("a reserved header bit is set");
    const checksum = (fhd >> 2) & 1;
    const dictBytes = [0, 1, 2, 4][fhd & 3];
    const fcsBytes = fcsFlag === 0 ? single : 1 << fcsFlag;
    need((single ? 0 : 1) + dictBytes + fcsBytes, "the frame header");
    let window = 0;
    if (!single) {
      const wd = data[pos++];
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    }
    if (dictBytes > 0 && uintLE(data, pos, dictBytes) !== 0) {
      throw corrupt("the frame needs a dictionary");
    }
    pos += dictBytes;
    const contentSize = fcsBytes === 0
      ? -1
      : uintLE(data, pos, fcsBytes) + (fcsBytes === 2 ? 256 : 0);
    pos += fcsBytes;
    if (single) window = contentSize;
    // fzstd allocates the content size, or else the window, before decoding.
    if (contentSize > limit - total || (contentSize < 0 && window > limit)) {
      throw new CodecError("too-large", "");
    }
    const blockMax = Math.min(window, MAX_BLOCK);
    let frameOut = 0;
    for (;;) {
      need(3, "a block header");
      const h = data[pos] | (data[pos + 1] << 8) | (data[pos + 2] << 16);
      pos += 3;
      const type = (h >> 1) & 3;
      const size = h >>> 3;
      if (type === 3) throw corrupt("a block has the reserved type");
      if (size > MAX_BLOCK) throw corrupt(`a block of ${size} bytes exceeds 128 KiB`);
      const input = type === 1 ? 1 : size;
      need(input, "a block");
      pos += input;
      frameOut += type === 2 ? blockMax : size;
      if (contentSize < 0 && total + frameOut > limit) throw new CodecError("too-large", "");
      if ((h & 1) !== 0) break;
    }
    if (checksum) {
      need(4, "the content checksum");
      pos += 4;
    }
    total += contentSize >= 0 ? contentSize : frameOut;
  }
  return total;
}

/** Kafka's zstd codec (Zstandard frames). */
export const zstdCodec: CompressionCodec = {
  compress(data: Uint8Array): Uint8Array {
    if (encoder === undefined) {
      throw new Error("The zstd compressor is not loaded yet: await loadZstd() first");
    }
    return encoder.compress(data, 3);
  },

  decompress(data: Uint8Array, limit: number): Uint8Array {
    zstdOutputBound(data, limit);
    let out: Uint8Array;
    try {
      out = fzstdDecompress(data);
    } catch (e) {
      throw corrupt((e as Error).message);
    }
    if (out.length > limit) throw new CodecError("too-large", "");
    return out;
  },
};
