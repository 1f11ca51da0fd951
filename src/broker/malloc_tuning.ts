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
 * free heap pages to the OS (`malloc_trim`, checked every few seconds, run once resident
 * memory grew 64 MiB since the last trim), which keeps resident memory down. Pinning the threshold stops glibc from moving it on its own; 64 MiB (above
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
  /** trim only once resident memory grew this much since the last trim (default 64 MiB) */
  trimGrowthBytes?: number;
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
  const inactive: MallocTuning = { active: false, close() {} };
  if (Deno.build.os !== "linux") return inactive;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return inactive;
  let lib;
  try {
    lib = Deno.dlopen("libc.so.6", {
      mallopt: { parameters: ["i32", "i32"], result: "i32" },
      malloc_trim: { parameters: ["usize"], result: "i32" },
    });
  } catch {
    return inactive; // not glibc (musl, …)
  }
  const { mallopt, malloc_trim } = lib.symbols;
  mallopt(M_ARENA_MAX, options.arenaMax ?? 2);
  mallopt(M_MMAP_THRESHOLD, options.mmapThreshold ?? 64 * 1024 * 1024);
  const every = options.trimIntervalMs ?? 5000;
  // A trim blocks the event loop for as long as it walks the heap: ~130 ms with 5,000
  // connections open, every 5 s, and /healthz waited for it. So it runs only once resident
  // memory grew since the last one (a burst), not while the broker holds steady.
  const growth = options.trimGrowthBytes ?? 64 * 1024 * 1024;
  let trimmedAt = 0;
  const trim = () => {
    if (Deno.memoryUsage().rss < trimmedAt + growth) return;
    malloc_trim(0n);
    trimmedAt = Deno.memoryUsage().rss;
  };
  const timer = every > 0 ? setInterval(trim, every) : undefined;
  if (timer !== undefined) Deno.unrefTimer(timer);
  let closed = false;
  return {
    active: true,
    close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      lib.close();
    },
  };
}
