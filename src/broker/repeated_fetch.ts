/**
 * A fetch repeated over the same partitions, as a WebSocket push subscription repeats it
 * after each push (src/ws/subscription.ts): what the fetch-session core (fetch_session.ts)
 * keeps for it between its fetches, so that a push costs a read and a send, not the set-up of
 * a one-off fetch each time.
 *
 * - The partitions' slots, with the replicas they resolved, are kept: the next fetch moves
 *   their offsets and reads (no new slots, no replica look-up per push).
 * - One wait listener lives as long as the repeated fetch, on the replicas of its slots: it
 *   is not added to and removed from each replica's waiters per wait, and a wait with no end
 *   (`maxWaitMs: Infinity`) arms no deadline. Appends that come while the fetch is not
 *   waiting (its push is being sent) reach the listener and are ignored: the next wait checks
 *   each slot's high watermark against the one it read at, as every wait of the core does.
 * - Its fetches read into one arena of buffers, released after each answer and used again by
 *   the next (no arena, chunk list and closures made per push). A repeated fetch makes one
 *   fetch at a time, and releases each answer before the next.
 * - {@linkcode RepeatedFetch.close} ends a wait and takes the listener off every replica; a
 *   closed repeated fetch waits no more (its fetches answer at once).
 *
 * @module
 */
import type { Deadline, Deadlines } from "./deadlines.ts";
import type { WaitListener } from "./fetch_waiters.ts";
import { ReadArena, type ReadBufferPool } from "./read_buffers.ts";
import type { Replica } from "./replica.ts";

/** What the core's slot must show of itself here. */
export interface RepeatedSlot {
  /** the topic */
  topic: string;
  /** the partition */
  partition: number;
  /** the replica the slot reads, kept between fetches (null: to resolve) */
  replica: Replica | null;
  /** the high watermark at the slot's last read */
  seen: number;
  /** the offset the slot reads from next */
  offset: number;
}

/** See the module comment; made by the caller, given to each fetch as `repeat`. */
export class RepeatedFetch<S extends RepeatedSlot = RepeatedSlot> implements WaitListener {
  /** the slots of the last fetch, in the order of its partitions (the core's) */
  slots: S[] = [];
  /** the replicas the listener is on */
  #on: Replica[] = [];
  #remaining = 0;
  #resolve: ((again: boolean) => void) | null = null;
  #deadline: Deadline | null = null;
  #closed = false;
  #arena: ReadArena | null = null;

  /** Whether {@linkcode close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Whether a read now would find nothing new: every slot kept its replica (still a leader's,
   * not closing), whose high watermark is the one the slot last read at, and reads from it.
   * The core then waits at once, without reading first (after each push the repeated fetch
   * comes back caught up: the read before the wait would find nothing, at the cost of a pass
   * over the slots and its answer's objects).
   *
   * @returns true when every slot is caught up (false with no slot, or once closed)
   */
  caughtUp(): boolean {
    if (this.#closed || this.slots.length === 0) return false;
    for (const s of this.slots) {
      const r = s.replica;
      if (
        r === null || r.closing || r.role === "follower" || r.highWatermark !== s.seen ||
        s.offset < s.seen
      ) return false;
    }
    return true;
  }

  /**
   * The arena a fetch reads into: the one the last fetch used, its chunks given back since
   * (the last answer was released).
   *
   * @param pool where its chunks come from
   */
  arena(pool: ReadBufferPool): ReadArena {
    const arena = this.#arena ??= new ReadArena(pool);
    arena.reopen();
    return arena;
  }

  /** Gives the last fetch's buffers back (its answer's `release`). */
  readonly release = (): void => this.#arena?.release();

  /**
   * Ends a wait (the fetch answers what it has) and takes the listener off every replica.
   * Idempotent.
   */
  close(): void {
    this.#closed = true;
    for (const r of this.#on) r.waiters.unlisten(this);
    this.#on = [];
    this.#wake(false);
  }

  /**
   * Waits until `needed` more bytes are committed over the slots' partitions, one closes,
   * `maxWaitMs` passes, or {@linkcode close}.
   *
   * @returns whether to read again (false: closed, or no replica to wait on)
   */
  wait(needed: number, maxWaitMs: number, deadlines: Deadlines): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    const on = this.#on;
    let kept = 0;
    for (const s of this.slots) {
      const r = s.replica;
      if (r === null) continue;
      // Data that arrived between the read and now: read again at once.
      if (r.highWatermark !== s.seen || r.closing) return Promise.resolve(true);
      if (kept < on.length && on[kept] === r) kept++;
      else kept = -1;
    }
    if (kept !== on.length || on.length === 0) this.#listenTo();
    if (this.#on.length === 0) return Promise.resolve(false);
    this.#remaining = needed;
    return new Promise<boolean>((resolve) => {
      this.#resolve = resolve;
      if (Number.isFinite(maxWaitMs)) this.#deadline = deadlines.add(maxWaitMs, this.#timedOut);
    });
  }

  /** Moves the listener to the replicas of the slots now. */
  #listenTo(): void {
    const next: Replica[] = [];
    for (const s of this.slots) if (s.replica !== null) next.push(s.replica);
    for (const r of this.#on) if (!next.includes(r)) r.waiters.unlisten(this);
    // A closed replica calls onClose at once (and is not listened to): no wait is pending
    // yet, and the slot check above sent a closing replica's fetch to read again.
    for (const r of next) if (!this.#on.includes(r)) r.waiters.listen(this);
    this.#on = next;
  }

  readonly #timedOut = (): void => {
    this.#deadline = null;
    this.#wake(true);
  };

  #wake(again: boolean): void {
    const resolve = this.#resolve;
    if (resolve === null) return;
    this.#resolve = null;
    this.#deadline?.cancel();
    this.#deadline = null;
    resolve(again);
  }

  /** Part of {@linkcode WaitListener}: more bytes committed on one of the partitions. */
  onBytes(bytes: number): void {
    if (this.#resolve === null) return;
    this.#remaining -= bytes;
    if (this.#remaining <= 0) this.#wake(true);
  }

  /** Part of {@linkcode WaitListener}: a partition closes, or the broker drains. */
  onClose(): void {
    this.#wake(true);
  }
}
