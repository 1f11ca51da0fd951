/**
 * CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2.
 *
 * The portable implementation is hash-wasm's WebAssembly CRC-32 with the Castagnoli
 * polynomial (~1.2 GB/s here), which runs wherever the client runs (Deno, browsers, Node).
 * A server process may install a faster one with {@linkcode useCrc32cImplementation}; the
 * broker installs the SSE4.2 one of `@node-rs/crc32` (~3.8 GB/s here) when it loads.
 *
 * @module
 */
import { createCRC32 } from "hash-wasm";

const hasher = await createCRC32(0x82F63B78);

/** A CRC-32C function: bytes in, unsigned 32-bit checksum out. */
export type Crc32cFunction = (data: Uint8Array) => number;

function wasmCrc32c(data: Uint8Array): number {
  hasher.init();
  hasher.update(data);
  const d = hasher.digest("binary");
  return ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0;
}

let implementation: Crc32cFunction = wasmCrc32c;

/**
 * Computes the CRC-32C of `data`.
 *
 * @param data the bytes to checksum
 * @returns the checksum as an unsigned 32-bit integer
 * @example
 * ```ts
 * crc32c(new TextEncoder().encode("123456789")); // 0xe3069283
 * ```
 */
export function crc32c(data: Uint8Array): number {
  return implementation(data);
}

/** The portable (WebAssembly) implementation, always available. */
export const portableCrc32c: Crc32cFunction = wasmCrc32c;

/**
 * Replaces the implementation behind {@linkcode crc32c}, after checking it against the
 * standard check values (so a broken one is refused, not installed).
 *
 * @param fn the new implementation
 * @throws {TypeError} if `fn` gives a wrong checksum
 */
export function useCrc32cImplementation(fn: Crc32cFunction): void {
  const probes = [
    new TextEncoder().encode("123456789"),
    new Uint8Array(0),
    Uint8Array.from({ length: 1031 }, (_, i) => (i * 131 + 7) & 0xff),
  ];
  for (const probe of probes) {
    const got = fn(probe) >>> 0;
    const want = wasmCrc32c(probe);
    if (got !== want) {
      throw new TypeError(
        `CRC-32C implementation gave 0x${got.toString(16)} instead of 0x${want.toString(16)}`,
      );
    }
  }
  implementation = fn;
}
