/**
 * Bounded turns on the event loop for long request work (parsing and encoding a large JSON
 * produce): the work checks {@linkcode TimeSlice.due} every few items and, once it has run
 * for its budget, awaits {@linkcode TimeSlice.yield}, which lets timers (heartbeats, lease
 * renewals, the controller) and other requests (`/healthz`) run before it goes on. A request
 * of any size then holds the loop for at most one budget at a time.
 *
 * @module
 */

/** How long request work runs before it lets the event loop turn; 5 ms. */
export const SLICE_BUDGET_MS = 5;

/**
 * One piece of work's turns on the event loop.
 *
 * @example
 * ```ts
 * const slice = new TimeSlice();
 * for (let i = 0; i < items.length; i++) {
 *   if ((i & 63) === 0 && slice.due) await slice.yield();
 *   work(items[i]);
 * }
 * ```
 */
export class TimeSlice {
  #since = performance.now();
  /** how many times the work let the loop turn */
  yields = 0;

  /** @param budgetMs how long the work runs between turns */
  constructor(readonly budgetMs: number = SLICE_BUDGET_MS) {}

  /** Whether the work has used its budget since it last let the loop turn. */
  get due(): boolean {
    return performance.now() - this.#since >= this.budgetMs;
  }

  /**
   * Lets the event loop turn (a macrotask: timers and I/O run), then starts a new budget.
   *
   * @returns once the loop has turned
   */
  async yield(): Promise<void> {
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    this.yields++;
    this.#since = performance.now();
  }
}
