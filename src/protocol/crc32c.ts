/**
 * CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2.
 *
 * Three implementations, fastest available first:
 * - native: a server process installs one with {@linkcode useCrc32cImplementation}; the
 *   broker installs the SSE4.2 one of `@node-rs/crc32` (~3.8 GB/s here) when it loads.
 * - wasm: hash-wasm's WebAssembly CRC-32 with the Castagnoli polynomial (~1.2 GB/s here).
 *   It is compiled in the background when this module loads and takes over once ready.
 * - js: SheetJS `crc-32`'s table-driven CRC-32C (~0.9 GB/s here), pure JavaScript, in use
 *   from the first call and kept wherever WebAssembly is refused (a page whose
 *   Content-Security-Policy lacks `'wasm-unsafe-eval'`).
 *
 * The module has no top-level await, so it loads under `require()` and in strict-CSP pages,
 * and its imports are full `npm:` specifiers, so it resolves without the repository's
 * import map.
 *
 * @module
 */
// Full npm: specifiers: the client must resolve without the repository's import map.
// deno-lint-ignore no-import-prefix
import CRC32C from "npm:crc-32@1.2.2/crc32c.js";
// deno-lint-ignore no-import-prefix
import { createCRC32 } from "npm:hash-wasm@4.13.0";

/** A CRC-32C function: bytes in, unsigned 32-bit checksum out. */
export type Crc32cFunction = (data: Uint8Array) => number;

/** Which implementation {@linkcode crc32c} runs on. */
export type Crc32cImplementation = "native" | "wasm" | "js";

/**
 * The pure-JavaScript implementation (SheetJS `crc-32`), what the others are checked against.
 *
 * @param data the bytes to checksum
 * @returns the checksum as an unsigned 32-bit integer
 */
export function jsCrc32c(data: Uint8Array): number {
  return CRC32C.buf(data, 0) >>> 0;
}

/** Inputs shorter than this are summed in JavaScript even where WebAssembly is used. */
const WASM_FROM_BYTES = 2048;

let implementation: Crc32cFunction = jsCrc32c;
let implementationName: Crc32cImplementation = "js";
let portable: Crc32cFunction = jsCrc32c;

/**
 * Settles once the WebAssembly implementation is in use or was refused; resolves to the
 * portable implementation's name ("wasm" or "js").
 */
const wasmAttempt: Promise<"wasm" | "js"> = createCRC32(0x82F63B78).then(
  (hasher) => {
    // A call into WebAssembly costs ~2 µs here whatever the length: short inputs (a small
    // batch) are summed faster in JavaScript.
    const wasm: Crc32cFunction = (data) => {
      if (data.byteLength < WASM_FROM_BYTES) return jsCrc32c(data);
      hasher.init();
      hasher.update(data);
      const d = hasher.digest("binary");
      return ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0;
    };
    portable = wasm;
    if (implementationName === "js") {
      implementation = wasm;
      implementationName = "wasm";
    }
    return "wasm" as const;
  },
  () => "js" as const,
);

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
  if (busyHook !== undefined) {
    busyBytes += data.byteLength;
    if (busyBytes >= busyAfter) {
      const hook = busyHook;
      busyHook = undefined;
      hook();
    }
  }
  return implementation(data);
}

let busyHook: (() => void) | undefined;
let busyBytes = 0;
let busyAfter = Infinity;

/**
 * Calls `hook` once {@linkcode crc32c} has summed `bytes` more bytes (from now on): for work
 * worth doing only in a process that checksums a lot, such as loading the native one.
 * Replaces a hook set before that has not been called.
 *
 * @param bytes how many bytes to wait for
 * @param hook called once, synchronously, within the crc32c() call that passes the mark
 * @example
 * ```ts
 * whenCrc32cBusy(16 << 20, () => void installNativeCrc32c());
 * ```
 */
export function whenCrc32cBusy(bytes: number, hook: () => void): void {
  busyBytes = 0;
  busyAfter = bytes;
  busyHook = hook;
}

/**
 * The portable implementation: WebAssembly once compiled, else pure JavaScript. Always
 * available, on every runtime.
 *
 * @param data the bytes to checksum
 * @returns the checksum as an unsigned 32-bit integer
 */
export function portableCrc32c(data: Uint8Array): number {
  return portable(data);
}

/**
 * The implementation {@linkcode crc32c} runs on now.
 *
 * @returns "native", "wasm" or "js"
 */
export function crc32cImplementation(): Crc32cImplementation {
  return implementationName;
}

/**
 * Waits until the WebAssembly implementation has been compiled or refused.
 *
 * @returns the portable implementation in use: "wasm", or "js" where WebAssembly is refused
 */
export function portableCrc32cReady(): Promise<"wasm" | "js"> {
  return wasmAttempt;
}

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
    const want = jsCrc32c(probe);
    if (got !== want) {
      throw new TypeError(
        `CRC-32C implementation gave 0x${got.toString(16)} instead of 0x${want.toString(16)}`,
      );
    }
  }
  implementation = fn;
  implementationName = "native";
}
