/**
 * The broker's gzip and zstd: node:zlib's native zlib and libzstd, installed in place of
 * the portable codecs (fflate; fzstd and libzstd in WebAssembly) when a broker starts.
 * They read and write the same formats; measured here on JSON log events they decompress
 * ~2-5x and compress ~4-7x faster (`deno task bench compression` reports the broker's CPU
 * per MB). Decompression is bounded by `maxOutputLength`: zlib stops and throws once the
 * output would pass the limit, so a bomb is never buffered. snappy and lz4 keep the
 * portable codecs (node:zlib has neither).
 *
 * @module
 */
import * as zlib from "node:zlib";
import { CodecError, type CompressionCodec } from "../protocol/codec_errors.ts";
import { zstdOutputBound } from "../protocol/codec_zstd.ts";
import { useCodecImplementation } from "../protocol/compression.ts";

function bounded(
  name: string,
  inflate: (data: Uint8Array, limit: number) => Uint8Array,
): CompressionCodec["decompress"] {
  return (data, limit) => {
    try {
      return inflate(data, limit);
    } catch (e) {
      if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new CodecError("too-large", "");
      }
      if (e instanceof CodecError) throw e;
      throw new CodecError("corrupt", `${name} data is corrupt: ${(e as Error).message}`);
    }
  };
}

const nativeGzip: CompressionCodec = {
  compress: (data) => zlib.gzipSync(data, { level: 6 }),
  decompress: bounded("gzip", (data, limit) => zlib.gunzipSync(data, { maxOutputLength: limit })),
};

const nativeZstd: CompressionCodec = {
  compress: (data) =>
    zlib.zstdCompressSync(data, {
      params: { [zlib.constants.ZSTD_c_compressionLevel]: 3 },
    }),
  decompress: bounded(
    "zstd",
    (data, limit) => {
      zstdOutputBound(data, limit);
      return zlib.zstdDecompressSync(data, { maxOutputLength: limit });
    },
  ),
};

let installed = false;

/**
 * Installs the native gzip and zstd codecs in this process (once; later calls do nothing).
 *
 * @example
 * ```ts
 * installNativeCodecs();
 * ```
 */
export function installNativeCodecs(): void {
  if (installed) return;
  installed = true;
  useCodecImplementation("gzip", nativeGzip);
  useCodecImplementation("zstd", nativeZstd);
}
