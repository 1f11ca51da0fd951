/**
 * Installs the hardware CRC-32C of `@node-rs/crc32` (SSE4.2 / ARMv8 CRC instructions through
 * Node-API, ~3× hash-wasm here) as the implementation behind `crc32c()`.
 *
 * Brokers install it when they start. The client installs it too when it runs in Deno with
 * FFI, read and env access already granted (`-A`), since checksums are the
 * largest cost of producing and of consuming with `checkCrcs`; everywhere else (browsers,
 * Deno Deploy, Node, Deno without FFI) it stays on the portable WebAssembly one. Loading
 * never prompts for a permission and never throws: a platform without a prebuilt binary
 * keeps the portable implementation.
 *
 * @module
 */
import { useCrc32cImplementation } from "./crc32c.ts";

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
      useCrc32cImplementation((data) => native(data) >>> 0);
      return true;
    } catch {
      return false;
    }
  })();
  return installed;
}
