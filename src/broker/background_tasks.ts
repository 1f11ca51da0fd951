/**
 * The broker's background work: loops that run a task every so often (metadata polling,
 * retention, the log cleaner, heartbeats, the controller, ISR checks), each run after the
 * previous one finished, and the in-flight appends that closing waits for.
 *
 * @module
 */

/** Periodic tasks and tracked in-flight work of one broker. */
export class BackgroundTasks {
  readonly #log: (line: string) => void;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #loopRuns = new Set<Promise<void>>();
  /** tracked work not settled yet (a count: a Set of promises cost ~1 µs a produce) */
  #inflight = 0;
  /** settleInflight() calls waiting for the count to reach 0 */
  #idle: (() => void)[] = [];
  readonly #settled = () => {
    if (--this.#inflight === 0) { for (const wake of this.#idle.splice(0)) wake(); }
  };
  #stopped = false;

  /** @param log where a failed run is reported */
  constructor(log: (line: string) => void) {
    this.#log = log;
  }

  /**
   * Runs `fn` every `intervalMs` (counted from the end of the previous run) until
   * {@linkcode stop}; a failed run is reported and the loop goes on.
   *
   * @param intervalMs the pause between runs
   * @param fn the task
   * @param fromStart count the interval from the start of the previous run instead (a run
   *   never overlaps the previous one; one that took longer than the interval is followed at
   *   once): for the heartbeat, whose period must not stretch by its own KV latency
   */
  every(intervalMs: number, fn: () => Promise<unknown>, fromStart = false): void {
    let started = performance.now();
    const schedule = () => {
      if (this.#stopped) return;
      const wait = fromStart ? Math.max(0, intervalMs - (performance.now() - started)) : intervalMs;
      const t = setTimeout(() => {
        this.#timers.delete(t);
        started = performance.now();
        const run = fn().then(
          () => {},
          (e) => this.#log(`background task failed: ${e instanceof Error ? e.message : e}`),
        ).finally(() => {
          this.#loopRuns.delete(run);
          schedule();
        });
        this.#loopRuns.add(run);
      }, wait);
      this.#timers.add(t);
    };
    schedule();
  }

  /**
   * Keeps `p` in the in-flight set until it settles (see {@linkcode settleInflight}).
   *
   * @param p the work
   * @returns `p`
   */
  track<T>(p: Promise<T>): Promise<T> {
    this.#inflight++;
    p.then(this.#settled, this.#settled);
    return p;
  }

  /** Stops every loop: no new run starts; resolves once the running ones have ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await Promise.allSettled([...this.#loopRuns]);
  }

  /**
   * Resolves once every tracked piece of work has settled (and any tracked meanwhile: the
   * broker calls it while shutting down, when no new work starts).
   */
  settleInflight(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
