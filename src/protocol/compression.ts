/**
 * Compressed record batches, as Kafka has them: the codec is in bits 0-2 of a batch's
 * attributes (1 gzip, 2 snappy, 3 lz4, 4 zstd) and only the records section (after the
 * 61-byte header) is compressed; the header, its record count and offset deltas stay
 * readable, and the CRC-32C covers the compressed bytes.
 *
 * The codecs here are portable (pure JavaScript or WebAssembly), so the client runs in
 * Deno, browsers, Node and Deno Deploy:
 *
 * | codec  | compress                         | decompress                        |
 * | ------ | -------------------------------- | --------------------------------- |
 * | gzip   | fflate, level 6 (Kafka's default)| fflate, streamed under a limit    |
 * | snappy | snappyjs in xerial framing       | snappyjs (xerial or raw)          |
 * | lz4    | lz4js blocks in an LZ4 frame     | lz4js blocks, frame walked here   |
 * | zstd   | libzstd in WebAssembly (hpcc-js) | fzstd, frames walked first        |
 *
 * A server may install faster ones with {@linkcode useCodecImplementation} (the broker
 * installs node:zlib's gzip and zstd). Decompression never produces more than a limit:
 * a small batch that would inflate to gigabytes is refused, not buffered.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix
import { Gunzip, gzipSync } from "npm:fflate@0.8.3";
import { crc32c } from "./crc32c.ts";
import { CodecError, type CompressionCodec } from "./codec_errors.ts";
import { lz4Codec } from "./codec_lz4.ts";
import { snappyCodec } from "./codec_snappy.ts";
import { loadZstd, zstdCodec } from "./codec_zstd.ts";
import { RillError } from "./errors.ts";
import { ATTR, BATCH_HEADER_SIZE, LOG_OVERHEAD, POS } from "./record_batch.ts";

export type { CompressionCodec } from "./codec_errors.ts";
export { CodecError } from "./codec_errors.ts";

/** The codecs a batch may be compressed with, by name, in attribute order. */
export const COMPRESSION_TYPES = ["none", "gzip", "snappy", "lz4", "zstd"] as const;

/** A codec name: "none", "gzip", "snappy", "lz4" or "zstd". */
export type CompressionType = typeof COMPRESSION_TYPES[number];

/**
 * The most a batch read by a client may inflate to (the broker checked it against the
 * topic's own, smaller limit when it was produced).
 */
export const CLIENT_INFLATE_LIMIT = 256 * 1024 * 1024;

/**
 * The most the records of one produced batch may inflate to, for a topic's
 * `max.message.bytes`: 32 times it (JSON logs shrink 4-10x), and never under 16 MiB.
 *
 * @param maxMessageBytes the topic's largest batch, as sent
 * @returns the limit in bytes
 * @example
 * ```ts
 * inflateLimitFor(1048588); // 33554816
 * ```
 */
export function inflateLimitFor(maxMessageBytes: number): number {
  return Math.max(32 * maxMessageBytes, 16 * 1024 * 1024);
}

const GZIP_CHUNK = 16 * 1024;

