/**
 * Installs the hardware CRC-32C of `@node-rs/crc32` (SSE4.2 / ARMv8 CRC instructions through
 * Node-API, ~3× hash-wasm here) as the implementation behind `crc32c()`, for server
 * processes. The client never loads it: it stays on the portable WebAssembly one.
 *
 * @module
 */
import { useCrc32cImplementation } from "../protocol/crc32c.ts";

let installed: Promise<boolean> | undefined;

/**
 * Loads and installs the native CRC-32C once; falls back silently to the portable one when
 * the platform has no prebuilt binary (or FFI is not permitted).
 *
 * @returns whether the native implementation is now in use
 * @example
 * ```ts
 * await installNativeCrc32c();
 * ```
 */
export function installNativeCrc32c(): Promise<boolean> {
  installed ??= (async () => {
    try {
      const mod = await import("@node-rs/crc32");
      const native = mod.crc32c;
      useCrc32cImplementation((data) => native(data) >>> 0);
      return true;
    } catch {
      return false;
    }
  })();
  return installed;
}
