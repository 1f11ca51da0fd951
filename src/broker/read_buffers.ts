/**
 * Reused read buffers for fetch answers. A fetch reads its batches from the segment file
 * into a buffer lent for the request; the answer is made from it (routes/records.ts
 * `lentBatchAnswer`: copied by `new Response(bytes)` when small, streamed from the buffer
 * when large), and the buffer comes back once the answer no longer needs it. A new buffer
 * per fetch costs a zero fill of up to `maxBytes` and garbage that the collector must find:
 * serving consumers at ~900 MB/s, the zero fill alone was 11% of the broker's CPU
 * (`perf`), and the garbage made full collections frequent.
 *
 * Buffers are lent per request and given back when its answer is made or sent; a request may call the
 * lent {@linkcode ReadBuffer} more than once (a long poll reads again after its wait) and
 * gets the same buffer each time, so only its last read's bytes are valid. Reads larger
 * than {@linkcode MAX_POOLED_BYTES} get a buffer of their own. At most
 * {@linkcode MAX_IDLE_BYTES} of idle buffers are kept.
 *
 * @module
 */
import type { ReadBuffer } from "../storage/segment.ts";

/** Reads at most this large are served from the pool. */
export const MAX_POOLED_BYTES = 16 * 1024 * 1024;
/** The most bytes of idle buffers the pool keeps. */
export const MAX_IDLE_BYTES = 16 * 1024 * 1024;
/**
 * The most bytes of idle small buffers (arenas' first chunks) the pool keeps. A new one per
 * fetch answer was garbage as large as the answer (rounded up to a power of two), freed only
 * at the next collection: 900 long polls woken at each append made tens of MiB of it. 4 MiB
 * was too few for the answers of one wake-up (900 consumers × 16 KiB): making buffers still
 * took ~5% of the broker's CPU in a profile of the 5,000-client crowd.
 */
export const MAX_IDLE_SMALL_BYTES = 16 * 1024 * 1024;
/** The smallest buffer the pool makes (smaller reads share its size class). */
const MIN_BUFFER_BYTES = 256 * 1024;

/** A buffer lent for one request. */
export interface LentBuffer {
  /** where the request's reads go */
  alloc: ReadBuffer;
  /** gives the buffer back: call once the answer no longer reads it (copied, or sent) */
  release(): void;
}

/**
 * A pool of read buffers, one per broker.
 *
 * @example
 * ```ts
 * const pool = new ReadBufferPool();
 * const lent = pool.lend();
 * try {
 *   const result = await broker.fetch(topic, partition, offset, { ...opts, alloc: lent.alloc });
 *   return new Response(result.bytes); // a copy: the buffer may go back now
 * } finally {
 *   lent.release();
 * }
 * ```
 */
export class ReadBufferPool {
  readonly #idle: Uint8Array[] = [];
  #idleBytes = 0;
  /** idle small buffers of arenas by size */
  readonly #small = new Map<number, Uint8Array[]>();
  #smallBytes = 0;

  /** Bytes held in idle buffers. */
  get idleBytes(): number {
    return this.#idleBytes;
  }

  /** Bytes held in idle small buffers (arenas' first chunks). */
  get idleSmallBytes(): number {
    return this.#smallBytes;
  }

  /**
   * Lends a buffer for one request (taken at its first read).
   *
   * @returns the request's read buffer and its release
   */
  lend(): LentBuffer {
    let held: Uint8Array | null = null;
    let released = false;
    return {
      alloc: (length) => {
        if (length > MAX_POOLED_BYTES) return new Uint8Array(length);
        if (held !== null && held.length >= length) return held;
        if (held !== null) this.#giveBack(held);
        held = this.#take(length);
        return held;
      },
      release: () => {
        if (released) return;
        released = true;
        if (held !== null) this.#giveBack(held);
        held = null;
      },
    };
  }

