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
    const now = this.#now();
    this.#tokens = Math.min(this.rate / 4, this.#tokens + (now - this.#at) * this.rate / 1000);
    this.#at = now;
    this.#tokens -= bytes;
    return this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens * 1000 / this.rate);
  }
}
