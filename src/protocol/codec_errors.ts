/**
 * The shape every compression codec has, and the one error they throw: corrupt data, or
 * data that would inflate past the caller's limit. `compression.ts` turns it into a
 * RillError naming the batch.
 *
 * @module
 */

/** A codec of the records section of a batch. */
export interface CompressionCodec {
  /**
   * Compresses bytes.
   *
   * @param data the uncompressed records section
   * @returns the compressed bytes, in the format Kafka clients read
   */
  compress(data: Uint8Array): Uint8Array;
  /**
   * Decompresses bytes, never producing (or buffering) more than `limit` bytes.
   *
   * @param data the compressed records section
   * @param limit the most bytes the output may have
   * @returns the uncompressed bytes
   * @throws {CodecError} "corrupt" or "too-large"
   */
  decompress(data: Uint8Array, limit: number): Uint8Array;
}

/** Why a codec refused its input. */
export type CodecErrorKind = "corrupt" | "too-large";

/** Thrown by codecs; carries whether the data is corrupt or too large once inflated. */
export class CodecError extends Error {
  /** corrupt data, or output past the limit */
  readonly kind: CodecErrorKind;

  /**
   * @param kind corrupt or too-large
   * @param message what is wrong (for "corrupt")
   */
  constructor(kind: CodecErrorKind, message: string) {
    super(message);
    this.name = "CodecError";
    this.kind = kind;
  }
}
