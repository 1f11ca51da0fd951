/**
 * Byte-array helpers shared by the layers.
 *
 * @module
 */

/**
 * The parts back to back in one array (the part itself when there is only one).
 *
 * @param parts the arrays, in order
 * @param total their summed length
 * @returns one array of `total` bytes
 * @example
 * ```ts
 * concatBytes([Uint8Array.of(1), Uint8Array.of(2, 3)], 3); // Uint8Array [1, 2, 3]
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
