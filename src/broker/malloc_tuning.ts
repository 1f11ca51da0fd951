/**
 * Keeps a broker's resident memory close to what it uses. A broker allocates a buffer the
 * size of every request body it reads (up to `max.request.bytes`) on several threads, and
 * glibc's malloc keeps what is freed: in one arena per thread that allocated (up to 8 per
 * core), and in the heap once its dynamic mmap threshold has grown past those sizes. After
 * a burst of large produce requests that memory stays resident for good, and the broker
 * looked twice as big as it was (VmHWM 546 MiB for 150 MiB in use, measured).
 *
 * So, on Linux with glibc and FFI granted (the broker runs with `-A`), it caps the arenas
 * at 2 (`M_ARENA_MAX`), pins the mmap threshold (`M_MMAP_THRESHOLD`) at 64 MiB, and returns
 * free heap pages to the OS (`malloc_trim`, checked every few seconds, due once resident
 * memory grew 64 MiB since the last trim, or since the start, run on a thread of its own once
 * the event loop has been idle 2 s, or after 5 minutes of waiting), which keeps resident
 * memory down. Waiting for idle: a trim holds the event loop even from its own thread (the
 * main thread's allocations wait for the arena lock malloc_trim holds while it walks the
 * arena), and while a broker is busy its memory is mostly in use, so a trim then costs much
 * and gives little: in the 5,000-client crowd of `deno task bench clients` (2026-12-05, load
 * 4-6) trims as soon as due ran three times while clients connected, 77-160 ms each, held the
 * loop up to 58 ms and gave back 0-6 MiB (202 → 201, 286 → 286, 406 → 400 MiB); waiting for
 * idle, none ran while clients were connected, and one ran once they had left (400 → 323 MiB).
 * After bursts of 1 MiB produce requests (`deno task bench client`) the VmHWM was no higher
 * waiting for idle (202 vs 217 MiB): the trims between its phases still run. Figures in
 * docs/operations.md ("Giving memory back").
 * Pinning the threshold stops glibc from moving it on its own; 64 MiB (above
 * `max.request.bytes` and a fetch's read) keeps request bodies, segment reads and response
 * copies in the heap, where freed memory is reused: a threshold of 256 KiB mapped and
 * unmapped every such buffer, ~500 page faults per MB fetched, and the consumer read at
 * 1.29× the producer's rate instead of 1.82× (`deno task bench client`, same machine; the
 * broker's VmHWM was 235 vs 238 MiB). The same as starting the process with
 * `MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=67108864`, but it also applies to the compiled
 * binary. Anywhere else it does nothing.
 *
 * @module
 */

const M_MMAP_THRESHOLD = -3;
const M_ARENA_MAX = -8;

/** What {@linkcode tuneMalloc} set up. */
export interface MallocTuning {
  /** whether glibc was found and tuned */
  active: boolean;
  /** the trims done so far */
  readonly trims: number;
  /** whether a trim is under way (on its own thread) */
  readonly trimming: boolean;
  /** whether a trim is due (memory grew) but waits for the event loop to be idle */
  readonly pending: boolean;
  /** stops the periodic trim and closes the library */
  close(): void;
}

/** Options of {@linkcode tuneMalloc}. */
export interface MallocTuningOptions {
  /** the most arenas (default 2) */
  arenaMax?: number;
  /** allocations of this many bytes or more are mmapped (default 64 MiB) */
  mmapThreshold?: number;
  /** how often free heap pages may go back to the OS, ms (default 5000; 0 = never) */
  trimIntervalMs?: number;
  /** trim only once resident memory grew this much since the last trim, or since the start
   * (default 64 MiB) */
  trimGrowthBytes?: number;
  /** a due trim waits until no timer tick came late for this long, ms (default 2000; 0 = no wait) */
  idleMs?: number;
  /** a timer tick this much late (ms) means the event loop is busy (default 10) */
  busyLagMs?: number;
  /** a due trim runs anyway once it waited this long, ms (default 300000) */
  maxPostponeMs?: number;
}

/**
 * Tunes glibc's malloc for a broker, if this is Linux with glibc and FFI is granted.
 *
 * @param options arena cap, mmap threshold and trim interval
 * @returns whether it applied, and a `close()` for shutdown
 * @example
 * ```ts
 * const tuning = tuneMalloc();
 * // … serve …
 * tuning.close();
 * ```
 */
