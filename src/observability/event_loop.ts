/**
 * Event-loop delay, sampled cheaply: an interval timer every {@linkcode SAMPLE_MS} notes how
 * late it fired, and a scrape reads the samples since the previous one (last, min, max, mean,
 * standard deviation, p50/p90/p99).
 *
 * Why not prom-client's own (`collectDefaultMetrics`' event-loop lag, built on
 * `perf_hooks.monitorEventLoopDelay`): under Deno that histogram is a JavaScript timer every
 * 10 ms (5-10 ms of CPU a second on an idle broker), and reading its percentiles and
 * resetting it cost 0.3–1.2 ms of CPU at each scrape, more than the rest of a small broker's
 * scrape together (measured with `bench/metrics_bench.ts`, docs/metrics.md).
 *
 * @module
 */

/**
 * The sampling period (ms): a delay longer than this is always seen, a shorter one when a
 * sample falls in it. Each wake-up of an idle Deno process costs about 0.2 ms of CPU, so
 * the period is a trade: 100 ms costs about 2 ms of CPU a second on an idle broker (less on
 * a busy one, whose loop is awake anyway).
 */
export const SAMPLE_MS = 100;
/** Samples kept between two scrapes (older ones are dropped: 200 s at 100 ms). */
const CAPACITY = 2048;

/** What one scrape reads, in seconds. */
export interface EventLoopDelaySnapshot {
  /** the last sample */
  last: number;
  /** over the samples since the previous read (0 when there was none) */
  min: number;
  max: number;
  mean: number;
  stddev: number;
  p50: number;
  p90: number;
  p99: number;
}

/**
 * The sampler. Its timer does not keep the process alive.
 *
 * @example
 * ```ts
 * const d = new EventLoopDelay();
 * // … later, at a scrape:
 * d.read().p99; // seconds
 * d.stop();
 * ```
 */
export class EventLoopDelay {
  readonly #samples = new Float64Array(CAPACITY);
  #count = 0;
  #last = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #previous = performance.now();

  constructor() {
    // One interval timer (re-arming a timeout each tick costs more).
    const timer = setInterval(this.#tick, SAMPLE_MS);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  readonly #tick = (): void => {
    const now = performance.now();
    const late = Math.max(0, now - this.#previous - SAMPLE_MS) / 1000;
    this.#previous = now;
    this.#last = late;
    this.#samples[this.#count % CAPACITY] = late;
    this.#count++;
  };

  /**
   * Reads the samples since the previous read and starts a new window.
   *
   * @returns the figures, in seconds
   */
  read(): EventLoopDelaySnapshot {
    const n = Math.min(this.#count, CAPACITY);
    this.#count = 0;
    if (n === 0) {
      const l = this.#last;
      return { last: l, min: l, max: l, mean: l, stddev: 0, p50: l, p90: l, p99: l };
    }
    const s = this.#samples.subarray(0, n).sort();
    let sum = 0;
    for (let i = 0; i < n; i++) sum += s[i];
    const mean = sum / n;
    let sq = 0;
    for (let i = 0; i < n; i++) sq += (s[i] - mean) ** 2;
    const at = (q: number) => s[Math.min(n - 1, Math.ceil(q * n) - 1)];
    return {
      last: this.#last,
      min: s[0],
      max: s[n - 1],
      mean,
      stddev: Math.sqrt(sq / n),
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
    };
  }

  /** Stops the timer. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
