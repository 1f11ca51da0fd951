/**
 * The deadlines of long polls, without a timer each: every fetch that waits has a deadline,
 * and in a crowd of long-polling consumers almost every one ends early (an append wakes it),
 * so a `setTimeout` and a `clearTimeout` per wait (~2-4 µs together in Deno 2.9, a third of
 * the broker's CPU per woken poll) were spent on timers that never fire.
 *
 * Deadlines of the same delay are due in the order they were added, so each delay keeps a
 * queue in that order and one timer, armed for its first live deadline. A cancelled deadline
 * only drops its callback; the queue is compacted when mostly cancelled. Each fires once it is
 * due, as its own timer would have (never early).
 *
 * @module
 */

/** A deadline added by {@linkcode Deadlines.add}. */
export interface Deadline {
  /** Cancels it (no-op once fired or cancelled). */
  cancel(): void;
}

class Entry implements Deadline {
  constructor(public at: number, public fire: (() => void) | null, public queue: Queue) {}
  cancel(): void {
    if (this.fire === null) return;
    this.fire = null;
    this.queue.cancelled();
  }
}

class Queue {
  entries: Entry[] = [];
  head = 0;
  live = 0;
  timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly delay: number, readonly owner: Map<number, Queue>) {}

  add(fire: () => void): Entry {
    const e = new Entry(performance.now() + this.delay, fire, this);
    this.entries.push(e);
    this.live++;
    if (this.timer === undefined) this.#arm(e.at);
    return e;
  }

  cancelled(): void {
    this.live--;
    if (this.live === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.owner.delete(this.delay);
      return;
    }
    const queued = this.entries.length - this.head;
    if (queued > 1024 && this.live * 4 < queued) this.#compact();
  }

  #arm(at: number): void {
    this.timer = setTimeout(() => this.#due(), Math.max(0, at - performance.now()));
  }

  #due(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.entries.length) {
      const e = this.entries[this.head];
      if (e.fire !== null && e.at > now) break;
      this.head++;
      if (e.fire === null) continue;
      const fire = e.fire;
      e.fire = null;
      this.live--;
      fire();
    }
    if (this.live === 0) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      if (this.owner.get(this.delay) === this) this.owner.delete(this.delay);
      return;
    }
    this.#compact();
    if (this.timer === undefined) this.#arm(this.entries[0].at);
  }

  #compact(): void {
    this.entries = this.entries.slice(this.head).filter((e) => e.fire !== null);
    this.head = 0;
  }
}

/**
 * Deadlines, one timer per distinct delay.
 *
 * @example
 * ```ts
 * const deadlines = new Deadlines();
 * const d = deadlines.add(500, () => console.log("timed out"));
 * d.cancel(); // the wait ended early: nothing fires
 * ```
 */
export class Deadlines {
  #queues = new Map<number, Queue>();

  /**
   * Calls `fire` once `delayMs` passed, unless cancelled first.
   *
   * @param delayMs the delay
   * @param fire what to call
   * @returns the deadline, to cancel
   */
  add(delayMs: number, fire: () => void): Deadline {
    let q = this.#queues.get(delayMs);
    if (q === undefined) this.#queues.set(delayMs, q = new Queue(delayMs, this.#queues));
    return q.add(fire);
  }
}