export function tuneMalloc(options: MallocTuningOptions = {}): MallocTuning {
  const inactive: MallocTuning = {
    active: false,
    trims: 0,
    trimming: false,
    pending: false,
    close() {},
  };
  if (Deno.build.os !== "linux") return inactive;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return inactive;
  let lib;
  try {
    lib = Deno.dlopen("libc.so.6", {
      mallopt: { parameters: ["i32", "i32"], result: "i32" },
      // On a thread of FFI's own (below).
      malloc_trim: { parameters: ["usize"], result: "i32", nonblocking: true },
    });
  } catch {
    return inactive; // not glibc (musl, …)
  }
  const library = lib;
  const { mallopt, malloc_trim } = library.symbols;
  mallopt(M_ARENA_MAX, options.arenaMax ?? 2);
  mallopt(M_MMAP_THRESHOLD, options.mmapThreshold ?? 64 * 1024 * 1024);
  const every = options.trimIntervalMs ?? 5000;
  // A trim walks the whole heap: ~130 ms with 5,000 connections open. Run on the event loop,
  // it held every request for that long (a CPU profile of the 5,000-client crowd of
  // `deno task bench clients` had ~600 ms of the main thread in it). So it runs on a thread
  // of FFI's own (`nonblocking`), one at a time, and only once resident memory grew since
  // the last one (a burst), not while the broker holds steady.
  const growth = options.trimGrowthBytes ?? 64 * 1024 * 1024;
  // Even on its own thread a trim stalls a busy event loop: the main thread's allocations wait
  // for the arena lock while malloc_trim walks that arena (25-150 ms, in 4 of 6 crowd runs,
  // some while 5,000 clients were connected). So a trim that is due waits until the event loop
  // has been idle (no timer tick late by more than `busyLagMs`) for `idleMs`, and runs anyway
  // once it waited `maxPostponeMs` (a broker busy for good still gives memory back, at most
  // that often).
  const idleMs = options.idleMs ?? 2000;
  const busyLagMs = options.busyLagMs ?? 10;
  const maxPostponeMs = options.maxPostponeMs ?? 5 * 60_000;
  const sampleMs = Math.max(1, Math.min(every, 100));
  // Growth counts from the start: a broker holds ~100 MiB once it has started, and a first
  // trim 5 s after it started held its event loop ~120 ms (the main thread's allocations
  // wait for each arena's lock while malloc_trim walks it: a CPU profile of 50 WebSocket
  // producers had it in one piece, in the middle of `deno task bench clients`).
  let trimmedAt = Deno.memoryUsage().rss;
  let trims = 0;
  let running: Promise<number> | null = null;
  let closed = false;
  let lastTick = performance.now();
  let lastCheck = lastTick;
  let busyAt = lastTick; // when a tick last came late
  let dueSince: number | null = null; // when a trim became due (grown), while it waits
  const trim = () => {
    running = malloc_trim(0n);
    running.finally(() => {
      running = null;
      trims++;
      trimmedAt = Deno.memoryUsage().rss;
      // Closed while it ran: the library closes now that no call uses it.
      if (closed) library.close();
    });
  };
  const tick = () => {
    const now = performance.now();
    if (now - lastTick - sampleMs > busyLagMs) busyAt = now;
    lastTick = now;
    if (running !== null || closed) return;
    if (dueSince === null) {
      if (now - lastCheck < every) return;
      lastCheck = now;
      if (Deno.memoryUsage().rss < trimmedAt + growth) return;
      dueSince = now;
    }
    if (now - busyAt < idleMs && now - dueSince < maxPostponeMs) return;
    dueSince = null;
    lastCheck = now;
    trim();
  };
  const timer = every > 0 ? setInterval(tick, sampleMs) : undefined;
  if (timer !== undefined) Deno.unrefTimer(timer);
  return {
    active: true,
    get trims() {
      return trims;
    },
    get trimming() {
      return running !== null;
    },
    get pending() {
      return dueSince !== null;
    },
    close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      if (running === null) library.close();
    },
  };
}
