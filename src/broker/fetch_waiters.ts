/**
 * Long-poll support: fetches that found fewer than `minBytes` wait here until enough bytes
 * are committed (the high watermark moves), their `maxWaitMs` is up, the client goes away,
 * or the partition closes. The waiting fetch is woken by the append itself, through its
 * promise, with no timer on the wake-up path (a zero-delay timer costs ~2 ms in Deno); the
 * only timer is each waiter's deadline.
 *
 * @module
 */

/** Why a wait ended. */
export type WaitOutcome = "data" | "timeout" | "aborted" | "closed";

/**
 * Something woken by a partition's commits: a single-partition wait, or a fetch session
 * waiting on many partitions at once (fetch_session.ts), which sums the bytes itself.
 */
export interface WaitListener {
  /** `bytes` more bytes became readable */
  onBytes(bytes: number): void;
  /** the partition is closing, or the broker wakes everyone (draining) */
  onClose(): void;
}

/** The callbacks of {@linkcode whenAborted}, by signal: one event listener per signal. */
const abortCallbacks = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `fn` once `signal` aborts, until {@linkcode forgetAborted}. A long poll's wait needs
 * this each time it waits, on a signal that lives as long as its connection or subscription:
 * an `addEventListener` and `removeEventListener` each time (their option conversions and
 * listener list) were ~1% of the broker's CPU in the 5,000-client crowd; here the signal gets
 * one event listener, and each wait a Set entry.
 *
 * @param signal the signal (already aborted: `fn` is not called; check `aborted` first)
 * @param fn what to call
 */
export function whenAborted(signal: AbortSignal, fn: () => void): void {
  let callbacks = abortCallbacks.get(signal);
  if (callbacks === undefined) {
    const all = callbacks = new Set();
    abortCallbacks.set(signal, all);
    signal.addEventListener("abort", () => {
      abortCallbacks.delete(signal);
      for (const f of all) f();
    }, { once: true });
  }
  callbacks.add(fn);
}

/**
 * Forgets a callback of {@linkcode whenAborted}.
 *
 * @param signal the signal
 * @param fn the callback
 */
export function forgetAborted(signal: AbortSignal, fn: () => void): void {
  abortCallbacks.get(signal)?.delete(fn);
}

class Waiter implements WaitListener {
  constructor(public remaining: number, public resolve: (outcome: WaitOutcome) => void) {}
  onBytes(bytes: number): void {
    this.remaining -= bytes;
    if (this.remaining <= 0) this.resolve("data");
  }
  onClose(): void {
    this.resolve("closed");
  }
}

/**
 * The waiting fetches of one partition.
 *
 * @example
 * ```ts
 * const waiters = new FetchWaiters();
 * const outcome = waiters.wait(1, 500); // resolves "data" on the next notify(n > 0)
 * waiters.notify(100);
 * await outcome; // "data"
 * ```
 */
export class FetchWaiters {
  #waiters = new Set<WaitListener>();
  #closed = false;

  /** Whether the partition closed (no more waits are taken). */
  get closed(): boolean {
    return this.#closed;
  }

  /** How many fetches are waiting. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Waits until `minBytes` more bytes are committed, `timeoutMs` passes, `signal` aborts or
   * the partition closes.
   *
   * @param minBytes bytes to wait for (at least 1)
   * @param timeoutMs the deadline
   * @param signal aborts the wait (the client disconnected)
   * @returns why the wait ended
   */
  wait(minBytes: number, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.#closed) return Promise.resolve("closed");
    if (signal?.aborted) return Promise.resolve("aborted");
    if (timeoutMs <= 0) return Promise.resolve("timeout");
    return new Promise<WaitOutcome>((resolve) => {
      const onAbort = () => finish("aborted");
      const waiter = new Waiter(Math.max(1, minBytes), (outcome) => finish(outcome));
      const timer = setTimeout(() => finish("timeout"), timeoutMs);
      const finish = (outcome: WaitOutcome) => {
        if (!this.#waiters.delete(waiter)) return;
        clearTimeout(timer);
        if (signal !== undefined) forgetAborted(signal, onAbort);
        resolve(outcome);
      };
      this.#waiters.add(waiter);
      if (signal !== undefined) whenAborted(signal, onAbort);
    });
  }

  /**
   * Adds a listener, woken by {@linkcode notify}, {@linkcode close} and {@linkcode wakeAll}
   * until {@linkcode unlisten}. A closed partition calls `onClose` at once.
   *
   * @param listener the listener
   */
  listen(listener: WaitListener): void {
    if (this.#closed) {
      listener.onClose();
      return;
    }
    this.#waiters.add(listener);
  }

  /**
   * Removes a listener added by {@linkcode listen}.
   *
   * @param listener the listener
   */
  unlisten(listener: WaitListener): void {
    this.#waiters.delete(listener);
  }

  /**
   * Tells the waiters that `bytes` more bytes became readable; wakes those that have
   * enough.
   *
   * @param bytes bytes committed since the last call
   */
  notify(bytes: number): void {
    if (this.#waiters.size === 0) return;
    // Deleting the current element while iterating a Set is safe: no copy on this path.
    for (const w of this.#waiters) w.onBytes(bytes);
  }

  /** Wakes every waiter with "closed" and refuses new waits (the partition is going away). */
  close(): void {
    this.#closed = true;
    for (const w of [...this.#waiters]) w.onClose();
  }

  /** Wakes every waiter with "closed" but keeps accepting waits (e.g. a server draining). */
  wakeAll(): void {
    for (const w of [...this.#waiters]) w.onClose();
  }
}
