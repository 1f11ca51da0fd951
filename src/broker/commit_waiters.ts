/**
 * The produce requests of a leader replica waiting for their records to be committed
 * (`acks=all`): each waits until the high watermark passes its last offset, then succeeds if
 * the ISR it was committed with is at least its `min.insync.replicas`, and fails once its
 * timeout passes or when leadership moves.
 *
 * @module
 */
import type { RillError } from "../protocol/errors.ts";

interface CommitWaiter {
  offset: number;
  minIsr: number;
  resolve: () => void;
  reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * The `acks=all` waiters of one replica, oldest first.
 *
 * @example
 * ```ts
 * const waiters = new CommitWaiters();
 * const committed = waiters.add(9, 2, 30_000, () => timedOut);
 * waiters.release(10, 2, notEnough); // committed resolves
 * ```
 */
export class CommitWaiters {
  #waiters: CommitWaiter[] = [];

  /**
   * Waits for `offset` to be committed.
   *
   * @param offset the last offset of the appended batch
   * @param minIsr `min.insync.replicas`
   * @param timeoutMs how long to wait
   * @param timedOut the error of a wait that timed out
   * @returns once committed with enough in-sync replicas
   */
  add(offset: number, minIsr: number, timeoutMs: number, timedOut: () => RillError): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: CommitWaiter = {
        offset,
        minIsr,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((x) => x !== w);
          reject(timedOut());
        }, timeoutMs),
      };
      this.#waiters.push(w);
    });
  }

  /**
   * Settles the waiters the high watermark `hw` passed.
   *
   * @param hw the new high watermark
   * @param isrSize the in-sync replicas it was committed with
   * @param notEnough the error of a waiter committed with fewer than its `min.insync.replicas`
   */
  release(
    hw: number,
    isrSize: number,
    notEnough: (offset: number, minIsr: number) => RillError,
  ): void {
    if (this.#waiters.length === 0) return;
    const still: CommitWaiter[] = [];
    for (const w of this.#waiters) {
      if (w.offset < hw) {
        clearTimeout(w.timer);
        if (isrSize >= w.minIsr) w.resolve();
        else w.reject(notEnough(w.offset, w.minIsr));
      } else still.push(w);
    }
    this.#waiters = still;
  }

  /**
   * Fails every waiter (leadership moved, or the replica closes).
   *
   * @param e the error they fail with
   */
  failAll(e: RillError): void {
    const all = this.#waiters;
    this.#waiters = [];
    for (const w of all) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }
}