  #take(length: number): Uint8Array {
    // The smallest idle buffer that fits.
    let best = -1;
    for (let i = 0; i < this.#idle.length; i++) {
      const size = this.#idle[i].length;
      if (size >= length && (best < 0 || size < this.#idle[best].length)) best = i;
    }
    if (best >= 0) {
      const [buf] = this.#idle.splice(best, 1);
      this.#idleBytes -= buf.length;
      return buf;
    }
    let size = MIN_BUFFER_BYTES;
    while (size < length) size *= 2;
    return new Uint8Array(size);
  }

  /**
   * A small buffer of exactly `size` bytes (a power of two up to
   * {@linkcode ARENA_OWN_CHUNK_MAX_BYTES}), from those given back if one is idle.
   */
  takeSmall(size: number): Uint8Array {
    const idle = this.#small.get(size);
    const buf = idle?.pop();
    if (buf === undefined) return new Uint8Array(size);
    this.#smallBytes -= size;
    return buf;
  }

  /** Gives back a buffer of {@linkcode takeSmall}; kept while idle ones stay within bounds. */
  giveBackSmall(buf: Uint8Array): void {
    if (this.#smallBytes + buf.length > MAX_IDLE_SMALL_BYTES) return;
    let idle = this.#small.get(buf.length);
    if (idle === undefined) this.#small.set(buf.length, idle = []);
    idle.push(buf);
    this.#smallBytes += buf.length;
  }

  /**
   * Keeps a buffer given back while idle ones stay within bounds; when they would not, the
   * smaller idle ones make room for a larger one (a large buffer serves any read; small ones
   * kept in its place made each large read a new buffer, zero-filled and then garbage: 900
   * consumers behind the log end read up to 1 MiB each).
   */
  #giveBack(buf: Uint8Array): void {
    if (this.#idleBytes + buf.length > MAX_IDLE_BYTES) {
      this.#idle.sort((a, b) => a.length - b.length);
      let drop = 0;
      let freed = 0;
      while (
        drop < this.#idle.length && this.#idle[drop].length < buf.length &&
        this.#idleBytes - freed + buf.length > MAX_IDLE_BYTES
      ) freed += this.#idle[drop++].length;
      if (this.#idleBytes - freed + buf.length > MAX_IDLE_BYTES) return;
      this.#idle.splice(0, drop);
      this.#idleBytes -= freed;
    }
    this.#idle.push(buf);
    this.#idleBytes += buf.length;
  }
}

/**
 * The first chunk of an arena whose first read is small: a small one of this size (each next
 * one twice the last; reused through the pool's small buffers) rather than a 1 MiB one. A long poll woken by one
 * small record would otherwise take 1 MiB for it: 900 consumers waiting on 8 partitions took
 * ~110 MiB at each append (made, zero-filled, then garbage past the pool's idle bound).
 */
const ARENA_FIRST_CHUNK_BYTES = 512;
/** The largest small chunk of an arena (the pool's `takeSmall`); larger ones are lent by the pool. */
const ARENA_OWN_CHUNK_MAX_BYTES = 128 * 1024;

/**
 * Many reads of one request (a multi-partition fetch, fetch_session.ts) in buffers lent by
 * the pool: each read gets its own region of a chunk (each twice the size of the last, or as
 * large as the read), so their bytes stay valid together until {@linkcode ReadArena.release}.
 *
 * @example
 * ```ts
 * const arena = new ReadArena(broker.readBuffers);
 * const a = arena.alloc(100), b = arena.alloc(200); // distinct regions
 * arena.release(); // once the answer no longer reads them
 * ```
 */
export class ReadArena {
  readonly #pool: ReadBufferPool;
  /** each chunk: lent by the pool (large), or a small one of the pool's (`lent` null) */
  readonly #chunks: { lent: LentBuffer | null; buf: Uint8Array }[] = [];
  #current = 0;
  #cursor = 0;
  #released = false;

  /** @param pool where the chunks come from */
  constructor(pool: ReadBufferPool) {
    this.#pool = pool;
  }

  /** A region of at least `length` bytes, distinct from every other since the last reset. */
  readonly alloc: ReadBuffer = (length) => {
    for (;;) {
      const chunk = this.#chunks[this.#current];
      if (chunk !== undefined && chunk.buf.length - this.#cursor >= length) {
        const region = chunk.buf.subarray(this.#cursor, this.#cursor + length);
        this.#cursor += length;
        return region;
      }
      if (chunk !== undefined && this.#current + 1 < this.#chunks.length) {
        this.#current++;
        this.#cursor = 0;
        continue;
      }
      if (length > MAX_POOLED_BYTES) return new Uint8Array(length);
      // Each chunk twice the last (or as large as the read): small ones first, then the
      // pool's lent buffers. Not 1 MiB at once past the small ones: a consumer behind by
      // 200 KiB took a 1 MiB buffer, which the pool (16 MiB idle) could not keep for 900
      // consumers, so each such answer made, zero-filled and dropped 1 MiB.
      let size = ARENA_FIRST_CHUNK_BYTES << this.#chunks.length;
      while (size < length) size *= 2;
      if (size <= ARENA_OWN_CHUNK_MAX_BYTES) {
        this.#chunks.push({ lent: null, buf: this.#pool.takeSmall(size) });
      } else {
        const lent = this.#pool.lend();
        this.#chunks.push({ lent, buf: lent.alloc(size) });
      }
      this.#current = this.#chunks.length - 1;
      this.#cursor = 0;
    }
  };

  /** Where the next region starts (for {@linkcode rollback}). */
  mark(): { chunk: number; cursor: number } {
    return { chunk: this.#current, cursor: this.#cursor };
  }

  /** Forgets the regions given since `mark` (a read that was dropped). */
  rollback(mark: { chunk: number; cursor: number }): void {
    this.#current = mark.chunk;
    this.#cursor = mark.cursor;
  }

  /** Forgets every region (the request reads again); the chunks are kept. */
  reset(): void {
    this.#current = 0;
    this.#cursor = 0;
  }

  /**
   * Makes a released arena usable again (a repeated fetch's, for its next fetch: its chunks
   * went back to the pool; new ones are taken as regions are asked for).
   */
  reopen(): void {
    this.#released = false;
    this.#current = 0;
    this.#cursor = 0;
  }

  /** Gives the chunks back to the pool; the regions must no longer be read. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const c of this.#chunks) {
      if (c.lent !== null) c.lent.release();
      else this.#pool.giveBackSmall(c.buf);
    }
    this.#chunks.length = 0;
  }
}
