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

interface Waiter {
  remaining: number;
  resolve: (outcome: WaitOutcome) => void;
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
  #waiters = new Set<Waiter>();
  #closed = false;

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
      const waiter: Waiter = {
        remaining: Math.max(1, minBytes),
        resolve: (outcome) => finish(outcome),
      };
      const timer = setTimeout(() => finish("timeout"), timeoutMs);
      const finish = (outcome: WaitOutcome) => {
        if (!this.#waiters.delete(waiter)) return;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(outcome);
      };
      this.#waiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Tells the waiters that `bytes` more bytes became readable; wakes those that have
   * enough.
   *
   * @param bytes bytes committed since the last call
   */
  notify(bytes: number): void {
    if (this.#waiters.size === 0) return;
    for (const w of this.#waiters) {
      w.remaining -= bytes;
      if (w.remaining <= 0) w.resolve("data");
    }
  }

  /** Wakes every waiter with "closed" and refuses new waits (the partition is going away). */
  close(): void {
    this.#closed = true;
    for (const w of [...this.#waiters]) w.resolve("closed");
  }

  /** Wakes every waiter with "closed" but keeps accepting waits (e.g. a server draining). */
  wakeAll(): void {
    for (const w of [...this.#waiters]) w.resolve("closed");
  }
}
