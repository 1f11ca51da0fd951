/**
 * The replication throttle (`--replication-throttle-bytes`, Kafka's
 * `follower.replication.throttled.rate`): the byte rate at which this broker copies the
 * replicas that are moving onto it (a reassignment, rebalance, decommission or
 * re-replication target not yet in the ISR), shared by all of them, so producers and
 * consumers keep their latency while data moves. Replicas already in the ISR are never
 * throttled.
 *
 * A token bucket that starts empty and holds at most a quarter second of bytes (one
 * throttled fetch): each fetch answer takes its bytes, and the next fetch of a throttled
 * replica waits until the debt is paid, so no burst outruns the rate.
 *
 * A leader keeps a second bucket of the same rate for the sender side (Kafka's
 * `leader.replication.throttled.rate`): the bytes it answers to the fetches of replicas that
 * a move is adding (not in the ISR yet), across every partition it leads; such a fetch
 * waits until that bucket's debt is paid before it reads ({@linkcode ReplicationThrottle.ready}).
 *
 * @module
 */

/** A shared byte-rate limit. */
export class ReplicationThrottle {
  /** bytes per second */
  readonly rate: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  /**
   * @param bytesPerSecond the rate (> 0)
   * @param now a clock in ms (for tests)
   */
  constructor(bytesPerSecond: number, now: () => number = () => performance.now()) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`The throttle needs a positive rate`);
    this.rate = bytesPerSecond;
    this.#now = now;
    this.#tokens = 0;
    this.#at = now();
  }

  /**
   * The most bytes one throttled fetch should ask for: a quarter second of the rate (at
   * least 64 KiB), so one answer does not overshoot the rate by much.
   *
   * @param maxBytes the unthrottled limit
   * @returns the limit to use
   */
  fetchBytes(maxBytes: number): number {
    return Math.max(64 * 1024, Math.min(maxBytes, Math.floor(this.rate / 4)));
  }

  /**
   * Takes `bytes` from the bucket.
   *
   * @param bytes what was just copied
   * @returns how long to wait (ms) before the next throttled fetch
   */
  take(bytes: number): number {
    this.#refill();
    this.#tokens -= bytes;
    return this.debtMs();
  }

  /** @returns how long (ms) until the bytes taken so far are paid for (0: now) */
  debtMs(): number {
    this.#refill();
    return this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens * 1000 / this.rate);
  }

  /**
   * Resolves once the bytes taken so far are paid for (at once if they are), or when
   * `signal` aborts.
   *
   * @param signal gives up the wait
   */
  async ready(signal?: AbortSignal): Promise<void> {
    for (let ms = this.debtMs(); ms > 0 && !signal?.aborted; ms = this.debtMs()) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        const t = setTimeout(done, ms);
        signal?.addEventListener("abort", done, { once: true });
      });
    }
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.rate / 4, this.#tokens + (now - this.#at) * this.rate / 1000);
    this.#at = now;
  }
}
