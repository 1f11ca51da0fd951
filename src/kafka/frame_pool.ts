/**
 * Buffers for Produce request frames, reused from one request to the next.
 *
 * A producer such as librdkafka sends ~1 MB Produce requests back to back. A fresh buffer
 * for each one costs more than reading it: the allocator zeroes it (memset), its pages fault
 * in as the socket read fills them, and the garbage collector runs for the megabytes that
 * become garbage once the batches are written (a broker profile with kcat producing 1 KiB
 * records: ~100 page faults per MB, memset and V8's GC threads a fifth of its CPU; the
 * bench's floor server, which reads every frame into one buffer, has none of it).
 *
 * A buffer is lent for one frame and given back once that request's answer was written and
 * the request said that nothing refers to its bytes any more (a Produce with acks 1 or all:
 * its batches were written to the segment before the answer). Anything else is left to the
 * garbage collector, so a request whose bytes are kept (acks=0 appends finishing later,
 * group metadata) never sees them overwritten.
 *
 * Buffers come in power-of-two sizes from 64 KiB to 16 MiB; at most `maxFreeBytes` of free
 * buffers are kept (a peak of requests in flight leaves at most that much resident).
 *
 * @module
 */

/** The smallest buffer class. */
export const MIN_CLASS_BYTES = 64 * 1024;
/** Frames larger than this get a buffer of their own, not pooled. */
export const MAX_CLASS_BYTES = 16 * 1024 * 1024;

/**
 * The size of the buffer class a frame of `size` bytes goes in.
 *
 * @param size the frame's size
 * @returns the smallest power of two ≥ `size` and ≥ {@linkcode MIN_CLASS_BYTES}
 */
export function classBytes(size: number): number {
  let c = MIN_CLASS_BYTES;
  while (c < size) c *= 2;
  return c;
}

/** Free frame buffers by size class, up to a total. */
export class FramePool {
  readonly #free = new Map<number, Uint8Array[]>();
  readonly #maxFreeBytes: number;
  #freeBytes = 0;
  /** buffers lent from the pool (for tests and the benchmark) */
  reused = 0;

  /** @param maxFreeBytes the most bytes of free buffers kept (default 32 MiB) */
  constructor(maxFreeBytes = 32 * 1024 * 1024) {
    this.#maxFreeBytes = maxFreeBytes;
  }

  /** Bytes held in free buffers. */
  get freeBytes(): number {
    return this.#freeBytes;
  }

  /**
   * A free buffer of the class of `size`, if one is kept.
   *
   * @param size the frame's size
   * @returns a buffer of {@linkcode classBytes}(size) bytes (old contents), or null
   */
  take(size: number): Uint8Array | null {
    if (size > MAX_CLASS_BYTES) return null;
    const c = classBytes(size);
    const list = this.#free.get(c);
    const buf = list?.pop();
    if (buf === undefined) return null;
    this.#freeBytes -= buf.length;
    this.reused++;
    return buf;
  }

  /**
   * Gives a buffer back; one that is not of a class, or beyond the total, is dropped.
   *
   * @param buf a buffer nothing refers to any more
   */
  give(buf: Uint8Array): void {
    const c = buf.length;
    if (c < MIN_CLASS_BYTES || c > MAX_CLASS_BYTES || (c & (c - 1)) !== 0) return;
    if (buf.byteOffset !== 0 || buf.buffer.byteLength !== c) return;
    if (this.#freeBytes + c > this.#maxFreeBytes) return;
    let list = this.#free.get(c);
    if (list === undefined) this.#free.set(c, list = []);
    list.push(buf);
    this.#freeBytes += c;
  }
}
