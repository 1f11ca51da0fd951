/**
 * Holding early idempotent batches (the leader's side of a producer with several batches of
 * one partition in flight). Over HTTP, requests on different connections may overtake each
 * other, so batch k+1 of a producer may reach the leader before batch k. Instead of
 * refusing it at once with OUT_OF_ORDER_SEQUENCE_NUMBER, the leader holds such a batch —
 * one whose baseSequence is ahead of the sequence it expects from that producer (same
 * epoch) — until another batch of that producer lands on the partition (then it tries
 * again) or {@linkcode SEQUENCE_HOLD_MS} passes (then it goes through the normal check once
 * more and is refused as before). A held batch waits outside the partition's write queue:
 * other appends go on meanwhile.
 *
 * Bounds: at most {@linkcode MAX_HELD_PER_PRODUCER} batches held per producer and
 * partition, {@linkcode MAX_HELD_TOTAL} in the broker; beyond that a batch is refused at once.
 * Duplicates, older sequences, new epochs and fencing are untouched: only an
 * OUT_OF_ORDER_SEQUENCE_NUMBER for a sequence ahead of the expected one is held.
 *
 * @module
 */
import { RillError } from "../protocol/errors.ts";
import type { ProducerStateEntry } from "../storage/producer_state.ts";
import { incrementSequence } from "../storage/producer_state.ts";

/** How long a batch whose predecessor has not arrived is held, at most (ms). */
export const SEQUENCE_HOLD_MS = 1500;
/** How many batches of one producer and partition may be held at once. */
export const MAX_HELD_PER_PRODUCER = 5;
/** How many batches the broker holds at once, over all producers and partitions. */
export const MAX_HELD_TOTAL = 1000;

const HALF_SEQUENCE_SPACE = 0x40000000;

/**
 * Whether `error` is an OUT_OF_ORDER_SEQUENCE_NUMBER for `baseSequence` being ahead of the
 * expected sequence (a predecessor presumably still on its way), as opposed to behind it.
 *
 * @param error what the append failed with
 * @param baseSequence the batch's baseSequence
 * @returns true when the batch may be held
 * @example
 * ```ts
 * const e = new RillError("OUT_OF_ORDER_SEQUENCE_NUMBER", "gap", { expectedSequence: 3 });
 * isAheadOfSequence(e, 7); // true
 * ```
 */
export function isAheadOfSequence(error: unknown, baseSequence: number): boolean {
  if (!(error instanceof RillError) || error.code !== "OUT_OF_ORDER_SEQUENCE_NUMBER") {
    return false;
  }
  const expected = error.details.expectedSequence;
  if (typeof expected !== "number") return false;
  // Sequences wrap at 2^31: "ahead" is less than half the space forward.
  const distance = (baseSequence - expected + 0x80000000) % 0x80000000;
  return distance > 0 && distance < HALF_SEQUENCE_SPACE;
}

/**
 * The sequence the log expects next from a producer in `epoch`, or undefined if it has no
 * batch of that epoch.
 *
 * @param entry the producer's state in the log
 * @param epoch the batch's producer epoch
 * @returns the expected sequence
 * @example
 * ```ts
 * expectedSequence(replica.log.producerState(7), 0); // e.g. 12
 * ```
 */
export function expectedSequence(
  entry: ProducerStateEntry | undefined,
  epoch: number,
): number | undefined {
  if (entry === undefined || entry.producerEpoch !== epoch) return undefined;
  const last = entry.batches.at(-1);
  return last === undefined ? undefined : incrementSequence(last.lastSequence, 1);
}

/**
 * The held batches of a broker, as wake-ups keyed by producer and partition.
 *
 * @example
 * ```ts
 * const holds = new SequenceHolds();
 * const woken = holds.wait("orders\u00000\u00007", 1500); // null if too many are held
 * holds.appended("orders\u00000\u00007"); // a batch of producer 7 landed: woken resolves true
 * ```
 */
export class SequenceHolds {
  readonly #waiters = new Map<string, Set<(woken: boolean) => void>>();
  #total = 0;

  /** How many batches are held now. */
  get size(): number {
    return this.#total;
  }

  /**
   * The key of a producer on a partition.
   *
   * @param topic the topic
   * @param partition the partition
   * @param producerId the producer id
   * @returns the key
   */
  static key(topic: string, partition: number, producerId: number): string {
    return `${topic}\u0000${partition}\u0000${producerId}`;
  }

  /**
   * Holds a batch until the next {@linkcode SequenceHolds.appended} of its key or `timeoutMs`.
   *
   * @param key the producer and partition
   * @param timeoutMs the longest wait
   * @returns true when woken by an append, false on timeout; null (no wait) when the bounds
   *   are reached
   */
  wait(key: string, timeoutMs: number): Promise<boolean> | null {
    let set = this.#waiters.get(key);
    if ((set?.size ?? 0) >= MAX_HELD_PER_PRODUCER || this.#total >= MAX_HELD_TOTAL) return null;
    if (set === undefined) {
      set = new Set();
      this.#waiters.set(key, set);
    }
    const waiters = set;
    this.#total++;
    return new Promise<boolean>((resolve) => {
      const done = (woken: boolean) => {
        clearTimeout(timer);
        if (!waiters.delete(done)) return;
        this.#total--;
        if (waiters.size === 0 && this.#waiters.get(key) === waiters) this.#waiters.delete(key);
        resolve(woken);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      waiters.add(done);
    });
  }

  /**
   * Wakes the batches held for `key` (a batch of that producer was appended there).
   *
   * @param key the producer and partition
   */
  appended(key: string): void {
    const set = this.#waiters.get(key);
    if (set === undefined) return;
    for (const done of [...set]) done(true);
  }
}
