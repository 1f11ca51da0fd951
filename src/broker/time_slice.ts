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
 * {@linkcode LoopTurn.next}. The pieces put off wait in a queue, in the order they were put
 * off; once the loop has turned (I/O, `/healthz` and timers ran in between: one zero-delay
 * timer), they are let go one at a time, each after the one before it ran its synchronous part,
 * while the new turn has budget left, and the rest wait for the turn after. A piece let go
 * passes its next check of `due` (its turn was given to it). Before 2026-12-06 one promise
 * woke every piece put off at each turn, and all but the few that fitted put themselves off
 * again: ~12 such wake-ups per push in the crowd (~50,000 a second). A turn that stays within the
 * budget awaits nothing (no added latency).
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
  /** the pieces put off, in order (each its promise's resolve); those before #head went */
  #queue: ((() => void) | undefined)[] = [];
  #head = 0;
  /** a piece was let go: the next check of `due` passes */
  #granted = false;
  /** how many times pieces of work were put off to a later turn */
  deferred = 0;

  /** @param budgetMs how long the work of one turn runs before the rest waits for the next */
  constructor(public budgetMs: number = SLICE_BUDGET_MS) {}

  /** Whether this turn's work has used its budget (the turn's first check starts it). */
  get due(): boolean {
    if (this.#granted) {
      this.#granted = false;
      return false;
    }
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
   * Resolves once the event loop has turned (timers and I/O ready meanwhile ran first) and the
   * pieces put off before this one went, within a turn's budget.
   */
  next(): Promise<void> {
    this.deferred++;
    this.#arm();
    return new Promise<void>((resolve) => this.#queue.push(resolve));
  }

  #arm(): void {
    if (this.#armed) return;
    this.#armed = true;
    setTimeout(this.#resume, 0);
  }

  readonly #ended = (): void => {
    this.#ending = false;
    this.#start = -1;
  };

  readonly #resume = (): void => {
    this.#armed = false;
    this.#start = -1;
    this.#letGo();
  };

  /**
   * Lets the next piece put off go if the turn has budget left, then comes back (a microtask
   * queued after the piece's own) for the one after; once the budget is used, the rest wait for
   * the next turn.
   */
  readonly #letGo = (): void => {
    if (this.#head >= this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
      return;
    }
    if (this.due) return this.#arm();
    const resolve = this.#queue[this.#head]!;
    this.#queue[this.#head++] = undefined;
    this.#granted = true;
    resolve();
    queueMicrotask(this.#letGo);
  };
}
