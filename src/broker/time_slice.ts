/**
 * Bounded turns on the event loop for long request work (parsing and encoding a large JSON
 * produce): the work checks {@linkcode TimeSlice.due} every few items and, once it has run
 * for its budget, awaits {@linkcode TimeSlice.yield}, which lets timers (heartbeats, lease
 * renewals, the controller) and other requests (`/healthz`) run before it goes on. A request
 * of any size then holds the loop for at most one budget at a time.
 *
 * @module
 */
import { setImmediate } from "node:timers";

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

/**
 * The event loop's current turn, as a budget shared by many small pieces of work that are
 * started in the same turn: the long polls one append wakes (~112 in the 5,000-client crowd of
 * `deno task bench clients`, each reading and sending its answer), or the fetch requests that
 * arrived together. Run back to back they held the loop for up to ~700 ms in a `--cpu-prof`
 * profile of the crowd, and `/healthz` waited behind them; each piece checks
 * {@linkcode LoopTurn.due} before it starts and, while the turn has used its budget, awaits
 * {@linkcode LoopTurn.next}: one promise shared by every piece put off, resolved by one timer
 * once the loop has turned (I/O, `/healthz` and timers ran in between), in the order they were
 * put off (each checks again then: the next turn has a budget of its own). A turn that stays
 * within the budget awaits nothing (no added latency).
 *
 * A turn is measured from its first check, and ends when an immediate (`setImmediate`) armed
 * by that check runs: once the turn's work and its microtasks are done. One immediate per turn
 * with checks (~1-3 µs), not a zero-delay timer (~60 µs of CPU each with the wake-up it takes:
 * +5-10 µs per record at 2,000 records/s end to end); the timer is armed only to put work off.
 *
 * @example
 * ```ts
 * while (fetchTurns.due) await fetchTurns.next();
 * answer(read());
 * ```
 */
export class LoopTurn {
  /** when this turn's first check ran; -1 before it */
  #start = -1;
  /** whether the immediate that ends the turn is armed */
  #ending = false;
  /** whether the timer that resumes the work put off is armed */
  #armed = false;
  #next: Promise<void> | null = null;
  #resolveNext: (() => void) | null = null;
  /** how many pieces of work were put off to a later turn */
  deferred = 0;

  /** @param budgetMs how long the work of one turn runs before the rest waits for the next */
  constructor(public budgetMs: number = SLICE_BUDGET_MS) {}

  /** Whether this turn's work has used its budget (the turn's first check starts it). */
  get due(): boolean {
    const now = performance.now();
    if (this.#start < 0) {
      this.#start = now;
      if (!this.#ending) {
        this.#ending = true;
        setImmediate(this.#ended);
      }
      return false;
    }
    return now - this.#start >= this.budgetMs;
  }

  /**
   * Resolves once the event loop has turned (timers and I/O ready meanwhile ran first), for
   * every caller of this turn at once.
   */
  next(): Promise<void> {
    this.deferred++;
    if (!this.#armed) {
      this.#armed = true;
      setTimeout(this.#resume, 0);
    }
    return this.#next ??= new Promise<void>((resolve) => this.#resolveNext = resolve);
  }

  readonly #ended = (): void => {
    this.#ending = false;
    this.#start = -1;
  };

  readonly #resume = (): void => {
    this.#armed = false;
    this.#start = -1;
    const resolve = this.#resolveNext;
    this.#next = null;
    this.#resolveNext = null;
    resolve?.();
  };
}