const gzipCodec: CompressionCodec = {
  compress(data: Uint8Array): Uint8Array {
    return gzipSync(data, { level: 6 });
  },
  decompress(data: Uint8Array, limit: number): Uint8Array {
    // Streamed in 16 KiB pieces: a piece inflates to at most ~16 MiB (deflate's 1032:1),
    // and the limit is checked after each output chunk.
    const parts: Uint8Array[] = [];
    let total = 0;
    const gunzip = new Gunzip((chunk) => {
      total += chunk.length;
      if (total > limit) throw new CodecError("too-large", "");
      parts.push(chunk);
    });
    try {
      if (data.length === 0) gunzip.push(data, true);
      for (let p = 0; p < data.length; p += GZIP_CHUNK) {
        gunzip.push(data.subarray(p, p + GZIP_CHUNK), p + GZIP_CHUNK >= data.length);
      }
    } catch (e) {
      if (e instanceof CodecError) throw e;
      throw new CodecError("corrupt", `gzip data is corrupt: ${(e as Error).message}`);
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

const codecs: (CompressionCodec | undefined)[] = [
  undefined,
  gzipCodec,
  snappyCodec,
  lz4Codec,
  zstdCodec,
];

/** The portable codec of each type (what the client uses), for comparisons and tests. */
export const PORTABLE_CODECS: Readonly<Record<Exclude<CompressionType, "none">, CompressionCodec>> =
  { gzip: gzipCodec, snappy: snappyCodec, lz4: lz4Codec, zstd: zstdCodec };

/**
 * The attribute value of a codec name.
 *
 * @param type the codec name
 * @returns 0 to 4
 * @example
 * ```ts
 * compressionId("zstd"); // 4
 * ```
 */
export function compressionId(type: CompressionType): number {
  const id = COMPRESSION_TYPES.indexOf(type);
  if (id < 0) {
    throw new RillError(
      "INVALID_CONFIG",
      `Unknown compression "${type}"; use one of ${COMPRESSION_TYPES.join(", ")}`,
    );
  }
  return id;
}

/**
 * Whether a value names a codec.
 *
 * @param v anything
 * @returns true for "none", "gzip", "snappy", "lz4" and "zstd"
 */
export function isCompressionType(v: unknown): v is CompressionType {
  return typeof v === "string" && (COMPRESSION_TYPES as readonly string[]).includes(v);
}

/**
 * The codec of a batch, from its attributes.
 *
 * @param attributes the batch's attributes
 * @returns the codec name
 * @throws {RillError} UNSUPPORTED_COMPRESSION_TYPE for the unused values 5-7
 */
export function compressionOf(attributes: number): CompressionType {
  const id = attributes & ATTR.compressionMask;
  const type = COMPRESSION_TYPES[id];
  if (type === undefined) {
    throw new RillError(
      "UNSUPPORTED_COMPRESSION_TYPE",
      `Batch attributes name compression codec ${id}, which does not exist (0-4 do)`,
    );
  }
  return type;
}

/**
 * Replaces the implementation of a codec in this process (a server installs native ones).
 * It must read and write the same bytes as the portable one.
 *
 * @param type the codec
 * @param codec its compress and bounded decompress
 */
export function useCodecImplementation(
  type: Exclude<CompressionType, "none">,
  codec: CompressionCodec,
): void {
  codecs[compressionId(type)] = codec;
}

/**
 * Loads what compressing with `type` needs (the WebAssembly zstd compressor); a no-op for
 * the others. Call it once before {@linkcode compressBatch}.
 *
 * @param type the codec
 * @example
 * ```ts
 * await prepareCompression("zstd");
 * ```
 */
export async function prepareCompression(type: CompressionType): Promise<void> {
  if (type === "zstd" && codecs[4] === zstdCodec) await loadZstd();
}

/**
 * Compresses the records section of an uncompressed batch: a new batch with the codec in
 * its attributes, its length and CRC-32C rewritten, every other header field unchanged.
 *
 * @param batch one whole uncompressed batch
 * @param type the codec ("none" returns `batch` itself)
 * @returns the compressed batch
 * @example
 * ```ts
 * const small = compressBatch(encodeBatch(records), "lz4");
 * ```
 */
export function compressBatch(batch: Uint8Array, type: CompressionType): Uint8Array {
  const id = compressionId(type);
  if (id === 0) return batch;
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const attributes = view.getInt16(POS.attributes);
  if ((attributes & ATTR.compressionMask) !== 0) {
    throw new RillError("INVALID_RECORD", "The batch is compressed already");
  }
  const body = codecs[id]!.compress(batch.subarray(BATCH_HEADER_SIZE));
  const out = new Uint8Array(BATCH_HEADER_SIZE + body.length);
  out.set(batch.subarray(0, BATCH_HEADER_SIZE), 0);
  out.set(body, BATCH_HEADER_SIZE);
  const ov = new DataView(out.buffer);
  ov.setInt32(POS.batchLength, out.length - LOG_OVERHEAD);
  ov.setInt16(POS.attributes, (attributes & ~ATTR.compressionMask) | id);
  ov.setUint32(POS.crc, crc32c(out.subarray(POS.attributes)));
  return out;
}

/**
 * Decompresses the records section of a batch under a limit, naming the batch in errors.
 *
 * @param batch one whole compressed batch
 * @param limit the most bytes the records may inflate to
 * @returns the uncompressed records section
 * @throws {RillError} CORRUPT_MESSAGE if the data is corrupt; RECORD_LIST_TOO_LARGE if it
 *   would inflate past `limit`; UNSUPPORTED_COMPRESSION_TYPE for codec bits 5-7
 */
export function decompressRecords(batch: Uint8Array, limit: number): Uint8Array {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const type = compressionOf(view.getInt16(POS.attributes));
  const body = batch.subarray(BATCH_HEADER_SIZE);
  if (type === "none") return body;
  const baseOffset = Number(view.getBigInt64(POS.baseOffset));
  try {
    return codecs[compressionId(type)]!.decompress(body, limit);
  } catch (e) {
    if (e instanceof CodecError && e.kind === "too-large") {
      throw new RillError(
        "RECORD_LIST_TOO_LARGE",
        `Batch at offset ${baseOffset} (${type}, ${body.length} bytes) inflates to more than ${limit} bytes`,
        { inflateLimit: limit },
      );
    }
    const why = e instanceof CodecError ? e.message : `${type} data is corrupt: ${e}`;
    throw new RillError("CORRUPT_MESSAGE", `Batch at offset ${baseOffset}: ${why}`);
  }
}

/**
 * The uncompressed equivalent of a batch: the same header (codec bits cleared, length
 * rewritten; the CRC field is left as it was and no longer matches) followed by the
 * decompressed records. Uncompressed batches are returned as they are.
 *
 * @param batch one whole batch
 * @param limit the most bytes the records may inflate to
 * @returns a batch every record decoder reads
 * @throws {RillError} as {@linkcode decompressRecords}
 * @example
 * ```ts
 * const plain = inflateBatch(batch);
 * ```
 */
export function inflateBatch(batch: Uint8Array, limit = CLIENT_INFLATE_LIMIT): Uint8Array {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const attributes = view.getInt16(POS.attributes);
  if ((attributes & ATTR.compressionMask) === 0) return batch;
  const records = decompressRecords(batch, limit);
  const out = new Uint8Array(BATCH_HEADER_SIZE + records.length);
  out.set(batch.subarray(0, BATCH_HEADER_SIZE), 0);
  out.set(records, BATCH_HEADER_SIZE);
  const ov = new DataView(out.buffer);
  ov.setInt32(POS.batchLength, out.length - LOG_OVERHEAD);
  ov.setInt16(POS.attributes, attributes & ~ATTR.compressionMask);
  return out;
}
