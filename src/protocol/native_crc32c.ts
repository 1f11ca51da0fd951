/**
 * Installs the hardware CRC-32C of `@node-rs/crc32` (SSE4.2 / ARMv8 CRC instructions through
 * Node-API, ~3× hash-wasm here) as the implementation behind `crc32c()`.
 *
 * Brokers install it when they start. The client installs it too when it runs in Deno with
 * FFI, read and env access already granted (`-A`), since checksums are the
 * largest cost of producing and of consuming with `checkCrcs`, once its process has summed
 * {@linkcode NATIVE_AFTER_BYTES} with the portable one ({@linkcode installNativeCrc32cWhenBusy}):
 * loading it costs ~40-80 ms of CPU and Deno's Node compatibility layer in memory, more than a
 * small client ever saves (a batch under {@linkcode NATIVE_FROM_BYTES} is summed in JavaScript
 * anyway); everywhere else (browsers, Deno Deploy, Node, Deno without FFI) it stays on the
 * portable WebAssembly one. Loading
 * never prompts for a permission and never throws: a platform without a prebuilt binary
 * keeps the portable implementation.
 *
 * @module
 */
import { jsCrc32c, useCrc32cImplementation, whenCrc32cBusy } from "./crc32c.ts";

// A full npm: specifier, so that the client loads it from any Deno project (not only
// through this repository's import map); not statically analysable on purpose, so that
// bundlers for browsers leave it alone and the import simply fails there.
const NATIVE_MODULE = "npm:@node-rs/crc32@1.10.8";

let installed: Promise<boolean> | undefined;

/** The part of the `Deno` global this module reads (typed here so that tsc needs no Deno types). */
interface DenoPermissionsLike {
  permissions?: {
    querySync?: (desc: { name: "ffi" | "read" | "env" }) => { state: string };
  };
}

/**
 * Whether this is Deno with what loading a Node-API module needs already granted: FFI, and
 * read and env access (the loader reads the `.node` file and `NAPI_RS_*` variables).
 * Queried, never requested, so that it never prompts.
 */
function ffiGranted(): boolean {
  const deno = (globalThis as { Deno?: DenoPermissionsLike }).Deno;
  try {
    const query = deno?.permissions?.querySync;
    if (query === undefined) return false;
    return (["ffi", "read", "env"] as const).every((name) =>
      query.call(deno!.permissions, { name }).state === "granted"
    );
  } catch {
    return false;
  }
}

/**
 * Loads and installs the native CRC-32C once; falls back silently to the portable one when
 * this is not Deno, FFI is not granted, or the platform has no prebuilt binary.
 *
 * @returns whether the native implementation is now in use
 * @example
 * ```ts
 * await installNativeCrc32c();
 * ```
 */
export function installNativeCrc32c(): Promise<boolean> {
  installed ??= (async () => {
    if (!ffiGranted()) return false;
    try {
      const mod = await import(NATIVE_MODULE);
      const native = mod.crc32c as (data: Uint8Array) => number;
      useCrc32cImplementation((data) =>
        data.byteLength < NATIVE_FROM_BYTES ? jsCrc32c(data) : native(data) >>> 0
      );
      return true;
    } catch {
      return false;
    }
  })();
  return installed;
}

/**
 * Inputs shorter than this are summed in JavaScript even with the native implementation
 * installed: a Node-API call costs more than the sum of a small batch (measured here: 120 B,
 * 0.11 µs in JavaScript, 0.17 µs native; even at 170 B; native ahead from ~300 B; in a
 * profile of the clients bench's crowd, whose consumers check one ~170 B batch a push, the
 * native call was ~12% of the client processes' busy time).
 */
export const NATIVE_FROM_BYTES = 256;

/**
 * The bytes a process sums with the portable CRC-32C before the client loads the native one
 * (at most ~25 ms more CPU than native over them, less than loading it costs).
 */
export const NATIVE_AFTER_BYTES = 16 * 1024 * 1024;

/**
 * Installs the native CRC-32C ({@linkcode installNativeCrc32c}) once this process has summed
 * `bytes` with the portable one; at once if it is installed or loading already.
 *
 * @param bytes how many bytes first (default {@linkcode NATIVE_AFTER_BYTES})
 * @example
 * ```ts
 * installNativeCrc32cWhenBusy(); // a client that checksums little never loads it
 * ```
 */
export function installNativeCrc32cWhenBusy(bytes: number = NATIVE_AFTER_BYTES): void {
  if (installed !== undefined || waiting) return;
  waiting = true;
  whenCrc32cBusy(bytes, () => void installNativeCrc32c());
}

/** Whether installNativeCrc32cWhenBusy() is counting already. */
let waiting = false;
